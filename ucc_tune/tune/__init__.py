"""The Ray adapter: the only module of ``ucc_tune`` that imports Ray (2.60, Train V2).

It translates and decides nothing of its own: a ``SearchPlan`` becomes a ``Tuner`` (trainable,
resources, searcher, scheduler), a ``Config`` with ``num_workers >= 1`` a ``TorchTrainer``.
``TuneSession`` runs ``train`` inside an in-process Tune trial; ``RayTrainSession`` on every
rank of a ``TorchTrainer`` (DDP: gloo on CPUs, NCCL on GPUs; ``ray.train.report`` is a barrier).
A trial's own folder gets ``run.json``, ``metrics.jsonl`` and ``artifacts/`` straight in the
experiment's storage: Tune syncs only the driver node's folders, and never a reused actor's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
import ray.train
import ray.tune
import torch
from ray.train.torch import TorchConfig, TorchTrainer
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from torch import nn

from ucc_tune.config import Config
from ucc_tune.plan import ResourceError, Resources, SearchPlan
from ucc_tune.schema import (
    DDP_RUN_NAME,
    TRAIN_RUN_PREFIX,
    TRAIN_RUNS_DIR,
    error_text,
)  # fmt: skip
from ucc_tune.spaces import SpaceWithConstants, load_space, make_sampler
from ucc_tune.storage import Storage, is_secret
from ucc_tune.train import RunFolder, placement, resolve_device, train
from ucc_tune.train.failures import fails_once
from ucc_tune.train.session import WritesRunFiles, state_file_damage, state_files
from ucc_tune.tune.budget import BudgetLimiter, TimeBudget
from ucc_tune.tune.rows import recorded_rows, report_last_row
from ucc_tune.tune.searcher import PruningOptunaSearch, search_callbacks, seed_searcher_study
from ucc_tune.tune.watch import progress_view, quiet_driver_output, quiet_trial_logs


def _ray_placement(rank: int, world_size: int, device: torch.device) -> dict[str, Any]:
    context = ray.get_runtime_context()
    return placement(
        rank, world_size, device,
        node_id=context.get_node_id(), gpu_ids=[str(g) for g in ray.get_gpu_ids()],
        resources=context.get_assigned_resources(),
    )  # fmt: skip


class TuneSession(WritesRunFiles):
    """``train``'s session in an in-process Tune trial whose files are ``folder``."""

    rank = 0
    world_size = 1
    folder: RunFolder

    def __init__(self, folder: RunFolder, trial_id: str):
        self.folder, self.trial_id = folder, trial_id
        self.reported = False

    def device(self, requested: str) -> torch.device:
        return resolve_device(requested)

    def start(self, config: dict[str, Any], device: torch.device) -> None:
        where = [_ray_placement(0, 1, device)]
        self.folder.update_info(trial_id=self.trial_id, config=config, placement=where)

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        self.folder.append_metrics(metrics)
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)
        self.reported = True

    def latest_checkpoint(self) -> str | None:
        """Tune's checkpoint of this trial, or a newer complete one in the trial's own folder: a
        driver killed between two snapshots of the experiment state restores a trial with an
        older checkpoint than the trial had written."""
        checkpoint = ray.tune.get_checkpoint()
        known = Path(checkpoint.path).name if checkpoint is not None else ""
        if self.folder.storage.is_local:
            newest = newest_complete_checkpoint(Path(self.folder.storage.root))
            if newest is not None and newest.name > known:
                return str(newest)
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model


def newest_complete_checkpoint(trial_dir: Path) -> Path | None:
    """The newest ``checkpoint_NNNNNN`` folder of a trial whose state files all read back."""
    for folder in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        states = state_files(folder)
        if states and all(state_file_damage(s) is None for s in states):
            return folder
    return None


