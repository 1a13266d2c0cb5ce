"""The sessions ``train`` runs with under Ray: ``TuneSession`` in an in-process Tune trial,
``RayTrainSession`` on every rank of a ``TorchTrainer`` (DDP: ``ray.train.report`` is a barrier),
and ``train_loop_per_worker``, what each rank runs. A trial's own folder gets ``run.json``,
``metrics.jsonl`` and ``artifacts/`` straight in the experiment's storage: Tune syncs only the
driver node's folders, and never a reused actor's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.tune
import torch
from torch import nn

from ucc_tune.checkpoints import newest_complete, tune_checkpoints
from ucc_tune.config import Config
from ucc_tune.ray_adapter.callbacks import quiet_trial_logs
from ucc_tune.train import RunFolder, placement, resolve_device, train
from ucc_tune.train.session import WritesRunFiles


def _ray_placement(rank: int, world_size: int, device: torch.device) -> dict[str, Any]:
    context = ray.get_runtime_context()
    return placement(
        rank,
        world_size,
        device,
        node_id=context.get_node_id(),
        gpu_ids=[str(g) for g in ray.get_gpu_ids()],
        resources=context.get_assigned_resources(),
    )


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
            newest = newest_complete(tune_checkpoints(Path(self.folder.storage.root))).folder
            if newest is not None and newest.name > known:
                return str(newest)
        return checkpoint.to_directory() if checkpoint is not None else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model


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
