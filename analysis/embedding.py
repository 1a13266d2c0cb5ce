"""2-D maps of a trial's test features and the class-by-cluster confusion of its clustering.

Reads ``artifacts/test_features.npz`` (``features`` (N, J), ``labels`` (N,) indices into
``class_names``, ``clusters_<method>`` (N,) per clustering method). Clusters are matched one to one
to classes by the Hungarian method on the class-by-cluster counts (the matching that cluster
accuracy scores); a point is misassigned when its cluster's matched class is not its own (or its
cluster matched no class). PCA and t-SNE (scikit-learn) embed a fixed-seed subsample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import read_arrays
from ucc_tune import metrics
from ucc_tune.schema import ARTIFACTS_DIR, TEST_FEATURES_FILE

MAX_POINTS = 2000  # t-SNE of 3000 10-D points took 40 CPU-seconds; more draws no clearer
SEED = 0


@dataclass(frozen=True)
class Features:
    """A split's features, true labels, class names and each method's cluster assignment."""

    features: np.ndarray  # (N, J)
    labels: np.ndarray  # (N,) indices into class_names
    class_names: list[str]
    clusters: dict[str, np.ndarray]  # method -> (N,) cluster ids


@dataclass(frozen=True)
class FeatureMap:
    """What the map figure draws: the subsample's coordinates, labels and matching."""

    method: str
    index: np.ndarray  # (n,) rows of the subsample, sorted
    coords: dict[str, np.ndarray]  # "PCA" / "t-SNE" -> (n, 2)
    labels: np.ndarray  # (n,)
    matched: np.ndarray  # (n,) the class matched to each point's cluster, -1 for none
    wrong: np.ndarray  # (n,) misassigned


def read_features(trial_dir: Path) -> Features | None:
    """The trial's test features, or None when the file is missing, unreadable or inconsistent
    (features, labels and clusters of different lengths, labels outside the class names)."""
    path = Path(trial_dir) / ARTIFACTS_DIR / TEST_FEATURES_FILE
    arrays = read_arrays(path, ("features", "labels", "class_names"), prefix="clusters_")
    if arrays is None:
        return None
    clusters = {k.removeprefix("clusters_"): v for k, v in arrays.items() if k.startswith("clusters_")}
    features, labels, names = arrays["features"], arrays["labels"], [str(n) for n in arrays["class_names"]]
    n = len(labels)
    if (
        features.ndim != 2
        or len(features) != n
        or not np.issubdtype(labels.dtype, np.integer)
        or (n and (labels.min() < 0 or labels.max() >= len(names)))
        or any(len(c) != n for c in clusters.values())
        or not np.isfinite(features).all()
    ):
        return None
    return Features(features, labels.astype(int), names, clusters)


