"""``train(config, session)``: the one training loop, with or without Ray.

The same function runs in a test, a notebook, an in-process Tune trial and every rank of a Ray
Train (DDP) job; ``session`` is what differs (report metrics and checkpoints, give back the
latest checkpoint, wrap the model for distribution). ``LocalSession`` here writes
``metrics.jsonl`` and checkpoints into a folder; the Ray sessions live in ``ucc_tune.tune``.

Phases of an epoch: ``steps_per_epoch`` optimisation steps on freshly sampled bags; the UCC
accuracy and loss on fixed validation bags; every ``eval_every`` epochs (and at the last) the
clustering of the validation features and the class-wise JS divergences; at the last epoch the
test split too. Every report carries every metric of ``METRIC_NAMES``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from ucc_tune import evaluation
from ucc_tune.config import Config
from ucc_tune.data import Data, load_data
from ucc_tune.data.augment import augment
from ucc_tune.data.bags import BagBatch, BagStream, eval_bags, iterate_bags
from ucc_tune.losses import total_loss
from ucc_tune.models import UCCModel, build_model

METRIC_NAMES = (
    "epoch",
    "train_loss",
    "train_ucc_loss",
    "train_recon_loss",
    "train_rcc_loss",
    "train_consistency_loss",
    "val_ucc_acc",
    "val_loss",
    "cluster_acc",
    "cluster_nmi",
    "cluster_ari",
    "js_min",
    "js_mean",
    "cluster_eval_epoch",
    "time_s",
    "instances_per_s",
)


def metric_direction(name: str) -> str:
    """Whether smaller (losses, time) or larger (accuracies, JS, speed) values are better."""
    return "min" if "loss" in name or name == "time_s" else "max"


def last_and_best(history: Any, names: Iterable[str]) -> dict[str, float]:
    """``last_<name>`` and ``best_<name>`` (by ``metric_direction``) of each metric over a
    trial's reported rows (a DataFrame); NaN where a metric was never reported. One definition
    for ``trials.parquet`` of the search and of ``python -m analysis``."""
    import pandas as pd

    out: dict[str, float] = {}
    for name in names:
        column = history[name] if name in history else pd.Series(dtype="float64")
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        out[f"last_{name}"] = float(values.iloc[-1]) if len(values) else math.nan
        best = values.min() if metric_direction(name) == "min" else values.max()
        out[f"best_{name}"] = float(best) if len(values) else math.nan
    return out


LOSS_TERMS = ("total", "ucc", "recon", "rcc", "consistency")
STATE_FILE = "state.pt"
DDP_RUN_NAME = "ray_train"  # a --workers run's Ray Train folder inside --out


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; says which term, at which epoch and step."""

    def __init__(self, term: str, epoch: int, step: int, value: float):
        self.term, self.epoch, self.step, self.value = term, epoch, step, value
        super().__init__(
            f"non-finite {term} loss ({value}) at epoch {epoch}, step {step}; "
            "no checkpoint was written for this epoch (try a lower lr or grad_clip)"
        )


class Session(Protocol):
    """What ``train`` needs from its surroundings (local folder, Tune trial, Ray Train rank)."""

    rank: int
    world_size: int

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None: ...

    def latest_checkpoint(self) -> str | None: ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def artifacts(self) -> AbstractContextManager[Path | None]:
        """A local folder to write the final artifacts into; where they end up is the session's
        business (a folder, a trial folder in remote storage); ``None`` skips them."""
        ...


# --- the local session ---------------------------------------------------------------------


