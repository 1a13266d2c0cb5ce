"""The Optuna side of a search: the sampler a space gets (grid, TPE, NSGA-II) and how a finished
trial is told to the study.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import optuna


class TuneGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done: that call only
    works inside ``study.optimize``; under Tune, ``--num-samples`` decides when to stop."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler that survives ``pickle``.

    Since optuna 5.1 the genetic samplers hold a ``threading.Lock`` around their generation
    cache, and a lock cannot be pickled; Ray Tune pickles the searcher, and so its sampler, when
    it saves the experiment. The lock guards only a cache of this process, so a copy gets a new
    one rather than the original's."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()  # unused before optuna 5.1


def make_sampler(
    grid: Mapping[str, list[Any]] | None, num_objectives: int, seed: int
) -> optuna.samplers.BaseSampler:
    """A grid sampler when the space defines a ``GRID``, else seeded TPE for one objective and
    NSGA-II for several."""
    if grid:
        return TuneGridSampler(dict(grid), seed=seed)
    if num_objectives > 1:
        return PicklableNSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def trial_outcome(
    values: list[Any], error: bool, epochs_run: int, planned_epochs: int
) -> tuple[optuna.trial.TrialState, Any]:
    """How a finished Tune trial is told to Optuna: its state and value(s).

    COMPLETE with its objective value(s) when it ran every planned epoch; PRUNED when a
    scheduler stopped it earlier (an early, low-fidelity value would mislead TPE); FAIL when it
    raised or ended with a missing or non-finite objective (PRUNED if that came from a stop).
    """
    told = values if len(values) > 1 else values[0]
    finished = epochs_run >= planned_epochs
    if error or any(v is None or not math.isfinite(v) for v in values):
        return (optuna.trial.TrialState.FAIL if error or finished else optuna.trial.TrialState.PRUNED), None
    if not finished:
        return optuna.trial.TrialState.PRUNED, None
    return optuna.trial.TrialState.COMPLETE, told