class RayTrainSession(WritesRunFiles):
    """``train``'s session on one rank of a ``TorchTrainer``; rank 0 writes the run's files into
    ``folder`` (a path or a URI; ``None``: none) and passes each report to ``echo``."""

    def __init__(self, folder: str | None, trial_id: str | None, echo: Callable[[dict], None] | None):
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.folder = RunFolder(folder) if folder is not None and self.rank == 0 else None
        self.trial_id, self.echo = trial_id, echo
        self._device = torch.device("cpu")

    def device(self, requested: str) -> torch.device:
        """The GPU Ray Train gave this rank when CUDA can use it, else as ``resolve_device``."""
        if requested != "cpu" and torch.cuda.is_available():
            self._device = ray.train.torch.get_device()
            torch.cuda.set_device(self._device)
        else:
            self._device = resolve_device(requested)
        return self._device

    def start(self, config: dict[str, Any], device: torch.device) -> None:
        mine = _ray_placement(self.rank, self.world_size, device)
        ranks: list[Any] = [mine]
        if self.world_size > 1:
            ranks = [None] * self.world_size
            torch.distributed.all_gather_object(ranks, mine)
        if self.folder is not None:
            self.folder.update_info(trial_id=self.trial_id, config=config, placement=ranks)

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if self.folder is not None:
            self.folder.append_metrics(metrics)
        if self.echo is not None and self.rank == 0:
            self.echo(metrics)
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)  # every rank: it is a barrier

    def latest_checkpoint(self) -> str | None:
        checkpoint = ray.train.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return model
        ids = [self._device] if self._device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every ``TorchTrainer`` rank runs: ``train`` with a ``RayTrainSession``."""
    quiet_trial_logs()
    session = RayTrainSession(loop_config["folder"], loop_config["trial_id"], loop_config["echo"])
    train(Config.from_dict(loop_config["config"]), session)


@dataclass(frozen=True)
class RayResources:
    """What Ray gets for a search: each trial's own resources, its ranks, and how many at once."""

    trial: dict[str, float]  # for tune.with_resources
    workers: int
    worker: dict[str, float]  # resources_per_worker of the ScalingConfig
    backend: str  # torch.distributed backend of DDP trials
    concurrency: int

    def scaling_config(self) -> ray.train.ScalingConfig:
        return ray.train.ScalingConfig(
            num_workers=self.workers,
            use_gpu=self.worker.get("GPU", 0) > 0,
            resources_per_worker={k: v for k, v in self.worker.items() if v > 0},
        )


def ray_resources(r: Resources, device: str, fixed: int | None = None) -> RayResources:
    """The one mapping of the flags to Ray: the trial's own resources, Ray Train's per-worker CPUs,
    GPUs and backend, and how many trials at once (``fixed``, else what the cluster's CPUs and GPUs
    fit; ResourceError if none ever fits). GPUs come from the flags, never from this process."""
    cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
    if (unfit := r.unfit(cluster)) is not None:
        raise ResourceError(unfit)
    return RayResources(
        trial={k.lower(): v for k, v in r.trial.items()}, workers=r.workers, worker=r.worker,
        backend=ddp_backend(r, device) if r.workers else "gloo", concurrency=fixed or r.concurrency(cluster),
    )  # fmt: skip


def ddp_backend(resources: Resources, device: str) -> str:
    """NCCL when the ranks hold GPUs that CUDA can use, else gloo. Whether a GPU node's GPUs are
    usable is asked of a task that holds the same GPUs there: this process may have none."""
    if resources.gpus == 0 or device == "cpu":
        return "gloo"

    @ray.remote(num_cpus=0, num_gpus=resources.gpus)
    def cuda_usable() -> bool:
        return torch.cuda.is_available()

    usable = ray.get(cuda_usable.remote(), timeout=600)
    if not usable and device == "cuda":
        raise ResourceError("device=cuda, but torch sees no usable CUDA device on the GPU nodes")
    return "nccl" if usable else "gloo"