@dataclass
class LocalSession:
    """Runs in this process: ``metrics.jsonl``, ``checkpoints/epoch_NNNN/`` and ``artifacts/``.

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

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint_root(self) -> Path:
        return self.out_dir / "checkpoints"

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if checkpoint_dir is not None:
            name = f"epoch_{int(metrics['epoch']):04d}"
            tmp = self.checkpoint_root / f".tmp-{name}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(checkpoint_dir, tmp)
            shutil.rmtree(self.checkpoint_root / name, ignore_errors=True)
            os.replace(tmp, self.checkpoint_root / name)  # atomic: a folder is complete or absent
            for old in self._checkpoints()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        with open(self.out_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        self.history.append(metrics)
        if self.on_report is not None:
            self.on_report(metrics)

    def _checkpoints(self) -> list[Path]:
        if not self.checkpoint_root.exists():
            return []
        return sorted(p for p in self.checkpoint_root.glob("epoch_*") if (p / STATE_FILE).exists())

    def latest_checkpoint(self) -> str | None:
        found = self._checkpoints() if self.resume else []
        return str(found[-1]) if found else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def artifacts(self) -> AbstractContextManager[Path | None]:
        return nullcontext(self.out_dir / "artifacts")


# --- helpers ----------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was asked for but torch sees no CUDA device; use device=auto or cpu"
        )
    return torch.device(name)


def cpu_threads(config: Config) -> int:
    """Threads for torch: the config's, else the CPUs given to this process (Ray sets OMP)."""
    if config.num_threads:
        return config.num_threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(config: Config, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; None (no autocast) off CUDA or without amp."""
    if not config.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def unwrap(model: nn.Module) -> UCCModel:
    inner = getattr(model, "module", model)  # DDP
    inner = getattr(inner, "_orig_mod", inner)  # torch.compile
    assert isinstance(inner, UCCModel)
    return inner


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


# --- the loop ------------------------------------------------------------------------------


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


def setup(config: Config, session: Session, data: Data | None = None) -> Run:
    """Seed, data (resident on the device), model, optimizer, bag stream; resume if possible.

    ``data`` replaces ``load_data(config)`` (benchmarks feed random MNIST-shaped tensors).
    """
    seed_everything(config.seed + 1000 * session.rank)
    torch.set_num_threads(cpu_threads(config))
    device = getattr(session, "device", None) or resolve_device(config.device)
    data = (data or load_data(config)).to(device)
    model: nn.Module = build_model(config, data.image_shape, data.num_classes).to(device)
    if config.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        unwrap(model).channels_last = True  # inputs follow in UCCModel.forward
    model = session.prepare_model(model)
    if config.compile:
        example = data.images["train"][: config.bag_size].unsqueeze(0)  # one bag (1, n, C, H, W)
        model = try_compile(model, example)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype = autocast_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    stream = BagStream(data.images["train"], data.labels["train"], data.num_classes, config, session.rank)
    val_bags = eval_bags(
        data.labels["val"], data.num_classes, config.bag_size, config.ucc_min, config.ucc_max,
        config.eval_bags_per_label, seed=config.seed,
    )  # fmt: skip
    run = Run(config, session, device, data, model, optimizer, scaler, stream, val_bags, amp_dtype)
    checkpoint = session.latest_checkpoint()
    if checkpoint is not None:
        load_checkpoint(run, Path(checkpoint))
    return run


def try_compile(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``torch.compile`` the model and run one bag through it; on any failure (no compiler,
    unsupported platform; compile errors surface at the first call) warn and stay eager."""
    try:
        compiled = torch.compile(model)
        with torch.no_grad():
            compiled(example)
        return compiled  # type: ignore[return-value]
    except Exception as err:  # compile is an optional speed-up, never a reason to fail a run
        warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); running eagerly", stacklevel=2)
        return model


def train_epoch(run: Run, epoch: int) -> dict[str, float]:
    """``steps_per_epoch`` steps; loss sums stay on the device until the end of the epoch."""
    c = run.config
    run.model.train()
    sums = torch.zeros(len(LOSS_TERMS), device=run.device)
    first_bad = torch.full((), -1, dtype=torch.long, device=run.device)
    bad_values = torch.zeros(len(LOSS_TERMS), device=run.device)
    batches = iter(run.stream)
    start = time.perf_counter()
    for step in range(c.steps_per_epoch):
        values = train_step(run, next(batches))
        finite = torch.isfinite(values).all()
        newly_bad = ~finite & (first_bad < 0)
        bad_values = torch.where(newly_bad, values, bad_values)
        first_bad = torch.where(newly_bad, torch.full_like(first_bad, step), first_bad)
        sums += torch.where(finite, values, torch.zeros_like(values))
    _raise_if_non_finite(epoch, int(first_bad.item()), bad_values)  # the epoch's one sync point
    if run.session.world_size > 1:
        torch.distributed.all_reduce(sums)
        sums /= run.session.world_size
    elapsed = time.perf_counter() - start
    means = (sums / c.steps_per_epoch).tolist()
    names = ["train_loss" if t == "total" else f"train_{t}_loss" for t in LOSS_TERMS]
    metrics = dict(zip(names, means, strict=True))
    metrics["instances_per_s"] = c.steps_per_epoch * c.bags_per_batch * c.bag_size / elapsed
    return metrics


