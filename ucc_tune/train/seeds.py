"""``train(config, session)``: a configuration trained on ``config.seeds`` seeds, reported as one.

A configuration's result is a distribution over seeds, so a run of ``seeds = N`` trains the seeds
``seed, seed + 1, ..., seed + N - 1`` (they differ in model initialisation, bag sampling and
augmentation; the data split, ``split_seed``, is the same for all) in lockstep: one epoch of each
seed in turn, then **one report of the mean over the seeds** of every metric, with ``seeds = N``.
A scheduler or a searcher behind the session sees only that aggregate, never one seed's value.

Why the mean and not the median: the question a search answers is which configuration does best
*on average over seeds*, the quantity the comparison across seeds (``ucc_tune.search.ranking``) is
about; with the few seeds a search can afford (3-5) the median is one seed's value and has more
variance than the mean for the near-Gaussian seed noise of a cluster accuracy.

A seed whose features collapse (``FeatureCollapseError``: at ``lr=1e-3`` on ``digits`` about one
seed in four dies in its first epoch, whatever ``alpha``) stops training and keeps the scores it
collapsed with, so the mean counts it as the failure it is (``seeds_collapsed`` says how many);
it is scored on the test split at the end like the others. Only when every seed collapsed does
the run fail with the first seed's error. A non-finite loss of any seed fails the run.

Files: each seed keeps its own ``seeds/seed_<k>/`` (``run.json``, its ``metrics.jsonl`` curve, and
for ``k > 0`` its final ``artifacts/``; the run's own ``artifacts/`` are seed 0's). One checkpoint
holds every seed's state in ``seed_<k>/`` folders, so a resumed run continues all seeds from the
same epoch. Every seed's random generators are its own: a seed trains as it would alone.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ucc_tune.config import Config
from ucc_tune.data.loading import load_data
from ucc_tune.schema import BEST_EPOCH, BEST_VALUE, SEEDS_DIR, TESTED_EPOCH, seed_name
from ucc_tune.train.checkpoint import rng_state, set_rng_state
from ucc_tune.train.loop import (
    FeatureCollapseError,
    cluster_eval,
    eval_metrics,
    run_epoch,
    setup,
    test_metrics,
    train_run,
    validate,
    write_checkpoint,
)
from ucc_tune.train.run import Run
from ucc_tune.train.session import RunFolder, Session, WritesRunFiles

# identical in every seed's row; every other metric is averaged over the seeds
SHARED_KEYS = ("epoch", "epochs_done", "cluster_eval_epoch")
OWN_KEYS = (BEST_EPOCH, BEST_VALUE, TESTED_EPOCH)  # each seed's own, in its own rows only
COLLAPSED = "collapsed_epoch"  # in a collapsed seed's ``last_eval`` (kept by its checkpoints)


class SeedSession(WritesRunFiles):
    """One seed's view of the run's session: the run's device and model wrapping, its own folder
    ``seeds/seed_<k>`` (none on ranks that write nothing) and its part of the run's checkpoint."""

    def __init__(self, parent: Session, index: int, device: torch.device, checkpoint: Path | None):
        self.parent, self.index, self._device = parent, index, device
        self.rank, self.world_size = parent.rank, parent.world_size
        folder: RunFolder | None = getattr(parent, "folder", None)
        where = folder.storage.child(SEEDS_DIR, seed_name(index)) if folder is not None else None
        self.folder = RunFolder(where) if where is not None else None
        part = checkpoint / seed_name(index) if checkpoint is not None else None
        self._checkpoint = str(part) if part is not None and part.is_dir() else None

    def device(self, requested: str) -> torch.device:
        return self._device

    def start(self, config: dict[str, Any], device: torch.device) -> None:
        if self.folder is not None:
            self.folder.update_info(config=config, seed_index=self.index)

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        if self.folder is not None:
            self.folder.append_metrics(metrics)

    def latest_checkpoint(self) -> str | None:
        return self._checkpoint

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return self.parent.prepare_model(model)

    def artifacts(self) -> AbstractContextManager[Path | None]:
        if self.index == 0:  # the run's own artifacts/ are the base seed's
            return self.parent.artifacts()
        return self.folder.artifacts() if self.folder is not None else nullcontext()


@dataclasses.dataclass
class Member:
    """One seed of the run and the state of its random generators between its epochs."""

    run: Run
    rng: dict[str, Any]


