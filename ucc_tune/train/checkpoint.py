"""Checkpoints that continue a run exactly: weights, optimizer, AMP scaler, every rank's bag
stream, every random generator, the last evaluation, the training time so far and the best
epoch so far (with its weights when early stopping is on)."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ucc_tune.data.bags import BagStream
from ucc_tune.schema import CHECKPOINT_STATE_FILE, CONFIG_FILE
from ucc_tune.train.run import Run


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> tuple[str, torch.Tensor, int, int, float]:
    """numpy's global RNG state with its key as a tensor (``torch.load(weights_only=True)`` safe)."""
    kind, key, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return (
        str(kind),
        torch.from_numpy(np.asarray(key, dtype=np.int64)),
        int(pos),
        int(has_gauss),
        float(gauss),
    )


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def sampler_states(run: Run) -> list[dict[str, Any]]:
    """Every rank's bag-stream state (a collective under DDP: all ranks must call it)."""
    state = run.stream.state_dict()
    if run.session.world_size == 1:
        return [state]
    gathered: list[Any] = [None] * run.session.world_size
    torch.distributed.all_gather_object(gathered, state)
    return gathered


def save_checkpoint(run: Run, epoch: int, folder: Path, samplers: list[dict[str, Any]]) -> None:
    state = {
        "model": run.model_core.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "time_s": run.elapsed(),
        "config": run.config.to_dict(),
        "samplers": samplers,  # one per rank: each rank continues its own bag stream
        "rng": rng_state(),
        "last_eval": run.last_eval,
        "best": run.best.state_dict(),
        "best_weights": run.best_weights,  # None unless patience > 0
    }
    torch.save(state, folder / CHECKPOINT_STATE_FILE)
    run.config.to_json(folder / CONFIG_FILE)


def load_state(folder: Path) -> Any:
    """What a checkpoint folder's ``state.pt`` holds (``save_checkpoint``'s dict), on the CPU: the
    one place a checkpoint is read back, to continue a run or to use its model. Tensors and plain
    values only (``weights_only``); the caller checks what it got."""
    return torch.load(folder / CHECKPOINT_STATE_FILE, map_location="cpu", weights_only=True)


def load_checkpoint(run: Run, folder: Path) -> None:
    state = load_state(folder)
    run.model_core.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    samplers = state["samplers"]
    if len(samplers) == run.session.world_size:
        run.stream.load_state_dict(samplers[run.session.rank])
    else:  # another number of ranks: fresh streams, drawn from a seed that moved on with the epoch
        warnings.warn(
            f"checkpoint was written by {len(samplers)} rank(s), this run has {run.session.world_size}; "
            "bag streams restart from new seeds",
            stacklevel=2,
        )
        run.stream = BagStream(
            run.data.images["train"],
            run.data.labels["train"],
            run.data.num_classes,
            run.config,
            run.session.rank,
            epoch_seed=int(state["epoch"]) + 1,
        )
    set_rng_state(state["rng"])
    run.last_eval = dict(state["last_eval"])
    run.start_epoch = int(state["epoch"]) + 1
    if "best" in state:  # checkpoints written before the best epoch was tracked lack it
        run.best.load_state_dict(state["best"])
        run.best_weights = state["best_weights"]
    if run.best.exhausted(run.config.patience):  # the run stopped early there: nothing is left
        run.start_epoch = run.config.epochs
    run.time_before = float(state.get("time_s", 0.0))
