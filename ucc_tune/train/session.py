"""What ``train`` needs from its surroundings, and the plain local implementation.

A run, wherever it runs, owns one folder with the same files (``ucc_tune.schema``):
``run.json`` (trial id, config, where each rank ran), ``metrics.jsonl`` (one line per epoch),
``artifacts/`` (the final evaluation). ``RunFolder`` writes them into a local folder or any
``Storage`` location; ``LocalSession`` adds ``checkpoints/epoch_NNNN/`` beside them, and
``checkpoints/best/``, the checkpoint of the best epoch so far (never rotated away). The Ray
sessions (an in-process Tune trial, a Ray Train rank) live in ``ucc_tune.ray_adapter``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ucc_tune.checkpoints import newest_complete, run_checkpoints
from ucc_tune.schema import (
    ARTIFACTS_DIR,
    BEST_CHECKPOINT_DIR,
    BEST_EPOCH,
    CHECKPOINTS_DIR,
    METRICS_FILE,
    RUN_FILE,
    epoch_checkpoint,
    metrics_row,
)
from ucc_tune.storage import Storage


class Session(Protocol):
    """What ``train`` needs from its surroundings (local folder, Tune trial, Ray Train rank)."""

    rank: int
    world_size: int

    def device(self, requested: str) -> torch.device:
        """The device this rank trains on for ``Config.device`` (``auto``, ``cpu``, ``cuda``),
        decided here, where the model runs."""
        ...

    def start(self, config: dict[str, Any], device: torch.device) -> None:
        """Record the run's config and where this rank runs (a collective under DDP)."""
        ...

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None: ...

    def latest_checkpoint(self) -> str | None: ...

    def resume_after(self, epoch: int) -> None:
        """The run goes on after ``epoch`` (-1: from the start): its metrics file keeps no line of a
        later epoch, so that no epoch is recorded twice."""
        ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def artifacts(self) -> AbstractContextManager[Path | None]:
        """A local folder to write the final artifacts into; where they end up is the session's
        business (a folder, a trial folder in remote storage); ``None`` skips them."""
        ...


def resolve_device(requested: str) -> torch.device:
    """``auto``: CUDA when this process sees a usable GPU, else the CPU (a GPU that a scheduler
    only declared, with no CUDA behind it, means the CPU); ``cuda`` without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was asked for but torch sees no usable CUDA device in this process "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
            "use device=auto or device=cpu"
        )
    return torch.device(requested)


def placement(rank: int, world_size: int, device: torch.device, **extra: Any) -> dict[str, Any]:
    """Where one rank runs: host, device, visible GPUs; ``extra`` adds what a scheduler gave it."""
    return {
        "rank": rank,
        "world_size": world_size,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "started": time.time(),
        **extra,
    }


class RunFolder:
    """The files of one run in ``location`` (a local folder, a storage URI, or an opened
    ``Storage``, which is used as it is: opening a URI may cost a request)."""

    def __init__(self, location: str | Path | Storage):
        self.storage = location if isinstance(location, Storage) else Storage(location)

    def info(self) -> dict[str, Any]:
        """What ``run.json`` holds (empty before the run has started)."""
        storage = self.storage
        return dict(json.loads(storage.read_text(RUN_FILE))) if storage.exists(RUN_FILE) else {}

    def update_info(self, **values: Any) -> None:
        """Merge ``values`` into ``run.json`` (what the command line wrote there stays)."""
        info = self.info() | values
        self.storage.write_text(json.dumps(info, indent=2, default=str) + "\n", RUN_FILE)

    def append_metrics(self, metrics: dict[str, Any]) -> None:
        self.storage.append_text(json.dumps(metrics) + "\n", METRICS_FILE)

    def drop_metrics_after(self, epoch: int) -> None:
        """Keep the lines of ``metrics.jsonl`` up to ``epoch`` (damaged lines go too)."""
        if not self.storage.exists(METRICS_FILE):
            return
        lines = self.storage.read_text(METRICS_FILE).splitlines(keepends=True)
        rows = [metrics_row(line) for line in lines]
        kept = [
            line for line, row in zip(lines, rows, strict=True) if row is not None and row["epoch"] <= epoch
        ]
        if len(kept) != len(lines):
            self.storage.write_text("".join(kept), METRICS_FILE)

    def artifacts(self) -> AbstractContextManager[Path | None]:
        return self.storage.staged(ARTIFACTS_DIR)


class WritesRunFiles:
    """What a session that owns a ``RunFolder`` (``folder``; ``None`` on ranks that write
    nothing) does the same way everywhere: artifacts and the metrics of a resumed run."""

    folder: RunFolder | None

    def resume_after(self, epoch: int) -> None:
        if self.folder is not None:
            self.folder.drop_metrics_after(epoch)

    def artifacts(self) -> AbstractContextManager[Path | None]:
        return self.folder.artifacts() if self.folder is not None else nullcontext()


@dataclass
class LocalSession(WritesRunFiles):
    """Runs in this process: ``run.json``, ``metrics.jsonl``, ``checkpoints/epoch_NNNN/`` and
    ``artifacts/`` in ``out_dir``.

    With ``resume=True`` the newest complete checkpoint in ``out_dir`` is continued from.
    ``on_report`` (e.g. a progress printer) sees every reported dict.
    """

    out_dir: Path
    resume: bool = False
    keep: int = 2
    on_report: Callable[[dict[str, Any]], None] | None = None
    rank: int = 0
    world_size: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    folder: RunFolder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.folder = RunFolder(self.out_dir)
        self._resume_from: Path | None = None
        if self.resume:  # the newest checkpoint whose state files read back; damaged ones are named
            newest = newest_complete(run_checkpoints(self.out_dir))
            for skipped in newest.skipped:
                warnings.warn(f"{skipped}; trying the checkpoint before it", stacklevel=3)
            self._resume_from = newest.folder

    @property
    def checkpoint_root(self) -> Path:
        return self.out_dir / CHECKPOINTS_DIR

    def device(self, requested: str) -> torch.device:
        return resolve_device(requested)

    def start(self, config: dict[str, Any], device: torch.device) -> None:
        self.folder.update_info(config=config, placement=[placement(0, 1, device)])

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if checkpoint_dir is not None:
            self._install(checkpoint_dir, epoch_checkpoint(int(metrics["epoch"])))
            for old in run_checkpoints(self.out_dir)[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
            if metrics.get(BEST_EPOCH) == metrics["epoch"]:  # this epoch is the new best
                self._install(checkpoint_dir, BEST_CHECKPOINT_DIR)
        self.folder.append_metrics(metrics)
        self.history.append(metrics)
        if self.on_report is not None:
            self.on_report(metrics)

    def _install(self, checkpoint_dir: str, name: str) -> None:
        """A copy of ``checkpoint_dir`` as ``checkpoints/<name>``, atomically: a folder is complete
        or absent (an older one of that name stays until the new one is whole)."""
        tmp = self.checkpoint_root / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(checkpoint_dir, tmp)
        old = self.checkpoint_root / f".old-{name}"
        shutil.rmtree(old, ignore_errors=True)
        if (self.checkpoint_root / name).exists():
            os.replace(self.checkpoint_root / name, old)
        os.replace(tmp, self.checkpoint_root / name)
        shutil.rmtree(old, ignore_errors=True)

    def latest_checkpoint(self) -> str | None:
        return str(self._resume_from) if self._resume_from else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model
