"""What a run or a search trial asks the cluster for: CPUs, GPUs and DDP ranks (no Ray).

The flags say it (``--cpus-per-trial``, ``--gpus-per-trial``, ``--workers-per-trial``, or a
``python -m ucc_tune.train --workers`` run); the Ray adapter maps it to Ray's resources. GPU use
comes from these flags, never from what a trial's own process sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ucc_tune.bounds import check_number

TRIAL_DRIVER_CPU = 0.05  # what a DDP trial's own process holds: it only drives a TorchTrainer


MIN_CPUS = 0.05  # the smallest share of a CPU a trial may ask for
MAX_DEVICES = 1024  # more CPUs, GPUs or ranks per trial than any one node has


class ResourceError(ValueError):
    """Resources a cluster can never give (a trial would wait for ever); exit code 2."""


@dataclass(frozen=True)
class Resources:
    """What each trial asks for. In-process trials (``workers == 0``) hold ``cpus`` and
    ``gpus`` themselves; fractions of a GPU let several small trials share one. DDP trials
    (``workers >= 1``) run ``workers`` Ray Train ranks holding ``cpus`` and ``gpus`` (a whole
    number) each, and the trial's own process holds ``TRIAL_DRIVER_CPU``."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 0
    driver_cpu: float = TRIAL_DRIVER_CPU  # a DDP trial's own process; 0 for a Train run without Tune

    def __post_init__(self) -> None:
        # a trial holds at least MIN_CPUS (Ray's granularity is far finer, but 1e-9 CPUs would
        # ask for a billion trials at once) and at most what one large machine has
        check_number("--cpus-per-trial", self.cpus, MIN_CPUS, MAX_DEVICES)
        check_number("--gpus-per-trial", self.gpus, 0, MAX_DEVICES)
        check_number("--workers-per-trial", self.workers, 0, MAX_DEVICES, whole=True)
        if self.workers >= 1 and not float(self.gpus).is_integer():
            raise ValueError(
                f"--gpus-per-trial {self.gpus:g} with --workers-per-trial {self.workers}: a DDP rank "
                "needs whole GPUs (fractions are for in-process trials, --workers-per-trial 0)"
            )

    @property
    def threads(self) -> int:
        """torch threads of a trial or rank: its whole CPUs, at least one."""
        return max(1, math.floor(self.cpus))

    @property
    def trial(self) -> dict[str, float]:
        """The resources of the trial's own process."""
        if self.workers == 0:
            return {"CPU": self.cpus, "GPU": self.gpus}
        return {"CPU": self.driver_cpu, "GPU": 0.0}

    @property
    def worker(self) -> dict[str, float]:
        """The resources of each Ray Train rank (DDP trials only)."""
        return {"CPU": self.cpus, "GPU": self.gpus} if self.workers else {}

    @property
    def per_trial(self) -> dict[str, float]:
        """Everything one trial holds while it runs: its process plus its ranks."""
        n = self.workers
        return {"CPU": self.trial["CPU"] + n * self.cpus, "GPU": self.trial["GPU"] + n * self.gpus}

    def unfit(self, cluster: dict[str, float]) -> str | None:
        """Why one trial can never run on ``cluster`` (Ray would keep it pending), or None."""
        for kind, need in self.per_trial.items():
            if need > cluster.get(kind, 0.0) + 1e-9:
                return (
                    f"a trial needs {need:g} {kind} in all (its process and its ranks), but the cluster "
                    f"has {cluster.get(kind, 0.0):g}; ask for less (--cpus-per-trial, --gpus-per-trial, "
                    "--workers-per-trial) or use a bigger cluster"
                )
        return None

    def concurrency(self, cluster: dict[str, float]) -> int:
        """How many trials fit the cluster's CPUs and GPUs at once (at least one)."""
        fits = [
            math.floor(cluster.get(kind, 0.0) / need + 1e-9)
            for kind, need in self.per_trial.items()
            if need > 0
        ]
        return max(1, min(fits))
