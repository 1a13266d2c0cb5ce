"""The supervised baseline against UCC on ``digits`` at the same budget.

Run: ``.venv/bin/python -m benchmarks.supervised_vs_ucc [--seeds 0 1 2] [--set KEY=VALUE]``.
Both train the same encoder (``model``), the same epochs and steps, on the same bags (a step sees
``bags_per_label * 4`` bags of ``bag_size`` instances either way): UCC learns from each bag's
unique class count, the supervised baseline (``supervision=instance``) from every instance's
label. Their test features are clustered the same way. Writes
``benchmarks/results/supervised_vs_ucc.json``: per family and seed the test scores, and per family
the mean and range of the test k-means accuracy. The paper's MNIST figures: 0.988 supervised,
0.984 UCC (k-means 0.977).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np

from benchmarks.common import write_results
from benchmarks.quality_digits import one_seed
from ucc_tune.config import Config, Supervision
from ucc_tune.config.flags import parse_assignments
from ucc_tune.train.stopping import supervision_label

FAMILIES: tuple[Supervision, ...] = ("ucc", "instance")
BUDGET = {"epochs": 5, "steps_per_epoch": 40, "eval_every": 5}  # about 6 minutes for 6 runs on 2 cores


def family(config: Config, seeds: list[int]) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        runs.append(one_seed(config, seed))
        print(config.supervision, runs[-1], flush=True)
    accs = [r["test_kmeans_acc"] for r in runs]
    return {
        "label": supervision_label(config),
        "runs": runs,
        "test_kmeans_acc_mean": round(float(np.mean(accs)), 4),
        "test_kmeans_acc_range": [min(accs), max(accs)],
        "test_spectral_acc_mean": round(float(np.mean([r["test_spectral_acc"] for r in runs])), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override Config")
    args = parser.parse_args(argv)
    ucc = Config.from_dict(BUDGET | parse_assignments(args.set))
    start = time.perf_counter()
    families = {kind: family(dataclasses.replace(ucc, supervision=kind), args.seeds) for kind in FAMILIES}
    figures = {
        "config": ucc.to_dict(),
        "instances_per_step": ucc.bags_per_batch * ucc.bag_size,
        "families": families,
        "supervised_minus_ucc_kmeans_acc": round(
            families["instance"]["test_kmeans_acc_mean"] - families["ucc"]["test_kmeans_acc_mean"], 4
        ),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    write_results("supervised_vs_ucc", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
