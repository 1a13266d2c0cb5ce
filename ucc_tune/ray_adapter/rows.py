"""A trial's recorded epochs (its ``metrics.jsonl``), and its last one reported to Tune again."""

from __future__ import annotations

from typing import Any

import ray.tune

from ucc_tune.schema import METRICS_FILE, read_history
from ucc_tune.train.session import RunFolder


def recorded_rows(files: RunFolder) -> list[dict[str, Any]]:
    """The rows of the epochs a trial has recorded (none before its first)."""
    storage = files.storage
    return read_history(storage.read_text(METRICS_FILE)) if storage.exists(METRICS_FILE) else []


def report_last_row(files: RunFolder) -> bool:
    """Report a trial's last recorded row to Tune again (a trial with nothing left to train must
    still end with its final result, or Tune and the searcher keep an older one); False if none."""
    history = recorded_rows(files)
    if history:
        ray.tune.report(history[-1])
    return bool(history)
