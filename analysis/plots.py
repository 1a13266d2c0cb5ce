"""PNG plots of an experiment (matplotlib, Agg): one function per figure, each returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.load import read_arrays
from analysis.views import pareto_front
from ucc_tune.schema import ARTIFACTS_DIR, JS_FILE, RECONSTRUCTIONS_FILE
from ucc_tune.search.ranking import describe, finished


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# how each kind of trial is drawn against the searched parameters: only finished trials ran the
# whole budget, so only their values are comparable; the others are marked apart
OUTCOMES = {
    "TERMINATED": ("finished: value at its last epoch", {"marker": "o", "color": "C0"}),
    "STOPPED": (
        "stopped early: value at its last epoch run (not comparable)",
        {"marker": "x", "color": "0.55"},
    ),
    "ERROR": ("failed: no value (drawn at the bottom)", {"marker": "v", "color": "C3"}),
}


def objective_vs_parameters_figure(trials: pd.DataFrame, params: list[str], metric: str) -> plt.Figure | None:
    """The objective against each searched parameter, one panel per parameter: finished trials at
    their final epoch, trials stopped early grey crosses at the epoch they reached, failed trials
    red marks along the bottom (``OUTCOMES``); each kind named in the legend once. Trials still
    running or pending are left out."""
    column = f"last_{metric}"
    params = [p for p in params if p in trials]
    if not params or column not in trials:
        return None
    fig, axes = plt.subplots(1, len(params), figsize=(3.6 * len(params), 3.2), squeeze=False)
    values = trials[column].astype(float)
    floor = float(values.min()) if values.notna().any() else 0.0
    for ax, param in zip(axes[0], params, strict=True):
        x_all = trials[param]
        categorical = x_all.dtype == "string" or x_all.dtype == object
        for status, (label, style) in OUTCOMES.items():
            rows = trials[trials["status"] == status]
            if not len(rows):
                continue
            x = rows[param].astype(str) if categorical else rows[param].astype(float)
            # a failed trial's last value (if any) is of an unfinished run: along the bottom
            y = pd.Series(floor, index=rows.index) if status == "ERROR" else rows[column].astype(float)
            ax.scatter(x, y, alpha=0.85, label=f"{label} ({len(rows)})", **style)
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
    axes[0][0].legend(fontsize=6)
    return fig


def objective_vs_parameters(trials: pd.DataFrame, params: list[str], metric: str, out: Path) -> Path | None:
    """``objective_vs_parameters.png`` (``objective_vs_parameters_figure``)."""
    fig = objective_vs_parameters_figure(trials, params, metric)
    return None if fig is None else _save(fig, out / "objective_vs_parameters.png")


def curves(trials: pd.DataFrame, params: list[str], top: int) -> list[tuple[str, str, bool]]:
    """The learning curves to draw, as ``(trial_id, label, stopped)``: the ``top`` ranked trials,
    labelled by rank and their searched values (``#1 alpha=0.25, lr=0.0003``), then every trial
    the scheduler stopped early (``STOPPED``), which carry one legend entry between them."""
    ranked = trials[trials["rank"].notna()].sort_values("rank").head(top)
    stopped = trials[trials["status"] == "STOPPED"]
    out = [(str(r["trial_id"]), f"#{r['rank']} {describe(r, params)}", False) for _, r in ranked.iterrows()]
    for i, (_, row) in enumerate(stopped.iterrows()):
        label = f"stopped early ({len(stopped)} trial{'s' if len(stopped) > 1 else ''}, not ranked)"
        out.append((str(row["trial_id"]), label if i == 0 else "_nolegend_", True))
    return out


def learning_curves_figure(
    history: pd.DataFrame, trials: pd.DataFrame, params: list[str], metric: str, top: int
) -> plt.Figure | None:
    """``metric`` per epoch of the ``curves``: ranked trials as coloured solid lines, trials
    stopped early as grey dashed ones."""
    drawn = curves(trials, params, top) if "rank" in trials else []
    if history.empty or not drawn or metric not in history:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for trial_id, label, stopped in drawn:
        rows = history[history["trial_id"] == trial_id].sort_values("epoch")
        style = (
            {"color": "0.55", "linestyle": "--", "marker": "x", "alpha": 0.8} if stopped else {"marker": "o"}
        )
        ax.plot(rows["epoch"], rows[metric].astype(float), label=label, **style)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return fig


def learning_curves(
    history: pd.DataFrame, trials: pd.DataFrame, params: list[str], metric: str, out: Path, top: int = 5
) -> Path | None:
    fig = learning_curves_figure(history, trials, params, metric, top)
    return _save(fig, out / "learning_curves.png") if fig is not None else None


def parallel_data(
    trials: pd.DataFrame, params: list[str], metric: str
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Trials with a ``last_<metric>`` as positions in [0, 1] on one axis per searched parameter
    and one for the objective, and each axis' (low, high) tick labels. Numbers are scaled
    linearly, or on a log scale when positive and spanning a factor of 10 or more; categories
    (strings, booleans) are spread evenly in sorted order."""
    column = f"last_{metric}"
    data = trials.dropna(subset=[column])
    positions, ticks = {}, []
    for name in [*params, column]:
        values = data[name]
        if values.dtype in ("string", "boolean", object) or values.dtype == bool:
            levels = sorted(values.dropna().astype(str).unique())
            spread = max(len(levels) - 1, 1)
            positions[name] = (
                values.astype(str).map({v: i / spread for i, v in enumerate(levels)}).astype(float)
            )
            ticks.append((levels[0], levels[-1]) if levels else ("", ""))
            continue
        numbers = values.astype(float)
        low, high = numbers.min(), numbers.max()
        log = low > 0 and high >= 10 * low
        scaled = np.log10(numbers) if log else numbers
        span = (scaled.max() - scaled.min()) or 1.0
        positions[name] = (scaled - scaled.min()) / span
        ticks.append((f"{low:.3g}", f"{high:.3g}"))
    frame = pd.DataFrame(positions)
    frame["trial_id"], frame["stopped"] = (
        data["trial_id"].to_numpy(),
        (data["status"] == "STOPPED").to_numpy(),
    )
    frame["value"] = data[column].astype(float).to_numpy()
    return frame.reset_index(drop=True), ticks


def parallel_coordinates(trials: pd.DataFrame, params: list[str], metric: str, out: Path) -> Path | None:
    """One line per trial across the searched parameters and the objective (two or more
    parameters), coloured by the objective; trials stopped early grey and dashed."""
    params = [p for p in params if p in trials]
    if len(params) < 2 or f"last_{metric}" not in trials:
        return None
    frame, ticks = parallel_data(trials, params, metric)
    if frame.empty:
        return None
    axes_names = [*params, metric]
    fig, ax = plt.subplots(figsize=(1.6 * len(axes_names) + 1.5, 3.6))
    norm = plt.Normalize(frame["value"].min(), frame["value"].max())
    x = np.arange(len(axes_names))
    for _, row in frame.iterrows():
        y = row[[*params, f"last_{metric}"]].to_numpy(dtype=float)
        if row["stopped"]:
            ax.plot(x, y, color="0.6", linestyle="--", linewidth=1)
        else:
            ax.plot(x, y, color=plt.cm.viridis(norm(row["value"])), linewidth=1.6)
    for i, (low, high) in enumerate(ticks):
        ax.axvline(i, color="0.3", linewidth=0.8)
        ax.text(i, -0.06, low, ha="center", va="top", fontsize=7)
        ax.text(i, 1.06, high, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, axes_names)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    if frame["stopped"].any():
        ax.plot([], [], color="0.6", linestyle="--", label="stopped early")
        ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.08))
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=metric, pad=0.04)
    return _save(fig, out / "parallel_coordinates.png")


