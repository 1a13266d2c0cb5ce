"""``load_data(config)``: the one entry point the training code uses to get its data.

It reads the dataset, splits it deterministically and normalises every split as the config says,
returning float32 tensors ready for bag sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ucc_tune.data import stats
from ucc_tune.data.splits import DataSplits, load_splits

if TYPE_CHECKING:
    from ucc_tune.config import Config

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Data:
    """Normalised splits of one dataset: ``images[split]`` is ``(N, C, H, W)`` float32."""

    dataset: str
    class_names: tuple[str, ...]
    images: dict[str, torch.Tensor]
    labels: dict[str, np.ndarray]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images["train"].shape[1:]
        return int(c), int(h), int(w)

    def to(self, device: torch.device | str) -> Data:
        moved = {k: v.to(device) for k, v in self.images.items()}
        return Data(self.dataset, self.class_names, moved, self.labels)


def normalize_splits(splits: DataSplits, config: Config) -> dict[str, np.ndarray]:
    """Normalise every split with the config's method (stats come from the train split only)."""
    raw = {name: getattr(splits, name).x for name in SPLITS}
    if config.normalization == "per_image":
        return {name: stats.standardize_per_image(x) for name, x in raw.items()}
    if config.normalization == "dataset":
        key = {
            "dataset": config.dataset,
            "split_seed": config.split_seed,
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "data_dir": "" if config.dataset in ("digits", "mnist_sample") else str(config.data_dir),
        }
        mean, std = stats.cached_channel_stats(raw["train"], key, config.cache_dir or None)
        return {name: stats.standardize_channels(x, mean, std) for name, x in raw.items()}
    return {name: stats.to_unit_float(x) for name, x in raw.items()}


def config_splits(config: Config) -> DataSplits:
    """The raw splits of ``config.dataset`` as ``config`` draws them (its data and split fields)."""
    return load_splits(
        config.dataset,
        config.data_dir,
        split_seed=config.split_seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        download=config.download,
    )


def load_data(config: Config) -> Data:
    """Read, split and normalise ``config.dataset``; checks the ucc range against its classes."""
    splits = config_splits(config)
    if config.ucc_max > splits.num_classes:
        raise ValueError(
            f"ucc_max={config.ucc_max} must be <= the {splits.num_classes} classes of {config.dataset!r}"
        )
    arrays = normalize_splits(splits, config)
    images = {name: torch.from_numpy(np.ascontiguousarray(x)) for name, x in arrays.items()}
    labels = {name: getattr(splits, name).y.astype(np.int64) for name in SPLITS}
    return Data(config.dataset, tuple(splits.class_names), images, labels)
