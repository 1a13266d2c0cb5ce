"""Derived views of the trial table: best trials, cross-seed statistics, how well the label-free
signal predicts the goal, hyperparameter importance (from the Optuna study) and Pareto fronts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ucc_tune.config import field_names
from ucc_tune.search.ranking import finished, on_pareto_front, rank_trials


def best_trials(
    trials: pd.DataFrame, metric: str = "cluster_acc", mode: str = "max", k: int = 5
) -> pd.DataFrame:
    """The ``k`` best finished trials by ``ucc_tune.search.ranking``'s rule: the mean of ``metric`` over
    seeds at the last epoch (``last_<metric>``); trials stopped early or failed are left out."""
    column = f"last_{metric}"
    if column not in trials:
        present = sorted(c[5:] for c in trials if c.startswith("last_"))
        raise KeyError(f"no column {column!r}; metrics present: {present}")
    ranked = rank_trials(trials, metric, mode)
    return ranked[ranked["rank"].notna()].head(k).reset_index(drop=True)


def seed_statistics(trials: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Group trials that differ only in ``seed``: median (what gets reported), min, max, count."""
    keys = [c for c in field_names() if c in trials and c != "seed"]
    columns = [f"last_{m}" for m in metrics if f"last_{m}" in trials]
    done = trials[trials["status"] != "ERROR"]
    if done.empty or not columns:
        return pd.DataFrame()
    grouped = done.groupby(keys, dropna=False)[columns]
    stats = grouped.agg(["median", "min", "max", "count"])
    stats.columns = [f"{col}_{stat}" for col, stat in stats.columns]
    return stats.reset_index()


MIN_CORRELATION_TRIALS = 5  # below this a rank correlation is not evidence (4 trials: p >= 0.08)


def signal_correlation(trials: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation across finished trials of ``val_ucc_acc`` (no instance labels needed)
    with ``cluster_acc`` and ``js_min`` (last values of the trials that ran their whole budget:
    a stopped trial's value is of another budget); ``note`` says when the trials are too few
    (fewer than ``MIN_CORRELATION_TRIALS``) for the correlation to mean anything."""
    done = trials[finished(trials)]
    rows = []
    for target in ("cluster_acc", "js_min"):
        pair = (
            done[["last_val_ucc_acc", f"last_{target}"]].dropna()
            if f"last_{target}" in done and "last_val_ucc_acc" in done
            else pd.DataFrame()
        )
        rho = np.nan
        if len(pair) >= 3 and pair.nunique().min() > 1:
            rho = float(pair.iloc[:, 0].corr(pair.iloc[:, 1], method="spearman"))
        note = (
            ""
            if len(pair) >= MIN_CORRELATION_TRIALS
            else (f"only {len(pair)} finished trial(s): too few for a correlation to mean anything")
        )
        rows.append(
            {"signal": "val_ucc_acc", "target": target, "spearman": rho, "trials": len(pair), "note": note}
        )
    return pd.DataFrame(rows)


def importance(experiment_dir: Path, objective: int = 0) -> pd.DataFrame:
    """Hyperparameter importance (Optuna's default evaluator, fANOVA) from ``optuna.db``.

    Empty when the study is missing or has too few complete trials with varied parameters.
    """
    import optuna

    db = Path(experiment_dir) / "optuna.db"
    if not db.is_file():
        return pd.DataFrame(columns=["parameter", "importance"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=Path(experiment_dir).name, storage=f"sqlite:///{db}")
        target = (lambda t: t.values[objective]) if len(study.directions) > 1 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(study, target=target)
    except Exception as err:  # too few trials, or a damaged db (sqlite: "file is not a database")
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        warnings.warn(f"no importance from {db}: {first_line}", stacklevel=2)
        return pd.DataFrame(columns=["parameter", "importance"])
    return pd.DataFrame({"parameter": list(values), "importance": list(values.values())})


def pareto_front(trials: pd.DataFrame, metrics: list[str], modes: list[str]) -> pd.DataFrame:
    """The trials on the Pareto front of ``metrics`` (``ucc_tune.search.ranking.on_pareto_front``)."""
    return trials[on_pareto_front(trials, metrics, modes)].reset_index(drop=True)
