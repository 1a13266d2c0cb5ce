"""KDE pooling: a bag's instance features -> one smoothed histogram per feature.

Oner, Lee, Sung, "Weakly Supervised Clustering by Exploiting Unique Class Count", ICLR 2020
(formula as coded by the authors). For features ``f[b, i, j]`` in (0, 1) and bin centres
``v_k = linspace(0, 1, num_bins)``::

    p~[b, j, k] = sum_i exp(-(v_k - f[b, i, j])^2 / (2 sigma^2))
    p[b, j, k]  = p~[b, j, k] / sum_k' p~[b, j, k']

The paper's kernel constant and 1/n factor cancel in the normalisation, so they are left out.

Numerics and memory:

- Computed in float32 at least (float64 stays float64); the result is cast back to the input
  dtype, so a bf16/fp16 model keeps one dtype throughout (the rounding then happens once, on the
  final probabilities).
- Before exponentiating, the squared distance from each feature's closest (instance, bin) pair
  is subtracted per ``(b, j)``. That multiplies ``p~[b, j, :]`` by a constant, which the
  normalisation cancels, so the result is the same; without it, a small ``sigma`` (e.g. 0.01 with
  5 bins, squared distance / 2 sigma^2 = 78 midway between bins) underflows every kernel value in
  float32. A tiny epsilon (the dtype's smallest normal number) in the denominator still keeps the
  result finite, an all-zero histogram rather than NaN, if the sums underflow anyway.
- One ``(B, n, J, num_bins)`` broadcast when ``B * n * J * num_bins <= max_elements``; above that,
  chunks of whole bags, or of instances within one bag when a single bag is too large, with the
  unnormalised sums accumulated. Each live intermediate then holds at most ``max_elements``
  elements (a few of them exist at once). With gradients on, chunks are checkpointed (recomputed
  in the backward pass) so that autograd does not keep every chunk's intermediates alive.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _check_arguments(num_bins: int, sigma: float, max_elements: int) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f"num_bins={num_bins!r} must be an integer >= 2 (bins span [0, 1])")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma={sigma!r} must be a finite number > 0 (the Gaussian kernel width)")
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise ValueError(f"max_elements={max_elements!r} must be an integer >= 1")


def _kernel_sums(
    features: torch.Tensor, bins: torch.Tensor, shift: torch.Tensor, scale: float
) -> torch.Tensor:
    """``(b, m, J)`` features -> ``(b, J, K)`` sums over instances of ``exp(-scale * (d^2 - shift))``."""
    sq_dist = (bins - features.unsqueeze(-1)).square()  # (b, m, J, K)
    return torch.exp((sq_dist - shift.unsqueeze(1)).mul(-scale)).sum(1)  # (b, J, K)


def _closest_sq_dist(features: torch.Tensor, num_bins: int) -> torch.Tensor:
    """``(B, n, J)`` -> ``(B, J, 1)``: smallest squared distance from any instance to any bin."""
    step = 1.0 / (num_bins - 1)
    nearest = (features / step).round().clamp(0, num_bins - 1) * step
    return (features - nearest).square().amin(dim=1).unsqueeze(-1)


def kde(features: torch.Tensor, num_bins: int, sigma: float, max_elements: int = 2**24) -> torch.Tensor:
    """Gaussian-kernel histograms of every feature over the instances of each bag.

    Args:
        features: ``(B, n, J)``, values in (0, 1), any device and floating dtype.
        num_bins: number of bin centres ``linspace(0, 1, num_bins)``, >= 2.
        sigma: kernel width, > 0.
        max_elements: largest ``(bags, instances, J, num_bins)`` block formed at once.

    Returns:
        ``(B, J, num_bins)`` in the input dtype; each ``[b, j, :]`` sums to 1. Differentiable.
    """
    _check_arguments(num_bins, sigma, max_elements)
    if features.dim() != 3:
        raise ValueError(f"features must be (bags, instances, features), got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"features must be floating point, got dtype {features.dtype}")
    b, n, j = features.shape
    if n == 0:
        raise ValueError("every bag needs at least one instance, got features of shape (B, 0, J)")
    if b == 0:
        return features.new_zeros((0, j, num_bins))

    compute_dtype = torch.promote_types(features.dtype, torch.float32)
    f = features.to(compute_dtype)
    bins = torch.linspace(0, 1, num_bins, device=f.device, dtype=compute_dtype)
    with torch.no_grad():  # a per-(b, j) constant factor: it cancels, so no gradient flows through it
        shift = _closest_sq_dist(f, num_bins)  # (B, J, 1)
    scale = 1.0 / (2.0 * sigma**2)

    per_instance = j * num_bins
    instances_per_chunk = min(n, max(1, max_elements // per_instance))
    bags_per_chunk = max(1, max_elements // (n * per_instance)) if instances_per_chunk == n else 1
    chunked = bags_per_chunk < b or instances_per_chunk < n
    recompute = chunked and torch.is_grad_enabled() and f.requires_grad

    def kernel_sums(chunk: torch.Tensor, chunk_shift: torch.Tensor) -> torch.Tensor:
        if recompute:
            return checkpoint(_kernel_sums, chunk, bins, chunk_shift, scale, use_reentrant=False)
        return _kernel_sums(chunk, bins, chunk_shift, scale)

    bag_sums = []
    for b0 in range(0, b, bags_per_chunk):
        bag_f, bag_shift = f[b0 : b0 + bags_per_chunk], shift[b0 : b0 + bags_per_chunk]
        parts = [
            kernel_sums(bag_f[:, i0 : i0 + instances_per_chunk], bag_shift)
            for i0 in range(0, n, instances_per_chunk)
        ]
        bag_sums.append(parts[0] if len(parts) == 1 else torch.stack(parts).sum(0))
    sums = bag_sums[0] if len(bag_sums) == 1 else torch.cat(bag_sums)  # (B, J, K)

    eps = torch.finfo(compute_dtype).tiny
    return (sums / (sums.sum(-1, keepdim=True) + eps)).to(features.dtype)


class KDE(nn.Module):
    """``(B, n, J)`` features -> ``(B, J, num_bins)`` histograms: a module around :func:`kde`."""

    def __init__(self, num_bins: int, sigma: float, max_elements: int = 2**24):
        super().__init__()
        _check_arguments(num_bins, sigma, max_elements)
        self.num_bins, self.sigma, self.max_elements = num_bins, sigma, max_elements

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return kde(features, self.num_bins, self.sigma, self.max_elements)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}, sigma={self.sigma}, max_elements={self.max_elements}"
