"""The checks that need the data, done once before a run or a search starts.

``Config`` validates what a config says on its own; what depends on the dataset (that it loads
and splits, how many classes it has against ``ucc_max``, whether a run of its image size fits in
memory) is checked here, once per distinct dataset, so that a search refuses a bad command
before Ray starts instead of failing every trial, and ``train`` before it writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ucc_tune.config import Config


class PreflightError(ValueError):
    """A config that cannot run on its data or its machine; the message names the value."""


def check_runs(configs: Iterable[Config], free_bytes: int | None = None) -> None:
    """Every config loads its data, has as many classes as its ``ucc_max`` needs and fits in
    memory (``free_bytes``: the device's free memory, default measured now)."""
    from ucc_tune.data.sources import DatasetNotFoundError
    from ucc_tune.data.splits import load_splits
    from ucc_tune.models.footprint import FootprintError, check_fits

    facts: dict[tuple, tuple[tuple[int, int, int], int]] = {}
    for config in configs:
        key = (
            config.dataset,
            str(config.data_dir),
            config.split_seed,
            config.val_fraction,
            config.test_fraction,
            config.download,
        )
        if key not in facts:
            try:
                splits = load_splits(*key[:2], key[2], key[3], key[4], download=config.download)
            except (DatasetNotFoundError, ValueError) as err:
                raise PreflightError(f"dataset={config.dataset!r}: {err}") from None
            c, h, w = splits.train.x.shape[1:]
            facts[key] = (int(c), int(h), int(w)), splits.num_classes
        shape, num_classes = facts[key]
        if config.ucc_max > num_classes:
            raise PreflightError(
                f"ucc_max={config.ucc_max}: dataset {config.dataset!r} has {num_classes} classes, "
                f"so ucc_max must be <= {num_classes}"
            )
        try:
            check_fits(config, shape, num_classes, free_bytes)
        except FootprintError as err:
            raise PreflightError(str(err)) from None
