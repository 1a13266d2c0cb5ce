"""Does the collapse detector stop the real dead run early? The ``paper`` model on real MNIST digits.

Run: ``.venv/bin/python -m benchmarks.collapse_mnist_sample``.

The case: ``mnist_sample``, bags of 16, 2 bags per ucc label, ``alpha=1``, ``lr=1e-3`` without a
warm-up (the old ``digits`` default, too high at 28x28), 8 epochs of 100 steps. Without the detector this run
trains all 800 steps with its UCC loss at ln 4 and every feature saturated. Target: it stops
with ``FeatureCollapseError`` within its first two evaluations (epoch 0 or 1). Writes
``benchmarks/results/collapse_mnist_sample.json``: the epoch it stopped at, the steps and wall
time it spent, the detector's message, and the steps it saved.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import write_results
from ucc_tune.config import Config
from ucc_tune.train import FeatureCollapseError, LocalSession, train

CASE = {
    "dataset": "mnist_sample",
    "model": "paper",
    "bag_size": 16,
    "bags_per_label": 2,
    "alpha": 1.0,
    "lr": 1e-3,
    "warmup_steps": 0,
    "epochs": 8,
    "steps_per_epoch": 100,
}


def main() -> int:
    config = Config.from_dict(CASE)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        try:
            train(config, LocalSession(Path(out)))
            stopped = None
        except FeatureCollapseError as err:
            stopped = err
    wall = time.perf_counter() - start
    planned = config.epochs * config.steps_per_epoch
    figures = {
        "config": config.to_dict(),
        "collapsed": stopped is not None,
        "stopped_at_epoch": None if stopped is None else stopped.epoch,
        "message": None if stopped is None else str(stopped),
        "steps_run": planned if stopped is None else (stopped.epoch + 1) * config.steps_per_epoch,
        "steps_planned": planned,
        "wall_s": round(wall, 1),
        "target": "FeatureCollapseError within the first two evaluations (epoch <= 1)",
        "meets_target": stopped is not None and stopped.epoch <= 1,
    }
    write_results("collapse_mnist_sample", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
