"""The closed choices of a ``Config`` field (the ``Literal`` types) and the names derived from
them; no torch. ``ucc_tune.models.MODELS`` keys equal ``ModelName``'s values (a test keeps them
so); the objectives a run may keep its best checkpoint by are ``BestMetric``'s, which
``ucc_tune.schema.OBJECTIVES`` takes as its own.
"""

from __future__ import annotations

from typing import Literal, get_args

Normalization = Literal["per_image", "dataset", "none"]
ReconLoss = Literal["mse", "ssim", "ms_ssim", "mse+ssim"]
Device = Literal["auto", "cpu", "cuda"]
ClusterMethod = Literal["kmeans", "spectral", "kmedoids"]
ModelName = Literal["paper", "conv", "linear", "pca"]  # the keys of ucc_tune.models.MODELS
PaperPadding = Literal["keras", "symmetric"]  # stride-2 convs of model=paper: Keras 'same' or padding=1
FeatureInit = Literal["glorot", "data"]  # the feature layer: Glorot (paper) or calibrated on data
LRSchedule = Literal["constant", "cosine"]  # after the warm-up; constant is the paper's
Supervision = Literal["ucc", "instance"]  # bag labels (UCC) or the supervised baseline's instance labels
# the metrics a run may keep its best checkpoint by, and a search may optimise (schema.OBJECTIVES)
BestMetric = Literal[
    "cluster_acc",
    "cluster_nmi",
    "cluster_ari",
    "mean_clustering_score",
    "js_min",
    "js_mean",
    "val_ucc_acc",
    "val_loss",
]

CLUSTER_METHODS: tuple[str, ...] = get_args(ClusterMethod)
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
MODELS_WITH_DROPOUT: tuple[str, ...] = ("linear",)  # models whose encoder and decoder have dropout
RECON_KINDS: tuple[str, ...] = get_args(ReconLoss)
BEST_METRICS: tuple[str, ...] = get_args(BestMetric)
