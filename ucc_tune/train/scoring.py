"""A seed's scores from its features: the clustering evaluation of a split (features, clusters,
class KDEs, JS divergences) and the metrics made of it, for an epoch's report (``eval_metrics``)
and for the final test split (``test_metrics``). The training loop and ``ucc_tune.trained``
score the same way."""

from __future__ import annotations

from typing import Any

from ucc_tune import feature_scores
from ucc_tune.train.run import Run


def cluster_eval(run: Run, split: str, methods: list[str]) -> dict[str, Any]:
    """Features of every instance of ``split``, clustered, plus class KDEs and JS divergences."""
    model = run.model_core
    features = feature_scores.extract_features(
        model.encoder, run.data.images[split], run.config.eval_batch_size
    )
    summary = feature_scores.summarize(
        features,
        run.data.labels[split],
        methods,
        run.config.num_bins,
        run.config.kde_sigma,
        run.data.class_names,
        seed=run.config.seed,
        cluster_pca=run.config.cluster_pca,
    )
    summary["features"] = features
    return summary


def eval_metrics(summary: dict[str, Any], method: str, epoch: int) -> dict[str, Any]:
    """The clustering scores of an epoch's report: ``method``'s, the mean over methods, the JS
    divergences, and the epoch that computed them (``cluster_eval_epoch``)."""
    scores = summary["clustering"][method]
    return {
        "cluster_acc": float(scores["acc"]),
        "cluster_nmi": float(scores["nmi"]),
        "cluster_ari": float(scores["ari"]),
        "mean_clustering_score": float(summary["mean_clustering_score"]),
        "js_min": float(summary["js"]["js_min"]),
        "js_mean": float(summary["js"]["js_mean"]),
        "cluster_eval_epoch": epoch,
    }


def test_metrics(summary: dict[str, Any], split: str = "test") -> dict[str, float]:
    """Final scores of ``split`` named by method: ``test_kmeans_acc``, ``test_spectral_nmi``, ..."""
    clustering = summary["clustering"].items()
    out = {f"{split}_{m}_{k}": float(v) for m, scores in clustering for k, v in scores.items()}
    out.update({f"{split}_{k}": float(v) for k, v in summary["js"].items() if k != "closest_pair"})
    out[f"{split}_mean_clustering_score"] = float(summary["mean_clustering_score"])
    return out