def ucc_vs_cluster(trials: pd.DataFrame, out: Path) -> Path | None:
    """UCC accuracy (label-free signal) against cluster accuracy of the finished trials (the ones
    the front is drawn over: a stopped trial's values are of a smaller budget), the Pareto front
    highlighted."""
    data = trials.dropna(subset=["last_val_ucc_acc", "last_cluster_acc"])
    data = data[finished(data)]
    if data.empty:
        return None
    front = pareto_front(data, ["val_ucc_acc", "cluster_acc"], ["max", "max"]).sort_values("last_val_ucc_acc")
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(data["last_val_ucc_acc"], data["last_cluster_acc"], alpha=0.7, label="finished trials")
    ax.plot(front["last_val_ucc_acc"], front["last_cluster_acc"], "r-o", label="Pareto front")
    ax.set_xlabel("val_ucc_acc")
    ax.set_ylabel("cluster_acc")
    ax.legend(fontsize=7)
    return _save(fig, out / "ucc_vs_cluster.png")


def js_heatmap(trial_dir: Path, out: Path) -> Path | None:
    """The class-by-class JS divergence matrix of one trial, with class names."""
    arrays = read_arrays(Path(trial_dir) / ARTIFACTS_DIR / JS_FILE, ("js_matrix", "class_names"))
    if arrays is None or arrays["js_matrix"].shape != (len(arrays["class_names"]),) * 2:
        return None
    if not np.isfinite(arrays["js_matrix"]).all():
        return None
    matrix, names = arrays["js_matrix"], [str(n) for n in arrays["class_names"]]
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
