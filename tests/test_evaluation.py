"""Evaluation: every clustering method on separable features, class KDEs and their JS matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ucc_tune import evaluation
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
    pred = evaluation.cluster(features, 3, method, seed=0)
    assert len(np.unique(pred)) == 3
    scores = evaluation.summarize(features, labels, [method], num_bins=11, sigma=0.1)["clustering"][method]
    assert scores["acc"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="cluster method 'dbscan' is unknown"):
        evaluation.cluster(np.zeros((4, 2)), 2, "dbscan")


def test_class_distributions_and_js_follow_the_paper() -> None:
    features, labels = blobs()
    distributions, classes = evaluation.class_distributions(features, labels, num_bins=11, sigma=0.1)
    assert distributions.shape == (3, 2, 11) and classes.tolist() == [0, 1, 2]
    np.testing.assert_allclose(distributions.sum(-1), 1.0, rtol=1e-6)
    matrix = evaluation.js_of_classes(distributions)
    # a class's vector is its (J, bins) block divided by J (mass 1), as in the paper
    want = js_divergence(distributions[0].ravel() / 2, distributions[1].ravel() / 2)
    assert matrix[0, 1] == pytest.approx(want)
    # classes 0 and 1 share feature 2's distribution, so they are closer than 0 and 2
    assert matrix[0, 1] < matrix[0, 2]


def test_extract_features_restores_the_training_mode() -> None:
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    encoder.train()
    out = evaluation.extract_features(encoder, torch.randn(10, 1, 2, 2), batch_size=3)
    assert out.shape == (10, 3) and out.dtype == np.float32 and encoder.training
