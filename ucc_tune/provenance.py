"""What ran: package versions, git commit, host and command line, stored next to what it produced."""

from __future__ import annotations

import datetime as dt
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ucc_tune.storage import redact

PACKAGES = ("ucc-tune", "torch", "torchvision", "numpy", "scikit-learn", "scipy", "ray", "optuna", "pandas")


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the source tree (``+dirty`` when it has uncommitted changes), or None."""
    where = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def redact_argument(argument: str) -> str:
    """A command-line argument without the credentials a storage URI in it may hold."""
    if argument.startswith("--") and "=" in argument:
        flag, value = argument.split("=", 1)
        return f"{flag}={redact(value)}"
    return redact(argument)


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *(redact_argument(a) for a in (sys.argv if argv is None else argv))],
        "host": socket.gethostname(),
        "git_commit": git_commit(),
        "versions": versions(),
    }
