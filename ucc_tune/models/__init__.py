"""Models: the KDE layer, encoders/decoders and the UCC wiring; ``MODELS`` names the architectures.

``build_model(config, image_shape, num_classes)`` is the one constructor of the UCC model: the
image shape and class count come from the loaded data, every other size from the ``Config``.
``build(...)``, what training calls, gives it, or with ``supervision="instance"`` the supervised
baseline (``InstanceClassifier``) on the same encoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from ucc_tune.config import MODELS_WITH_DROPOUT, dropout_problem
from ucc_tune.models import decoders, encoders
from ucc_tune.models.supervised import InstanceClassifier, InstanceOutput
from ucc_tune.models.ucc import UCCModel, UCCOutput

if TYPE_CHECKING:
    from ucc_tune.config import Config

# name -> (encoder class, decoder class); both take (image_shape, num_features), those of
# MODELS_WITH_DROPOUT also take dropout, and the paper encoder takes padding
MODELS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "paper": (encoders.PaperEncoder, decoders.PaperDecoder),
    "conv": (encoders.ConvEncoder, decoders.ConvDecoder),
    "linear": (encoders.LinearEncoder, decoders.LinearDecoder),
    "pca": (encoders.PCAEncoder, decoders.PCADecoder),
}
Model = UCCModel | InstanceClassifier  # what build returns


def build(config: Config, image_shape: tuple[int, int, int], num_classes: int) -> Model:
    """The model a run of ``config`` trains: the UCC model (``build_model``), or with
    ``supervision="instance"`` the supervised baseline on the same encoder."""
    if config.supervision == "instance":
        return InstanceClassifier(_encoder(config, image_shape), config.num_features, num_classes)
    return build_model(config, image_shape, num_classes)


def _encoder(config: Config, image_shape: tuple[int, int, int]) -> nn.Module:
    extra = {"dropout": config.encoder_dropout} if config.model in MODELS_WITH_DROPOUT else {}
    padding = {"padding": config.paper_padding} if config.model == "paper" else {}
    return MODELS[config.model][0](image_shape, config.num_features, **extra, **padding)


def build_model(config: Config, image_shape: tuple[int, int, int], num_classes: int) -> UCCModel:
    """The UCC model of ``config.model``; no decoder is built at all when ``alpha == 1``.

    ``config.encoder_dropout`` goes to the encoder and decoder of the ``MODELS_WITH_DROPOUT``;
    asking another model for ``encoder_dropout > 0`` is a ValueError, not a silent no-op.
    ``config.paper_padding`` goes to the ``paper`` encoder (its stride-2 convolutions).
    """
    if config.model not in MODELS:
        raise ValueError(f"model={config.model!r} is unknown; choose one of {', '.join(MODELS)}")
    has_dropout = config.model in MODELS_WITH_DROPOUT
    if problem := dropout_problem(config.model, config.encoder_dropout):
        raise ValueError(problem)
    extra = {"dropout": config.encoder_dropout} if has_dropout else {}
    encoder = _encoder(config, image_shape)  # before the decoder: the seed's draws keep their order
    decoder_cls = MODELS[config.model][1]
    decoder = decoder_cls(image_shape, config.num_features, **extra) if config.use_decoder else None
    return UCCModel(
        encoder,
        decoder,
        num_features=config.num_features,
        num_bins=config.num_bins,
        kde_sigma=config.kde_sigma,
        num_ucc_classes=config.num_ucc_classes,
        num_classes=num_classes,
        head_hidden=(config.head_hidden1, config.head_hidden2),
        head_dropout=config.head_dropout,
        use_rcc=config.use_rcc,
        kde_max_elements=config.kde_max_elements,
    )


__all__ = [
    "MODELS",
    "MODELS_WITH_DROPOUT",
    "InstanceClassifier",
    "InstanceOutput",
    "Model",
    "UCCModel",
    "UCCOutput",
    "build",
    "build_model",
]
