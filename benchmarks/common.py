"""Shared by the benchmarks: what ran (versions, commit, machine) next to what it measured."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from ucc_tune.provenance import git_commit

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit() or "unknown",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_results(name: str, figures: dict[str, Any], quiet: bool = False) -> Path:
    """Write ``benchmarks/results/<name>.json`` (figures + environment) and print it (unless
    ``quiet``: a benchmark saving what it has so far)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    text = json.dumps({"benchmark": name, "environment": environment(), **figures}, indent=2)
    path.write_text(text + "\n")
    if not quiet:
        print(text)
        print(f"written to {path}")
    return path
