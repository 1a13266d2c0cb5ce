"""What makes a ``Config`` valid: each field's type (strings from the command line coerced to
it) and the rules of every section, each failing with a ``ConfigError`` that names the bad value
and what is allowed.
"""

from __future__ import annotations

import math
import typing
from typing import TYPE_CHECKING, Any, Literal, get_args

from ucc_tune.bounds import SEED_LIMIT
from ucc_tune.catalog import CATALOG
from ucc_tune.config.choices import CLUSTER_METHODS, MODELS_WITH_DROPOUT

if TYPE_CHECKING:
    from ucc_tune.config.knobs import Config


class ConfigError(ValueError):
    """An invalid configuration: the message names the bad value and what is allowed."""


# --- types and coercion ---------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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


def check_type(name: str, value: Any, tp: Any) -> None:
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


# --- the rules, by section -------------------------------------------------------------------


def validate(c: Config) -> None:
    """Every rule of every section of ``c``: the first broken one raises ``ConfigError``."""
    for section in (
        _validate_data,
        _validate_bags,
        _validate_model,
        _validate_loss,
        _validate_optimisation,
        _validate_evaluation,
        _validate_runtime,
    ):
        section(c)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def split_methods(text: str) -> list[str]:
    """The clustering methods of a comma-separated field, in order."""
    return [m.strip() for m in text.split(",") if m.strip()]


def dropout_problem(model: str, encoder_dropout: float) -> str | None:
    """Why ``encoder_dropout`` cannot go with ``model`` (it would do nothing), or None."""
    if encoder_dropout == 0 or model in MODELS_WITH_DROPOUT:
        return None
    return (
        f"encoder_dropout={encoder_dropout} would do nothing: model={model!r} has no dropout layers; "
        f"the models with dropout are {', '.join(MODELS_WITH_DROPOUT)}"
    )


def first_method(text: str) -> str | None:
    """The first of a comma-separated list of clustering methods: the one a run's per-epoch
    scores (``cluster_acc``, ...) use; None when it names none."""
    methods = split_methods(text)
    return methods[0] if methods else None


def _validate_data(c: Config) -> None:
    _require(
        c.dataset in CATALOG,
        f"dataset={c.dataset!r} is unknown; choose one of {', '.join(CATALOG)}",
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


def _validate_bags(c: Config) -> None:
    num_classes = CATALOG[c.dataset].classes
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


def _validate_model(c: Config) -> None:
    _require(c.num_features >= 1, f"num_features={c.num_features} must be >= 1")
    _require(c.num_bins >= 2, f"num_bins={c.num_bins} must be >= 2")
    _require(c.kde_sigma > 0, f"kde_sigma={c.kde_sigma} must be > 0")
    _require(c.kde_max_elements >= 1, f"kde_max_elements={c.kde_max_elements} must be >= 1")
    _require(c.feature_init_std > 0, f"feature_init_std={c.feature_init_std} must be > 0")
    _require(c.head_hidden1 >= 1, f"head_hidden1={c.head_hidden1} must be >= 1")
    _require(c.head_hidden2 >= 1, f"head_hidden2={c.head_hidden2} must be >= 1")
    _require(0 <= c.head_dropout < 1, f"head_dropout={c.head_dropout} must be in [0, 1)")
    _require(0 <= c.encoder_dropout < 1, f"encoder_dropout={c.encoder_dropout} must be in [0, 1)")
    _require(not (problem := dropout_problem(c.model, c.encoder_dropout)), problem or "")
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


def _validate_loss(c: Config) -> None:
    _require(0 <= c.alpha <= 1, f"alpha={c.alpha} must be in [0, 1]")
    _require(c.rcc_weight >= 0, f"rcc_weight={c.rcc_weight} must be >= 0")
    _require(c.consistency_weight >= 0, f"consistency_weight={c.consistency_weight} must be >= 0")
    _require(
        c.consistency_temperature > 0,
        f"consistency_temperature={c.consistency_temperature} must be > 0",
    )


def _validate_optimisation(c: Config) -> None:
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


def _validate_evaluation(c: Config) -> None:
    _require(c.eval_every >= 1, f"eval_every={c.eval_every} must be >= 1")
    for key in ("cluster_methods", "test_cluster_methods"):
        methods = split_methods(getattr(c, key))
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


def _validate_runtime(c: Config) -> None:
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
