"""Evaluation of a trained UCC model: features, clustering and class-wise KDE / JS divergence.

As in the UCC paper (Oner et al., ICLR 2020): features of every instance of a split are
extracted by the encoder alone and clustered into as many clusters as classes (k-means; spectral
clustering with nearest-neighbour affinity gives the paper's headline number; k-medoids as a
third option), after an optional PCA fitted on the features clustered; k-means and k-medoids
always run, for ``mean_clustering_score`` (the mean of their ARI and NMI), and keep their centres
so that new points are assigned to the nearest one; the class-conditional feature
distributions are the KDE of all instances of a class taken as one bag, divided by J, and their
pairwise Jensen-Shannon divergences (log base 2) summarise how separable the classes are.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ucc_tune.metrics import clustering_scores, js_matrix, js_summary, mean_clustering_score
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


# the clusterings whose ARI and NMI make ``mean_clustering_score``: run at every evaluation
MEAN_SCORE_METHODS: tuple[str, ...] = ("kmeans", "kmedoids")
# methods with an out-of-sample rule (nearest centre); spectral clustering has none
CENTRED_METHODS: tuple[str, ...] = ("kmeans", "kmedoids")


@dataclass(frozen=True)
class Projection:
    """PCA before clustering: ``(features - mean) @ components.T``, ``(N, J) -> (N, D)``."""

    mean: np.ndarray  # (J,)
    components: np.ndarray  # (D, J)


def fit_projection(features: np.ndarray, cluster_pca: float) -> Projection | None:
    """The PCA of ``(N, J)`` features that ``cluster_pca`` asks for: None for 0, ``int(cluster_pca)``
    components for a value >= 1, else as many as explain that fraction of the variance."""
    if cluster_pca == 0:
        return None
    from sklearn.decomposition import PCA

    wanted: float | int = int(cluster_pca) if cluster_pca >= 1 else cluster_pca
    if wanted > min(features.shape):
        raise ValueError(
            f"cluster_pca={cluster_pca:g} components but the features are {features.shape}; "
            f"at most {min(features.shape)}"
        )
    pca = PCA(n_components=wanted, svd_solver="full").fit(features.astype(np.float64))
    return Projection(pca.mean_, pca.components_)


def project(features: np.ndarray, projection: Projection | None) -> np.ndarray:
    """Features in the space the clustering runs in: ``(N, J)`` unchanged, or ``(N, D)`` float64."""
    if projection is None:
        return features
    return (features.astype(np.float64) - projection.mean) @ projection.components.T


def assign(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre ``(N,)`` of ``(N, D)`` points among ``(K, D)`` centres, and its Euclidean
    distance ``(N,)`` (float64; ties go to the lower cluster id)."""
    diff = points.astype(np.float64)[:, None, :] - centers.astype(np.float64)[None]  # (N, K, D)
    squared = (diff**2).sum(axis=-1)
    nearest = squared.argmin(axis=1)
    return nearest, np.sqrt(squared[np.arange(len(points)), nearest])


def fit_clustering(
    points: np.ndarray, num_clusters: int, method: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cluster labels ``(N,)`` of ``(N, D)`` points with ``kmeans``, ``spectral`` or ``kmedoids``
    and the centres ``(K, D)`` (k-means centroids, k-medoids medoids; None for spectral). With
    centres, every label is the point's nearest centre (``assign``), so that new points are
    assigned by the same rule."""
    if method == "kmeans":
        from sklearn.cluster import KMeans

        with warnings.catch_warnings():  # points collapsed onto fewer distinct values than clusters:
            # collapse() names that case; sklearn's warning would only precede its message
            warnings.filterwarnings("ignore", message="Number of distinct clusters")
            centers = KMeans(num_clusters, init="k-means++", n_init=10, random_state=seed).fit(points)
        return assign(points, centers.cluster_centers_)[0], centers.cluster_centers_
    if method == "spectral":
        from sklearn.cluster import SpectralClustering

        neighbours = min(10, len(points) - 1)
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
            return model.fit_predict(points), None
    if method == "kmedoids":
        import kmedoids

        result = kmedoids.KMedoids(
            num_clusters, metric="euclidean", method="fasterpam", random_state=seed
        ).fit(points)
        medoids = points[np.asarray(result.medoid_indices_)]
        return assign(points, medoids)[0], medoids
    raise ValueError(f"cluster method {method!r} is unknown; choose kmeans, spectral or kmedoids")


def cluster(features: np.ndarray, num_clusters: int, method: str, seed: int = 0) -> np.ndarray:
    """Cluster labels ``(N,)`` of ``(N, J)`` features with ``kmeans``, ``spectral`` or ``kmedoids``."""
    return fit_clustering(features, num_clusters, method, seed)[0]


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, values): which weights made
    a set of features."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


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
    cluster_pca: float = 0.0,
) -> dict[str, Any]:
    """Cluster assignments, centres and scores (accuracy, the paper's variant, NMI, ARI, ...) per
    method, ``mean_clustering_score``, the PCA used (``projection``, ``cluster_dim``), the class
    distributions, the JS matrix and its summary.

    The methods run are ``methods`` and ``MEAN_SCORE_METHODS``, each once, on the features
    projected by a PCA fitted on them (``cluster_pca``; 0: the features as they are).
    """
    distributions, classes = class_distributions(features, labels, num_bins, sigma)
    matrix = js_of_classes(distributions)
    names = [class_names[c] for c in classes] if class_names else [str(c) for c in classes]
    projection = fit_projection(features, cluster_pca)
    points = project(features, projection)
    fitted = {
        m: fit_clustering(points, len(classes), m, seed)
        for m in dict.fromkeys([*methods, *MEAN_SCORE_METHODS])
    }
    assignments = {m: pred for m, (pred, _) in fitted.items()}
    return {
        "assignments": assignments,
        "centers": {m: centers for m, (_, centers) in fitted.items() if centers is not None},
        "projection": projection,
        "cluster_dim": int(points.shape[1]),
        "clustering": {m: clustering_scores(labels, pred) for m, pred in assignments.items()},
        "mean_clustering_score": mean_clustering_score(labels, [assignments[m] for m in MEAN_SCORE_METHODS]),
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
