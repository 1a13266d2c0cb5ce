"""The feature layer initialised to the scale of its input: a data-dependent start for the sigmoid.

Glorot initialisation sizes a layer's weights by its fan-in, not by what its input holds. The
encoders' last activations are ReLU outputs, all >= 0 and dominated by a mean shared by every
image, so under Glorot the feature layer's outputs ``z`` differ little between images: on
``digits`` the ``paper`` encoder's ``z`` has a spread over images of about 0.09, its features
``sigmoid(z)`` about 0.02, a fifth of the KDE bandwidth, and every bag's histograms start nearly
the same (the UCC head sees no difference to learn from).

``calibrate`` looks at the feature layer's input ``x`` on a sample of training images and
rescales the layer so that each ``z_j`` has mean 0 and standard deviation ``std`` over the
sample: it removes the sample mean (through the bias, or, for the paper's layer without bias,
by projecting each weight row onto the complement of the mean input ``mu``:
``w <- w - (w . mu / |mu|^2) mu``), then divides each row by its output's spread. The
directions of the rows stay Glorot's random ones.
"""

from __future__ import annotations

import torch
from torch import nn


def feature_layer(encoder: nn.Module) -> nn.Linear:
    """The encoder's last ``nn.Linear``: the layer whose output the sigmoid turns into features."""
    layers = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(encoder).__name__} has no linear feature layer to calibrate")
    return layers[-1]


@torch.no_grad()
def calibrate(encoder: nn.Module, images: torch.Tensor, std: float) -> None:
    """Rescale ``encoder``'s feature layer in place so that its outputs on ``images``
    ``(N, C, H, W)`` have mean 0 and standard deviation ``std`` per feature (see the module)."""
    layer = feature_layer(encoder)
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    was_training = encoder.training
    try:
        encoder.eval()
        encoder(images)
    finally:
        hook.remove()
        encoder.train(was_training)
    x = seen[0].flatten(1).float()  # (N, D)
    mu = x.mean(0)  # (D,)
    w = layer.weight
    if layer.bias is None:
        w -= torch.outer(w @ mu, mu) / (mu @ mu).clamp_min(1e-12)
    z = x @ w.T  # (N, J), before any bias
    w *= (std / z.std(0).clamp_min(1e-12)).unsqueeze(1)
    if layer.bias is not None:
        layer.bias.copy_(-(w @ mu))
