"""A search's time budget (``--time-budget``): once it is spent, no trial starts, and each
running trial ends after the epoch it is in.

``TimeBudget`` is both a Tune ``Stopper`` and a ``Callback``: its clock starts when the
experiment is set up (a restored search counts from its resume), and every result reported after
the budget is spent stops its trial at that epoch (its checkpoint and row are written, so the
trial is ``STOPPED`` in the tables and PRUNED in the study, like a trial ASHA stopped). It never
stops all trials at once: Tune would drop the epochs in progress. ``BudgetLimiter`` is Tune's
``ConcurrencyLimiter`` that answers "finished" to every request for a new trial once the budget
is spent, so the trials never started are not created at all (not in Ray's results, the table or
the study).
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback, Stopper
from ray.tune.search import ConcurrencyLimiter, Searcher


class TimeBudget(Stopper, Callback):
    """``seconds`` of wall time from the experiment's setup; None: no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def setup(self, *args: Any, **info: Any) -> None:
        self.started = time.monotonic()

    def spent(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.started >= self.seconds

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.spent()

    def stop_all(self) -> bool:
        return False


class BudgetLimiter(ConcurrencyLimiter):
    """At most ``max_concurrent`` trials at once, and none new once ``budget`` is spent."""

    def __init__(self, searcher: Searcher, max_concurrent: int, budget: TimeBudget) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.budget = budget

    def get_state(self) -> dict:
        """The limiter's saved state, without the budget: a restored search keeps the budget the
        tuner restores (whose clock restarts at setup), not a copy with the old run's clock."""
        state = super().get_state()
        state.pop("budget", None)
        return state

    def suggest(self, trial_id: str) -> dict | None:
        if self.budget.spent():
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's "no more trials"
        return super().suggest(trial_id)
