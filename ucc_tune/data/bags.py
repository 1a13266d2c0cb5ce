"""Bags of instances labelled only by how many distinct classes they hold (Oner et al., ICLR 2020).

A bag of ``n`` instances with ucc ``k`` draws a ``k``-subset of the classes, splits the ``n``
instances among them as evenly as possible (the first ``n % k`` classes of the subset get one
more) and takes each class's instances as a uniformly random subset of that class, so no
instance repeats within a bag. Every batch holds ``bags_per_label`` bags of every ucc label in
``[ucc_min, ucc_max]``, in label order, as in the authors' generator.

Training subsets cycle through a shuffled list of all ``k``-subsets (reshuffled at each wrap);
evaluation subsets cycle through the unshuffled list, so evaluation bags are fixed by the seed.
Sampling works on index arrays only (a handful of numpy calls per batch, no per-instance
Python loop); the images are gathered from a preloaded tensor in one indexing call.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

MAX_ENUMERATED_SUBSETS = 200_000  # above this, subsets are drawn at random instead of cycled
_MAX_REDRAW_ROUNDS = 16


class BagBatch(NamedTuple):
    """One batch of bags. ``B`` bags of ``n`` instances of ``(C, H, W)`` images."""

    x: torch.Tensor  # (B, n, C, H, W) float
    ucc: torch.Tensor  # (B,) long: k - ucc_min
    rcc: torch.Tensor  # (B, num_classes) long: instances of each class in the bag
    ids: torch.Tensor  # (B, n) long: instance indices into the split


class BagSizeError(ValueError):
    """A split's classes are too small for the asked bag size; the message says what fits."""


class BagIndices(NamedTuple):
    """The index part of a batch, before images are gathered."""

    ids: np.ndarray  # (B, n) int64
    ucc: np.ndarray  # (B,) int64
    rcc: np.ndarray  # (B, num_classes) int64


