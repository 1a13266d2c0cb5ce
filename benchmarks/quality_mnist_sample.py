"""Our own training on real MNIST digits on a CPU, against k-means on pixels and the authors' weights.

Run: ``.venv/bin/python -m benchmarks.quality_mnist_sample [--minutes 60] [--set KEY=VALUE ...]``.

On the 5,000 real MNIST digits of ``mnist_sample`` (the test split of ``split_seed=0``, 1,000
images), in one run:

- k-means on the standardised pixels of the test split (the floor to beat);
- the UCC authors' released weights through our ``paper`` model and our evaluation (the ceiling,
  128,000 steps of 640 images on a GPU), with the smallest-JS class pair;
- our own training of the configuration given by ``--set`` (by default the fastest learner the
  platform's own search found on this CPU: ``benchmarks/spaces/mnist_sample_fast.py``) until
  ``--minutes`` of wall time are spent, a checkpoint per epoch; afterwards the checkpoints of
  epochs about 1.3x apart (0, 1, 2, 3, 4, 5, 7, 10, 13, ... and the last) are re-scored on the test
  split with ``python -m ucc_tune.evaluate`` (the same evaluation as the end of a run), which
  gives test k-means accuracy against wall time, process CPU time and steps: a time-to-accuracy
  curve, and the time at which it first beats the pixel baseline by 0.2 and 0.3.

Writes ``benchmarks/results/quality_mnist_sample.json``. Model selection never looks at the test
split: the configuration came from a search on the validation split, and the curve only reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from benchmarks.quality_digits import raw_pixel_baseline
from ucc_tune.config import Config
from ucc_tune.config.flags import parse_assignments
from ucc_tune.schema import CHECKPOINTS_DIR, EPOCH_CHECKPOINTS, epoch_checkpoint
from ucc_tune.train import LocalSession, train
from ucc_tune.trained import evaluate

FIXTURE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "ucc_mnist_authors_ae_128000.h5"
)
# the fastest learner of the search on this CPU (see the README's benchmark table)
FAST = {
    "dataset": "mnist_sample",
    "model": "conv",
    "lr": 5e-4,
    "alpha": 1.0,
    "bag_size": 16,
    "bags_per_label": 2,
    "num_features": 10,
    "steps_per_epoch": 50,
    "eval_every": 1,
    "test_cluster_methods": "kmeans",
}
MARGINS = (0.2, 0.3)
# epochs whose checkpoints are re-scored: about 1.3x apart, so the curve is dense where it rises
SCORED = sorted({round(1.3**k) - 1 for k in range(60)})


class BudgetSpent(Exception):
    """Raised by the session after the checkpoint of the epoch that used up the budget."""


@dataclass
class TimedSession(LocalSession):
    """A local session that stamps every report with wall and process time since the start,
    keeps the checkpoints of the ``SCORED`` epochs (and the newest) only, and ends the run after the
    first epoch past ``budget_s`` (its checkpoint is written first)."""

    budget_s: float = 3600.0
    started: float = 0.0
    cpu_started: float = 0.0
    stamps: list[dict[str, float]] | None = None

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        super().report(metrics, checkpoint_dir)
        wall = time.perf_counter() - self.started
        stamp = {
            "epoch": int(metrics["epoch"]),
            "wall_s": wall,
            "cpu_s": time.process_time() - self.cpu_started,
        }
        stamp["val_cluster_acc"] = float(metrics["cluster_acc"])
        assert self.stamps is not None
        self.stamps.append(stamp)
        print(
            f"epoch {stamp['epoch']}: {wall:.0f} s, val cluster_acc {stamp['val_cluster_acc']:.3f}",
            flush=True,
        )
        for old in self.checkpoint_root.glob(EPOCH_CHECKPOINTS):
            if int(old.name.split("_")[1]) not in SCORED and old.name != epoch_checkpoint(
                int(stamp["epoch"])
            ):
                shutil.rmtree(old)
        if wall > self.budget_s:
            raise BudgetSpent


def scored(argv: list[str], out: Path) -> dict[str, Any]:
    """``python -m ucc_tune.evaluate`` in this process; its ``evaluation.json``."""
    if evaluate.main([*argv, "--split", "test", "--out", str(out)]) != 0:
        raise RuntimeError(f"evaluate {' '.join(argv)} failed")
    return json.loads((out / "evaluation.json").read_text())


def authors_weights(weights: Path, tmp: Path) -> dict[str, Any]:
    record = scored(
        ["--keras-weights", str(weights), "--set", "dataset=mnist_sample", "--methods", "kmeans,spectral"],
        tmp / "authors",
    )
    scores = record["metrics"]
    return {
        "kmeans_acc": scores["test_kmeans_acc"],
        "spectral_acc": scores["test_spectral_acc"],
        "js_min": scores["test_js_min"],
        "closest_pair": record["closest_pair"],
    }


def curve(config: Config, minutes: float, tmp: Path) -> tuple[list[dict[str, Any]], str]:
    out = tmp / "run"
    session = TimedSession(out, keep=10_000, budget_s=minutes * 60, stamps=[])
    session.started, session.cpu_started = time.perf_counter(), time.process_time()
    ended = "ran every epoch"
    try:
        train(config, session)
    except BudgetSpent:
        ended = f"stopped after the first epoch past {minutes:g} min"
    points = []
    stamps = session.stamps or []
    for stamp in [s for s in stamps if s["epoch"] in SCORED or s is stamps[-1]]:
        ckpt = out / CHECKPOINTS_DIR / epoch_checkpoint(int(stamp["epoch"]))
        record = scored([str(ckpt), "--methods", "kmeans"], tmp / f"eval_{stamp['epoch']:04d}")
        steps = (stamp["epoch"] + 1) * config.steps_per_epoch
        points.append({**{k: round(v, 4) for k, v in stamp.items()}, "steps": steps,
                       "test_kmeans_acc": round(record["metrics"]["test_kmeans_acc"], 4)})  # fmt: skip
        print(points[-1], flush=True)
    return points, ended


def first_reaching(points: list[dict[str, Any]], level: float) -> dict[str, Any] | None:
    hit = next((p for p in points if p["test_kmeans_acc"] >= level), None)
    return None if hit is None else {"level": round(level, 4), **hit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-time budget of our training")
    parser.add_argument("--authors-weights", type=Path, default=FIXTURE, help="the authors' Keras weights")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override Config")
    args = parser.parse_args(argv)
    config = Config.from_dict(
        {**FAST, "epochs": 10_000, "keep_checkpoints": 10_000, **parse_assignments(args.set)}
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pixels = raw_pixel_baseline(config)
        authors = authors_weights(args.authors_weights, tmp)
        print({"pixels": pixels, "authors": authors}, flush=True)
        points, ended = curve(config, args.minutes, tmp)
    best = max(points, key=lambda p: p["test_kmeans_acc"])
    reach = {f"pixels_plus_{m}": first_reaching(points, pixels["kmeans_acc"] + m) for m in MARGINS}
    figures = {
        "config": config.to_dict(),
        "budget_minutes": args.minutes,
        "ended": ended,
        "pixel_kmeans": pixels,
        "authors_weights": authors,
        "curve": points,
        "best": best,
        "last": points[-1],
        "first_reaching": reach,
        "target": "test k-means accuracy >= pixels + 0.2 within 60 min on 2 cores; + 0.3 given more time",
    }
    write_results("quality_mnist_sample", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
