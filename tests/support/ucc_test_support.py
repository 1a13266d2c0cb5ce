"""Helpers shared by test modules (on pytest's ``pythonpath``, under a name no package shadows)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ucc_tune.config import Config


def tiny(**changes: Any) -> Config:
    """A digits run of seconds: 3 epochs of 3 steps, small bags, the last epoch evaluated."""
    base = Config(
        epochs=3,
        steps_per_epoch=3,
        bag_size=8,
        bags_per_label=2,
        eval_bags_per_label=3,
        eval_every=3,
        num_threads=1,
        test_cluster_methods="kmeans,spectral",
    )
    return dataclasses.replace(base, **changes)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