def split_counts(bag_size: int, k: int) -> np.ndarray:
    """Instances per class in a bag of ``bag_size`` with ``k`` classes: ``(k,)``, balanced."""
    counts = np.full(k, bag_size // k, dtype=np.int64)
    counts[: bag_size % k] += 1
    return counts


class SubsetCycler:
    """Yields ``k``-subsets of ``range(num_classes)``: cycling a (shuffled) list of all of them.

    When there are more than ``MAX_ENUMERATED_SUBSETS`` subsets the list is not built and each
    subset is drawn uniformly at random instead (only for datasets with many classes).
    """

    def __init__(self, num_classes: int, k: int, shuffle: bool, rng: np.random.Generator):
        self.num_classes, self.k, self.shuffle, self.rng = num_classes, k, shuffle, rng
        self.enumerated = math.comb(num_classes, k) <= MAX_ENUMERATED_SUBSETS
        self.subsets = (
            np.array(list(itertools.combinations(range(num_classes), k)), dtype=np.int64)
            if self.enumerated
            else np.zeros((0, k), dtype=np.int64)
        )
        self.order = np.arange(len(self.subsets))
        self.position = 0
        if self.shuffle:
            self.rng.shuffle(self.order)

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` subsets, ``(count, k)``."""
        if not self.enumerated:
            keys = self.rng.random((count, self.num_classes))
            return np.sort(np.argsort(keys, axis=1)[:, : self.k], axis=1)
        chosen = []
        while count > 0:
            if self.position == len(self.order):
                self.position = 0
                if self.shuffle:
                    self.rng.shuffle(self.order)
            step = min(count, len(self.order) - self.position)
            chosen.append(self.order[self.position : self.position + step])
            self.position += step
            count -= step
        return self.subsets[np.concatenate(chosen)]

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.tolist(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.position = int(state["position"])


class BagSampler:
    """Draws batches of bag indices from integer class labels ``(N,)`` of one split."""

    def __init__(
        self,
        labels: np.ndarray,
        num_classes: int,
        bag_size: int,
        ucc_min: int,
        ucc_max: int,
        bags_per_label: int,
        seed: int,
        stream: tuple[int, ...] = (),
        shuffle_subsets: bool = True,
    ):
        labels = np.asarray(labels, dtype=np.int64)
        _check_arguments(labels, num_classes, bag_size, ucc_min, ucc_max, bags_per_label)
        self.num_classes, self.bag_size = num_classes, bag_size
        self.ucc_min, self.ucc_max, self.bags_per_label = ucc_min, ucc_max, bags_per_label
        self.class_sizes = np.bincount(labels, minlength=num_classes)
        self.by_class = np.argsort(labels, kind="stable")  # instance ids grouped by class
        self.class_start = np.concatenate([[0], np.cumsum(self.class_sizes)[:-1]])
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=stream))
        self.cyclers = {
            k: SubsetCycler(num_classes, k, shuffle_subsets, self.rng) for k in range(ucc_min, ucc_max + 1)
        }
        self._check_class_sizes()

    @property
    def bags_per_batch(self) -> int:
        return self.bags_per_label * (self.ucc_max - self.ucc_min + 1)

    def _check_class_sizes(self) -> None:
        need = math.ceil(self.bag_size / self.ucc_min)  # the largest share of one class in a bag
        small = [c for c in range(self.num_classes) if self.class_sizes[c] < need]
        if small:
            sizes = ", ".join(f"class {c}: {self.class_sizes[c]}" for c in small)
            raise BagSizeError(
                f"bag_size={self.bag_size} with ucc_min={self.ucc_min} needs at least {need} distinct "
                f"instances per class, but this split has {sizes}; use a smaller bag_size or larger ucc_min"
            )

    def sample(self) -> BagIndices:
        """One batch: ``bags_per_label`` bags for each ucc label, in label order."""
        classes, ucc, rcc = [], [], []
        for k, cycler in self.cyclers.items():
            subsets = cycler.take(self.bags_per_label)  # (m, k)
            counts = split_counts(self.bag_size, k)
            classes.append(np.repeat(subsets, counts, axis=1))  # (m, n), class-blocked
            bag_rcc = np.zeros((len(subsets), self.num_classes), dtype=np.int64)
            np.put_along_axis(bag_rcc, subsets, counts[None, :], axis=1)
            rcc.append(bag_rcc)
            ucc.append(np.full(len(subsets), k - self.ucc_min, dtype=np.int64))
        slot_class = np.concatenate(classes)  # (B, n)
        local = self._distinct_draws(slot_class)
        index = self.by_class[self.class_start[slot_class] + local]
        return BagIndices(index, np.concatenate(ucc), np.concatenate(rcc))

    def _distinct_draws(self, slot_class: np.ndarray) -> np.ndarray:
        """For every slot a position within its class, distinct within each (bag, class).

        Draw uniformly with replacement, then redraw the later copy of every repeat until none
        is left: the result is a uniformly random subset per (bag, class), as in the paper.
        """
        sizes = self.class_sizes[slot_class]
        local = (self.rng.random(slot_class.shape) * sizes).astype(np.int64)
        key_scale = int(self.class_sizes.max())
        for _ in range(_MAX_REDRAW_ROUNDS):
            repeat = _repeated_slots(slot_class * key_scale + local)
            if not repeat.any():
                return local
            local[repeat] = (self.rng.random(int(repeat.sum())) * sizes[repeat]).astype(np.int64)
        return self._finish_dense_draws(slot_class, local, key_scale)

    def _finish_dense_draws(self, slot_class: np.ndarray, local: np.ndarray, key_scale: int) -> np.ndarray:
        """Nearly-full classes (share close to class size): draw exact permutations per bag."""
        for b in np.flatnonzero(_repeated_slots(slot_class * key_scale + local).any(axis=1)):
            for c in np.unique(slot_class[b]):
                slots = np.flatnonzero(slot_class[b] == c)
                local[b, slots] = self.rng.choice(self.class_sizes[c], size=len(slots), replace=False)
        return local

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "cyclers": {str(k): c.state_dict() for k, c in self.cyclers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        for k, cycler in self.cyclers.items():
            cycler.load_state_dict(state["cyclers"][str(k)])


def _repeated_slots(keys: np.ndarray) -> np.ndarray:
    """``(B, n)`` bool: True where a key repeats an earlier key of the same row."""
    order = np.argsort(keys, axis=1, kind="stable")
    ranked = np.take_along_axis(keys, order, axis=1)
    repeat_sorted = np.zeros(keys.shape, dtype=bool)
    repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    repeat = np.zeros(keys.shape, dtype=bool)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    return repeat


def _check_arguments(
    labels: np.ndarray, num_classes: int, bag_size: int, ucc_min: int, ucc_max: int, bags_per_label: int
) -> None:
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    if not 1 <= ucc_min <= ucc_max <= num_classes:
        raise ValueError(
            f"need 1 <= ucc_min <= ucc_max <= num_classes, got ucc_min={ucc_min}, "
            f"ucc_max={ucc_max}, num_classes={num_classes}"
        )
    if bag_size < ucc_max:
        raise ValueError(f"bag_size={bag_size} must be >= ucc_max={ucc_max}")
    if bags_per_label < 1:
        raise ValueError(f"bags_per_label={bags_per_label} must be >= 1")


def gather(images: torch.Tensor, indices: BagIndices) -> BagBatch:
    """Gather the images of ``indices`` from a preloaded ``(N, C, H, W)`` tensor (any device)."""
    device = images.device
    ids = torch.from_numpy(indices.ids).to(device)
    x = images.index_select(0, ids.reshape(-1)).reshape(*ids.shape, *images.shape[1:])
    return BagBatch(
        x, torch.from_numpy(indices.ucc).to(device), torch.from_numpy(indices.rcc).to(device), ids
    )


def eval_bags(
    labels: np.ndarray,
    num_classes: int,
    bag_size: int,
    ucc_min: int,
    ucc_max: int,
    bags_per_label: int,
    seed: int,
) -> BagIndices:
    """A fixed set of evaluation bags: the same for the same seed, every epoch and every trial.

    Subsets cycle through the unshuffled list of all ``k``-subsets, as the authors' test script.
    """
    sampler = BagSampler(
        labels,
        num_classes,
        bag_size,
        ucc_min,
        ucc_max,
        bags_per_label,
        seed,
        stream=(0xE7A1,),
        shuffle_subsets=False,
    )
    return sampler.sample()


def iterate_bags(images: torch.Tensor, bags: BagIndices, bags_per_batch: int) -> Iterator[BagBatch]:
    """Evaluation bags in batches of at most ``bags_per_batch`` bags."""
    for start in range(0, len(bags.ids), bags_per_batch):
        part = BagIndices(*(a[start : start + bags_per_batch] for a in bags))
        yield gather(images, part)


class BagStream:
    """Endless training batches: ``iter(stream)`` yields one ``BagBatch`` per ``next``.

    Each distributed rank draws from its own random stream (the seed is split by rank and by
    ``epoch_seed``), so no two ranks draw the same bags. ``state_dict`` holds the stream's
    position for exact resumption.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: np.ndarray,
        num_classes: int,
        config: Any,
        rank: int = 0,
        epoch_seed: int = 0,
    ):
        self.images = images
        # the middle 0 is a fixed slot (it used to number DataLoader workers): kept so that a
        # seed draws the same bags as before
        self.sampler = BagSampler(
            labels,
            num_classes,
            config.bag_size,
            config.ucc_min,
            config.ucc_max,
            config.bags_per_label,
            seed=config.seed,
            stream=(rank, 0, epoch_seed),
        )

    def __iter__(self) -> Iterator[BagBatch]:
        while True:
            yield gather(self.images, self.sampler.sample())

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
