"""How much compute ASHA saves on ``digits``: the same grid of trials under FIFO and under ASHA.

Run: ``.venv/bin/python -m benchmarks.asha``. Writes ``benchmarks/results/asha.json``.
Both searches run the same configurations (a grid of 9 ``alpha`` x 3 ``lr``, in the same
seeded order, so the comparison is not blurred by the sampler). ASHA: grace period 1 epoch,
reduction factor 3, so with 9 epochs its rungs are after 1 and 3 epochs. Compute is counted in
trial-epochs: FIFO runs every trial to the end; ASHA stops poor ones at its rungs. The question
is whether ASHA's best trial comes within 0.01 of FIFO's best cluster accuracy, and with what
share of FIFO's trial-epochs.
Target: within 0.01 using at most 40% of FIFO's trial-epochs.
"""

from __future__ import annotations

import argparse
import json
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


def run(folder: Path, name: str, scheduler: str, epochs: int, steps: int) -> tuple[pd.DataFrame, list[dict]]:
    """The search's ``trials.parquet`` and every reported epoch (timestamp, trial, accuracy)."""
    from ucc_tune.search import command as search

    args = ["--space", str(space_file(folder, epochs, steps)), "--num-samples", str(len(ALPHAS) * len(LRS))]
    args += ["--scheduler", scheduler, "--grace-period", "1", "--storage-path", str(folder), "--name", name]
    assert search.main(args) == 0, f"the {scheduler} search failed"
    events = []
    for result in (folder / name).glob("*/result.json"):
        for line in result.read_text().splitlines():
            row = json.loads(line)
            events.append({"timestamp": row["timestamp"], "trial_id": row["trial_id"],
                           "alpha": row["config"]["alpha"], "lr": row["config"]["lr"],
                           "epochs_done": row["epochs_done"], "cluster_acc": row["cluster_acc"]})  # fmt: skip
    return pd.read_parquet(folder / name / "trials.parquet"), events


def epochs_to_reach(events: list[dict], target: float) -> int | None:
    """Trial-epochs spent until a reported accuracy first reached ``target``: every epoch reported
    up to that second counts (Tune's timestamps have 1 s resolution, so this errs high)."""
    hits = [e["timestamp"] for e in events if e["cluster_acc"] >= target]
    if not hits:
        return None
    return sum(1 for e in events if e["timestamp"] <= min(hits))


def curves(events: list[dict]) -> list[dict]:
    """Per trial: alpha, lr and its cluster accuracy after each epoch, in order of start."""
    by_trial: dict[str, dict] = {}
    for e in sorted(events, key=lambda e: (e["timestamp"], e["epochs_done"])):
        trial = by_trial.setdefault(e["trial_id"], {"alpha": e["alpha"], "lr": e["lr"], "cluster_acc": []})
        trial["cluster_acc"].append(round(e["cluster_acc"], 4))
    return list(by_trial.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    import ray

    from ucc_tune.ray_adapter import start_ray

    start_ray(num_cpus=2, dashboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        fifo, fifo_events = run(Path(tmp), "fifo", "fifo", args.epochs, args.steps)
        asha, asha_events = run(Path(tmp), "asha", "asha", args.epochs, args.steps)
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
            "trials_by_epochs_run": {
                str(k): int(v) for k, v in asha["epochs_run"].value_counts().sort_index().items()
            },
            "trial_epochs_until_within_0.01": epochs_to_reach(asha_events, fifo_best - 0.01),
        },
        "asha_within_0.01": asha_best >= fifo_best - 0.01,
        "trial_epoch_ratio_asha_over_fifo": round(asha_epochs / fifo_epochs, 3),
        "target": {"within": 0.01, "max_ratio": 0.40},
    }
    reach = figures["asha"]["trial_epochs_until_within_0.01"]
    figures["trial_epochs_until_within_0.01_over_fifo_total"] = (
        round(reach / fifo_epochs, 3) if reach else None
    )
    figures["curves"] = {"fifo": curves(fifo_events), "asha": curves(asha_events)}
    figures["meets_target"] = (
        figures["asha_within_0.01"] and figures["trial_epoch_ratio_asha_over_fifo"] <= 0.40
    )
    write_results("asha", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
