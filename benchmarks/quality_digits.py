"""Quality bar on ``digits``: the default config, three seeds, against k-means on raw pixels.

Run: ``.venv/bin/python -m benchmarks.quality_digits [--seeds 0 1 2]``.
Writes ``benchmarks/results/quality_digits.json``: per seed the test k-means and spectral
cluster accuracy, NMI, ARI, ``js_min`` and wall time; their means; and the raw-pixel k-means
baseline computed in the same run on the same test split.
Target: mean test k-means accuracy >= 0.93 within 5 minutes per run on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_results
from ucc_tune.config import Config
from ucc_tune.config.flags import parse_assignments
from ucc_tune.data.loading import load_data
from ucc_tune.feature_scores import cluster
from ucc_tune.metrics import clustering_scores
from ucc_tune.train import LocalSession, train

KEYS = [f"test_{m}_{s}" for m in ("kmeans", "spectral") for s in ("acc", "nmi", "ari")] + ["test_js_min"]


def raw_pixel_baseline(config: Config) -> dict[str, float]:
    data = load_data(config)
    pixels = data.images["test"].flatten(1).numpy()
    labels = data.labels["test"]
    scores = clustering_scores(labels, cluster(pixels, data.num_classes, "kmeans", seed=0))
    return {"kmeans_acc": scores["acc"], "kmeans_nmi": scores["nmi"], "kmeans_ari": scores["ari"]}


def one_seed(config: Config, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        final = train(Config.from_dict({**config.to_dict(), "seed": seed}), LocalSession(Path(out)))
        wall = time.perf_counter() - start
    return {"seed": seed, "wall_s": round(wall, 1), **{k: round(float(final[k]), 4) for k in KEYS}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override Config")
    args = parser.parse_args(argv)
    config = Config.from_dict(parse_assignments(args.set))
    runs = []
    for seed in args.seeds:
        runs.append(one_seed(config, seed))
        print(runs[-1], flush=True)
    means = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in [*KEYS, "wall_s"]}
    figures = {
        "config": config.to_dict(),
        "runs": runs,
        "mean": means,
        "raw_pixel_baseline": raw_pixel_baseline(config),
        "target": {"mean_test_kmeans_acc": 0.93, "max_wall_s_per_run": 300},
        "meets_target": means["test_kmeans_acc"] >= 0.93 and max(r["wall_s"] for r in runs) <= 300,
    }
    write_results("quality_digits", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
