"""Bag sampling: the paper's bag properties, checked by property-based tests."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ucc_tune.data.bags import (
    BagSampler,
    BagStream,
    SubsetCycler,
    eval_bags,
    gather,
    iterate_bags,
    split_counts,
)


def make_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


@st.composite
def bag_settings(draw: st.DrawFn) -> dict:
    num_classes = draw(st.integers(2, 12))
    ucc_max = draw(st.integers(1, min(num_classes, 5)))
    ucc_min = draw(st.integers(1, ucc_max))
    bag_size = draw(st.integers(ucc_max, 40))
    # every class must hold at least the largest share one class can take in a bag
    per_class = draw(st.integers(math.ceil(bag_size / ucc_min), math.ceil(bag_size / ucc_min) + 30))
    return {
        "num_classes": num_classes,
        "ucc_min": ucc_min,
        "ucc_max": ucc_max,
        "bag_size": bag_size,
        "per_class": per_class,
        "bags_per_label": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**31)),
    }


def sampler_from(s: dict, **overrides: object) -> tuple[BagSampler, np.ndarray]:
    labels = make_labels(s["num_classes"], s["per_class"], s["seed"] % 97)
    kwargs: dict[str, Any] = dict(
        num_classes=s["num_classes"],
        bag_size=s["bag_size"],
        ucc_min=s["ucc_min"],
        ucc_max=s["ucc_max"],
        bags_per_label=s["bags_per_label"],
        seed=s["seed"],
    )
    kwargs.update(overrides)
    return BagSampler(labels, **kwargs), labels


@settings(max_examples=60, deadline=None)
@given(bag_settings())
def test_bag_properties(s: dict) -> None:
    sampler, labels = sampler_from(s)
    for _ in range(3):
        index, ucc, rcc = sampler.sample()  # (B, n) instance ids
        num_labels = s["ucc_max"] - s["ucc_min"] + 1
        assert index.shape == (s["bags_per_label"] * num_labels, s["bag_size"])
        for b in range(len(index)):
            bag_labels = labels[index[b]]
            distinct = np.unique(bag_labels)
            # the ucc label is the number of distinct classes in the bag
            assert ucc[b] + s["ucc_min"] == len(distinct)
            # rcc equals the real per-class counts and sums to the bag size
            np.testing.assert_array_equal(rcc[b], np.bincount(bag_labels, minlength=s["num_classes"]))
            assert rcc[b].sum() == s["bag_size"]
            # within-bag balance: class shares differ by at most one
            shares = rcc[b][distinct]
            assert shares.max() - shares.min() <= 1
            # no instance repeats within a bag
            assert len(np.unique(index[b])) == s["bag_size"]
        # every ucc label has the same number of bags, in label order
        per_label = np.bincount(ucc, minlength=num_labels)
        np.testing.assert_array_equal(per_label, [s["bags_per_label"]] * num_labels)
        assert np.all(np.diff(ucc) >= 0)


@settings(max_examples=25, deadline=None)
@given(bag_settings())
def test_same_seed_same_bags_different_seed_differs(s: dict) -> None:
    a, _ = sampler_from(s)
    b, _ = sampler_from(s)
    c, _ = sampler_from(s, seed=s["seed"] + 1)
    batches_a = [a.sample() for _ in range(3)]
    batches_b = [b.sample() for _ in range(3)]
    batches_c = [c.sample() for _ in range(3)]
    for x, y in zip(batches_a, batches_b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    # with at least a few instances to choose from, another seed gives other bags
    if s["per_class"] > s["bag_size"]:
        assert any(not np.array_equal(x.ids, z.ids) for x, z in zip(batches_a, batches_c, strict=True))


def test_streams_draw_distinct_bags() -> None:
    labels = make_labels(10, 100)
    a = BagSampler(labels, 10, 32, 1, 4, 5, seed=3, stream=(0, 0))
    b = BagSampler(labels, 10, 32, 1, 4, 5, seed=3, stream=(1, 0))
    assert not np.array_equal(a.sample().ids, b.sample().ids)


def test_split_counts_match_the_paper() -> None:
    # the paper's bags of 32: 32, 16/16, 11/11/10, 8/8/8/8
    assert split_counts(32, 1).tolist() == [32]
    assert split_counts(32, 2).tolist() == [16, 16]
    assert split_counts(32, 3).tolist() == [11, 11, 10]
    assert split_counts(32, 4).tolist() == [8, 8, 8, 8]


def test_subset_cycler_visits_every_subset_once_per_cycle() -> None:
    cycler = SubsetCycler(6, 3, shuffle=True, rng=np.random.default_rng(0))
    total = math.comb(6, 3)
    first = {tuple(s) for s in cycler.take(total)}
    second = {tuple(s) for s in cycler.take(total)}
    assert len(first) == len(second) == total


def test_subset_cycler_random_mode_for_many_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ucc_tune.data.bags.MAX_ENUMERATED_SUBSETS", 10)
    cycler = SubsetCycler(8, 3, shuffle=True, rng=np.random.default_rng(0))
    subsets = cycler.take(50)
    assert subsets.shape == (50, 3)
    assert all(len(set(s)) == 3 and max(s) < 8 for s in subsets.tolist())


def test_draws_are_uniform_within_a_class() -> None:
    """Every instance of a class is equally likely: chi-square over many ucc=1 bags."""
    labels = np.repeat(np.arange(2), 40)
    sampler = BagSampler(labels, 2, 10, 1, 1, 4, seed=0)
    hits = np.zeros(80)
    for _ in range(500):
        np.add.at(hits, sampler.sample().ids.ravel(), 1)
    expected = hits.sum() / 80
    chi2 = ((hits - expected) ** 2 / expected).sum()
    assert chi2 < 130  # 79 degrees of freedom: the 0.9999 quantile is about 130


def test_dense_classes_still_give_distinct_instances() -> None:
    """A bag share equal to the class size forces the exact fallback path."""
    labels = np.repeat(np.arange(3), 12)
    sampler = BagSampler(labels, 3, 12, 1, 2, 3, seed=1)
    for _ in range(5):
        index = sampler.sample().ids
        assert all(len(np.unique(row)) == 12 for row in index)


def test_too_small_classes_are_refused_with_a_clear_message() -> None:
    labels = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError, match=r"needs at least 32 distinct instances per class.*class 0: 5"):
        BagSampler(labels, 3, 32, 1, 2, 2, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ucc_min": 0}, "ucc_min"),
        ({"ucc_min": 3, "ucc_max": 2}, "ucc_min"),
        ({"ucc_max": 11}, "num_classes"),
        ({"bag_size": 2, "ucc_max": 3}, "bag_size"),
        ({"bags_per_label": 0}, "bags_per_label"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"num_classes": 10, "bag_size": 8, "ucc_min": 1, "ucc_max": 4, "bags_per_label": 2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        BagSampler(make_labels(10, 20), **args)  # type: ignore[arg-type]


def test_state_dict_resumes_the_same_stream() -> None:
    labels = make_labels(10, 50)
    a = BagSampler(labels, 10, 16, 1, 4, 3, seed=5)
    a.sample()
    state = a.state_dict()
    expected = [a.sample().ids for _ in range(3)]
    b = BagSampler(labels, 10, 16, 1, 4, 3, seed=99)
    b.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(b.sample().ids, want)


def test_state_dict_survives_a_weights_only_torch_round_trip(tmp_path) -> None:
    labels = make_labels(10, 50)
    a = BagSampler(labels, 10, 16, 1, 4, 3, seed=5)
    torch.save({"sampler": a.state_dict()}, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    b = BagSampler(labels, 10, 16, 1, 4, 3, seed=0)
    b.load_state_dict(loaded["sampler"])
    np.testing.assert_array_equal(a.sample().ids, b.sample().ids)


def test_gather_builds_the_batch_from_the_indices() -> None:
    labels = make_labels(4, 20)
    images = torch.arange(80, dtype=torch.float32).reshape(80, 1, 1, 1).expand(80, 1, 2, 3).contiguous()
    indices = BagSampler(labels, 4, 6, 1, 3, 2, seed=0).sample()
    batch = gather(images, indices)
    assert batch.x.shape == (6, 6, 1, 2, 3)
    np.testing.assert_array_equal(batch.x[:, :, 0, 0, 0].numpy(), indices.ids.astype(np.float32))
    assert batch.ucc.dtype == torch.int64 and batch.rcc.shape == (6, 4)


def test_eval_bags_are_fixed_by_the_seed_and_cycle_unshuffled() -> None:
    labels = make_labels(5, 30)
    a = eval_bags(labels, 5, 10, 1, 2, 7, seed=0)
    b = eval_bags(labels, 5, 10, 1, 2, 7, seed=0)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    # ucc=1 bags take the classes in order 0, 1, 2, 3, 4, 0, 1 (the authors' test order)
    first_classes = labels[a.ids[:7, 0]]
    assert first_classes.tolist() == [0, 1, 2, 3, 4, 0, 1]
    images = torch.randn(len(labels), 1, 4, 4)
    batches = list(iterate_bags(images, a, bags_per_batch=4))
    assert [len(batch.x) for batch in batches] == [4, 4, 4, 2]


def stream_config(seed: int = 0) -> SimpleNamespace:
    return SimpleNamespace(bag_size=8, ucc_min=1, ucc_max=3, bags_per_label=2, seed=seed)


def test_bag_stream_ranks_draw_different_bags_and_each_rank_replays_from_its_seed() -> None:
    labels = make_labels(5, 30)
    images = torch.arange(150, dtype=torch.float32).reshape(150, 1, 1, 1)

    def draw(rank: int, seed: int = 0, count: int = 4) -> list[torch.Tensor]:
        batches = iter(BagStream(images, labels, 5, stream_config(seed), rank=rank))
        return [next(batches).ids for _ in range(count)]

    rank0, rank1 = draw(0), draw(1)
    assert rank0[0].shape == (6, 8)
    assert all(not torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(rank0, draw(0), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(rank1, draw(1), strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(rank0, draw(0, seed=1), strict=True))


def test_bag_stream_continues_across_iterators_and_resumes_from_its_state() -> None:
    labels = make_labels(5, 30)
    images = torch.arange(150, dtype=torch.float32).reshape(150, 1, 1, 1)
    stream = BagStream(images, labels, 5, stream_config())
    first = next(iter(stream)).ids
    second = next(iter(stream)).ids  # a new iterator (a new epoch) continues the stream
    fresh = iter(BagStream(images, labels, 5, stream_config()))
    assert torch.equal(first, next(fresh).ids) and torch.equal(second, next(fresh).ids)
    state = stream.state_dict()
    resumed = BagStream(images, labels, 5, stream_config(seed=7), rank=1)
    resumed.load_state_dict(state)
    for _ in range(3):
        want = next(iter(stream))
        got = next(iter(resumed))
        assert torch.equal(got.ids, want.ids) and torch.equal(got.x, want.x)
