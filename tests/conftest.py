"""Shared fixtures: one small local Ray cluster per test session, ended by PID afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0.1")


def _ray_pids() -> list[int]:
    import ray._private.worker as worker

    node = worker._global_node
    if node is None:
        return []
    return [p.process.pid for infos in node.all_processes.values() for p in infos if p.process is not None]


RAY_FIXTURES = frozenset({"ray_cluster", "marked_env", "module_marked_env"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow``: exactly the tests that start Ray (in this process or in a process they start)."""
    for item in items:
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def smoke_search(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One real `smoke` search of 3 trials of 2 seeds each, shared by the search and analysis tests
    (trials differ only through Optuna's suggestions): its experiment folder and what it printed
    (stdout, and on stderr what Ray's workers logged)."""
    import io

    from ucc_tune.search import command as search

    root = tmp_path_factory.mktemp("experiments")
    args = ["--storage-path", str(root), "--name", "smoke", "--space", "smoke", "--num-samples", "3"]
    args += ["--scheduler", "fifo", "--set", "num_threads=1", "--set", "keep_checkpoints=1", "--seeds", "2"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        assert search.main(args) == 0
    return root / "smoke", printed.getvalue()


@pytest.fixture(scope="session")
def smoke_experiment(smoke_search: tuple[Path, str]) -> Path:
    return smoke_search[0]


@contextlib.contextmanager
def _marked_environment() -> Iterator[dict[str, str]]:
    """An environment whose every descendant process can be found (and killed) afterwards."""
    marker = f"UCC_TUNE_TEST_{uuid.uuid4().hex}"
    env = {**os.environ, marker: "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    try:
        yield env
    finally:
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def marked_env() -> Iterator[dict[str, str]]:
    with _marked_environment() as env:
        yield env


@pytest.fixture(scope="module")
def module_marked_env() -> Iterator[dict[str, str]]:
    with _marked_environment() as env:
        yield env


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"{marker}=1".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
