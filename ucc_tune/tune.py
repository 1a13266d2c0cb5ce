"""Ray adapters: the only module of ``ucc_tune`` that imports Ray.

Ray 2.60 runs Train V2 (``shared/RAY_NOTES.md`` sections 0-1):
- ``TuneSession``: an in-process Tune trial (``num_workers == 0``) reports with
  ``ray.tune.report`` and ``ray.tune.Checkpoint``; a trial costs seconds.
- ``RayTrainSession``: every rank of a ``TorchTrainer`` (DDP; gloo on CPU, NCCL on GPU) calls
  ``ray.train.report`` each epoch (a barrier); rank 0 evaluates, checkpoints and also appends
  each epoch's metrics to ``metrics.jsonl`` in the run folder, because a Tune trial's history of
  a Train run does not survive a restore.
- ``make_trainable``: the Tune function trainable. With ``num_workers >= 1`` it builds a
  ``TorchTrainer`` named after the trial id (so a retried or restored trial resumes from the
  Train run's own checkpoint), forwards metrics with ``TuneReportCallback`` and reports the
  final metrics again after ``fit()``.
- ``train_distributed``: one ``TorchTrainer`` run without Tune (``python -m ucc_tune.train
  --workers N``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
import ray.train
import ray.tune
import torch
from ray.train.torch import TorchTrainer
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch
from torch import nn

from ucc_tune.config import Config
from ucc_tune.storage import Storage, is_uri
from ucc_tune.train import DDP_RUN_NAME, METRIC_NAMES, last_and_best, train

TRAIN_RUN_PREFIX = "train-"


class TuneSession:
    """``train``'s session inside an in-process Tune trial.

    Artifacts go straight to ``<experiment>/<trial folder>/artifacts`` in the experiment's
    storage (a folder or a URI): Tune only syncs a trial's local folders from the driver's node,
    and a reused actor (``reuse_actors``) works in a folder that is not synced at all.
    """

    rank = 0
    world_size = 1

    def __init__(self, experiment: str):
        self.experiment = experiment

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)

    def latest_checkpoint(self) -> str | None:
        checkpoint = ray.tune.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def artifacts(self) -> AbstractContextManager[Path | None]:
        trial_folder = Path(ray.tune.get_context().get_trial_dir()).name
        return Storage(self.experiment).staged(trial_folder, "artifacts")


class RayTrainSession:
    """``train``'s session on one rank of a ``TorchTrainer``; rank 0 writes ``metrics.jsonl``
    and the artifacts into ``run_dir`` (a folder or a URI; ``None``: neither)."""

    def __init__(self, run_dir: str | None, echo: Callable[[dict[str, Any]], None] | None = None):
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.run = Storage(run_dir) if run_dir is not None else None
        self.echo = echo

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if self.rank == 0 and self.run is not None:
            self.run.append_text(json.dumps(metrics) + "\n", "metrics.jsonl")
            if self.echo is not None:
                self.echo(metrics)
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)  # every rank: it is a barrier

    def latest_checkpoint(self) -> str | None:
        checkpoint = ray.train.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def artifacts(self) -> AbstractContextManager[Path | None]:
        return self.run.staged("artifacts") if self.run is not None else nullcontext()


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every ``TorchTrainer`` rank runs: ``train`` with a ``RayTrainSession``."""
    config = Config.from_dict(loop_config["config"])
    train(config, RayTrainSession(loop_config.get("run_dir"), loop_config.get("echo")))


def torch_trainer(
    config: Config,
    storage: Storage,
    name: str,
    callbacks: list[Any] | None = None,
    echo: Callable[[dict[str, Any]], None] | None = None,
) -> TorchTrainer:
    """A ``TorchTrainer`` of ``config.num_workers`` ranks whose run folder is ``storage/name``."""
    use_gpu = config.device != "cpu" and torch.cuda.is_available()
    cpus = max(1, config.num_threads)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.to_dict(), "run_dir": storage.child(name).uri, "echo": echo},
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.num_workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus, "GPU": 1} if use_gpu else {"CPU": cpus},
        ),
        run_config=ray.train.RunConfig(
            name=name,  # stable: a retried or restored run resumes from its own checkpoint
            storage_path=storage.uri,
            callbacks=callbacks or [],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.keep_checkpoints),
            failure_config=ray.train.FailureConfig(  # type: ignore[call-arg]  # a V2 field
                max_failures=0, controller_failure_limit=0
            ),
        ),
    )


