"""A lock on an experiment folder: one search (or resume) at a time writes an experiment.

The search holds an exclusive ``flock`` on ``<experiment>/.search.lock`` for as long as it runs;
the operating system releases it on any exit, a crash or ``kill -9`` included, so a lock is
never stale. The file names the holder (PID, host, start time) so that a refused second search
can say who holds it. For an experiment in remote storage the lock is on the local copy of its
driver files: it keeps two searches of one machine apart, not two machines.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO

LOCK_FILE = ".search.lock"


class ExperimentLocked(RuntimeError):
    """Another process holds the experiment's lock; the message names it."""


class ExperimentLock:
    """``with ExperimentLock(folder):`` holds the folder's lock or raises ``ExperimentLocked``."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._file: IO[str] | None = None

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        handle = open(self.path, "a+")  # noqa: SIM115  # held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ExperimentLocked(
                f"{self.path.parent} is in use by {_describe(holder)}; wait for it to end "
                "(or stop it) before running or resuming this experiment"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"PID {info['pid']} on {info['host']} (since {info['started']})"
    except (ValueError, KeyError, TypeError):
        return holder
