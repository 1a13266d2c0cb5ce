"""Decoders ``f -> x``: ``(N, J)`` features back to ``(N, C, H, W)`` images, linear output.

The images are standardised (mean 0, std 1), so every decoder ends linearly. ``PaperDecoder``
mirrors the UCC feature extractor as in the authors' code: a dense layer to ``128 x H/4 x W/4``
and three pre-activation residual blocks with nearest-neighbour upsampling. Upsampling goes to
the encoder's exact intermediate sizes, so odd sizes (28 -> 14 -> 7) round-trip too. Only
``LinearDecoder`` has dropout layers, so only it takes a ``dropout`` argument.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ucc_tune.models.encoders import ImageShape, cpu_channels_last, downsampled, init_weights


def upsample_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="nearest")``. On the CPU, whole-number factors from inputs
    of at least 7x7 pixels (MNIST's 7 -> 14 -> 28) run as a broadcast copy, 2-5x faster than
    the interpolate kernel there (``benchmarks/upsample.py``). Smaller inputs (``digits``' 2x2
    and 4x4) stay on the kernel: there the whole training step was a few percent faster with it.
    Other sizes and devices, and channels-last inputs (which the kernel keeps channels-last),
    use ``F.interpolate``."""
    n, c, h, w = x.shape
    fh, fw = size[0] // h, size[1] // w
    whole = fh >= 1 and fw >= 1 and (fh * h, fw * w) == tuple(size)
    if x.device.type != "cpu" or h * w < 49 or not whole or not x.is_contiguous():
        return F.interpolate(x, size=size, mode="nearest")
    return x[:, :, :, None, :, None].expand(n, c, h, fh, w, fw).reshape(n, c, h * fh, w * fw)


def upsample2x_conv_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The ``conv_transpose2d(stride=2, padding=1)`` kernel ``(in, out, 4, 4)`` that equals nearest
    2x upsampling followed by the 3x3 convolution ``weight`` ``(out, in, 3, 3)`` with padding 1.

    Along one axis, with taps ``w0, w1, w2`` on offsets -1, 0, +1: output row ``2i`` reads the
    upsampled rows ``2i-1, 2i, 2i+1``, which are input rows ``i-1, i, i``, so it is
    ``w0 x[i-1] + (w1 + w2) x[i]``; row ``2i+1`` is ``(w0 + w1) x[i] + w2 x[i+1]``. Input row ``i``
    thus feeds output rows ``2i-1 .. 2i+2`` with the weights ``w2, w1 + w2, w0 + w1, w0``: a
    stride-2 transposed convolution with that 4-tap kernel, cropped by 1 on each side. The zero
    padding of the upsampled image is the zero padding of the input, so the borders agree too.
    Per output pixel this is 4 taps instead of 9.
    """

    def fold(w: torch.Tensor, dim: int) -> torch.Tensor:
        w0, w1, w2 = w.unbind(dim)
        return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

    return fold(fold(weight, -2), -1).transpose(0, 1)


class UpBlock(nn.Module):
    """``a = upsample(ReLU(h))``; main ``conv3x3 -> ReLU -> conv3x3``; shortcut ``a`` or 1x1 conv.

    On the CPU, when ``size`` doubles the input exactly, ``a`` is never upsampled: the first
    convolution runs as one transposed convolution on the small ``a`` (``upsample2x_conv_kernel``),
    and the shortcut (the identity or a 1x1 convolution, both of which commute with nearest
    upsampling) is computed on the small ``a`` and broadcast over each 2x2 block in the sum.
    The parameters are those of the plain computation, which other sizes and devices use.
    """

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int] | None):
        super().__init__()
        self.size = size
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = F.relu(h)
        n, _, height, width = a.shape
        if a.device.type != "cpu" or self.size != (2 * height, 2 * width):
            if self.size is not None:
                a = upsample_nearest(a, self.size)
            return self.conv2(F.relu(self.conv1(a), inplace=True)) + self.shortcut(a)
        kernel = upsample2x_conv_kernel(self.conv1.weight)
        main = F.conv_transpose2d(a, kernel, self.conv1.bias, stride=2, padding=1)
        main = self.conv2(F.relu(main, inplace=True))
        shortcut = self.shortcut(a)[:, :, :, None, :, None]  # (N, C, h, 1, w, 1)
        c = main.shape[1]
        return (main.view(n, c, height, 2, width, 2) + shortcut).view(n, c, 2 * height, 2 * width)


class PaperDecoder(nn.Module):
    """The UCC decoder; 513,217 parameters at 28x28x1 with J=10, as the authors' model."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        c, h, w = image_shape
        self.start = (128, downsampled(h, 2), downsampled(w, 2))
        self.fc = nn.Linear(num_features, math.prod(self.start))
        self.blocks = nn.Sequential(
            UpBlock(128, 128, (downsampled(h, 1), downsampled(w, 1))),
            UpBlock(128, 64, (h, w)),
            UpBlock(64, 32, None),
        )
        self.out = nn.Conv2d(32, c, 3, padding=1)
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = cpu_channels_last(self.fc(f).view(-1, *self.start))  # (N, 128, H/4, W/4)
        return self.out(F.relu(self.blocks(h)))


class ConvDecoder(nn.Module):
    """Mirror of ``ConvEncoder``: linear to ``64 x H/4 x W/4``, two upsample + conv stages."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        c, h, w = image_shape
        self.start = (64, downsampled(h, 2), downsampled(w, 2))
        self.mid_size = (downsampled(h, 1), downsampled(w, 1))
        self.size = (h, w)
        self.fc = nn.Linear(num_features, math.prod(self.start))
        self.conv1 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, c, 3, padding=1)
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(f)).view(-1, *self.start)
        h = F.relu(self.conv1(upsample_nearest(h, self.mid_size)))
        return self.conv2(upsample_nearest(h, self.size))


class LinearDecoder(nn.Module):
    """Mirror of ``LinearEncoder``: J, 256, 512, C*H*W."""

    def __init__(self, image_shape: ImageShape, num_features: int, dropout: float = 0.0):
        super().__init__()
        self.shape = image_shape
        self.net = nn.Sequential(
            nn.Linear(num_features, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, math.prod(image_shape)),
        )
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).view(-1, *self.shape)


class PCADecoder(nn.Module):
    """One linear layer back to pixels."""

    def __init__(self, image_shape: ImageShape, num_features: int):
        super().__init__()
        self.shape = image_shape
        self.fc = nn.Linear(num_features, math.prod(image_shape))
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f).view(-1, *self.shape)
