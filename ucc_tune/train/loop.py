"""``train(config, session)``: the one training loop, with or without Ray, and its epoch.

``train`` trains the ``config.seeds`` seeds of a configuration in lockstep and reports every epoch
through the session: one epoch of each seed in turn (each on its own random generators), then one
report, the seed's own row for a run of one seed, else the mean of the seeds' rows, with one
checkpoint of every seed when one is due. A run of one seed is that same loop with one seed,
whose files and checkpoint are the run's; ``ucc_tune.train.seeds`` says how several are kept.

Phases of a seed's epoch: ``steps_per_epoch`` optimisation steps on freshly sampled bags; the UCC
accuracy and loss on fixed validation bags; every ``eval_every`` epochs (and at the last) the
clustering of the validation features and the class-wise JS divergences; at the last epoch the
test split too. Every report carries every metric of ``ucc_tune.schema.METRIC_NAMES``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ucc_tune import feature_scores
from ucc_tune.config import Config
from ucc_tune.data.augment import augment
from ucc_tune.data.bags import BagBatch, BagStream, eval_bags, iterate_bags
from ucc_tune.data.loading import Data, load_data
from ucc_tune.losses import LOSS_TERMS, LossTerms, instance_loss, total_loss
from ucc_tune.models import InstanceOutput, Model, UCCOutput, build
from ucc_tune.models.feature_init import calibrate
from ucc_tune.schema import BEST_EPOCH, BEST_VALUE, TESTED_EPOCH, evaluated
from ucc_tune.train.artifacts import write_artifacts
from ucc_tune.train.checkpoint import load_checkpoint, rng_state, sampler_states, save_checkpoint
from ucc_tune.train.failures import FeatureCollapseError, NonFiniteLossError
from ucc_tune.train.run import Run, unwrap
from ucc_tune.train.schedule import set_learning_rate
from ucc_tune.train.scoring import cluster_eval, eval_metrics, test_metrics
from ucc_tune.train.seeds import COLLAPSED, Member, SeedSession, aggregate, own_rng, seed_part
from ucc_tune.train.session import Session
from ucc_tune.train.stopping import BestSoFar

CALIBRATION_IMAGES = 512  # training images the feature layer is calibrated on (feature_init="data")


def raise_if_collapsed(run: Run, summary: dict[str, Any], epoch: int) -> None:
    """``FeatureCollapseError`` when the clustering ``summary`` of ``epoch`` shows collapsed features."""
    reason = feature_scores.collapse(summary["features"], float(summary["js"]["js_max"]))
    if reason is not None:
        raise FeatureCollapseError(epoch, reason, run.config.lr)


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


def setup(config: Config, session: Session, data: Data | None = None) -> Run:
    """Seed, device, data (resident on the device), model, optimizer, bag stream; resume if
    possible. ``data`` replaces ``load_data(config)`` (benchmarks feed random tensors)."""
    seed_everything(config.seed + 1000 * session.rank)
    torch.set_num_threads(cpu_threads(config))
    device = session.device(config.device)
    session.start(config.to_dict(), device)
    data = (data or load_data(config)).to(device)
    model: nn.Module = build(config, data.image_shape, data.num_classes).to(device)
    if config.feature_init == "data":  # before a checkpoint replaces the weights
        sample = data.images["train"][torch.randperm(len(data.images["train"]))[:CALIBRATION_IMAGES]]
        calibrate(unwrap(model).encoder, sample, config.feature_init_std)
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
        data.labels["val"],
        data.num_classes,
        config.bag_size,
        config.ucc_min,
        config.ucc_max,
        config.eval_bags_per_label,
        seed=config.seed,
    )
    run = Run(config, session, device, data, model, optimizer, scaler, stream, val_bags, amp_dtype)
    run.best = BestSoFar(config.best_metric)
    if config.supervision == "instance":  # every instance's class, looked up on the device
        run.labels = {split: torch.as_tensor(y, device=device) for split, y in data.labels.items()}
    checkpoint = session.latest_checkpoint()
    if checkpoint is not None:
        load_checkpoint(run, Path(checkpoint))
    session.resume_after(run.start_epoch - 1)
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
        set_learning_rate(run.optimizer, c, epoch * c.steps_per_epoch + step)
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
        terms = _loss(run, outputs, batch._replace(x=x), "train")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(terms.total).backward()
    if c.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), c.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return torch.stack([getattr(terms, t).detach().float() for t in LOSS_TERMS])


def _loss(run: Run, outputs: UCCOutput | InstanceOutput, batch: BagBatch, split: str) -> LossTerms:
    """The UCC loss of bags, or the supervised baseline's cross-entropy of their instances."""
    if isinstance(outputs, InstanceOutput):
        return instance_loss(outputs.logits, run.labels[split][batch.ids.reshape(-1)])
    return total_loss(run.config, outputs, batch)


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
    """UCC accuracy and total loss on the fixed validation bags (the supervised baseline: NaN
    accuracy, it has no UCC head, and the cross-entropy of the bags' instances)."""
    model = run.model_core
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    for batch in iterate_bags(run.data.images["val"], run.val_bags, run.config.bags_per_batch):
        with _autocast(run):
            outputs = model(batch.x)
            terms = _loss(run, outputs, batch, "val")
        if isinstance(outputs, UCCOutput):
            correct += int((outputs.ucc_logits.argmax(1) == batch.ucc).sum())
        loss_sum += float(terms.total) * len(batch.ucc)
        count += len(batch.ucc)
    model.train()
    accuracy = correct / count if run.config.supervision == "ucc" else math.nan
    return {"val_ucc_acc": accuracy, "val_loss": loss_sum / count}