def train_step(run: Run, batch: BagBatch) -> torch.Tensor:
    """One optimisation step on ``batch``; returns the detached loss terms (no host sync)."""
    c = run.config
    x = augment(batch.x, c.augment_flip, c.augment_rot90, c.augment_max_angle)
    with _autocast(run):
        outputs = run.model(x)
        terms = total_loss(c, outputs, batch._replace(x=x))
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(terms.total).backward()
    if c.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), c.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return torch.stack([getattr(terms, t).detach().float() for t in LOSS_TERMS])


def _raise_if_non_finite(epoch: int, bad_step: int, bad_values: torch.Tensor) -> None:
    """Name the first non-finite component term (the total only if every component is finite)."""
    if bad_step < 0:
        return
    values = bad_values.tolist()
    order = [*range(1, len(LOSS_TERMS)), 0]
    index = next((i for i in order if not math.isfinite(values[i])), 0)
    raise NonFiniteLossError(LOSS_TERMS[index], epoch, bad_step, values[index])


def _autocast(run: Run) -> Any:
    if run.amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=run.device.type, dtype=run.amp_dtype)


@torch.no_grad()
def validate(run: Run) -> dict[str, float]:
    """UCC accuracy and total loss on the fixed validation bags."""
    model = unwrap(run.model)
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    for batch in iterate_bags(run.data.images["val"], run.val_bags, run.config.bags_per_batch):
        with _autocast(run):
            outputs = model(batch.x)
            terms = total_loss(run.config, outputs, batch)
        correct += int((outputs.ucc_logits.argmax(1) == batch.ucc).sum())
        loss_sum += float(terms.total) * len(batch.ucc)
        count += len(batch.ucc)
    model.train()
    return {"val_ucc_acc": correct / count, "val_loss": loss_sum / count}


def cluster_eval(run: Run, split: str, methods: list[str]) -> dict[str, Any]:
    """Features of every instance of ``split``, clustered, plus class KDEs and JS divergences."""
    model = unwrap(run.model)
    features = evaluation.extract_features(model.encoder, run.data.images[split], run.config.eval_batch_size)
    summary = evaluation.summarize(
        features, run.data.labels[split], methods, run.config.num_bins, run.config.kde_sigma,
        run.data.class_names, seed=run.config.seed,
    )  # fmt: skip
    summary["features"] = features
    return summary


def eval_metrics(summary: dict[str, Any], method: str, epoch: int) -> dict[str, Any]:
    scores = summary["clustering"][method]
    return {
        "cluster_acc": float(scores["acc"]),
        "cluster_nmi": float(scores["nmi"]),
        "cluster_ari": float(scores["ari"]),
        "js_min": float(summary["js"]["js_min"]),
        "js_mean": float(summary["js"]["js_mean"]),
        "cluster_eval_epoch": epoch,
    }


