"""Experiment trackers a search can log to (``--log-to``), checked before Ray starts (no Ray,
no torch): each is an optional extra of the package; the Ray adapter's ``ucc_tune.ray_adapter.callbacks``
turns the names into Ray Tune's logger callbacks."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence

# name -> the module it needs, installed by the extra of the same name: pip install 'ucc-tune[NAME]'
TRACKERS = {"wandb": "wandb", "mlflow": "mlflow"}


class TrackerError(ValueError):
    """A tracker that is unknown or not installed."""


def add_tracker_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-to",
        action="append",
        default=[],
        metavar="TRACKER",
        help=f"also log every trial to {' or '.join(TRACKERS)} (repeatable): W&B offline unless a server "
        "is configured (WANDB_MODE, wandb login), MLflow into <experiment>/mlruns/mlflow.db unless "
        "MLFLOW_TRACKING_URI is set",
    )


def check_trackers(names: Sequence[str]) -> tuple[str, ...]:
    """The requested trackers, each known and importable, in order and once each."""
    for name in names:
        if name not in TRACKERS:
            raise TrackerError(f"--log-to {name}: unknown tracker; choose from {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise TrackerError(
                f"--log-to {name}: {TRACKERS[name]} is not installed; pip install 'ucc-tune[{name}]'"
            )
    return tuple(dict.fromkeys(names))