def _weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train(config: Config, session: Session) -> dict[str, Any]:
    """Train ``config`` on its ``seeds`` seeds and report every epoch through ``session``; returns
    the last report. A checkpoint of every seed goes with the report of the last epoch (planned,
    or the one that exhausts ``patience``), of every ``checkpoint_every``-th and of a new best
    epoch (a run of one seed; several seeds' best epochs are each their own)."""
    members = _start_seeds(config, session)
    metrics: dict[str, Any] = {}
    for epoch in range(members[0].run.start_epoch, config.epochs):
        rows, best = _epoch_of_seeds(members, epoch)
        metrics = aggregate(rows)
        stopped = all(m.run.stopped for m in members if m.training)
        due = stopped or best or (epoch + 1) % config.checkpoint_every == 0
        _report(session, members, rows, metrics, epoch, due)
        if stopped:
            break
    return metrics


def _start_seeds(config: Config, session: Session) -> list[Member]:
    """The run's seeds, set up (and resumed) at the same epoch. One seed trains on ``session``
    itself: its files and checkpoint are the run's. Several share the run's device and data and
    each gets a ``SeedSession`` (its own files, its part of the checkpoint)."""
    if config.seeds == 1:
        return [Member(setup(config, session), rng_state())]
    device = session.device(config.device)
    session.start(config.to_dict(), device)
    latest = session.latest_checkpoint()
    data = load_data(config)
    members = []
    for k in range(config.seeds):
        one = dataclasses.replace(config, seed=config.seed + k, seeds=1)
        seed_session = SeedSession(session, k, device, Path(latest) if latest else None)
        members.append(Member(setup(one, seed_session, data), rng_state()))
    start = members[0].run.start_epoch
    if any(m.run.start_epoch != start for m in members):
        raise RuntimeError(f"the seeds' checkpoints in {latest} are of different epochs")
    session.resume_after(start - 1)
    return members


def _epoch_of_seeds(members: list[Member], epoch: int) -> tuple[list[dict[str, Any]], bool]:
    """One epoch of each seed in turn, on its own random generators: the seeds' rows, and whether
    the epoch is the run's new best (only a run of one seed has one)."""
    if not any(m.training for m in members):  # a resumed run whose seeds had all collapsed
        raise FeatureCollapseError(epoch, "every seed's features collapsed", members[0].run.config.lr)
    rows: list[dict[str, Any]] = []
    errors: list[FeatureCollapseError] = []
    best = False
    for member in members:
        with own_rng(member):
            row, improved = _seed_epoch(member, members, epoch, errors)
        rows.append(row)
        best = best or improved
    return rows, best and len(members) == 1


def _seed_epoch(
    member: Member, members: list[Member], epoch: int, errors: list[FeatureCollapseError]
) -> tuple[dict[str, Any], bool]:
    """One seed's epoch: its row and whether it is the seed's new best. A seed that collapses
    (now, ``errors`` collects it, or before) gets the row it collapsed with (``run_epoch`` kept its
    scores); when no seed is left training the run fails at once with the epoch's first collapse
    (one seed: its own)."""
    run = member.run
    if member.training:
        try:
            return run_epoch(run, epoch)
        except FeatureCollapseError as err:
            errors.append(err)
            if not any(m.training for m in members if m is not member):
                raise errors[0] from None
    return _collapsed_row(run, epoch), False


def _collapsed_row(run: Run, epoch: int) -> dict[str, Any]:
    """A collapsed seed's row: the validation and clustering scores it collapsed with (no training
    losses), at the last epoch its test scores."""
    row = {k: v for k, v in run.last_eval.items() if k != COLLAPSED}
    row.update(epoch=epoch, epochs_done=epoch + 1, time_s=run.elapsed(), seeds=1, seeds_collapsed=1)
    if epoch == run.config.epochs - 1 and run.session.rank == 0:
        row.update(test_metrics(cluster_eval(run, "test", run.config.cluster_method_list(test=True))))
    return row


