"""Metrics as pure numpy functions, in scikit-learn's argument order ``(labels_true, labels_pred)``.

Cluster accuracy by Hungarian matching (and the class-normalised variant of the UCC authors'
code, Oner et al., ICLR 2020) and the cluster -> class matching itself; the mean of ARI and NMI
over several clusterings; the scores of the authors' ``cluster.py`` through scikit-learn; and
the Jensen-Shannon *divergence* in log base 2 (bounded by 1).
Note: ``scipy.spatial.distance.jensenshannon`` is the JS *distance*, the square root of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

CLIP = 1e-12  # the paper's clip before the logarithms


def _labels(labels_true: np.ndarray, labels_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(labels_true).ravel(), np.asarray(labels_pred).ravel()
    if len(t) != len(p):
        raise ValueError(f"labels_true has {len(t)} entries but labels_pred has {len(p)}")
    if len(t) == 0:
        raise ValueError("labels are empty: nothing to score")
    return t, p


def contingency(labels_true: np.ndarray, labels_pred: np.ndarray) -> np.ndarray:
    """``(classes, clusters)`` counts for arbitrary integer labels."""
    t, p = _labels(labels_true, labels_pred)
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((ti.max() + 1, pi.max() + 1), dtype=np.int64)
    np.add.at(table, (ti, pi), 1)
    return table


def cluster_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Accuracy under the best one-to-one cluster -> class mapping (Hungarian).

    Works with more or fewer clusters than classes: unmatched clusters count as wrong.
    """
    table = contingency(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def cluster_accuracy_paper(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """The authors' variant: match on per-class recall ``C[t, p] = 1 - n_tp / n_t``, then accuracy."""
    table = contingency(labels_true, labels_pred)
    n_t = table.sum(axis=1, keepdims=True)
    rows, cols = linear_sum_assignment(1 - table / n_t)
    return float(table[rows, cols].sum() / table.sum())


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "acc": cluster_accuracy,
    "acc_paper": cluster_accuracy_paper,
    "nmi": lambda t, p: float(skm.normalized_mutual_info_score(*_labels(t, p))),
    "ari": lambda t, p: float(skm.adjusted_rand_score(*_labels(t, p))),
    "ami": lambda t, p: float(skm.adjusted_mutual_info_score(*_labels(t, p))),
    "homogeneity": lambda t, p: float(skm.homogeneity_score(*_labels(t, p))),
    "completeness": lambda t, p: float(skm.completeness_score(*_labels(t, p))),
    "v_measure": lambda t, p: float(skm.v_measure_score(*_labels(t, p))),
}


def clustering_scores(labels_true: np.ndarray, labels_pred: np.ndarray) -> dict[str, float]:
    """Every ``METRICS`` entry: ``acc``, ``acc_paper``, ``nmi``, ``ari``, ``ami``, ..."""
    return {name: fn(labels_true, labels_pred) for name, fn in METRICS.items()}


def mean_clustering_score(labels_true: np.ndarray, labels_preds: Sequence[np.ndarray]) -> float:
    """The mean of ARI and NMI over several clusterings of the same instances (2 numbers each)."""
    if not labels_preds:
        raise ValueError("mean_clustering_score needs at least one clustering")
    scores = [METRICS[name](labels_true, pred) for pred in labels_preds for name in ("ari", "nmi")]
    return float(np.mean(scores))


def match_clusters(labels_true: np.ndarray, labels_pred: np.ndarray, num_clusters: int) -> np.ndarray:
    """The class of each cluster ``(num_clusters,)`` under the Hungarian matching that maximises
    the instances whose cluster's class is their own. ``labels_true`` are class indices and
    ``labels_pred`` cluster ids in ``[0, num_clusters)``; a cluster left without a class (more
    clusters than classes) gets -1."""
    t, p = _labels(labels_true, labels_pred)
    if t.min() < 0 or p.min() < 0 or p.max() >= num_clusters:
        raise ValueError(f"labels must be >= 0 and cluster ids below num_clusters={num_clusters}")
    table = np.zeros((num_clusters, int(t.max()) + 1), dtype=np.int64)  # (clusters, classes)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(-table)
    classes = np.full(num_clusters, -1, dtype=np.int64)
    classes[rows] = cols
    return classes


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence, log base 2, of two discrete distributions (normalised here)."""
    p, q = np.asarray(p, dtype=np.float64).ravel(), np.asarray(q, dtype=np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in length: {p.size} and {q.size}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("distributions must be non-negative with a positive sum")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    terms = [a * np.log2(np.clip(a, CLIP, 1) / np.clip(m, CLIP, 1)) for a in (p, q)]
    return float(np.clip(0.5 * (terms[0].sum() + terms[1].sum()), 0.0, 1.0))


def js_matrix(distributions: np.ndarray) -> np.ndarray:
    """Symmetric ``(K, K)`` JS divergences between the rows of ``(K, D)``; zero diagonal."""
    d = np.asarray(distributions, dtype=np.float64)
    k = len(d)
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            out[a, b] = out[b, a] = js_divergence(d[a], d[b])
    return out


def js_summary(matrix: np.ndarray, class_names: list[str] | None = None) -> dict[str, object]:
    """Min, mean and max of the off-diagonal JS divergences and the closest pair of classes."""
    m = np.asarray(matrix)
    k = len(m)
    if k < 2:
        raise ValueError(f"a JS summary needs at least 2 classes, got {k}")
    rows, cols = np.triu_indices(k, 1)
    values = m[rows, cols]
    i = int(np.argmin(values))
    names = class_names if class_names is not None else [str(c) for c in range(k)]
    return {
        "js_min": float(values.min()),
        "js_mean": float(values.mean()),
        "js_max": float(values.max()),
        "closest_pair": (names[rows[i]], names[cols[i]]),
    }