def init_local_ray(num_cpus: int | None = None, dashboard: bool = False) -> None:
    """Start a fresh local cluster unless one is up (never attach to a stale one by accident)."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        configure_logging=False,
    )


def train_distributed(
    config: Config,
    out: Path,
    resume: bool = False,
    on_report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One DDP run of ``config.num_workers`` ranks on a local Ray cluster, without Tune."""
    out = out.resolve()
    name = DDP_RUN_NAME
    if (out / name).exists() and not resume:
        raise FileExistsError(
            f"{out / name} holds an earlier run; pass --resume to continue it or use a new --out"
        )
    # with the dashboard: Train V2 cleans placement groups through the State API (RAY_NOTES 6)
    init_local_ray(num_cpus=max(2, config.num_workers * max(1, config.num_threads)), dashboard=True)
    result = torch_trainer(config, Storage(out), name, echo=on_report).fit()
    if result.error is not None:
        raise result.error
    return dict(result.metrics or {})


def make_trainable(experiment: str) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: one trial = one ``train`` run (in-process or DDP).

    ``experiment`` is the experiment's storage (a folder or a URI). The trials' Train runs live
    in its stable ``train_runs`` folder, so that a restored trial finds its ``train-<trial id>``
    run again and resumes it.
    """
    storage = Storage(experiment).child("train_runs")

    def ucc_trial(trial_config: dict[str, Any]) -> None:
        config = Config.from_dict(trial_config)
        if config.num_workers == 0:
            train(config, TuneSession(experiment))
            return
        from ray.tune.integration.ray_train import TuneReportCallback

        name = f"{TRAIN_RUN_PREFIX}{ray.tune.get_context().get_trial_id()}"
        result = torch_trainer(config, storage, name, callbacks=[TuneReportCallback()]).fit()
        if result.error is not None:
            raise result.error
        # a restored trial whose Train run had finished reports nothing otherwise (RAY_NOTES 0.6)
        final = dict(result.metrics or {})
        final["checkpoint_path"] = result.checkpoint.path if result.checkpoint else None
        ray.tune.report(final)

    return ucc_trial


# --- the search ----------------------------------------------------------------------------------


class PruningOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna the truth about trials a scheduler stopped early.

    Plain OptunaSearch records an ASHA-stopped trial as COMPLETE with its early, low-fidelity
    value, which misleads TPE (RAY_NOTES 2). Here a trial whose last reported ``epoch`` is short
    of its configured ``epochs`` is told as PRUNED (its per-epoch values are reported as
    intermediate values), a NaN objective as FAIL, and intermediate steps are epochs.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._planned_epochs: dict[str, int] = {}
        self._reported_epochs: dict[str, set[int]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            self._planned_epochs[trial_id] = int(config.get("epochs", Config().epochs))
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, list) or trial_id in self._completed_trials:
            return
        self._report_intermediate(trial_id, result)

    def _report_intermediate(self, trial_id: str, result: dict[str, Any]) -> None:
        """The objective of one epoch as Optuna's intermediate value at step ``epoch``."""
        value, epoch = result.get(str(self.metric)), int(result.get("epoch", 0))
        reported = self.__dict__.setdefault("_reported_epochs", {})  # absent in older pickles
        steps = reported.setdefault(trial_id, set())
        if value is not None and math.isfinite(value) and epoch not in steps:
            self._ot_trials[trial_id].report(float(value), epoch)
            steps.add(epoch)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result.get(m) if result else None for m in metrics]
        last_epoch = int(result.get("epoch", -1)) if result else -1
        finished = last_epoch + 1 >= self._planned_epochs.get(trial_id, 0)
        if error or any(v is None or not math.isfinite(v) for v in values):
            state, told = (
                (optuna.trial.TrialState.FAIL if error or finished else optuna.trial.TrialState.PRUNED),
                None,
            )
        elif not finished:
            # the scheduler's stop comes with the result that triggered it, which Tune does not
            # pass to on_trial_result (a trial stopped at its first rung would have no values)
            if result is not None and not isinstance(self.metric, list):
                self._report_intermediate(trial_id, result)
            state, told = optuna.trial.TrialState.PRUNED, None
        else:
            state, told = optuna.trial.TrialState.COMPLETE, values if len(values) > 1 else values[0]
        assert self._ot_study is not None
        self._completed_trials.add(trial_id)  # first: a failing tell must not be retried
        self._ot_study.tell(ot_trial, told, state=state)


