"""How much compute ASHA saves on ``digits``: the same grid of trials under FIFO and under ASHA.

Run: ``.venv/bin/python -m benchmarks.asha``. Writes ``benchmarks/results/asha.json``.
Both searches run the same configurations (a grid of 9 ``alpha`` x 3 ``lr``, in the same
seeded order, so the comparison is not blurred by the sampler). ASHA: grace period 1 epoch,
reduction factor 3, so with 9 epochs its rungs are after 1 and 3 epochs. Compute is counted in
trial-epochs: FIFO runs every trial to the end; ASHA stops poor ones at its rungs. The question
is whether ASHA's best trial comes within 0.01 of FIFO's best cluster accuracy, and with what
share of FIFO's trial-epochs.
Target (issue 7): within 0.01 using at most 40% of FIFO's trial-epochs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import write_results

ALPHAS = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
LRS = [3e-4, 1e-3, 3e-3]


def space_file(folder: Path, epochs: int, steps: int) -> Path:
    path = folder / "asha_space.py"
    path.write_text(
        f"GRID = {{'alpha': {ALPHAS!r}, 'lr': {LRS!r}}}\n\n"
        "def space(trial):\n"
        f"    trial.suggest_categorical('alpha', {ALPHAS!r})\n"
        f"    trial.suggest_categorical('lr', {LRS!r})\n"
        f"    return {{'epochs': {epochs}, 'steps_per_epoch': {steps}}}\n"
    )
    return path


def run(folder: Path, name: str, scheduler: str, epochs: int, steps: int) -> pd.DataFrame:
    from ucc_tune import search

    args = ["--space", str(space_file(folder, epochs, steps)), "--num-samples", str(len(ALPHAS) * len(LRS))]
    args += ["--scheduler", scheduler, "--grace-period", "1", "--storage-path", str(folder), "--name", name]
    assert search.main(args) == 0, f"the {scheduler} search failed"
    return pd.read_parquet(folder / name / "trials.parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    with tempfile.TemporaryDirectory() as tmp:
        fifo = run(Path(tmp), "fifo", "fifo", args.epochs, args.steps)
        asha = run(Path(tmp), "asha", "asha", args.epochs, args.steps)
    ray.shutdown()
    fifo_best, asha_best = float(fifo["best_cluster_acc"].max()), float(asha["best_cluster_acc"].max())
    fifo_epochs, asha_epochs = int(fifo["epochs_run"].sum()), int(asha["epochs_run"].sum())
    figures: dict[str, Any] = {
        "grid": {"alpha": ALPHAS, "lr": LRS},
        "trial": {"epochs": args.epochs, "steps_per_epoch": args.steps},
        "fifo": {"best_cluster_acc": round(fifo_best, 4), "trial_epochs": fifo_epochs},
        "asha": {
            "best_cluster_acc": round(asha_best, 4),
            "trial_epochs": asha_epochs,
            "stopped_trials": int((asha["status"] == "STOPPED").sum()),
        },
        "asha_within_0.01": asha_best >= fifo_best - 0.01,
        "trial_epoch_ratio_asha_over_fifo": round(asha_epochs / fifo_epochs, 3),
        "target": {"within": 0.01, "max_ratio": 0.40},
    }
    figures["meets_target"] = (
        figures["asha_within_0.01"] and figures["trial_epoch_ratio_asha_over_fifo"] <= 0.40
    )
    write_results("asha", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