def _report(
    session: Session,
    members: list[Member],
    rows: list[dict[str, Any]],
    metrics: dict[str, Any],
    epoch: int,
    checkpoint: bool,
) -> None:
    """The epoch's reports, and the run's one checkpoint writer: with ``checkpoint``, every seed's
    state is staged in a temporary folder (``seed_part``) that goes with the run's report. Each
    seed of several also reports its row into its own files (one seed's row is the run's report).
    Every rank calls it: a checkpoint gathers the bag streams of all ranks."""
    staged: AbstractContextManager[str | None]
    staged = tempfile.TemporaryDirectory(prefix="ucc-ckpt-") if checkpoint else nullcontext()
    with staged as folder:
        for k, (member, row) in enumerate(zip(members, rows, strict=True)):
            if folder is not None:
                part = seed_part(Path(folder), k, len(members))
                part.mkdir(exist_ok=True)
                with own_rng(member):
                    write_checkpoint(member.run, epoch, part)
            if len(members) > 1:
                member.run.session.report(row)
        session.report(metrics, checkpoint_dir=folder if session.rank == 0 else None)


def run_epoch(run: Run, epoch: int) -> tuple[dict[str, Any], bool]:
    """One epoch of one seed's ``run``: training, validation, the clustering evaluation when due,
    the best epoch so far; at the last epoch (planned, or the one that exhausts ``patience``: then
    ``run.stopped``) the test split and the artifacts. Returns the epoch's row and whether it is
    the seed's new best (the same on every rank)."""
    config, session = run.config, run.session
    # "epoch" counts from 0; "epochs_done" from 1 is ASHA's time attribute, so that a grace
    # period of E means E epochs run before a trial may be stopped
    metrics: dict[str, Any] = {"epoch": epoch, "epochs_done": epoch + 1, **train_epoch(run, epoch)}
    is_last = epoch == config.epochs - 1
    improved = False
    if session.rank == 0:
        val = validate(run)
        metrics.update(val)
        if is_last or (epoch + 1) % config.eval_every == 0 or not run.last_eval:
            summary = cluster_eval(run, "val", config.cluster_method_list())
            scores = eval_metrics(summary, config.cluster_method, epoch)
            try:
                raise_if_collapsed(run, summary, epoch)
            except FeatureCollapseError:  # the scores a seed of several keeps reporting
                run.last_eval = {**val, **scores, COLLAPSED: epoch}
                raise
            run.last_eval = scores
        metrics.update(run.last_eval)
        improved = track_best(run, metrics)
    improved, run.stopped = _from_rank0(run, improved, is_last or run.best.exhausted(config.patience))
    if run.stopped and session.rank == 0:
        metrics.update(final_test(run, epoch))
    metrics["time_s"] = run.elapsed()
    metrics["seeds"] = 1  # a row of one seed; a run of several reports their mean (seeds.aggregate)
    metrics["seeds_collapsed"] = 0
    return metrics, improved


def track_best(run: Run, metrics: dict[str, Any]) -> bool:
    """Count the epoch of ``metrics`` as an evaluation of ``best_metric`` if it measured it (and
    keep the weights of a new best when early stopping is on); add the best so far to
    ``metrics``. True when this epoch is the new best."""
    name, improved = run.config.best_metric, False
    if evaluated(metrics, name):
        improved = run.best.update(float(metrics[name]), int(metrics["epoch"]), run.config.min_delta)
        if improved and run.config.patience > 0:
            run.best_weights = {k: v.detach().clone() for k, v in run.model_core.state_dict().items()}
    if run.best.epoch is not None:
        metrics[BEST_EPOCH], metrics[BEST_VALUE] = run.best.epoch, run.best.value
    return improved


def _from_rank0(run: Run, *flags: bool) -> list[bool]:
    """Rank 0's ``flags`` on every rank (only rank 0 evaluates; all ranks must stop together)."""
    if run.session.world_size == 1:
        return list(flags)
    values = torch.tensor(flags, dtype=torch.int32, device=run.device)
    torch.distributed.broadcast(values, src=0)
    return [bool(v) for v in values.tolist()]


def final_test(run: Run, epoch: int) -> dict[str, Any]:
    """The test split's scores and the run's artifacts, with the best epoch's weights when early
    stopping is on (``patience > 0``), else with the last ones (what a search ranks); the row
    says which epoch's weights (``tested_epoch``)."""
    config = run.config
    best = run.best_weights if config.patience > 0 else None
    with _weights(run.model_core, best):
        test = cluster_eval(run, "test", config.cluster_method_list(test=True))
        with run.session.artifacts() as folder:
            write_artifacts(run, test, folder)
    tested = run.best.epoch if best is not None else epoch
    return {**test_metrics(test), TESTED_EPOCH: tested}


@contextmanager
def _weights(model: Model, weights: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """``model`` with ``weights`` loaded for the block (as it is when None), then as before."""
    if weights is None:
        yield
        return
    current = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(weights)
    try:
        yield
    finally:
        model.load_state_dict(current)


def write_checkpoint(run: Run, epoch: int, folder: Path) -> None:
    """``run``'s state after ``epoch`` into ``folder`` (rank 0 writes; every rank must call it:
    the bag streams are gathered from all ranks)."""
    samplers = sampler_states(run)
    if run.session.rank != 0:
        return
    if not _weights_finite(run.model):
        raise NonFiniteLossError("weights", epoch, run.config.steps_per_epoch - 1, float("nan"))
    save_checkpoint(run, epoch, folder, samplers)