def match_clusters(labels: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """Cluster id -> class index, one to one, maximising the points on matched pairs (Hungarian,
    ``ucc_tune.metrics.match_clusters``), for the clusters and classes present."""
    matched = metrics.match_clusters(labels, clusters, int(clusters.max()) + 1)
    present, ids = set(np.unique(labels).tolist()), set(np.unique(clusters).tolist())
    return {k: int(c) for k, c in enumerate(matched) if k in ids and int(c) in present}


def confusion_table(labels: np.ndarray, clusters: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Counts of class (rows, all of ``class_names``) by cluster (columns ``cluster <id> (<matched
    class>)``, ordered by their matched class, unmatched clusters last, marked ``(-)``): the
    matched pairs lie on the diagonal."""
    mapping = match_clusters(labels, clusters)
    ids = sorted(np.unique(clusters).tolist(), key=lambda k: (mapping.get(k, len(class_names)), k))
    frame = pd.DataFrame({"class": class_names})
    for k in ids:
        matched = class_names[mapping[k]] if k in mapping else "-"
        counts = np.bincount(labels[clusters == k], minlength=len(class_names))
        frame[f"cluster {k} ({matched})"] = counts.astype(np.int64)
    return frame


def subsample(n: int, max_points: int = MAX_POINTS, seed: int = SEED) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_points`` of them drawn with a fixed seed."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def embed(features: np.ndarray) -> dict[str, np.ndarray]:
    """PCA and t-SNE of ``features`` (n, J) to (n, 2) each, seeded. t-SNE runs on one OpenMP
    thread: on a busy machine its threads spin-wait, and 359 points took 13 CPU-seconds on all
    threads against 0.9 s on one."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(features)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=SEED)
    with threadpool_limits(limits=1):
        return {
            "PCA": PCA(n_components=2, random_state=SEED).fit_transform(features),
            "t-SNE": tsne.fit_transform(features.astype(np.float64)),
        }


def feature_map(data: Features, method: str, max_points: int = MAX_POINTS) -> FeatureMap:
    """The map of ``method``'s clustering: matching over every point, embedding of a subsample."""
    clusters = data.clusters[method]
    mapping = match_clusters(data.labels, clusters)
    index = subsample(len(data.labels), max_points)
    matched = np.array([mapping.get(int(k), -1) for k in clusters[index]])
    labels = data.labels[index]
    return FeatureMap(method, index, embed(data.features[index]), labels, matched, matched != labels)


def class_colors(count: int) -> np.ndarray:
    """(count, 4) RGBA colours, one per class (tab10/tab20, else a spread of a cyclic map)."""
    if count <= 10:
        return plt.get_cmap("tab10")(np.arange(count))
    if count <= 20:
        return plt.get_cmap("tab20")(np.arange(count))
    return plt.get_cmap("hsv")(np.linspace(0, 1, count, endpoint=False))


def map_figure(fmap: FeatureMap, class_names: list[str]) -> plt.Figure:
    """Rows PCA and t-SNE; left coloured by true class, right by each cluster's matched class
    (grey: unmatched) with misassigned points marked by a black cross."""
    colors = np.vstack([class_colors(len(class_names)), [[0.6, 0.6, 0.6, 1.0]]])  # last: unmatched
    fig, axes = plt.subplots(2, 2, figsize=(9, 8.2))
    for row, (name, xy) in zip(axes, fmap.coords.items(), strict=True):
        row[0].scatter(xy[:, 0], xy[:, 1], c=colors[fmap.labels], s=6)
        row[0].set_title(f"{name}: true class", fontsize=9)
        row[1].scatter(xy[:, 0], xy[:, 1], c=colors[fmap.matched], s=6)
        wrong = fmap.wrong
        label = f"misassigned ({int(wrong.sum())} of {len(wrong)})"
        row[1].scatter(xy[wrong, 0], xy[wrong, 1], marker="x", c="black", s=14, linewidths=0.7, label=label)
        row[1].set_title(f"{name}: {fmap.method} cluster (colour of its matched class)", fontsize=9)
        row[1].legend(fontsize=7, loc="best")
    if len(class_names) <= 20:
        handles = [
            plt.Line2D([], [], marker="o", linestyle="", color=colors[i]) for i in range(len(class_names))
        ]
        fig.legend(handles, class_names, loc="lower center", ncol=min(len(class_names), 10), fontsize=7)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def confusion_figure(table: pd.DataFrame, method: str) -> plt.Figure:
    """The confusion table as a heatmap with the counts written in its cells."""
    counts = table.drop(columns="class").to_numpy()
    fig, ax = plt.subplots(figsize=(1 + 0.55 * counts.shape[1], 1 + 0.45 * counts.shape[0]))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        dark = value > counts.max() / 2
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(counts.shape[1]), list(table.columns[1:]), rotation=90, fontsize=7)
    ax.set_yticks(range(counts.shape[0]), list(table["class"]), fontsize=7)
    ax.set_xlabel(f"{method} cluster (matched class)")
    ax.set_ylabel("true class")
    return fig


def feature_figures(
    trial_dir: Path, out: Path, method: str | None = None
) -> tuple[list[Path], pd.DataFrame | None]:
    """``feature_maps.png`` and ``confusion.png`` of a trial's test features and the confusion
    table, for ``method`` (default: the first in the file); nothing when the file is missing."""
    data = read_features(trial_dir)
    if data is None or not data.clusters:
        return [], None
    method = method if method in data.clusters else next(iter(data.clusters))
    table = confusion_table(data.labels, data.clusters[method], data.class_names)
    paths = []
    for fig, name in (
        (map_figure(feature_map(data, method), data.class_names), "feature_maps.png"),
        (confusion_figure(table, method), "confusion.png"),
    ):
        fig.savefig(out / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        paths.append(out / name)
    return paths, table
