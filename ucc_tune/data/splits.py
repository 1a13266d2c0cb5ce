"""Deterministic, stratified train/val/test splits of any dataset in ``sources.DATASETS``.

Every class occurs in every split; an official test split is kept as it is, otherwise
``test_fraction`` of every class is held out; ``val_fraction`` of every class of what remains
is the validation split. The split depends on ``split_seed`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ucc_tune.data.sources import DATASETS, RawData


@dataclass(frozen=True)
class Split:
    """One split: ``x`` is ``(N, C, H, W)`` uint8 (float32 for float sources), ``y`` is ``(N,)`` int64."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class DataSplits:
    """The train/val/test splits of one dataset; every class occurs in every split."""

    dataset: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _count(fraction: float, n: int) -> int:
    return int(np.floor(fraction * n + 0.5))  # round half up, not Python's round-half-to-even


def stratified_partition(
    labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> list[np.ndarray]:
    """Split positions ``0..N-1`` of ``labels`` ``(N,)`` into ``len(fractions) + 1`` disjoint parts.

    Within every class of ``n`` members, part ``i`` gets ``round(fractions[i] * n)`` random members
    (capped by what is left) and the last part the rest. Each part is sorted.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for i, fraction in enumerate(fractions):
            stop = min(start + _count(fraction, len(members)), len(members))
            parts[i].append(members[start:stop])
            start = stop
        parts[-1].append(members[start:])
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


def load_splits(
    dataset: str,
    data_dir: str | Path = "data",
    split_seed: int = 0,
    val_fraction: float = 1 / 6,
    test_fraction: float = 0.2,
    download: bool = False,
) -> DataSplits:
    """Read ``dataset`` and split it into train/val/test, stratified per class and fixed by ``split_seed``.

    With an official test split: test is that split (in its order) and val is ``val_fraction`` of
    the official training set. Without: test is ``test_fraction`` and val ``val_fraction`` of
    everything. Counts are rounded per class; the rest is train.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"need 0 < val_fraction, test_fraction and a sum < 1; got {val_fraction}, {test_fraction}"
        )
    raw = DATASETS[dataset](Path(data_dir).expanduser(), download)
    _check_labels(dataset, raw)
    rng = np.random.default_rng(split_seed)
    x, y = raw.x_train, raw.y_train
    if raw.x_test is not None and raw.y_test is not None:
        val_pos, train_pos = stratified_partition(y, (val_fraction,), rng)
        test = Split(np.ascontiguousarray(raw.x_test), raw.y_test)
    else:
        test_pos, val_pos, train_pos = stratified_partition(y, (test_fraction, val_fraction), rng)
        test = Split(x[test_pos], y[test_pos])
    splits = DataSplits(
        dataset, raw.class_names, Split(x[train_pos], y[train_pos]), Split(x[val_pos], y[val_pos]), test
    )
    _check_every_class_present(splits)
    return splits


def _check_labels(dataset: str, raw: RawData) -> None:
    for part, y in (("train", raw.y_train), ("test", raw.y_test)):
        if y is not None and len(y) and (y.min() < 0 or y.max() >= len(raw.class_names)):
            raise ValueError(
                f"dataset {dataset!r}: {part} labels span {y.min()}..{y.max()} but there are "
                f"{len(raw.class_names)} class names"
            )


def _check_every_class_present(splits: DataSplits) -> None:
    for name in ("train", "val", "test"):
        present = np.unique(getattr(splits, name).y)
        missing = sorted(set(range(splits.num_classes)) - set(present.tolist()))
        if missing:
            raise ValueError(
                f"dataset {splits.dataset!r}: the {name} split has no instance of class(es) "
                f"{[splits.class_names[c] for c in missing]}; add data or change val_fraction/test_fraction"
            )
