"""Ray Tune callbacks of a search: the progress view a person watches, and the ``--log-to``
experiment trackers; and the quieting of Ray's own chatter.

Progress: ``ProgressView`` feeds Tune's events into ``ucc_tune.search.progress.SearchProgress`` and
prints its lines when something changed, at most every ``every_s`` seconds, and once more at the
end. Ray's own trial table is off (``RunConfig(verbose=0)``, ``quiet_driver_output``);
``quiet_trial_logs`` drops Ray's INFO lines about each persisted checkpoint and (on a Ray Train
rank) the line that repeated each epoch's metrics, and Ray Train runs get
``LoggingConfig(log_level="WARNING")`` (Ray Train still writes its INFO lines into the session's
log files). Warnings and errors still reach the terminal.

Trackers (Ray Tune's own logger callbacks, ``ray.air.integrations``). W&B: one run per trial,
grouped by experiment, written by Ray's logging actor into the trial's folder (``wandb/``);
offline unless the user configured a server (``WANDB_MODE``, an API key or ``wandb login``), so
a search never fails for want of an account. The project is ``WANDB_PROJECT`` or ``ucc-tune``.
MLflow: one run per trial in the MLflow experiment named after the search, at
``MLFLOW_TRACKING_URI`` or in ``mlruns/mlflow.db`` of the experiment.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO, cast

from ray.tune import Callback

from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.progress import SearchProgress

PRINT_EVERY_S = 15.0  # at most one view per this many seconds while trials report
# loggers whose INFO lines only say that a checkpoint was written (Tune's and Ray Train's storage)
CHECKPOINT_LOGGERS = ("ray.train._internal.storage", "ray.train.v2._internal.execution.storage")
WANDB_PROJECT = "ucc-tune"  # when WANDB_PROJECT names none
MLRUNS_DIR = "mlruns"
MLFLOW_DB = "mlflow.db"


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
        self,
        progress: SearchProgress,
        every_s: float = PRINT_EVERY_S,
        out: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
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


# --- experiment trackers ----------------------------------------------------------------------


def local_mlflow_uri(experiment_dir: Path) -> str:
    """MLflow's tracking URI in the experiment: a SQLite store in ``mlruns/`` (MLflow 3 refuses
    its old file store by default)."""
    folder = (experiment_dir / MLRUNS_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / MLFLOW_DB}"


def wandb_configured() -> bool:
    """Whether the user chose a W&B mode or server: WANDB_MODE, WANDB_API_KEY or ``wandb login``."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    try:
        return bool(wandb.Api(timeout=5).api_key)
    except Exception:  # no key anywhere: wandb raises its own errors
        return False


def _wandb_callback_class() -> type:
    """Ray's ``WandbLoggerCallback`` whose logging actors get no runtime environment: Ray's would
    carry ``WANDB_API_KEY``, and the runtime-env agent logs runtime-env variables in clear text.
    The actors run on the driver's node, whose Ray workers inherit the driver's environment."""
    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback
    from ray.air.util.node import _force_on_current_node

    class WandbCallback(WandbLoggerCallback):
        def _start_logging_actor(self, trial: Any, exclude_results: list[str], **init: Any) -> None:
            if not self._remote_logger_class:
                options: dict[str, Any] = {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1}
                options.update(cast(dict[str, Any], _force_on_current_node()))
                remote = ray.remote(**options)
                self._remote_logger_class = remote(self._logger_actor_cls)  # type: ignore[assignment]
            super()._start_logging_actor(trial, exclude_results, **init)

    return WandbCallback


def tracker_callbacks(plan: SearchPlan) -> list[Any]:
    """Ray Tune logger callbacks for ``plan.log_to``."""
    callbacks: list[Any] = []
    if "wandb" in plan.log_to:
        if not wandb_configured():
            os.environ["WANDB_MODE"] = "offline"  # read by Ray's callback in this process
        # the logging actor's own wandb.init gets the mode: it does not see this process's environment
        init: dict[str, Any] = {"mode": os.environ["WANDB_MODE"]} if os.environ.get("WANDB_MODE") else {}
        project = os.environ.get("WANDB_PROJECT", WANDB_PROJECT)
        callbacks.append(_wandb_callback_class()(project=project, group=plan.name, log_config=True, **init))
    if "mlflow" in plan.log_to:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        uri = os.environ.get("MLFLOW_TRACKING_URI") or local_mlflow_uri(plan.experiment_dir)
        callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=plan.name))
    return callbacks
