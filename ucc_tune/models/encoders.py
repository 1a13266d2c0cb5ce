"""Encoders ``x -> f``: ``(N, C, H, W)`` images to ``(N, J)`` features in (0, 1).

Every encoder ends in a sigmoid so that the features lie in the KDE layer's support [0, 1].
``PaperEncoder`` is the UCC feature extractor of the authors' code (Oner et al., ICLR 2020): a
pre-activation residual network of widths 16-32-64-128 with two stride-2 stages, no batch norm
and no dropout, whose shortcuts widen by zero-padding channels; the others are baselines. Only
``LinearEncoder`` has dropout layers, so only it takes a ``dropout`` argument.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ImageShape = tuple[int, int, int]  # (C, H, W)


def downsampled(size: int, stages: int) -> int:
    """Spatial size after ``stages`` stride-2 3x3 convolutions with padding 1."""
    for _ in range(stages):
        size = math.ceil(size / 2)
    return size


def pad_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero-pad ``(N, c, H, W)`` to ``channels`` channels (the paper's widening shortcut)."""
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


def init_weights(module: nn.Module) -> None:
    """Glorot-uniform weights; conv biases 0.1 and linear biases 0, as the Keras original."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.1 if isinstance(m, nn.Conv2d) else 0.0)


class PreActBlock(nn.Module):
    """``a = ReLU(h)``; main ``conv3x3(stride) -> ReLU -> conv3x3``; shortcut widens ``a``.

    The shortcut is ``a`` itself (stride 1) or a strided 1x1 conv keeping ``c_in`` channels
    (stride 2), zero-padded to ``c_out`` channels. No ReLU after the second conv.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_out = c_out
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_in, 1, stride=stride) if stride != 1 else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = F.relu(h)
        main = self.conv2(F.relu(self.conv1(a)))
        return main + pad_channels(self.shortcut(a), self.c_out)


class PaperEncoder(nn.Module):
    """The UCC feature extractor; 358,848 parameters at 28x28x1 with J=10, as the authors' model."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        c, h, w = image_shape
        self.stem = nn.Conv2d(c, 16, 3, padding=1)
        self.blocks = nn.Sequential(PreActBlock(16, 32, 1), PreActBlock(32, 64, 2), PreActBlock(64, 128, 2))
        flat = 128 * downsampled(h, 2) * downsampled(w, 2)
        self.fc = nn.Linear(flat, num_features, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(self.stem(x)))  # (N, 128, H/4, W/4)
        # the original flattens channels-last; the order only matters when porting weights
        return torch.sigmoid(self.fc(h.flatten(1)))


class ConvEncoder(nn.Module):
    """A small convolutional encoder: two stride-2 conv stages and a linear bottleneck."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        c, h, w = image_shape
        self.convs = nn.Sequential(
            nn.Conv2d(c, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(64 * downsampled(h, 2) * downsampled(w, 2), num_features)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(self.convs(x).flatten(1)))


class LinearEncoder(nn.Module):
    """A multi-layer perceptron: flatten, 512, 256, J with ReLU and dropout."""

    def __init__(self, image_shape: ImageShape, num_features: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, num_features),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class PCAEncoder(nn.Module):
    """One linear layer (a PCA-like baseline) followed by the sigmoid."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        self.fc = nn.Linear(math.prod(image_shape), num_features)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x.flatten(1)))
