"""Seeds as an axis: the bookkeeping ``loop.train`` keeps for the seeds of a run (no driver here).

A configuration's result is a distribution over seeds, so a run of ``seeds = N`` trains the seeds
``seed, seed + 1, ..., seed + N - 1`` (they differ in model initialisation, bag sampling and
augmentation; the data split, ``split_seed``, is the same for all) in lockstep: one epoch of each
seed in turn, then **one report of the mean over the seeds** of every metric, with ``seeds = N``
(``aggregate``). A scheduler or a searcher behind the session sees only that aggregate, never one
seed's value. A run of one seed reports that seed's rows as they are.

Why the mean and not the median: the question a search answers is which configuration does best
*on average over seeds*, the quantity the comparison across seeds (``ucc_tune.search.ranking``) is
about; with the few seeds a search can afford (3-5) the median is one seed's value and has more
variance than the mean for the near-Gaussian seed noise of a cluster accuracy.

A seed whose features collapse (``FeatureCollapseError``: at ``lr=1e-3`` on ``digits`` about one
seed in four dies in its first epoch, whatever ``alpha``) stops training and keeps the scores it
collapsed with (``COLLAPSED`` marks them), so the mean counts it as the failure it is
(``seeds_collapsed`` says how many); it is scored on the test split at the end like the others.
Only when no seed is left training does the run fail, with the epoch's first collapse: a run of
one seed fails with its own. A non-finite loss of any seed fails the run.

Files: a run of one seed keeps its files and its checkpoint's ``state.pt`` where the run's are.
With several, each seed keeps its own ``seeds/seed_<k>/`` (``SeedSession``: ``run.json``, its
``metrics.jsonl`` curve, and for ``k > 0`` its final ``artifacts/``; the run's own ``artifacts/``
are seed 0's), and one checkpoint holds every seed's state in ``seed_<k>/`` folders
(``seed_part``), so a resumed run continues all seeds from the same epoch. Every seed's random
generators are its own (``own_rng``): a seed trains as it would alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ucc_tune.schema import BEST_EPOCH, BEST_VALUE, SEEDS_DIR, TESTED_EPOCH, seed_name
from ucc_tune.train.checkpoint import rng_state, set_rng_state
from ucc_tune.train.run import Run
from ucc_tune.train.session import RunFolder, Session, WritesRunFiles

# identical in every seed's row; every other metric is averaged over the seeds
SHARED_KEYS = ("epoch", "epochs_done", "cluster_eval_epoch")
OWN_KEYS = (BEST_EPOCH, BEST_VALUE, TESTED_EPOCH)  # each seed's own, in its own rows only
COLLAPSED = "collapsed_epoch"  # in a collapsed seed's ``last_eval`` (kept by its checkpoints)


class SeedSession(WritesRunFiles):
    """One seed's view of the run's session in a run of several seeds: the run's device and model
    wrapping, its own folder ``seeds/seed_<k>`` (none on ranks that write nothing) and its part of
    the run's checkpoint."""

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


def seed_part(folder: Path, index: int, seeds: int) -> Path:
    """Where seed ``index`` of a run of ``seeds`` keeps its part of a checkpoint ``folder``:
    ``seed_<k>/`` in it when there are several; the folder itself for one seed, so that a run of
    one seed writes and resumes the checkpoints it always did."""
    return folder / seed_name(index) if seeds > 1 else folder


@dataclasses.dataclass
class Member:
    """One seed of the run and the state of its random generators between its epochs."""

    run: Run
    rng: dict[str, Any]

    @property
    def training(self) -> bool:
        """False once the seed's features collapsed (it then only repeats its scores)."""
        return COLLAPSED not in self.run.last_eval


@contextmanager
def own_rng(member: Member) -> Iterator[None]:
    """Run the block on ``member``'s random generators, and keep where they got to."""
    set_rng_state(member.rng)
    try:
        yield
    finally:
        member.rng = rng_state()


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's report of an epoch from its seeds' rows. One seed: its row as it is (its best
    epoch is the run's). Several: the mean of every metric over the seeds that report it (a
    collapsed seed reports no training losses), ``SHARED_KEYS`` as they are, ``time_s`` the
    longest, ``seeds`` and ``seeds_collapsed``."""
    if len(rows) == 1:
        return rows[0]
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
