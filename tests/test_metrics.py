"""Metrics: properties generated from METRICS, brute-force references, JS against scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from ucc_tune.metrics import (
    METRICS,
    cluster_accuracy,
    cluster_accuracy_paper,
    js_divergence,
    js_matrix,
    js_summary,
    match_clusters,
    mean_clustering_score,
)

labelings = st.lists(st.integers(0, 4), min_size=2, max_size=40)


def brute_force_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Try every injective mapping of clusters to classes (small cases only)."""
    classes, clusters = np.unique(true), np.unique(pred)
    best = 0
    if len(clusters) <= len(classes):
        for target in itertools.permutations(classes, len(clusters)):
            mapping = dict(zip(clusters, target, strict=True))
            best = max(best, sum(mapping[p] == t for t, p in zip(true, pred, strict=True)))
    else:
        for source in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(source, classes, strict=True))
            best = max(best, sum(mapping.get(p) == t for t, p in zip(true, pred, strict=True)))
    return best / len(true)


@pytest.mark.parametrize("name", sorted(METRICS))
@settings(max_examples=30, deadline=None)
@given(true=labelings, seed=st.integers(0, 1000))
def test_metrics_ignore_the_names_of_predicted_clusters(name: str, true: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.array(true)
    pred = rng.integers(0, 4, size=len(t))
    renamed = rng.permutation(10)[pred] + 100  # any injective relabelling
    assert METRICS[name](t, pred) == pytest.approx(METRICS[name](t, renamed), abs=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
@settings(max_examples=30, deadline=None)
@given(true=labelings, seed=st.integers(0, 1000))
def test_perfect_clustering_scores_one_and_bounds_hold(name: str, true: list[int], seed: int) -> None:
    t = np.array(true)
    relabelled = np.random.default_rng(seed).permutation(5)[t]
    if len(np.unique(t)) > 1 or name in ("acc", "acc_paper"):
        assert METRICS[name](t, relabelled) == pytest.approx(1.0)
    pred = np.random.default_rng(seed).integers(0, 3, size=len(t))
    low = -1.0 if name in ("ari", "ami") else 0.0
    assert low - 1e-9 <= METRICS[name](t, pred) <= 1.0 + 1e-9


@settings(max_examples=100, deadline=None)
@given(true=st.lists(st.integers(0, 3), min_size=1, max_size=12), pred=st.data())
def test_cluster_accuracy_matches_brute_force(true: list[int], pred: st.DataObject) -> None:
    t = np.array(true)
    p = np.array(pred.draw(st.lists(st.integers(0, 4), min_size=len(t), max_size=len(t))))
    assert cluster_accuracy(t, p) == pytest.approx(brute_force_accuracy(t, p))


def test_cluster_accuracy_by_hand() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([5, 5, 7, 7, 7, 9])  # 5->0 (2), 7->1 (2), 9->2 (1): 5 of 6
    assert cluster_accuracy(true, pred) == pytest.approx(5 / 6)


def test_paper_variant_weights_classes_by_recall() -> None:
    # class 0 has 8 instances, class 1 has 2; cluster a holds 5 of class 0, cluster b holds
    # 3 of class 0 and both of class 1.
    true = np.array([0] * 8 + [1] * 2)
    pred = np.array(["a"] * 5 + ["b"] * 3 + ["b"] * 2)
    # standard: a->0, b->1 gives 5 + 2 = 7 vs a->1, b->0 gives 0 + 3 = 3
    assert cluster_accuracy(true, pred) == pytest.approx(0.7)
    # paper: recall a->0 (5/8) + b->1 (1) = 1.625 vs b->0 (3/8) + a->1 (0): same choice, same 0.7
    assert cluster_accuracy_paper(true, pred) == pytest.approx(0.7)
    # a case where they differ: the big class is split 6/4, the small class sits with the 4
    true2 = np.array([0] * 10 + [1] * 3)
    pred2 = np.array([0] * 6 + [1] * 4 + [1] * 3)
    # standard picks 0->0 (6) + 1->1 (3) = 9/13; paper picks the same recall sum 0.6 + 1.0
    assert cluster_accuracy(true2, pred2) == pytest.approx(9 / 13)
    assert cluster_accuracy_paper(true2, pred2) == pytest.approx(9 / 13)
    true3 = np.array([0] * 10 + [1] * 2)
    pred3 = np.array([0] * 7 + [1] * 3 + [0] * 2)
    # standard: 0->0 (7) + 1->1 (0) = 7 vs 1->0 (3) + 0->1 (2) = 5 -> 7/12
    # paper: recalls 0.7 + 0 = 0.7 vs 0.3 + 1.0 = 1.3 -> picks 1->0, 0->1: accuracy 5/12
    assert cluster_accuracy(true3, pred3) == pytest.approx(7 / 12)
    assert cluster_accuracy_paper(true3, pred3) == pytest.approx(5 / 12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_bad_label_inputs_are_named(name: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        METRICS[name](np.array([]), np.array([]))
    with pytest.raises(ValueError, match="3 entries but labels_pred has 2"):
        METRICS[name](np.array([0, 1, 1]), np.array([0, 1]))


distributions = st.lists(st.floats(0, 10), min_size=2, max_size=12).filter(lambda v: sum(v) > 1e-3)


@settings(max_examples=100, deadline=None)
@given(p=distributions, data=st.data())
def test_js_divergence_is_scipy_distance_squared_base_2(p: list[float], data: st.DataObject) -> None:
    q = data.draw(
        st.lists(st.floats(0, 10), min_size=len(p), max_size=len(p)).filter(lambda v: sum(v) > 1e-3)
    )
    ours = js_divergence(np.array(p), np.array(q))
    assert ours == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-6)
    assert ours == pytest.approx(js_divergence(np.array(q), np.array(p)))  # symmetric
    assert 0.0 <= ours <= 1.0


def test_js_identical_is_zero_and_disjoint_is_one() -> None:
    p = np.array([0.2, 0.3, 0.5])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(np.array([1.0, 0, 0, 0]), np.array([0, 0, 0.5, 0.5])) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="non-negative"):
        js_divergence(np.array([0.0, 0.0]), np.array([1.0, 0.0]))


def test_js_matrix_and_summary() -> None:
    rng = np.random.default_rng(1)
    dists = rng.random((4, 6))
    m = js_matrix(dists)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 0)
    assert m[1, 3] == pytest.approx(js_divergence(dists[1], dists[3]))
    hand = np.array([[0, 0.5, 0.2], [0.5, 0, 0.9], [0.2, 0.9, 0]])
    summary = js_summary(hand, ["a", "b", "c"])
    assert summary["js_min"] == pytest.approx(0.2) and summary["js_max"] == pytest.approx(0.9)
    assert summary["js_mean"] == pytest.approx((0.5 + 0.2 + 0.9) / 3)
    assert summary["closest_pair"] == ("a", "c")
    with pytest.raises(ValueError, match="at least 2 classes"):
        js_summary(np.zeros((1, 1)))


def test_mean_clustering_score_by_hand() -> None:
    true = np.array([0, 0, 1, 1])
    # a perfect clustering: ARI 1, NMI 1; one independent of the classes: NMI 0 and ARI
    # (0 - 2 * 2 / 6) / ((2 + 2) / 2 - 2 * 2 / 6) = -0.5 (pairs within: 0 of 2 and 2 expected 2/3)
    perfect, crossed = np.array([1, 1, 0, 0]), np.array([0, 1, 0, 1])
    assert mean_clustering_score(true, [perfect, crossed]) == pytest.approx((1 + 1 - 0.5 + 0) / 4)
    assert mean_clustering_score(true, [perfect]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one clustering"):
        mean_clustering_score(true, [])


def test_match_clusters_by_hand() -> None:
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([2, 2, 1, 0, 0, 1, 1, 3])  # cluster 3 is extra: no class left for it
    # clusters 2 -> class 0 (2 agree), 0 -> 1 (2), 1 -> 2 (2): 6 of 8, the best one-to-one matching
    np.testing.assert_array_equal(match_clusters(true, pred, 4), [1, 2, 0, -1])
    with pytest.raises(ValueError, match="num_clusters=3"):
        match_clusters(true, pred, 3)
