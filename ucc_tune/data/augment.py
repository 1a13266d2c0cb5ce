"""Per-instance augmentation of batched images: flips, 90-degree and small-angle rotations.

Applied to training bags only (the UCC authors trained their Camelyon model with rot90/flip
augmentation). Every instance gets its own random transform; everything is a batched tensor
operation, so it runs on the device that holds the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_flips(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of ``(N, C, H, W)`` horizontally and vertically, each with probability 1/2."""
    n = x.shape[0]
    flip_h = torch.rand(n, generator=generator, device=x.device) < 0.5
    flip_v = torch.rand(n, generator=generator, device=x.device) < 0.5
    x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
    return torch.where(flip_v[:, None, None, None], x.flip(-2), x)


def random_rot90(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each square image of ``(N, C, H, W)`` by a random multiple of 90 degrees."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"90-degree rotations need square images, got {tuple(x.shape[-2:])}")
    turns = torch.randint(0, 4, (x.shape[0],), generator=generator, device=x.device)
    out = x
    for k in (1, 2, 3):
        out = torch.where((turns == k)[:, None, None, None], torch.rot90(x, k, dims=(-2, -1)), out)
    return out


def random_rotation(
    x: torch.Tensor, max_degrees: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate each image by an angle uniform in ``[-max_degrees, max_degrees]`` (bilinear).

    Pixels rotated in from outside the image take the image's own minimum value (the
    background of a standardised digit), not 0, which would be mid-grey after standardisation.
    """
    n = x.shape[0]
    angles = (torch.rand(n, generator=generator, device=x.device) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)
    rotated = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated + background


def augment(
    x: torch.Tensor,
    flip: bool,
    rot90: bool,
    max_angle: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply the enabled augmentations to ``(..., C, H, W)`` images, each instance independently."""
    if not (flip or rot90 or max_angle > 0):
        return x
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    if flip:
        flat = random_flips(flat, generator)
    if rot90:
        flat = random_rot90(flat, generator)
    if max_angle > 0:
        flat = random_rotation(flat, max_angle, generator)
    return flat.reshape(shape)
