"""Watching a search: the progress view printed from a Tune callback, and Ray's chatter quieted.

``ProgressView`` feeds Tune's events into ``ucc_tune.progress.SearchProgress`` and prints its
lines when something changed, at most every ``every_s`` seconds, and once more at the end. Ray's
own trial table is off (``RunConfig(verbose=0)``, ``quiet_driver_output``); ``quiet_trial_logs``
drops Ray's INFO lines about each persisted checkpoint and (on a Ray Train rank) the line that
repeated each epoch's metrics, and Ray Train runs get
``LoggingConfig(log_level="WARNING")`` (Ray Train still writes its INFO lines into the
session's log files). Warnings and errors still reach the terminal.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from ucc_tune.plan import SearchPlan
from ucc_tune.progress import SearchProgress

PRINT_EVERY_S = 15.0  # at most one view per this many seconds while trials report
# loggers whose INFO lines only say that a checkpoint was written (Tune's and Ray Train's storage)
CHECKPOINT_LOGGERS = ("ray.train._internal.storage", "ray.train.v2._internal.execution.storage")


def quiet_driver_output() -> None:
    """Tune's legacy output engine, which prints nothing at ``verbose=0``: the default engine
    still prints a box of the experiment's configuration and where its results go."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def quiet_trial_logs() -> None:
    """In a trial's or rank's process: no INFO line per checkpoint, and on a Ray Train rank none
    that repeats each epoch's metrics; warnings and errors stay."""
    from ray.train.v2._internal.execution import context

    # Ray Train names this logger after its file, outside ``ray.train``: LoggingConfig misses it
    for name in (*CHECKPOINT_LOGGERS, context.__file__):
        logging.getLogger(name).setLevel(logging.WARNING)


class ProgressView(Callback):
    """Prints the search's progress view (see the module docstring) to ``out``."""

    def __init__(
        self, progress: SearchProgress, every_s: float = PRINT_EVERY_S, out: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:  # fmt: skip
        self.progress, self.every_s, self.out, self.clock = progress, every_s, out, clock
        self._start = clock()
        self._printed_at: float | None = None
        self._changed = False

    def setup(self, *args: Any, **info: Any) -> None:
        self._start = self.clock()  # a restored search counts from its resume

    def _sync(self, trials: list[Any]) -> None:
        for trial in trials:
            config = dict(trial.config or {})
            planned = config.get("epochs")
            changed = self.progress.trial(trial.trial_id, config, planned, str(trial.status))
            self._changed = self._changed or changed

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        self.progress.result(trial.trial_id, result)
        self._changed = True

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._sync(trials)
        now = self.clock()
        due = self._printed_at is None or now - self._printed_at >= self.every_s
        if self._changed and due:
            self.show(now)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._sync(trials)
        self.show(self.clock())

    def show(self, now: float) -> None:
        out = self.out or sys.stdout
        width = shutil.get_terminal_size().columns
        lines = self.progress.lines(width, now - self._start)
        print("\n" + "\n".join(lines), file=out, flush=True)
        self._printed_at, self._changed = now, False


def progress_view(plan: SearchPlan) -> ProgressView:
    """The view of ``plan``'s search: its searched parameters and first objective (the one the
    final ranking uses), its number of trials and time budget."""
    progress = SearchProgress(
        list(plan.searched), plan.metrics[0], plan.num_samples, plan.modes[0], plan.time_budget_s
    )
    return ProgressView(progress)
