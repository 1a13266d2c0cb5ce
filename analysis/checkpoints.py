"""The best model of an experiment: the checkpoint of the trial the search ranks first, as files.

A trial's checkpoints are Ray Tune's ``checkpoint_NNNNNN/`` folders in the trial's folder, or for
a trial of Ray Train DDP workers ``<experiment>/train_runs/train-<trial id>/checkpoint_*/``; a
checkpoint holds ``state.pt``, or one ``seed_<k>/state.pt`` per seed of a run of several seeds.
The ranking is ``ucc_tune.search.ranking``'s (finished trials by the last-epoch seed mean of the
objective), so the newest checkpoint of the first-ranked trial holds the weights of its last
epoch: the ones its ranking value and test scores were measured with.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.load import Experiment, objective
from ucc_tune.checkpoints import find_checkpoints, seed_folders
from ucc_tune.schema import metric_direction
from ucc_tune.search.ranking import describe, rank_trials


def best_trial(exp: Experiment, metric: str | None = None, mode: str | None = None) -> pd.Series | None:
    """The first-ranked trial's row by ``metric`` (default: the search's first objective, in its
    mode; an explicit ``metric`` in its own direction unless ``mode`` says otherwise); None when no
    trial ran its whole budget (trials stopped early or failed are never ranked)."""
    if metric is None:
        metric, mode = objective(exp.searches)
    ranked = rank_trials(exp.trials, metric, mode or metric_direction(metric))
    first = ranked[ranked["rank"] == 1]
    return first.iloc[0] if len(first) else None


def best_checkpoint(exp: Experiment, metric: str | None = None, mode: str | None = None) -> Path | None:
    """The newest checkpoint folder of the first-ranked finished trial (``best_trial``).

    None when no trial ran its whole budget, or when that trial's folder holds no checkpoint
    (a copy of a remote experiment leaves them out); ``best_checkpoint_line`` says which.
    The state files are not opened here: ``python -m ucc_tune.evaluate`` checks them on loading.
    """
    row = best_trial(exp, metric, mode)
    return None if row is None else _newest_of(row)


def _newest_of(row: pd.Series) -> Path | None:
    """The newest checkpoint folder of a trial's row, None when its folder holds none."""
    folders = find_checkpoints(Path(row["trial_dir"]), str(row["trial_id"]))
    return folders[-1] if folders else None


def best_checkpoint_line(
    exp: Experiment, params: list[str], metric: str | None = None, mode: str | None = None
) -> str:
    """``best_checkpoint`` in one sentence: which trial, which folder, or why there is none."""
    row = best_trial(exp, metric, mode)
    if row is None:
        return "best checkpoint: none (no trial ran its whole budget; trials stopped early are not ranked)"
    found = _newest_of(row)  # the trial is ranked once
    who = f"trial {row['trial_id']} ({describe(row, params)})"
    if found is None:
        return f"best checkpoint: none found for {who} in {row['trial_dir']}"
    return f"best checkpoint: {found} ({who}{_seed_hint(found)})"


def _seed_hint(folder: Path) -> str:
    seeds = [seed.name for seed in seed_folders(folder)]
    return f"; one folder per seed: {', '.join(seeds)}" if seeds else ""
