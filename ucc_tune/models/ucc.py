"""The UCC model: encoder per instance, KDE pooling per bag, UCC head, optional RCC head and decoder.

Oner, Lee, Sung, "Weakly Supervised Clustering by Exploiting Unique Class Count", ICLR 2020.
A bag ``(B, n, C, H, W)`` is encoded instance by instance into ``(B, n, J)`` features, pooled by
the KDE layer into ``J`` histograms of ``num_bins`` bins, and the UCC head maps the flattened
``J * num_bins`` vector to logits over the ucc labels. The decoder (absent when ``alpha == 1``)
reconstructs every instance from its features; the RCC head (present when its loss is used)
predicts the fraction of the bag's instances in each class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ucc_tune.models.kde import KDE


class UCCOutput(NamedTuple):
    """What ``UCCModel.forward`` returns (a NamedTuple, so DDP and ``torch.compile`` handle it)."""

    features: torch.Tensor  # (B, n, J) in (0, 1)
    distributions: torch.Tensor  # (B, J, num_bins), each histogram sums to 1
    ucc_logits: torch.Tensor  # (B, K) logits over ucc labels ucc_min..ucc_max
    rcc: torch.Tensor | None  # (B, num_classes) predicted class fractions, or None
    reconstructions: torch.Tensor | None  # (B * n, C, H, W), or None without a decoder


def mlp_head(
    in_features: int, hidden1: int, hidden2: int, out_features: int, dropout: float
) -> nn.Sequential:
    """``Dense(hidden1) ReLU -> Dense(hidden2) ReLU -> Dense(out)``, returning logits."""
    return nn.Sequential(
        nn.Linear(in_features, hidden1),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden1, hidden2),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden2, out_features),
    )


def encode_instances(
    encode: Callable[[torch.Tensor], torch.Tensor], bags: torch.Tensor, channels_last: bool
) -> torch.Tensor:
    """``(B, n, C, H, W)`` bags -> ``(B*n, J)`` features of every instance, encoded in one batch."""
    flat = bags.reshape(-1, *bags.shape[2:])  # (B*n, C, H, W)
    if channels_last:
        flat = flat.contiguous(memory_format=torch.channels_last)
    return encode(flat)


class UCCModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module | None,
        num_features: int,
        num_bins: int,
        kde_sigma: float,
        num_ucc_classes: int,
        num_classes: int,
        head_hidden: tuple[int, int] = (384, 192),
        head_dropout: float = 0.0,
        use_rcc: bool = False,
        kde_max_elements: int = 2**24,
    ):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.kde = KDE(num_bins, kde_sigma, kde_max_elements)
        pooled = num_features * num_bins
        self.ucc_head = mlp_head(pooled, *head_hidden, num_ucc_classes, head_dropout)
        self.rcc_head = mlp_head(pooled, *head_hidden, num_classes, head_dropout) if use_rcc else None
        self.channels_last = False  # set with .to(memory_format=torch.channels_last) on CUDA

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, J)`` features."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> UCCOutput:
        b, n = x.shape[:2]
        features = encode_instances(self.encode, x, self.channels_last)  # (B*n, J)
        bag_features = features.view(b, n, -1)  # (B, n, J)
        distributions = self.kde(bag_features)  # (B, J, bins)
        pooled = distributions.flatten(1)  # (B, J*bins)
        ucc_logits = self.ucc_head(pooled)
        rcc = torch.softmax(self.rcc_head(pooled), dim=1) if self.rcc_head is not None else None
        recon = self.decoder(features) if self.decoder is not None else None
        return UCCOutput(bag_features, distributions, ucc_logits, rcc, recon)
