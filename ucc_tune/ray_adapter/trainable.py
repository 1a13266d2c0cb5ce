"""What a trial runs: the Tune function trainable (one ``train`` run in-process, or a
``TorchTrainer`` of DDP ranks), and a DDP run without Tune (``python -m ucc_tune.train --workers``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.tune
from ray.train.torch import TorchConfig, TorchTrainer

from ucc_tune.config import Config
from ucc_tune.ray_adapter.callbacks import quiet_trial_logs
from ucc_tune.ray_adapter.cluster import RayResources, ray_resources, start_ray
from ucc_tune.ray_adapter.rows import recorded_rows, report_last_row
from ucc_tune.ray_adapter.sessions import TuneSession, train_loop_per_worker
from ucc_tune.resources import Resources
from ucc_tune.schema import DDP_RUN_NAME, TRAIN_RUN_PREFIX, TRAIN_RUNS_DIR
from ucc_tune.storage import Storage
from ucc_tune.train import RunFolder, train
from ucc_tune.train.failures import fails_once


def torch_trainer(
    config: Config,
    resources: RayResources,
    storage: Storage,
    name: str,
    folder: str | None,
    trial_id: str | None = None,
    callbacks: list[Any] | None = None,
    echo: Callable[[dict[str, Any]], None] | None = None,
) -> TorchTrainer:
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


def train_distributed(
    config: Config,
    out: Path,
    resume: bool = False,
    gpus_per_worker: int = 0,
    on_report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
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
