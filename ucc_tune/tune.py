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
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.tune
import torch
from ray.train.torch import TorchTrainer
from torch import nn

from ucc_tune.config import Config
from ucc_tune.train import train

TRAIN_RUN_PREFIX = "train-"


class TuneSession:
    """``train``'s session inside an in-process Tune trial."""

    rank = 0
    world_size = 1

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)

    def latest_checkpoint(self) -> str | None:
        checkpoint = ray.tune.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def artifact_dir(self) -> Path | None:
        return Path(ray.tune.get_context().get_trial_dir()) / "artifacts"


class RayTrainSession:
    """``train``'s session on one rank of a ``TorchTrainer``."""

    def __init__(self, run_dir: Path | None, echo: Callable[[dict[str, Any]], None] | None = None):
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.run_dir, self.echo = run_dir, echo

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if self.rank == 0 and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(metrics) + "\n")
            if self.echo is not None:
                self.echo(metrics)
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)  # every rank: it is a barrier

    def latest_checkpoint(self) -> str | None:
        checkpoint = ray.train.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def artifact_dir(self) -> Path | None:
        return self.run_dir / "artifacts" if self.run_dir is not None else None


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """What every ``TorchTrainer`` rank runs: ``train`` with a ``RayTrainSession``."""
    config = Config.from_dict(loop_config["config"])
    run_dir = Path(loop_config["run_dir"]) if loop_config.get("run_dir") else None
    echo = loop_config.get("echo")
    train(config, RayTrainSession(run_dir, echo))


def torch_trainer(
    config: Config,
    storage_path: Path,
    name: str,
    callbacks: list[Any] | None = None,
    echo: Callable[[dict[str, Any]], None] | None = None,
) -> TorchTrainer:
    """A ``TorchTrainer`` of ``config.num_workers`` ranks whose run folder is ``storage_path/name``."""
    use_gpu = config.device != "cpu" and torch.cuda.is_available()
    cpus = max(1, config.num_threads)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.to_dict(), "run_dir": str(storage_path / name), "echo": echo},
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.num_workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus, "GPU": 1} if use_gpu else {"CPU": cpus},
        ),
        run_config=ray.train.RunConfig(
            name=name,  # stable: a retried or restored run resumes from its own checkpoint
            storage_path=str(storage_path),
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


DDP_RUN_NAME = "ray_train"


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
    result = torch_trainer(config, out, name, echo=on_report).fit()
    if result.error is not None:
        raise result.error
    return dict(result.metrics or {})


def make_trainable(train_storage: str | Path) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: one trial = one ``train`` run (in-process or DDP).

    ``train_storage`` is a stable folder (inside the experiment) for the trials' Train runs,
    so that a restored trial finds its ``train-<trial id>`` run again and resumes it.
    """
    storage = Path(train_storage)

    def ucc_trial(trial_config: dict[str, Any]) -> None:
        config = Config.from_dict(trial_config)
        if config.num_workers == 0:
            train(config, TuneSession())
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
