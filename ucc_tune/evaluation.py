"""Evaluation of a trained UCC model: features, clustering and class-wise KDE / JS divergence.

As in the UCC paper (Oner et al., ICLR 2020): features of every instance of a split are
extracted by the encoder alone and clustered into as many clusters as classes (k-means; spectral
clustering with nearest-neighbour affinity gives the paper's headline number; k-medoids as a
third option); the class-conditional feature distributions are the KDE of all instances of a
class taken as one bag, divided by J, and their pairwise Jensen-Shannon divergences (log base 2)
summarise how separable the classes are.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ucc_tune.metrics import clustering_scores, js_matrix, js_summary
from ucc_tune.models.kde import kde


@torch.no_grad()
def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """``(N, C, H, W)`` images -> ``(N, J)`` float32 features, in eval mode, in batches."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    chunks = [
        encoder(images[start : start + batch_size].to(device)).float().cpu()
        for start in range(0, len(images), batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(chunks).numpy()


def cluster(features: np.ndarray, num_clusters: int, method: str, seed: int = 0) -> np.ndarray:
    """Cluster labels ``(N,)`` of ``(N, J)`` features with ``kmeans``, ``spectral`` or ``kmedoids``."""
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(num_clusters, init="k-means++", n_init=10, random_state=seed).fit_predict(features)
    if method == "spectral":
        from sklearn.cluster import SpectralClustering

        neighbours = min(10, len(features) - 1)
        model = SpectralClustering(
            num_clusters,
            eigen_solver="arpack",
            affinity="nearest_neighbors",
            n_neighbors=neighbours,
            random_state=seed,
            assign_labels="kmeans",
        )
        with warnings.catch_warnings():  # a disconnected k-NN graph only warns
            warnings.simplefilter("ignore", UserWarning)
            return model.fit_predict(features)
    if method == "kmedoids":
        import kmedoids

        result = kmedoids.KMedoids(
            num_clusters, metric="euclidean", method="fasterpam", random_state=seed
        ).fit(features)
        return np.asarray(result.labels_)
    raise ValueError(f"cluster method {method!r} is unknown; choose kmeans, spectral or kmedoids")


def cluster_all(
    features: np.ndarray, labels: np.ndarray, methods: list[str], seed: int = 0
) -> dict[str, np.ndarray]:
    """Cluster assignments per method, into as many clusters as ``labels`` has classes."""
    num_clusters = len(np.unique(labels))
    return {m: cluster(features, num_clusters, m, seed) for m in methods}


def class_distributions(
    features: np.ndarray, labels: np.ndarray, num_bins: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the KDE of all its instances as one bag: ``(K, J, num_bins)`` and class ids.

    Each feature's histogram sums to 1; flattening a class's ``(J, num_bins)`` block and dividing
    by J gives the probability vector whose JS divergences the paper reports.
    """
    classes = np.unique(labels)
    rows = [
        kde(torch.from_numpy(features[labels == c]).double()[None], num_bins, sigma)[0].numpy()
        for c in classes
    ]
    return np.stack(rows), classes


def js_of_classes(distributions: np.ndarray) -> np.ndarray:
    """Class-by-class JS divergence matrix from ``(K, J, num_bins)`` class distributions."""
    k, j, _ = distributions.shape
    return js_matrix(distributions.reshape(k, -1) / j)


def summarize(
    features: np.ndarray,
    labels: np.ndarray,
    methods: list[str],
    num_bins: int,
    sigma: float,
    class_names: tuple[str, ...] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Cluster assignments and scores (accuracy, the paper's variant, NMI, ARI, ...) per method,
    plus the class distributions, the JS matrix and its summary."""
    distributions, classes = class_distributions(features, labels, num_bins, sigma)
    matrix = js_of_classes(distributions)
    names = [class_names[c] for c in classes] if class_names else [str(c) for c in classes]
    assignments = cluster_all(features, labels, methods, seed)
    return {
        "assignments": assignments,
        "clustering": {m: clustering_scores(labels, pred) for m, pred in assignments.items()},
        "distributions": distributions,
        "js_matrix": matrix,
        "js": js_summary(matrix, names),
        "classes": classes,
    }


SATURATED_STD = 1e-3  # a feature whose spread over a split is below this carries no information
IDENTICAL_JS = 1e-6  # class KDEs whose largest pairwise JS divergence is below this are identical


def collapse(features: np.ndarray, js_max: float) -> str | None:
    """Why the features ``(N, J)`` of a split carry no class information, or None: every
    feature saturated or constant (spread below ``SATURATED_STD``), or every class's KDE the
    same (``js_max`` below ``IDENTICAL_JS``)."""
    spread = features.std(axis=0)
    if spread.max() < SATURATED_STD:
        low, high = int((features.mean(axis=0) < 0.5).sum()), int((features.mean(axis=0) >= 0.5).sum())
        return (
            f"all {features.shape[1]} features are saturated, each varying by less than "
            f"{SATURATED_STD:g} over the split (largest standard deviation {spread.max():.2g}; "
            f"{low} stuck near 0, {high} near 1), too little for the KDE to tell bags apart"
        )
    if js_max < IDENTICAL_JS:
        return f"every class has the same feature distribution (largest JS divergence {js_max:.2g})"
    return None
