"""PNG plots of an experiment (matplotlib, Agg): one function per figure, each returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.views import pareto_front
from ucc_tune.schema import ARTIFACTS_DIR, JS_FILE, RECONSTRUCTIONS_FILE


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def objective_vs_parameters(trials: pd.DataFrame, params: list[str], metric: str, out: Path) -> Path | None:
    """The objective against each searched parameter, one panel per parameter."""
    column = f"last_{metric}"
    params = [p for p in params if p in trials]
    if not params or column not in trials:
        return None
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
    for ax, param in zip(axes[0], params, strict=True):
        values = trials[param]
        x = values.astype(str) if values.dtype == "string" or values.dtype == object else values.astype(float)
        ax.scatter(x, trials[column].astype(float), alpha=0.8)
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
    return _save(fig, out / "objective_vs_parameters.png")


def learning_curves(history: pd.DataFrame, trial_ids: list[str], metric: str, out: Path) -> Path | None:
    if history.empty or not trial_ids:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for trial_id in trial_ids:
        rows = history[history["trial_id"] == trial_id].sort_values("epoch")
        ax.plot(rows["epoch"], rows[metric].astype(float), marker="o", label=str(trial_id))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return _save(fig, out / "learning_curves.png")


def ucc_vs_cluster(trials: pd.DataFrame, out: Path) -> Path | None:
    """UCC accuracy (label-free signal) against cluster accuracy, the Pareto front highlighted."""
    data = trials.dropna(subset=["last_val_ucc_acc", "last_cluster_acc"])
    if data.empty:
        return None
    front = pareto_front(data, ["val_ucc_acc", "cluster_acc"], ["max", "max"]).sort_values("last_val_ucc_acc")
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(data["last_val_ucc_acc"], data["last_cluster_acc"], alpha=0.7, label="trials")
    ax.plot(front["last_val_ucc_acc"], front["last_cluster_acc"], "r-o", label="Pareto front")
    ax.set_xlabel("val_ucc_acc")
    ax.set_ylabel("cluster_acc")
    ax.legend(fontsize=7)
    return _save(fig, out / "ucc_vs_cluster.png")


def js_heatmap(trial_dir: Path, out: Path) -> Path | None:
    """The class-by-class JS divergence matrix of one trial, with class names."""
    path = Path(trial_dir) / ARTIFACTS_DIR / JS_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        matrix, names = data["js_matrix"], [str(n) for n in data["class_names"]]
    fig, ax = plt.subplots(figsize=(5, 4.2))
    image = ax.imshow(matrix, cmap="viridis", vmin=0)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(image, ax=ax, label="JS divergence (bits)")
    return _save(fig, out / "js_heatmap.png")


def reconstructions(trial_dir: Path, out: Path) -> Path | None:
    """The best trial's input/reconstruction grid, copied next to the other plots."""
    source = Path(trial_dir) / ARTIFACTS_DIR / RECONSTRUCTIONS_FILE
    if not source.is_file():
        return None
    target = out / "reconstructions.png"
    target.write_bytes(source.read_bytes())
    return target