@contextmanager
def own_rng(member: Member) -> Iterator[None]:
    """Run the block on ``member``'s random generators, and keep where they got to."""
    set_rng_state(member.rng)
    try:
        yield
    finally:
        member.rng = rng_state()


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's report of an epoch from its seeds' rows: the mean of every metric over the seeds
    that report it (a collapsed seed reports no training losses), ``SHARED_KEYS`` as they are,
    ``time_s`` the longest, ``seeds`` and ``seeds_collapsed``."""
    out: dict[str, Any] = {k: rows[0][k] for k in SHARED_KEYS if k in rows[0]}
    for key in dict.fromkeys(k for r in rows for k in r):
        if key in out or key in ("seeds", "seeds_collapsed", *OWN_KEYS):
            continue
        values = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = max(values) if key == "time_s" else sum(values) / len(values)
    out["seeds"] = len(rows)
    out["seeds_collapsed"] = sum(int(r.get("seeds_collapsed", 0)) for r in rows)
    return out


def train(config: Config, session: Session) -> dict[str, Any]:
    """Train ``config`` on its ``seeds`` seeds and report every epoch through ``session``; returns
    the final (aggregate) metrics. One seed runs ``train_run`` as it is."""
    if config.seeds == 1:
        return train_run(config, session)
    device = session.device(config.device)
    session.start(config.to_dict(), device)
    latest = session.latest_checkpoint()
    data = load_data(config)
    members = []
    for k in range(config.seeds):
        one = dataclasses.replace(config, seed=config.seed + k, seeds=1)
        seed_session = SeedSession(session, k, device, Path(latest) if latest else None)
        run = setup(one, seed_session, data)
        members.append(Member(run, rng_state()))
    start = min(m.run.start_epoch for m in members)
    if any(m.run.start_epoch != start for m in members):
        raise RuntimeError(f"the seeds' checkpoints in {latest} are of different epochs")
    session.resume_after(start - 1)
    metrics: dict[str, Any] = {}
    for epoch in range(start, config.epochs):
        rows, errors = [], []
        for member in members:
            with own_rng(member):
                row, error = _epoch_or_collapse(member.run, epoch)
            rows.append(row)
            errors.append(error)
        if all(COLLAPSED in m.run.last_eval for m in members):
            raise (
                next(e for e in errors if e is not None)
                if any(errors)
                else FeatureCollapseError(epoch, "every seed's features collapsed", config.lr)
            )
        metrics = aggregate(rows)
        last = epoch == config.epochs - 1
        _report(session, members, rows, metrics, epoch, last or (epoch + 1) % config.checkpoint_every == 0)
    return metrics


def _epoch_or_collapse(run: Run, epoch: int) -> tuple[dict[str, Any], FeatureCollapseError | None]:
    """One epoch of a seed; a seed that collapses (now or before) gets the row it collapsed with
    (validation scores, clustering scores; no training losses), and at the last epoch its test
    scores."""
    error = None
    if COLLAPSED not in run.last_eval:
        try:
            return run_epoch(run, epoch)[0], None
        except FeatureCollapseError as err:
            error = err
            methods = run.config.cluster_method_list()
            summary = cluster_eval(run, "val", methods)
            run.last_eval = {**validate(run), **eval_metrics(summary, methods[0], epoch), COLLAPSED: epoch}
    row = {k: v for k, v in run.last_eval.items() if k != COLLAPSED}
    row.update(epoch=epoch, epochs_done=epoch + 1, time_s=run.elapsed(), seeds=1, seeds_collapsed=1)
    if epoch == run.config.epochs - 1 and run.session.rank == 0:
        row.update(test_metrics(cluster_eval(run, "test", run.config.cluster_method_list(test=True))))
    return row, error


def _report(
    session: Session,
    members: list[Member],
    rows: list[dict[str, Any]],
    metrics: dict[str, Any],
    epoch: int,
    checkpoint: bool,
) -> None:
    """Each seed's row into its own file, then the aggregate (with one checkpoint of all seeds)."""
    if not checkpoint:
        for member, row in zip(members, rows, strict=True):
            member.run.session.report(row)
        session.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="ucc-ckpt-") as folder:
        for k, (member, row) in enumerate(zip(members, rows, strict=True)):
            part = Path(folder) / seed_name(k)
            part.mkdir()
            with own_rng(member):
                write_checkpoint(member.run, epoch, part)
            member.run.session.report(row)
        session.report(metrics, checkpoint_dir=folder if session.rank == 0 else None)