def test_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Final test-split scores named by method: ``test_kmeans_acc``, ``test_spectral_nmi``, ..."""
    out = {
        f"test_{m}_{k}": float(v) for m, scores in summary["clustering"].items() for k, v in scores.items()
    }
    out.update({f"test_{k}": float(v) for k, v in summary["js"].items() if k != "closest_pair"})
    return out


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
        "model": unwrap(run.model).state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "config": run.config.to_dict(),
        "samplers": samplers,  # one per rank: each rank continues its own bag stream
        "rng": rng_state(),
        "last_eval": run.last_eval,
    }
    torch.save(state, folder / STATE_FILE)
    run.config.to_json(folder / "config.json")


def load_checkpoint(run: Run, folder: Path) -> None:
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    unwrap(run.model).load_state_dict(state["model"])
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
            run.data.images["train"], run.data.labels["train"], run.data.num_classes,
            run.config, run.session.rank, epoch_seed=int(state["epoch"]) + 1,
        )  # fmt: skip
    set_rng_state(state["rng"])
    run.last_eval = dict(state["last_eval"])
    run.start_epoch = int(state["epoch"]) + 1


def _weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train(config: Config, session: Session) -> dict[str, Any]:
    """Train ``config`` and report every epoch through ``session``; returns the final metrics."""
    run = setup(config, session)
    metrics: dict[str, Any] = {}
    started = time.perf_counter()
    for epoch in range(run.start_epoch, config.epochs):
        # "epoch" counts from 0; "epochs_done" from 1 is ASHA's time attribute, so that a grace
        # period of E means E epochs run before a trial may be stopped
        metrics = {"epoch": epoch, "epochs_done": epoch + 1, **train_epoch(run, epoch)}
        is_last = epoch == config.epochs - 1
        if session.rank == 0:
            metrics.update(validate(run))
            if is_last or (epoch + 1) % config.eval_every == 0 or not run.last_eval:
                summary = cluster_eval(run, "val", config.cluster_method_list())
                run.last_eval = eval_metrics(summary, config.cluster_method_list()[0], epoch)
            metrics.update(run.last_eval)
            if is_last:
                test = cluster_eval(run, "test", config.cluster_method_list(test=True))
                metrics.update(test_metrics(test))
                with session.artifacts() as folder:
                    write_artifacts(run, test, folder)
        metrics["time_s"] = time.perf_counter() - started
        _report(run, metrics, epoch, checkpoint=is_last or (epoch + 1) % config.checkpoint_every == 0)
    return metrics


def _report(run: Run, metrics: dict[str, Any], epoch: int, checkpoint: bool) -> None:
    samplers = sampler_states(run) if checkpoint else []
    if not checkpoint or run.session.rank != 0:
        run.session.report(metrics)
        return
    if not _weights_finite(run.model):
        raise NonFiniteLossError("weights", epoch, run.config.steps_per_epoch - 1, float("nan"))
    with tempfile.TemporaryDirectory(prefix="ucc-ckpt-") as folder:
        save_checkpoint(run, epoch, Path(folder), samplers)
        run.session.report(metrics, checkpoint_dir=folder)


# --- artifacts ---------------------------------------------------------------------------------


def write_artifacts(run: Run, test: dict[str, Any], folder: Path | None) -> None:
    """JS matrix + class KDEs, test features with labels and clusters, reconstructions, config."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    names = np.array(run.data.class_names)
    np.savez(
        folder / "js.npz",
        js_matrix=test["js_matrix"],
        class_distributions=test["distributions"],
        classes=test["classes"],
        class_names=names[test["classes"]],
    )
    assignments = {f"clusters_{m}": pred for m, pred in test["assignments"].items()}
    np.savez(
        folder / "test_features.npz",
        features=test["features"],
        labels=run.data.labels["test"],
        class_names=names,
        **assignments,
    )
    run.config.to_json(folder / "config.json")
    model = unwrap(run.model)
    if model.decoder is not None:
        save_reconstructions(model, run.data.images["test"][:16], folder / "reconstructions.png")


@torch.no_grad()
def save_reconstructions(model: UCCModel, images: torch.Tensor, path: Path) -> None:
    """A two-row PNG grid: inputs on top, their reconstructions below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert model.decoder is not None
    was_training = model.training
    model.eval()
    recon = model.decoder(model.encoder(images)).float().cpu()
    model.train(was_training)
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 1.8), squeeze=False)
    for i in range(n):
        for row, tensor in enumerate((images.float().cpu(), recon)):
            img = tensor[i].permute(1, 2, 0).numpy()
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
            axes[row][i].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
            axes[row][i].axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    from ucc_tune.cli import train_main

    raise SystemExit(train_main())
