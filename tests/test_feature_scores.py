"""Evaluation: every clustering method on separable features, class KDEs and their JS matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ucc_tune import feature_scores
from ucc_tune.config import CLUSTER_METHODS
from ucc_tune.metrics import js_divergence


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]])
    labels = np.repeat(np.arange(3), 40)
    return np.clip(centres[labels] + rng.normal(0, 0.03, (120, 2)), 0, 1).astype(np.float32), labels


@pytest.mark.parametrize("method", CLUSTER_METHODS)
def test_every_method_recovers_separable_classes(method: str) -> None:
    features, labels = blobs()
    pred = feature_scores.cluster(features, 3, method, seed=0)
    assert len(np.unique(pred)) == 3
    scores = feature_scores.summarize(features, labels, [method], num_bins=11, sigma=0.1)["clustering"][
        method
    ]
    assert scores["acc"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="cluster method 'dbscan' is unknown"):
        feature_scores.cluster(np.zeros((4, 2)), 2, "dbscan")


def test_class_distributions_and_js_follow_the_paper() -> None:
    features, labels = blobs()
    distributions, classes = feature_scores.class_distributions(features, labels, num_bins=11, sigma=0.1)
    assert distributions.shape == (3, 2, 11) and classes.tolist() == [0, 1, 2]
    np.testing.assert_allclose(distributions.sum(-1), 1.0, rtol=1e-6)
    matrix = feature_scores.js_of_classes(distributions)
    # a class's vector is its (J, bins) block divided by J (mass 1), as in the paper
    want = js_divergence(distributions[0].ravel() / 2, distributions[1].ravel() / 2)
    assert matrix[0, 1] == pytest.approx(want)
    # classes 0 and 1 share feature 2's distribution, so they are closer than 0 and 2
    assert matrix[0, 1] < matrix[0, 2]


def test_extract_features_restores_the_training_mode() -> None:
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    encoder.train()
    out = feature_scores.extract_features(encoder, torch.randn(10, 1, 2, 2), batch_size=3)
    assert out.shape == (10, 3) and out.dtype == np.float32 and encoder.training


def test_summary_runs_kmeans_and_kmedoids_once_for_the_mean_score(monkeypatch: pytest.MonkeyPatch) -> None:
    features, labels = blobs()
    features[:40] = features[40:80] + 0.001  # classes 0 and 1 share one blob: neither method splits them
    calls: list[str] = []
    fit = feature_scores.fit_clustering

    def counted(points: np.ndarray, k: int, method: str, seed: int = 0) -> tuple[np.ndarray, Any]:
        calls.append(method)
        return fit(points, k, method, seed)

    monkeypatch.setattr(feature_scores, "fit_clustering", counted)
    summary = feature_scores.summarize(features, labels, ["kmeans"], num_bins=11, sigma=0.1)
    assert sorted(calls) == ["kmeans", "kmedoids"]
    scores = [summary["clustering"][m][s] for m in ("kmeans", "kmedoids") for s in ("ari", "nmi")]
    assert summary["mean_clustering_score"] == pytest.approx(sum(scores) / 4)
    assert 0.3 < summary["mean_clustering_score"] < 0.9  # two of three classes merged


def test_pca_sets_the_dimension_the_clustering_runs_in() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    strong = np.eye(3)[labels] + rng.normal(0, 0.05, (90, 3))  # three directions of large variance
    features = np.hstack([strong, rng.normal(0, 1e-3, (90, 7))]).astype(np.float32)  # (90, 10)
    dims = {}
    for cluster_pca in (0.0, 2.0, 0.95, 0.999):
        summary = feature_scores.summarize(features, labels, ["kmeans"], 11, 0.1, cluster_pca=cluster_pca)
        dims[cluster_pca] = summary["cluster_dim"]
        assert summary["centers"]["kmeans"].shape == (3, summary["cluster_dim"])
        projected = feature_scores.project(features, summary["projection"])
        nearest, distance = feature_scores.assign(projected, summary["centers"]["kmeans"])
        np.testing.assert_array_equal(nearest, summary["assignments"]["kmeans"])
        assert distance.min() >= 0
    # centred one-hot class vectors span 2 dimensions (variance 1/3 each); the noise of the three
    # strong features adds 0.0025 per direction, the other seven ~1e-6: 95% of the variance takes
    # 2 components, 99.9% the third strong direction too
    assert dims == {0.0: 10, 2.0: 2, 0.95: 2, 0.999: 3}
    assert summary["projection"].components.shape[1] == 10
