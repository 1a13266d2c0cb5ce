"""Helpers shared by test modules (on pytest's ``pythonpath``, under a name no package shadows)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ucc_tune.config import Config

# the authors' MNIST weights, kept beside the repository (tests that need them skip without them)
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
WEIGHTS = (FIXTURES / "ucc_mnist_authors_ae_128000.h5").resolve()


def tiny(**changes: Any) -> Config:
    """A digits run of seconds: 3 epochs of 3 steps, small bags, the last epoch evaluated."""
    base = Config(
        epochs=3,
        steps_per_epoch=3,
        bag_size=8,
        bags_per_label=2,
        eval_bags_per_label=3,
        eval_every=3,
        num_threads=1,
        test_cluster_methods="kmeans,spectral",
    )
    return dataclasses.replace(base, **changes)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_keras_file(path: Path, layers: dict[str, dict[str, np.ndarray]]) -> None:
    """A Keras 2 weights file: one group per layer naming its weights, as Keras writes them."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([name.encode() for name in layers])
        for name, arrays in layers.items():
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/{k}:0".encode() for k in arrays])
            for key, value in arrays.items():
                group.create_dataset(f"{name}/{key}:0", data=value)