def torch_trainer(
    config: Config, resources: RayResources, storage: Storage, name: str, folder: str | None,
    trial_id: str | None = None, callbacks: list[Any] | None = None,
    echo: Callable[[dict[str, Any]], None] | None = None,
) -> TorchTrainer:  # fmt: skip
    """A ``TorchTrainer`` whose Train run (checkpoints) is ``storage/name`` and whose ranks write
    the run's files into ``folder``."""
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.to_dict(), "folder": folder, "trial_id": trial_id, "echo": echo},
        torch_config=TorchConfig(backend=resources.backend),
        scaling_config=resources.scaling_config(),
        run_config=ray.train.RunConfig(
            name=name,  # stable: a retried or restored run resumes from its own checkpoint
            storage_path=storage.uri,
            callbacks=callbacks or [],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.keep_checkpoints),
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),  # not a line per checkpoint
            failure_config=ray.train.FailureConfig(  # type: ignore[call-arg]  # a V2 field
                max_failures=0, controller_failure_limit=0
            ),
        ),
    )


def keep_credentials_in_the_environment() -> None:
    """Stop Ray Tune from copying the driver's secrets (``AWS_*`` credentials, any variable whose
    name says KEY, TOKEN, SECRET or PASSWORD) into every trial's runtime environment: Ray's
    runtime-env agent writes runtime-env variables into its log in clear text. A local cluster's
    workers inherit the driver's environment anyway, and on a multi-node cluster each node uses
    its own credentials (environment, ``~/.aws`` or an instance role), so S3 storage and the
    trackers keep working without the copy."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = {
        name for name in class_cache.ENV_VARS_TO_PROPAGATE if not is_secret(name)
    }


def private_temp_dir() -> str:
    """Ray's temp folder for a local cluster this process starts: ``ray`` inside a folder only this
    user may enter (``ucc-tune-<uid>``, 0700) under ``$RAY_TMPDIR`` or the system's temp folder.
    Ray makes its own folders world-writable (0777) for machines shared by several users, and
    re-applies that as its processes start, so the privacy comes from the parent."""
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
    private = root / f"ucc-tune-{os.getuid()}"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(private, 0o700)  # an older folder of the same name
    return str(private / "ray")


def start_ray(
    address: str | None = None, num_cpus: int | None = None, dashboard: bool = True,
    dashboard_host: str = "127.0.0.1",
) -> str | None:  # fmt: skip
    """Join ``address`` or start a fresh local cluster (never a stale one by accident); returns
    the dashboard URL. Train V2 cleans placement groups through the dashboard's State API."""
    keep_credentials_in_the_environment()
    if ray.is_initialized():
        return ray._private.worker.get_dashboard_url() or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        context = ray.init(address=address)
    else:
        context = ray.init(
            address="local", num_cpus=num_cpus, include_dashboard=dashboard,
            dashboard_host=dashboard_host, configure_logging=False, _temp_dir=private_temp_dir(),
        )  # fmt: skip
    return context.dashboard_url or None


