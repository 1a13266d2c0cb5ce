"""The ``--log-to`` trackers as Ray Tune's own logger callbacks (``ray.air.integrations``).

W&B: one run per trial, grouped by experiment, written by Ray's logging actor into the trial's
folder (``wandb/``); offline unless the user configured a server (``WANDB_MODE``, an API key or
``wandb login``), so a search never fails for want of an account. The project is
``WANDB_PROJECT`` or ``ucc-tune``. MLflow: one run per trial in the MLflow experiment named
after the search, at ``MLFLOW_TRACKING_URI`` or in ``mlruns/mlflow.db`` of the experiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from ucc_tune.plan import SearchPlan

WANDB_PROJECT = "ucc-tune"  # when WANDB_PROJECT names none
MLRUNS_DIR = "mlruns"
MLFLOW_DB = "mlflow.db"


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
