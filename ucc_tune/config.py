"""Every knob of a UCC run in one flat, frozen dataclass.

A field name is at once the Optuna parameter name, the Ray ``config/...`` key and the Parquet
column, so there is exactly one name per knob. ``Config.from_dict`` rejects unknown keys and
coerces strings (``--set key=value``); ``__post_init__`` validates every field and every
cross-field rule before any work starts. Variants are made with ``dataclasses.replace``.

Defaults follow the paper (Oner et al., ICLR 2020) where it applies: J=10 sigmoid features,
11 bins, sigma=0.1, a 384-192 head, alpha=0.5, Adam, bags of 32
instances with the same number of bags for every ucc label 1..4 and per-image standardisation.
The step budget is smaller and the learning rate larger than the paper's because the embedded
``digits`` dataset is tiny (1,797 8x8 images); the paper's MNIST run is ``--config`` away. Two
departures from the paper's optimisation keep every alpha from collapsing in its first steps
(``ucc_tune.train.schedule`` says why): ``lr=3e-4`` rather than 1e-3 on ``digits``, and a linear
warm-up over ``warmup_steps=100`` (paper: 0, ``--set warmup_steps=0``).

The module imports neither torch nor Ray: the model names are a ``Literal`` (kept equal to the
``ucc_tune.models.MODELS`` registry by a test) and the datasets come from ``ucc_tune.catalog``.
The command-line helpers for ``--set`` and ``--config`` are in ``ucc_tune.config_args``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

from ucc_tune.bounds import SEED_LIMIT
from ucc_tune.catalog import CATALOG

Normalization = Literal["per_image", "dataset", "none"]
ReconLoss = Literal["mse", "ssim", "ms_ssim", "mse+ssim"]
Device = Literal["auto", "cpu", "cuda"]
ClusterMethod = Literal["kmeans", "spectral", "kmedoids"]
ModelName = Literal["paper", "conv", "linear", "pca"]  # the keys of ucc_tune.models.MODELS
PaperPadding = Literal["keras", "symmetric"]  # stride-2 convs of model=paper: Keras 'same' or padding=1
FeatureInit = Literal["glorot", "data"]  # the feature layer: Glorot (paper) or calibrated on data
LRSchedule = Literal["constant", "cosine"]  # after the warm-up; constant is the paper's
Supervision = Literal["ucc", "instance"]  # bag labels (UCC) or the supervised baseline's instance labels
# the metrics a run may keep its best checkpoint by: ucc_tune.schema.OBJECTIVES (a test keeps them equal)
BestMetric = Literal[
    "cluster_acc", "cluster_nmi", "cluster_ari", "mean_clustering_score", "js_min", "js_mean",
    "val_ucc_acc", "val_loss",
]  # fmt: skip

CLUSTER_METHODS: tuple[str, ...] = get_args(ClusterMethod)
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
MODELS_WITH_DROPOUT: tuple[str, ...] = ("linear",)  # models whose encoder and decoder have dropout
DATASET_CLASSES: dict[str, int | None] = {name: facts.classes for name, facts in CATALOG.items()}


class ConfigError(ValueError):
    """An invalid configuration: the message names the bad value and what is allowed."""


@dataclass(frozen=True)
class Config:
    # --- data -----------------------------------------------------------------------------
    dataset: str = "digits"
    data_dir: str = "data"
    download: bool = False
    split_seed: int = 0
    val_fraction: float = 1 / 6  # paper MNIST: 10,000 of the 60,000 training images
    test_fraction: float = 0.2  # only for datasets without an official test split
    normalization: Normalization = "per_image"
    cache_dir: str = ""  # dataset-wide stats cache; "" = $XDG_CACHE_HOME/ucc_tune
    augment_flip: bool = False
    augment_rot90: bool = False
    augment_max_angle: float = 0.0  # degrees; 0 disables small-angle rotation

    # --- bags -----------------------------------------------------------------------------
    bag_size: int = 16  # paper: 32; digits' validation split holds only 30 images per class
    ucc_min: int = 1
    ucc_max: int = 4
    bags_per_label: int = 5  # paper: 5 bags per ucc label, 20 bags per step
    eval_bags_per_label: int = 50

    # --- model ----------------------------------------------------------------------------
    model: ModelName = "paper"
    num_features: int = 10
    num_bins: int = 11
    kde_sigma: float = 0.1
    kde_max_elements: int = 2**24  # above this B*n*J*bins the KDE runs in chunks
    head_hidden1: int = 384
    head_hidden2: int = 192
    head_dropout: float = 0.0
    encoder_dropout: float = 0.0  # dropout of the MODELS_WITH_DROPOUT
    feature_init: FeatureInit = "glorot"  # "data": z = fc(x) of mean 0, std feature_init_std on data
    feature_init_std: float = 1.0  # the spread "data" gives each feature's pre-sigmoid value
    paper_padding: PaperPadding = "keras"  # only model=paper reads it; "keras" runs ported weights exactly
    supervision: Supervision = "ucc"  # "instance": encoder -> features -> linear classifier, cross-entropy

    # --- loss -----------------------------------------------------------------------------
    alpha: float = 0.5
    recon_loss: ReconLoss = "mse"
    rcc_weight: float = 0.0
    consistency_weight: float = 0.0
    consistency_temperature: float = 0.1

    # --- optimisation ---------------------------------------------------------------------
    lr: float = 3e-4  # paper: 1e-4 (at 28x28, for 128,000 steps); 1e-3 collapses on digits
    warmup_steps: int = 100  # linear warm-up of the learning rate over the first steps; paper: 0
    lr_schedule: LRSchedule = "constant"  # after the warm-up; "cosine" decays to 0 by the last step
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    epochs: int = 10
    steps_per_epoch: int = 100
    best_metric: BestMetric = "cluster_acc"  # kept in checkpoints/best/, followed by early stopping
    patience: int = 0  # evaluations without an improvement of min_delta before stopping; 0: never
    min_delta: float = 0.0

    # --- evaluation -----------------------------------------------------------------------
    eval_every: int = 1
    cluster_methods: str = "kmeans"  # comma-separated, from CLUSTER_METHODS
    test_cluster_methods: str = "kmeans,spectral"
    eval_batch_size: int = 512
    cluster_pca: float = 0.0  # PCA before clustering: 0 off, >= 1 components, in (0, 1) variance kept

    # --- runtime --------------------------------------------------------------------------
    seed: int = 0
    seeds: int = 1  # a configuration trains on seeds seed .. seed+seeds-1 and reports their mean
    device: Device = "auto"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0  # Ray Train DDP workers; 0 runs in-process
    num_threads: int = 0  # torch intra-op threads; 0 = the CPUs given to the run
    checkpoint_every: int = 1
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), _field_types()[f.name])
        _validate(self)

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build a Config from a mapping, coercing strings; unknown keys are an error."""
        known = field_names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(known)}"
            )
        types_ = _field_types()
        return cls(**{k: coerce(k, v, types_[k]) for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> Config:
        path = Path(text_or_path)
        text = path.read_text() if path.suffix == ".json" else str(text_or_path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config JSON {str(text_or_path)[:80]!r} is not valid: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"config JSON must be an object of key: value, got {type(data).__name__}")
        return cls.from_dict(data)

    # -- derived values ---------------------------------------------------------------------
    @property
    def num_ucc_classes(self) -> int:
        return self.ucc_max - self.ucc_min + 1

    @property
    def bags_per_batch(self) -> int:
        return self.bags_per_label * self.num_ucc_classes

    @property
    def use_decoder(self) -> bool:
        return self.alpha < 1.0 and self.supervision == "ucc"

    @property
    def use_rcc(self) -> bool:
        return self.rcc_weight > 0 or self.consistency_weight > 0

    def cluster_method_list(self, test: bool = False) -> list[str]:
        return _split_methods(self.test_cluster_methods if test else self.cluster_methods)


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


# --- type checking and coercion ------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` (often a string from the command line) to the field type ``tp``."""
    if typing.get_origin(tp) is Literal:
        return str(value) if not isinstance(value, str) else value
    if tp is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ConfigError(f"{name}={value!r} is not a boolean; use one of true/false/1/0/yes/no")
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        return value
    if tp is int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    raise ConfigError(f"{name}={value!r} is not an integer") from None
                value = as_float
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise ConfigError(f"{name}={value!r} is not a number") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    return value


def _check_type(name: str, value: Any, tp: Any) -> None:
    if typing.get_origin(tp) is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")
        return
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }.get(tp)
    if ok is not None and not ok(value):
        raise ConfigError(f"{name}={value!r} must be of type {tp.__name__}, got {type(value).__name__}")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be a finite number")


# --- validation ----------------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _split_methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _validate(c: Config) -> None:
    _require(
        c.dataset in DATASET_CLASSES,
        f"dataset={c.dataset!r} is unknown; choose one of {', '.join(DATASET_CLASSES)}",
    )
    _require(c.split_seed >= 0, f"split_seed={c.split_seed} must be >= 0")
    _require(0 < c.val_fraction < 1, f"val_fraction={c.val_fraction} must be in (0, 1)")
    _require(0 < c.test_fraction < 1, f"test_fraction={c.test_fraction} must be in (0, 1)")
    _require(
        c.val_fraction + c.test_fraction < 1,
        f"val_fraction + test_fraction = {c.val_fraction + c.test_fraction:g} must be < 1 "
        "(something must be left to train on)",
    )
    _require(
        0 <= c.augment_max_angle <= 180,
        f"augment_max_angle={c.augment_max_angle} must be in [0, 180] degrees",
    )

    # bags
    num_classes = DATASET_CLASSES[c.dataset]
    _require(c.ucc_min >= 1, f"ucc_min={c.ucc_min} must be >= 1")
    _require(c.ucc_min <= c.ucc_max, f"ucc_min={c.ucc_min} must be <= ucc_max={c.ucc_max}")
    if num_classes is not None:
        _require(
            c.ucc_max <= num_classes,
            f"ucc_max={c.ucc_max} must be <= the {num_classes} classes of dataset {c.dataset!r}",
        )
    _require(c.bag_size >= 1, f"bag_size={c.bag_size} must be >= 1")
    _require(
        c.bag_size >= c.ucc_max,
        f"bag_size={c.bag_size} must be >= ucc_max={c.ucc_max} "
        "(a bag needs at least one instance of each of its classes)",
    )
    _require(c.bags_per_label >= 1, f"bags_per_label={c.bags_per_label} must be >= 1")
    _require(c.eval_bags_per_label >= 1, f"eval_bags_per_label={c.eval_bags_per_label} must be >= 1")

    # model
    _require(c.num_features >= 1, f"num_features={c.num_features} must be >= 1")
    _require(c.num_bins >= 2, f"num_bins={c.num_bins} must be >= 2")
    _require(c.kde_sigma > 0, f"kde_sigma={c.kde_sigma} must be > 0")
    _require(c.kde_max_elements >= 1, f"kde_max_elements={c.kde_max_elements} must be >= 1")
    _require(c.feature_init_std > 0, f"feature_init_std={c.feature_init_std} must be > 0")
    _require(c.head_hidden1 >= 1, f"head_hidden1={c.head_hidden1} must be >= 1")
    _require(c.head_hidden2 >= 1, f"head_hidden2={c.head_hidden2} must be >= 1")
    _require(0 <= c.head_dropout < 1, f"head_dropout={c.head_dropout} must be in [0, 1)")
    _require(0 <= c.encoder_dropout < 1, f"encoder_dropout={c.encoder_dropout} must be in [0, 1)")
    _require(
        c.encoder_dropout == 0 or c.model in MODELS_WITH_DROPOUT,
        f"encoder_dropout={c.encoder_dropout} would do nothing: model={c.model!r} has no dropout layers; "
        f"the models with dropout are {', '.join(MODELS_WITH_DROPOUT)}",
    )
    if c.supervision == "instance":  # alpha, recon_loss and the KDE/head sizes are ignored
        _require(
            c.rcc_weight == 0 and c.consistency_weight == 0,
            f"supervision='instance' trains no RCC head: rcc_weight={c.rcc_weight} and "
            f"consistency_weight={c.consistency_weight} must be 0",
        )
        _require(
            c.best_metric != "val_ucc_acc",
            "best_metric='val_ucc_acc' is not measured with supervision='instance' (no UCC head); "
            "choose a clustering metric or val_loss",
        )

    # loss
    _require(0 <= c.alpha <= 1, f"alpha={c.alpha} must be in [0, 1]")
    _require(c.rcc_weight >= 0, f"rcc_weight={c.rcc_weight} must be >= 0")
    _require(c.consistency_weight >= 0, f"consistency_weight={c.consistency_weight} must be >= 0")
    _require(
        c.consistency_temperature > 0,
        f"consistency_temperature={c.consistency_temperature} must be > 0",
    )

    # optimisation
    _require(c.lr > 0, f"lr={c.lr} must be > 0")
    _require(c.warmup_steps >= 0, f"warmup_steps={c.warmup_steps} must be >= 0 (0: no warm-up, as the paper)")
    _require(c.weight_decay >= 0, f"weight_decay={c.weight_decay} must be >= 0")
    _require(c.grad_clip >= 0, f"grad_clip={c.grad_clip} must be >= 0 (0 disables clipping)")
    _require(c.epochs >= 1, f"epochs={c.epochs} must be >= 1")
    _require(c.steps_per_epoch >= 1, f"steps_per_epoch={c.steps_per_epoch} must be >= 1")
    _require(c.patience >= 0, f"patience={c.patience} must be >= 0 (0: no early stopping)")
    _require(c.min_delta >= 0, f"min_delta={c.min_delta} must be >= 0")
    _require(
        c.patience == 0 or c.seeds == 1,
        f"patience={c.patience} stops one run early; a run of seeds={c.seeds} cannot (use seeds=1)",
    )

    # evaluation
    _require(c.eval_every >= 1, f"eval_every={c.eval_every} must be >= 1")
    for key in ("cluster_methods", "test_cluster_methods"):
        methods = _split_methods(getattr(c, key))
        _require(bool(methods), f"{key}={getattr(c, key)!r} must name at least one method")
        bad = [m for m in methods if m not in CLUSTER_METHODS]
        _require(
            not bad,
            f"{key}={getattr(c, key)!r}: unknown method(s) {', '.join(bad)}; "
            f"choose from {', '.join(CLUSTER_METHODS)}",
        )
    _require(c.eval_batch_size >= 1, f"eval_batch_size={c.eval_batch_size} must be >= 1")
    _require(
        c.cluster_pca == 0
        or 0 < c.cluster_pca < 1
        or (c.cluster_pca >= 1 and float(c.cluster_pca).is_integer()),
        f"cluster_pca={c.cluster_pca} must be 0 (no PCA), a whole number of components >= 1 "
        "or a fraction of the variance in (0, 1)",
    )
    _require(
        c.cluster_pca <= c.num_features,
        f"cluster_pca={c.cluster_pca:g} components but num_features={c.num_features}; at most that many",
    )

    # runtime
    _require(
        0 <= c.num_workers <= 1024, f"num_workers={c.num_workers} must be in [0, 1024] (0 runs in-process)"
    )
    _require(0 <= c.num_threads <= 4096, f"num_threads={c.num_threads} must be in [0, 4096] (0 = automatic)")
    _require(c.split_seed < SEED_LIMIT, f"split_seed={c.split_seed} must be below {SEED_LIMIT} (2**32)")
    _require(c.seed >= 0, f"seed={c.seed} must be >= 0")
    last = c.seed + c.seeds - 1 + 1000 * max(c.num_workers - 1, 0)  # a DDP rank r seeds seed + 1000 r
    _require(
        last < SEED_LIMIT,
        f"seed={c.seed} with seeds={c.seeds} and num_workers={c.num_workers}: the seeds used run up "
        f"to {last}, but the random generators take seeds below {SEED_LIMIT} (2**32)",
    )
    _require(c.seeds >= 1, f"seeds={c.seeds} must be >= 1 (the number of seeds a configuration trains on)")
    _require(c.checkpoint_every >= 1, f"checkpoint_every={c.checkpoint_every} must be >= 1")
    _require(c.keep_checkpoints >= 1, f"keep_checkpoints={c.keep_checkpoints} must be >= 1")
