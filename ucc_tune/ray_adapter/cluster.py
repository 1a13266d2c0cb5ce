"""The Ray cluster a search or a DDP run uses: starting or joining it (privately, without the
driver's secrets in the trials' environment), and the one mapping of the resource flags to Ray
(each trial's resources, Ray Train's ranks and DDP backend, how many trials at once). GPUs come
from the flags, never from what this process sees.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.train
import torch

from ucc_tune.resources import ResourceError, Resources
from ucc_tune.storage import is_secret


@dataclass(frozen=True)
class RayResources:
    """What Ray gets for a search: each trial's own resources, its ranks, and how many at once."""

    trial: dict[str, float]  # for tune.with_resources
    workers: int
    worker: dict[str, float]  # resources_per_worker of the ScalingConfig
    backend: str  # torch.distributed backend of DDP trials
    concurrency: int

    def scaling_config(self) -> ray.train.ScalingConfig:
        return ray.train.ScalingConfig(
            num_workers=self.workers,
            use_gpu=self.worker.get("GPU", 0) > 0,
            resources_per_worker={k: v for k, v in self.worker.items() if v > 0},
        )


def ray_resources(r: Resources, device: str, fixed: int | None = None) -> RayResources:
    """The one mapping of the flags to Ray: the trial's own resources, Ray Train's per-worker CPUs,
    GPUs and backend, and how many trials at once (``fixed``, else what the cluster's CPUs and GPUs
    fit; ResourceError if none ever fits). GPUs come from the flags, never from this process."""
    cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
    if (unfit := r.unfit(cluster)) is not None:
        raise ResourceError(unfit)
    return RayResources(
        trial={k.lower(): v for k, v in r.trial.items()},
        workers=r.workers,
        worker=r.worker,
        backend=ddp_backend(r, device) if r.workers else "gloo",
        concurrency=fixed or r.concurrency(cluster),
    )


def ddp_backend(resources: Resources, device: str) -> str:
    """NCCL when the ranks hold GPUs that CUDA can use, else gloo. Whether a GPU node's GPUs are
    usable is asked of a task that holds the same GPUs there: this process may have none."""
    if resources.gpus == 0 or device == "cpu":
        return "gloo"

    @ray.remote(num_cpus=0, num_gpus=resources.gpus)
    def cuda_usable() -> bool:
        return torch.cuda.is_available()

    usable = ray.get(cuda_usable.remote(), timeout=600)
    if not usable and device == "cuda":
        raise ResourceError("device=cuda, but torch sees no usable CUDA device on the GPU nodes")
    return "nccl" if usable else "gloo"


def keep_credentials_in_the_environment() -> None:
    """Stop Ray Tune from copying the driver's secrets (``AWS_*`` credentials, any variable whose
    name says KEY, TOKEN, SECRET or PASSWORD) into every trial's runtime environment: Ray's
    runtime-env agent writes runtime-env variables into its log in clear text. A local cluster's
    workers inherit the driver's environment anyway, and on a multi-node cluster each node uses
    its own credentials (environment, ``~/.aws`` or an instance role), so S3 storage and the
    trackers keep working without the copy."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = {
        name for name in class_cache.ENV_VARS_TO_PROPAGATE if not is_secret(name)
    }


def private_temp_dir() -> str:
    """Ray's temp folder for a local cluster this process starts: ``ray`` inside a folder only this
    user may enter (``ucc-tune-<uid>``, 0700) under ``$RAY_TMPDIR`` or the system's temp folder.
    Ray makes its own folders world-writable (0777) for machines shared by several users, and
    re-applies that as its processes start, so the privacy comes from the parent."""
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
    private = root / f"ucc-tune-{os.getuid()}"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(private, 0o700)  # an older folder of the same name
    return str(private / "ray")


def start_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    dashboard: bool = True,
    dashboard_host: str = "127.0.0.1",
) -> str | None:
    """Join ``address`` or start a fresh local cluster (never a stale one by accident); returns
    the dashboard URL. Train V2 cleans placement groups through the dashboard's State API."""
    keep_credentials_in_the_environment()
    if ray.is_initialized():
        return ray._private.worker.get_dashboard_url() or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        context = ray.init(address=address)
    else:
        context = ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host=dashboard_host,
            configure_logging=False,
            _temp_dir=private_temp_dir(),
        )
    return context.dashboard_url or None
