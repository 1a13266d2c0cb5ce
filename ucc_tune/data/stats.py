"""Normalisation: per-image standardisation (the paper's choice) and dataset-wide channel stats.

The UCC authors' MNIST code (Oner et al., ICLR 2020) scales to [0, 1] and then standardises
every image by its own mean and standard deviation over all of its pixels; the reconstruction
target is the same standardised image. The dataset-wide alternative uses per-channel mean/std
of the train split, computed once and cached as JSON keyed by dataset, split and data folder, so
that every trial of a search reads the same constants instead of recomputing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

EPS = 1e-6  # floor on a standard deviation (a constant image has std 0)


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float images are returned as float32 unchanged."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


def standardize_per_image(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> float32 images with mean 0 and std 1 over each image's pixels."""
    x = to_unit_float(x)
    flat = x.reshape(len(x), -1)
    mean = flat.mean(axis=1, keepdims=True)
    std = flat.std(axis=1, keepdims=True)
    return ((flat - mean) / np.maximum(std, EPS)).reshape(x.shape).astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std ``(C,)`` of ``(N, C, H, W)`` images scaled to [0, 1]."""
    x = to_unit_float(x)
    mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, EPS).astype(np.float32)


def standardize_channels(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Apply dataset-wide per-channel standardisation to ``(N, C, H, W)`` images."""
    x = to_unit_float(x)
    return ((x - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ucc_tune"


def stats_cache_path(cache_dir: str | Path, key: dict[str, object]) -> Path:
    """One JSON file per key, so that concurrent trials never rewrite each other's entries."""
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"stats-{key.get('dataset', 'data')}-{digest}.json"


def cached_channel_stats(
    x_train: np.ndarray, key: dict[str, object], cache_dir: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Channel stats of the train split, read from the cache or computed once and stored.

    ``key`` identifies the split (dataset, split seed and fractions, data folder); the file
    also records the number of images so that a changed dataset is noticed and recomputed.
    """
    path = stats_cache_path(cache_dir or default_cache_dir(), key)
    if path.exists():
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key and stored.get("num_images") == len(x_train):
                return np.asarray(stored["mean"], np.float32), np.asarray(stored["std"], np.float32)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged cache entry is recomputed and overwritten
    mean, std = channel_stats(x_train)
    record = {"key": key, "num_images": len(x_train), "mean": mean.tolist(), "std": std.tolist()}
    _atomic_write(path, json.dumps(record, indent=2, sort_keys=True))
    return mean, std


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
