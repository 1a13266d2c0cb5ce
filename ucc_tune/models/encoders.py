"""Encoders ``x -> f``: ``(N, C, H, W)`` images to ``(N, J)`` features in (0, 1).

Every encoder ends in a sigmoid so that the features lie in the KDE layer's support [0, 1].
``PaperEncoder`` is the UCC feature extractor of the authors' code (Oner et al., ICLR 2020): a
pre-activation residual network of widths 16-32-64-128 with two stride-2 stages, no batch norm
and no dropout, whose shortcuts widen by zero-padding channels; the others are baselines. Only
``LinearEncoder`` has dropout layers, so only it takes a ``dropout`` argument.

Keras' 'same' padding of a stride-2 3x3 convolution is not PyTorch's ``padding=1``: on an even
size it pads 0 pixels before and 1 after, so every output pixel sees a window shifted by one
pixel. ``PaperEncoder(padding="keras")`` pads that way and so computes what the authors'
weights were trained with; ``"symmetric"`` is ``padding=1``. Both give the same output sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ImageShape = tuple[int, int, int]  # (C, H, W)


def downsampled(size: int, stages: int) -> int:
    """Spatial size after ``stages`` stride-2 3x3 convolutions with 'same' padding of either kind."""
    for _ in range(stages):
        size = math.ceil(size / 2)
    return size


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding (before, after) of one axis: just enough for an output of
    ``ceil(size / stride)``, the odd pixel after (stride 2, kernel 3: (0, 1) on even sizes)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero-pad ``(N, c, H, W)`` to ``channels`` channels (the paper's widening shortcut)."""
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory order on the CPU (same values), unchanged elsewhere.

    The CPU's oneDNN convolutions, forward and backward, run faster on channels-last activations,
    and every convolution, pad, ReLU and sum keeps that order, so one conversion at the start of
    a network suffices. On CUDA the memory format is left to the caller."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


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
    (stride 2), zero-padded to ``c_out`` channels. No ReLU after the second conv. ``padding``
    says how a stride-2 ``conv1`` pads: ``"keras"`` (``same_padding``) or ``"symmetric"`` (1).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, padding: str = "keras"):
        super().__init__()
        if padding not in ("keras", "symmetric"):
            raise ValueError(f"padding={padding!r} is unknown; choose keras or symmetric")
        self.c_out, self.stride = c_out, stride
        self.keras_pad = padding == "keras" and stride != 1  # at stride 1 both pad 1 on every side
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=0 if self.keras_pad else 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_in, 1, stride=stride) if stride != 1 else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = F.relu(h)
        x = a
        if self.keras_pad:
            top, bottom = same_padding(a.shape[-2], 3, self.stride)
            left, right = same_padding(a.shape[-1], 3, self.stride)
            x = F.pad(a, (left, right, top, bottom))
        main = self.conv2(F.relu(self.conv1(x)))
        return main + pad_channels(self.shortcut(a), self.c_out)


class PaperEncoder(nn.Module):
    """The UCC feature extractor; 358,848 parameters at 28x28x1 with J=10, as the authors' model.

    ``padding``: ``"keras"`` (the authors' stride-2 padding) or ``"symmetric"`` (``padding=1``).
    """

    def __init__(self, image_shape: ImageShape, num_features: int, padding: str = "keras"):
        super().__init__()
        c, h, w = image_shape
        self.stem = nn.Conv2d(c, 16, 3, padding=1)
        self.blocks = nn.Sequential(
            PreActBlock(16, 32, 1, padding), PreActBlock(32, 64, 2, padding), PreActBlock(64, 128, 2, padding)
        )
        self.grid = (downsampled(h, 2), downsampled(w, 2))  # spatial size before the flatten
        self.fc = nn.Linear(128 * self.grid[0] * self.grid[1], num_features, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last from the stem's output on: a 1-channel image has no distinct channels-last order
        h = F.relu(self.blocks(cpu_channels_last(self.stem(x))))  # (N, 128, H/4, W/4)
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