def train_distributed(
    config: Config, out: Path, resume: bool = False, gpus_per_worker: int = 0,
    on_report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A DDP run of ``config.num_workers`` ranks without Tune: its files in ``out``, its Train run
    (checkpoints) in ``out/ray_train``."""
    out = out.resolve()
    if (out / DDP_RUN_NAME).exists() and not resume:
        raise FileExistsError(
            f"{out / DDP_RUN_NAME} holds an earlier run; pass --resume to continue it or use a new --out"
        )
    cpus = max(1, config.num_threads)
    start_ray(num_cpus=max(2, config.num_workers * cpus))
    r = Resources(cpus=cpus, gpus=gpus_per_worker, workers=config.num_workers, driver_cpu=0.0)
    resources = ray_resources(r, config.device, fixed=1)
    trainer = torch_trainer(config, resources, Storage(out), DDP_RUN_NAME, str(out), echo=on_report)
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    return dict(result.metrics or {})


def make_trainable(experiment: str, resources: RayResources) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: one trial = one ``train`` run (in-process or DDP) whose files
    go to its own folder of ``experiment`` (a folder or a URI). DDP trials keep their Train runs
    in the stable ``train_runs/train-<trial id>``, so that a restored trial resumes its run."""

    def ucc_trial(trial_config: dict[str, Any]) -> None:
        context = ray.tune.get_context()
        trial_id = context.get_trial_id()
        quiet_trial_logs()
        storage = Storage(experiment)
        files = RunFolder(storage.child(Path(context.get_trial_dir()).name))
        if files.info().get("ended") and report_last_row(files):
            return  # it ended before the driver was killed: its last row again, no training
        with fails_once(files):
            config = Config.from_dict(trial_config)
            if config.num_workers == 0:
                session = TuneSession(files, trial_id)
                train(config, session)
                if not session.reported:  # restored from the checkpoint of its last epoch
                    report_last_row(files)
                return
        from ray.tune.integration.ray_train import TuneReportCallback

        folder, runs = files.storage.uri, storage.child(TRAIN_RUNS_DIR)
        name = f"{TRAIN_RUN_PREFIX}{trial_id}"
        trainer = torch_trainer(config, resources, runs, name, folder, trial_id, [TuneReportCallback()])
        recorded = len(recorded_rows(files))
        result = trainer.fit()
        if result.error is not None:
            raise result.error
        if len(recorded_rows(files)) == recorded:  # each epoch reached Tune once, through the callback
            report_last_row(files)  # none: restored with nothing left to train

    return ucc_trial


# --- the search ----------------------------------------------------------------------------------


def make_tuner(plan: SearchPlan, resources: RayResources) -> ray.tune.Tuner:
    """The plan as a ``Tuner`` (restored from its storage when the plan resumes)."""
    trainable = ray.tune.with_resources(make_trainable(plan.experiment_uri, resources), resources.trial)
    if plan.resume:
        seed_searcher_study(plan, None)
        return ray.tune.Tuner.restore(
            plan.experiment_uri, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    space = load_space(plan.space)
    searcher = PruningOptunaSearch(
        space=SpaceWithConstants(space.source, plan.fixed),
        metric=list(plan.metrics) if len(plan.metrics) > 1 else plan.metrics[0],
        mode=list(plan.modes) if len(plan.modes) > 1 else plan.modes[0],
        sampler=make_sampler(space, len(plan.metrics), plan.seed),
        storage=optuna.storages.RDBStorage(plan.study_url),
        study_name=plan.name,
        epochs=plan.epochs,
    )
    seed_searcher_study(plan, searcher)
    budget = TimeBudget(plan.time_budget_s)
    scheduler = FIFOScheduler()
    if plan.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="epochs_done",  # 1-based; Tune's training_iteration restarts after a retry
            metric=plan.metrics[0], mode=plan.modes[0], max_t=plan.epochs,
            grace_period=plan.grace_period, reduction_factor=plan.reduction_factor,
        )  # fmt: skip
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(
            search_alg=BudgetLimiter(searcher, resources.concurrency, budget),
            scheduler=scheduler,
            num_samples=plan.num_samples,
            # a finished trial's process runs the next trial: no new actor, imports or CUDA
            # context per trial (the main share of an in-process trial's overhead)
            reuse_actors=True,
        ),
        run_config=ray.tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            callbacks=[*search_callbacks(plan), budget, progress_view(plan)],
            stop=budget,
            failure_config=ray.tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=ray.tune.CheckpointConfig(num_to_keep=plan.keep_checkpoints),
            verbose=0,  # Ray's trial table off: progress_view prints ours
        ),
    )


def experiment_exists(location: str) -> bool:
    return ray.tune.Tuner.can_restore(location)


def run_search(plan: SearchPlan, resources: RayResources) -> list[dict[str, Any]]:
    """Run (or resume) the search; per trial: ``trial_id``, its folder's name, ``error``."""
    quiet_driver_output()
    grid = make_tuner(plan, resources).fit()
    results = [grid[i] for i in range(len(grid))]
    return [
        {"trial_id": (r.metrics or {}).get("trial_id") or Path(r.path).name, "folder": Path(r.path).name,
         "error": error_text(r.error) if r.error else None, "config": dict(r.config or {})}
        for r in results
    ]  # fmt: skip
