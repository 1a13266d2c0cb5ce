"""Normalisation constants and per-instance augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ucc_tune.data import stats
from ucc_tune.data.augment import augment, random_flips, random_rot90, random_rotation


def test_per_image_standardisation_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 1, 4, 4), dtype=np.uint8)
    out = stats.standardize_per_image(x)
    for i in range(5):
        img = x[i].astype(np.float64) / 255
        want = (img - img.mean()) / img.std()
        np.testing.assert_allclose(out[i], want, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32


def test_constant_images_do_not_divide_by_zero() -> None:
    out = stats.standardize_per_image(np.full((2, 1, 3, 3), 7, dtype=np.uint8))
    assert np.isfinite(out).all() and np.abs(out).max() == 0


def test_channel_stats_and_standardisation() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(20, 3, 5, 5), dtype=np.uint8)
    mean, std = stats.channel_stats(x)
    scaled = x.astype(np.float64) / 255
    for c in range(3):
        assert mean[c] == pytest.approx(scaled[:, c].mean(), rel=1e-5)
        assert std[c] == pytest.approx(scaled[:, c].std(), rel=1e-5)
    out = stats.standardize_channels(x, mean, std)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_channel_stats_are_cached_and_not_recomputed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(2).integers(0, 256, size=(10, 1, 4, 4), dtype=np.uint8)
    key = {"dataset": "demo", "split_seed": 3}
    mean, std = stats.cached_channel_stats(x, key, tmp_path)
    files = list(tmp_path.glob("stats-demo-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["key"] == key

    def fail(_: np.ndarray) -> None:
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(stats, "channel_stats", fail)
    mean2, std2 = stats.cached_channel_stats(x, key, tmp_path)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)


def test_a_damaged_or_stale_cache_entry_is_recomputed(tmp_path) -> None:
    x = np.random.default_rng(2).integers(0, 256, size=(10, 1, 4, 4), dtype=np.uint8)
    key = {"dataset": "demo", "split_seed": 0}
    path = stats.stats_cache_path(tmp_path, key)
    path.write_text("{not json")
    mean, _ = stats.cached_channel_stats(x, key, tmp_path)
    assert mean[0] == pytest.approx(x.mean() / 255, rel=1e-5)
    # a different number of images (the data changed) is noticed
    mean_half, _ = stats.cached_channel_stats(x[:5], key, tmp_path)
    assert mean_half[0] == pytest.approx(x[:5].mean() / 255, rel=1e-5)


def test_different_keys_use_different_files(tmp_path) -> None:
    a = stats.stats_cache_path(tmp_path, {"dataset": "d", "split_seed": 0})
    b = stats.stats_cache_path(tmp_path, {"dataset": "d", "split_seed": 1})
    assert a != b


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flips_produce_only_flipped_copies_of_each_instance() -> None:
    x = torch.randn(64, 1, 5, 5)
    out = random_flips(x, generator())
    kinds = set()
    for i in range(64):
        candidates = {
            "id": x[i],
            "h": x[i].flip(-1),
            "v": x[i].flip(-2),
            "hv": x[i].flip(-1).flip(-2),
        }
        match = [k for k, c in candidates.items() if torch.equal(out[i], c)]
        assert match, "an output is not a flip of its own input"
        kinds.add(match[0])
    assert kinds == {"id", "h", "v", "hv"}  # every instance draws its own transform


def test_rot90_gives_each_instance_one_of_four_rotations() -> None:
    x = torch.randn(64, 2, 4, 4)
    out = random_rot90(x, generator(1))
    seen = set()
    for i in range(64):
        ks = [k for k in range(4) if torch.equal(out[i], torch.rot90(x[i], k, dims=(-2, -1)))]
        assert ks
        seen.add(ks[0])
    assert seen == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="square"):
        random_rot90(torch.randn(2, 1, 3, 4))


def test_small_rotation_keeps_the_centre_and_zero_angle_is_identity() -> None:
    x = torch.zeros(4, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = random_rotation(x, 10.0, generator(2))
    assert torch.allclose(out[:, :, 4, 4], torch.ones(4, 1), atol=0.05)
    y = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(random_rotation(y, 0.0, generator()), y, atol=1e-5, rtol=0)


def test_rotation_background_is_the_image_minimum() -> None:
    x = torch.full((2, 1, 8, 8), -1.5)
    x[:, :, 2:6, 2:6] = 2.0
    out = random_rotation(x, 45.0, generator(3))
    assert float(out.min()) >= -1.5 - 1e-5  # corners rotated in take the background, not 0


def test_augment_keeps_bag_shape_and_is_reproducible_with_a_generator() -> None:
    x = torch.randn(3, 5, 1, 8, 8)  # (B, n, C, H, W)
    a = augment(x, flip=True, rot90=True, max_angle=15.0, generator=generator(4))
    b = augment(x, flip=True, rot90=True, max_angle=15.0, generator=generator(4))
    assert a.shape == x.shape and torch.equal(a, b)
    assert augment(x, flip=False, rot90=False, max_angle=0.0) is x
