"""``Run``: everything one training run holds, built once by ``loop.setup``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ucc_tune.config import Config
from ucc_tune.data.bags import BagStream
from ucc_tune.data.loading import Data
from ucc_tune.models import InstanceClassifier, Model, UCCModel
from ucc_tune.train.session import Session
from ucc_tune.train.stopping import BestSoFar


def unwrap(model: nn.Module) -> Model:
    inner = getattr(model, "module", model)  # DDP
    inner = getattr(inner, "_orig_mod", inner)  # torch.compile
    assert isinstance(inner, (UCCModel, InstanceClassifier))
    return inner


@dataclass
class Run:
    """Everything one training run holds; built once by ``setup``."""

    config: Config
    session: Session
    device: torch.device
    data: Data
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    stream: BagStream
    val_bags: Any
    amp_dtype: torch.dtype | None
    start_epoch: int = 0
    last_eval: dict[str, Any] = field(default_factory=dict)
    time_before: float = 0.0  # training time of the runs this one resumed
    best: BestSoFar = field(default_factory=lambda: BestSoFar("cluster_acc"))  # setup: best_metric
    best_weights: dict[str, torch.Tensor] | None = None  # the best epoch's weights, with patience > 0
    labels: dict[str, torch.Tensor] = field(default_factory=dict)  # per split; supervised baseline
    stopped: bool = False  # the last epoch ran (planned, or patience exhausted)
    started: float = field(default_factory=time.perf_counter)

    @property
    def model_core(self) -> Model:
        """The ``UCCModel`` or ``InstanceClassifier`` inside any DDP or ``torch.compile`` wrapper."""
        return unwrap(self.model)

    def elapsed(self) -> float:
        """Training time of the run so far, resumed runs included."""
        return self.time_before + time.perf_counter() - self.started
