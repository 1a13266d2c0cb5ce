"""The memory estimate of a run and the checks before a run that read the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucc_tune.config import Config
from ucc_tune.models.footprint import FootprintError, check_fits, estimate
from ucc_tune.preflight import PreflightError, check_runs


def test_parameters_are_counted_four_times_as_float32() -> None:
    """The supervised linear baseline on 8x8 images, counted by hand: 64-512-256-J=10 encoder and
    a 10-class classifier; weights, gradients and Adam's two moments of 4 bytes each."""
    config = Config.from_dict({"model": "linear", "supervision": "instance", "best_metric": "cluster_acc"})
    weights = (64 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10) + (10 * 10 + 10)
    assert estimate(config, (1, 8, 8), 10).parameters == weights * 4 * 4


def test_the_estimate_grows_with_every_size_and_refuses_what_does_not_fit() -> None:
    base = Config.from_dict({"model": "conv"})
    small = estimate(base, (1, 8, 8), 10)
    for change in ({"num_bins": 101}, {"bag_size": 64}, {"head_hidden1": 2048}, {"num_features": 40}):
        assert estimate(Config.from_dict({"model": "conv", **change}), (1, 8, 8), 10).total > small.total
    assert estimate(base, (3, 32, 32), 10).activations > small.activations
    check_fits(base, (1, 8, 8), 10, free=2 * small.total)
    with pytest.raises(FootprintError, match="GiB free; reduce the sizes"):
        check_fits(base, (1, 8, 8), 10, free=small.total)  # more than 80 % of it
    huge = Config.from_dict({"num_features": 562949952765952})
    with pytest.raises(FootprintError, match="num_features=562949952765952"):
        check_fits(huge, (1, 8, 8), 10)


def test_a_run_needing_more_classes_than_the_data_has_is_refused_before_it_starts(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for i in range(6):
            Image.new("L", (6, 5), i * 20).save(tmp_path / name / f"{i}.png")
    two = {"dataset": "image_folder", "data_dir": str(tmp_path), "bag_size": 4}
    with pytest.raises(PreflightError, match="ucc_max=4: dataset 'image_folder' has 2 classes"):
        check_runs([Config.from_dict(two)])
    check_runs([Config.from_dict({**two, "ucc_max": 2})])
    with pytest.raises(PreflightError, match=r"cannot lay out|GiB"):
        check_runs([Config.from_dict({**two, "ucc_max": 2, "num_bins": 10**7})])
