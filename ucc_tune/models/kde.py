"""KDE pooling (Oner et al., ICLR 2020, UCC_NOTES 1.3): a bag's features -> per-feature histograms.

Temporary minimal version; replaced by the full implementation.
"""

from __future__ import annotations

import torch
from torch import nn


def kde(features: torch.Tensor, num_bins: int, sigma: float, max_elements: int = 2**24) -> torch.Tensor:
    """``(B, n, J)`` features in (0, 1) -> ``(B, J, num_bins)`` histograms summing to 1."""
    bins = torch.linspace(0, 1, num_bins, device=features.device, dtype=features.dtype)
    diff = bins.view(1, 1, 1, -1) - features.unsqueeze(-1)  # (B, n, J, bins)
    density = torch.exp(-diff.square() / (2 * sigma**2)).sum(1)  # (B, J, bins)
    return density / density.sum(-1, keepdim=True).clamp_min(1e-30)


class KDE(nn.Module):
    def __init__(self, num_bins: int, sigma: float, max_elements: int = 2**24):
        super().__init__()
        self.num_bins, self.sigma, self.max_elements = num_bins, sigma, max_elements

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return kde(features, self.num_bins, self.sigma, self.max_elements)
