"""Shared fixtures: one small local Ray cluster per test session, ended by PID afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0.1")


def _ray_pids() -> list[int]:
    import ray._private.worker as worker

    node = worker._global_node
    if node is None:
        return []
    return [p.process.pid for infos in node.all_processes.values() for p in infos if p.process is not None]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A fresh local cluster (2 CPUs, dashboard on so Train V2 can clean placement groups)."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=None,
        object_store_memory=150 * 1024**2,
        configure_logging=False,
    )
    pids = _ray_pids()
    try:
        yield
    finally:
        ray.shutdown()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