class DefineByRun:
    """A named space (or ``.py`` file) plus the fixed ``--set`` values as constants of every trial.

    The ``--set`` values override the constants a space returns (its default budget, say);
    they may not name a parameter the space searches (``search.py`` refuses that up front).

    Holds the space's name, not the function, so the searcher pickles (Tune saves it) and a
    restored search loads the same space again.
    """

    def __init__(self, space: str, fixed: dict[str, Any]):
        self.space, self.fixed = space, dict(fixed)

    def __call__(self, trial: Any) -> dict[str, Any]:
        from search_spaces import get_space

        return {**(get_space(self.space)(trial) or {}), **self.fixed}  # --set beats a space's constants


class TuneGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done: that call only
    works inside ``study.optimize``; under Tune, ``--num-samples`` decides when to stop."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def make_searcher(
    space: str,
    fixed: dict[str, Any],
    metrics: list[str],
    modes: list[str],
    storage_url: str,
    study_name: str,
    seed: int,
) -> PruningOptunaSearch:
    """A grid when the space defines ``GRID``, else seeded TPE for one metric and NSGA-II for
    several; the study lives in ``storage_url``."""
    from search_spaces import get_grid

    grid = get_grid(space)
    if grid:
        sampler: optuna.samplers.BaseSampler = TuneGridSampler(grid, seed=seed)
    elif len(metrics) > 1:
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    return PruningOptunaSearch(
        space=DefineByRun(space, fixed),
        metric=metrics if len(metrics) > 1 else metrics[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=sampler,
        storage=optuna.storages.RDBStorage(storage_url),
        study_name=study_name,
    )


@dataclass
class SearchPlan:
    """Everything ``python -m ucc_tune.search`` decided, enough to build or restore the Tuner."""

    experiment_dir: Path  # the experiment when local; the driver's copy of its files when remote
    storage: str  # where Ray keeps experiments: a folder or a URI
    experiment_uri: str  # the experiment in that storage (resolved once: a URI may cost a request)
    space: str  # a name in search_spaces.SPACES or a .py file
    fixed: dict[str, Any]
    metrics: list[str]
    modes: list[str]
    num_samples: int
    scheduler: str
    max_concurrent: int
    cpus_per_trial: float
    gpus_per_trial: float
    workers_per_trial: int
    max_failures: int
    seed: int
    grace_period: int = 1
    reduction_factor: int = 3
    epochs: int = Config().epochs  # of every trial (space constants and --set applied)

    @property
    def name(self) -> str:
        return self.experiment_dir.name

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)


DRIVER_FILES = ("search.json", "optuna.db", "trials.parquet")


def publish(plan: SearchPlan, *names: str) -> None:
    """Copy the driver's files (``search.json``, ``optuna.db``, ``trials.parquet``) from the
    local copy of a remote experiment to its storage; nothing to do for a local one."""
    if not plan.remote:
        return
    storage = Storage(plan.experiment_uri)
    for name in names or DRIVER_FILES:
        if (plan.experiment_dir / name).is_file():
            storage.upload(plan.experiment_dir / name, name)


def fetch_driver_files(plan: SearchPlan) -> None:
    """Before resuming a remote experiment: bring its driver files to the local copy when the
    copy lacks them (a new machine, a cleared cache)."""
    storage = Storage(plan.experiment_uri)
    for name in DRIVER_FILES:
        if not (plan.experiment_dir / name).exists() and storage.exists(name):
            storage.download(plan.experiment_dir / name, name)


class PublishStudy(ray.tune.Callback):
    """Uploads ``optuna.db`` after every finished trial of a remote experiment, so that the
    stored study is at most one trial behind if the driver dies."""

    def __init__(self, plan: SearchPlan):
        self.plan = plan

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        publish(self.plan, "optuna.db")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        publish(self.plan, "optuna.db")


def trial_resources(plan: SearchPlan) -> dict[str, float]:
    if plan.workers_per_trial >= 1:
        return {"cpu": 0.05}  # the trial only drives a TorchTrainer whose workers hold the resources
    return {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}


