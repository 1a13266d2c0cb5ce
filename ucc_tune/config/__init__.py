"""Every knob of a UCC run: ``Config``, one flat, frozen, validated dataclass (``knobs``), its closed
choices (``choices``), its rules (``checks``) and the ``--set``/``--config`` flags every command
shares (``flags``). No torch, no Ray.
"""

from ucc_tune.config.checks import ConfigError, coerce, dropout_problem, first_method
from ucc_tune.config.choices import (
    BEST_METRICS,
    CLUSTER_METHODS,
    MODEL_NAMES,
    MODELS_WITH_DROPOUT,
    RECON_KINDS,
    BestMetric,
    ClusterMethod,
    Device,
    FeatureInit,
    LRSchedule,
    ModelName,
    Normalization,
    PaperPadding,
    ReconLoss,
    Supervision,
)
from ucc_tune.config.knobs import Config, field_names

__all__ = [
    "BEST_METRICS",
    "CLUSTER_METHODS",
    "MODELS_WITH_DROPOUT",
    "MODEL_NAMES",
    "RECON_KINDS",
    "BestMetric",
    "ClusterMethod",
    "Config",
    "ConfigError",
    "Device",
    "FeatureInit",
    "LRSchedule",
    "ModelName",
    "Normalization",
    "PaperPadding",
    "ReconLoss",
    "Supervision",
    "coerce",
    "dropout_problem",
    "field_names",
    "first_method",
]
