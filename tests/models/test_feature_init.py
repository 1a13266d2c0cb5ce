"""The feature layer calibrated on data: its outputs' mean and spread over the images, per model
and input size, against the definition (and Glorot's small spread it replaces)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ucc_tune.models import MODELS
from ucc_tune.models.feature_init import calibrate, feature_layer

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def _pre_sigmoid(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out: list[torch.Tensor] = []
    hook = feature_layer(encoder).register_forward_hook(lambda _m, _i, z: out.append(z.detach()))
    with torch.no_grad():
        encoder(images)
    hook.remove()
    return out[0]


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("shape", SHAPES)
def test_calibrated_outputs_have_mean_zero_and_the_asked_spread(
    model: str, shape: tuple[int, int, int]
) -> None:
    torch.manual_seed(0)
    encoder = MODELS[model][0](shape, 10)
    images = torch.randn(256, *shape).abs()  # nonnegative, like the standardised digits' strokes
    glorot = _pre_sigmoid(encoder, images)
    calibrate(encoder, images, std=1.5)
    z = _pre_sigmoid(encoder, images)  # (N, J)
    assert torch.allclose(z.mean(0), torch.zeros(10), atol=1e-4)
    assert torch.allclose(z.std(0), torch.full((10,), 1.5), rtol=1e-4)
    assert glorot.std(0).mean() < 1.0  # Glorot's spread over images is far smaller
    # the features the KDE sees now spread over several of its 0.1-wide bins
    assert torch.sigmoid(z).std(0).min() > 0.15


def test_the_paper_layer_without_bias_is_centred_by_projection() -> None:
    torch.manual_seed(1)
    encoder = MODELS["paper"][0]((1, 8, 8), 10)
    assert feature_layer(encoder).bias is None
    images = torch.randn(64, 1, 8, 8)
    calibrate(encoder, images, std=1.0)
    assert feature_layer(encoder).bias is None
    x: list[torch.Tensor] = []
    hook = feature_layer(encoder).register_forward_hook(lambda _m, i, _z: x.append(i[0]))
    with torch.no_grad():
        encoder(images)
    hook.remove()
    mean_input = x[0].mean(0)  # every weight row is orthogonal to the mean input
    assert torch.allclose(feature_layer(encoder).weight @ mean_input, torch.zeros(10), atol=1e-4)
