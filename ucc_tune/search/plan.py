"""The search plan: everything ``python -m ucc_tune.search`` decided, frozen before Ray starts.

The search command resolves its flags into one ``SearchPlan`` (space, objectives, fixed config,
resources, scheduler, storage, cluster); the Ray adapter (``ucc_tune.ray_adapter``) only translates it
into Ray objects; ``search.json`` records it. The driver's copies of ``search.json``,
``optuna.db`` and ``trials.parquet`` are kept in sync with a remote experiment here too.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucc_tune.config import Config, ConfigError
from ucc_tune.resources import Resources
from ucc_tune.schema import DRIVER_FILES, SEARCH_FILE, STUDY_FILE
from ucc_tune.storage import Storage, is_uri

if TYPE_CHECKING:
    from ucc_tune.search.spaces import Space


def grace_period(epochs: int) -> int:
    """Epochs every trial runs before ASHA may stop it, unless ``--grace-period`` says otherwise:
    half the budget, rounded up. UCC curves are slow to start (at a high ``alpha`` the UCC loss
    sits at ln 4 for the first epochs), so a trial is judged only once it has had half its
    epochs; with the default reduction factor of 3 and up to 8 epochs that is one decision."""
    return max(1, math.ceil(epochs / 2))


REDUCTION_FACTOR = 3  # ASHA keeps 1/this of the trials at each rung


@dataclass(frozen=True)
class SearchPlan:
    """One search, resolved and validated. ``fixed`` holds the ``Config`` values every trial
    shares (``--config``/``--set`` and what the resources imply); ``searched`` the parameter
    names the space was seen to suggest."""

    name: str
    storage: str  # where Ray keeps experiments: a folder or a URI
    experiment_uri: str  # the experiment in that storage
    experiment_dir: Path  # the experiment when local; the driver's copy of its files when remote
    space: Space  # loaded: its source is a name in ucc_tune.search.spaces.SPACES or an absolute .py path
    searched: tuple[str, ...]
    fixed: dict[str, Any]
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    num_samples: int
    scheduler: str  # "asha" or "fifo"
    epochs: int  # of every trial (space constants and --set applied)
    keep_checkpoints: int
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int | None = None  # None: as many as the cluster fits
    grace_period: int = 1
    reduction_factor: int = REDUCTION_FACTOR
    max_failures: int = 1
    seed: int = 0
    resume: bool = False
    address: str | None = None  # a running cluster to join; None starts a local one
    num_cpus: int | None = None  # of the local cluster
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    enqueue: tuple[dict[str, Any], ...] = ()  # configurations to run first (ucc_tune.search.prefill)
    warm_start: dict[str, Any] | None = None  # the earlier experiment whose trials seed the study
    log_to: tuple[str, ...] = ()  # experiment trackers (ucc_tune.search.trackers)
    time_budget_s: float | None = None  # no trial starts after this many seconds (--time-budget)

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)

    @property
    def study_url(self) -> str:
        return f"sqlite:///{self.experiment_dir / STUDY_FILE}"

    def record(self) -> dict[str, Any]:
        """The plan as ``search.json`` holds it."""
        out = asdict(self)
        out["space"] = self.space.source
        out["experiment_dir"] = str(self.experiment_dir)
        out["resources"] = {
            **asdict(self.resources),
            "trial": self.resources.trial,
            "worker": self.resources.worker,
        }
        return out


def publish(plan: SearchPlan, *names: str) -> None:
    """Copy the driver's files (default: all of ``DRIVER_FILES``) from the local copy of a remote
    experiment to its storage; nothing to do for a local one."""
    if not plan.remote:
        return
    storage = Storage(plan.experiment_uri)
    for name in names or DRIVER_FILES:
        if (plan.experiment_dir / name).is_file():
            storage.upload(plan.experiment_dir / name, name)


def fetch_driver_files(plan: SearchPlan) -> None:
    """Before resuming a remote experiment: bring its driver files to the local copy when the
    copy lacks them (a new machine, a cleared cache)."""
    if not plan.remote:
        return
    storage = Storage(plan.experiment_uri)
    for name in DRIVER_FILES:
        if not (plan.experiment_dir / name).exists() and storage.exists(name):
            storage.download(plan.experiment_dir / name, name)


RESUME_MUST_MATCH = {
    "space": "--space",
    "metrics": "--metric",
    "modes": "--mode",
    "num_samples": "--num-samples",
}


def _search_record(experiment_dir: Path) -> dict[str, Any]:
    """The experiment's ``search.json``, or {} when it is missing or damaged."""
    try:
        record = json.loads((experiment_dir / SEARCH_FILE).read_text())
    except (OSError, ValueError):  # missing or damaged: nothing to compare with
        return {}
    return record if isinstance(record, dict) else {}


def changed_command(plan: SearchPlan) -> str:
    """What a ``--resume`` command asks that differs from the search it would continue: the
    space, the objectives or the number of trials (``--flag then -> now``, comma-separated), or
    "" (also when ``search.json`` is missing or damaged)."""
    record = _search_record(plan.experiment_dir)
    now = plan.record()
    changed = []
    for key, flag in RESUME_MUST_MATCH.items():
        then = record.get(key)
        if key in record and _as_listed(then) != _as_listed(now[key]):
            changed.append(f"{flag} {_as_listed(then)} -> {_as_listed(now[key])}")
    return ", ".join(changed)


def _as_listed(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def changed_defaults(experiment_dir: Path) -> str:
    """The ``Config`` values the trials of a resumed search would now get for the fields its start
    left to the defaults, where they differ from those its ``search.json`` recorded then (a new
    version's defaults: ``key=then -> now``, comma-separated), or ""."""
    record = _search_record(experiment_dir)
    recorded, fixed = record.get("resolved_fixed_config"), record.get("fixed")
    if not isinstance(recorded, dict) or not isinstance(fixed, dict):
        return ""
    try:
        now = Config.from_dict(fixed).to_dict()
    except ConfigError as err:
        return f"its fixed values are no longer valid ({err})"
    return ", ".join(
        f"{k}={recorded[k]!r} -> {now[k]!r}" for k in now if k in recorded and recorded[k] != now[k]
    )