def make_tuner(plan: SearchPlan, restore: bool) -> ray.tune.Tuner:
    trainable = ray.tune.with_resources(make_trainable(plan.experiment_uri), trial_resources(plan))
    path = plan.experiment_uri
    if restore:
        return ray.tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    searcher = make_searcher(
        plan.space, plan.fixed, plan.metrics, plan.modes,
        study_url(plan), plan.name, plan.seed,
    )  # fmt: skip
    scheduler = (
        ASHAScheduler(
            time_attr="epochs_done",  # 1-based; Tune's training_iteration restarts after a retry
            metric=plan.metrics[0],
            mode=plan.modes[0],
            max_t=plan.epochs,
            grace_period=plan.grace_period,
            reduction_factor=plan.reduction_factor,
        )
        if plan.scheduler == "asha"
        else FIFOScheduler()
    )
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=plan.num_samples,
            max_concurrent_trials=plan.max_concurrent,
            # a finished trial's process runs the next trial: no new actor, imports or CUDA
            # context per trial (the main share of the in-process trial overhead, issue 7)
            reuse_actors=True,
        ),
        run_config=ray.tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            callbacks=[PublishStudy(plan)] if plan.remote else [],
            failure_config=ray.tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=ray.tune.CheckpointConfig(
                num_to_keep=2,
                checkpoint_score_attribute=plan.metrics[0],
                checkpoint_score_order=plan.modes[0],
            ),
            verbose=1,
        ),
    )


def run_search(plan: SearchPlan, restore: bool) -> ray.tune.ResultGrid:
    return make_tuner(plan, restore).fit()


def experiment_exists(location: str) -> bool:
    return ray.tune.Tuner.can_restore(location)


def start_ray(address: str | None, num_cpus: int | None, dashboard: bool, dashboard_host: str) -> None:
    """Join ``address`` or start a fresh local cluster; print the dashboard URL and how to log in."""
    if dashboard_host not in ("127.0.0.1", "localhost"):
        print(
            f"warning: the dashboard binds to {dashboard_host}, reachable from other machines "
            "(token authentication stays on)"
        )
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address:
            context = ray.init(address=address)
        else:
            context = ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=dashboard,
                dashboard_host=dashboard_host,
                configure_logging=False,
            )
        url = context.dashboard_url
    else:
        url = ray._private.worker.get_dashboard_url()
    if url:
        print(f"Ray dashboard: http://{url}")
        print(
            "  token authentication is on: the token is in ~/.ray/auth_token (or $RAY_AUTH_TOKEN_PATH); "
            "send it as the header 'Authorization: Bearer <token>' or the cookie 'ray-authentication-token'"
        )


def default_concurrency(plan: SearchPlan) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1))
    per_trial = plan.cpus_per_trial * max(1, plan.workers_per_trial)
    return max(1, int(cpus // max(per_trial, 1e-9)))


def study_url(plan: SearchPlan) -> str:
    return f"sqlite:///{plan.experiment_dir / 'optuna.db'}"


def searched_parameters(plan: SearchPlan) -> list[str]:
    """The names Optuna suggested (Config field names), read from the stored study."""
    study = optuna.load_study(study_name=plan.name, storage=study_url(plan))
    return sorted({name for trial in study.trials for name in trial.params})


def error_message(error: BaseException) -> str:
    """``Type: message`` of the exception a trial raised (Ray wraps it in a RayTaskError)."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:1000]


def write_trials_table(grid: ray.tune.ResultGrid, plan: SearchPlan) -> Any:
    """``trials.parquet``: per trial its id, status, error, every Config field, last/best metrics."""
    import pandas as pd

    rows = []
    for result in (grid[i] for i in range(len(grid))):
        config = Config.from_dict(
            {k: v for k, v in (result.config or {}).items() if k in Config.__dataclass_fields__}
        )
        history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
        last = result.metrics or {}
        epochs_run = int(history["epoch"].max()) + 1 if "epoch" in history and len(history) else 0
        status = "ERROR" if result.error else ("TERMINATED" if epochs_run >= config.epochs else "STOPPED")
        row: dict[str, Any] = {
            "trial_id": last.get("trial_id") or Path(result.path).name,
            "status": status,
            "error": error_message(result.error) if result.error else None,
            "epochs_run": epochs_run,
            "time_total_s": last.get("time_total_s"),
            "path": result.path,
        }
        row.update(config.to_dict())
        reported = [n for n in history.columns if n.startswith("test_") or n in METRIC_NAMES]
        row.update(last_and_best(history, reported))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["searched"] = searched_parameters(plan)
    table.to_parquet(plan.experiment_dir / "trials.parquet", index=False)
    return table
