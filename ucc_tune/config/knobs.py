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

The module imports neither torch nor Ray: the closed choices are ``ucc_tune.config.choices``, the
rules ``ucc_tune.config.checks`` and the datasets ``ucc_tune.catalog``.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ucc_tune.config.checks import ConfigError, check_type, coerce, first_method, split_methods, validate
from ucc_tune.config.choices import (
    BestMetric,
    Device,
    FeatureInit,
    LRSchedule,
    ModelName,
    Normalization,
    PaperPadding,
    ReconLoss,
    Supervision,
)


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
            check_type(f.name, getattr(self, f.name), _field_types()[f.name])
        validate(self)

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

    @property
    def cluster_method(self) -> str:
        """The clustering method of the per-epoch scores (``cluster_acc``, ...): the first one."""
        return str(first_method(self.cluster_methods))

    def cluster_method_list(self, test: bool = False) -> list[str]:
        return split_methods(self.test_cluster_methods if test else self.cluster_methods)


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Config)
