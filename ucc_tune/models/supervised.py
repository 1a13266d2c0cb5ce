"""The supervised baseline: the UCC encoder trained on instance labels.

The paper's upper bound (Oner et al., ICLR 2020, reported at 0.988 on MNIST): the same encoder
``x -> f`` (J sigmoid features) followed by one linear layer to logits over the classes, trained
with cross-entropy on every instance's own label. Its features are then clustered and evaluated
exactly as a UCC model's, so the two are compared on the same footing. No KDE, heads or decoder.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ucc_tune.models.ucc import encode_instances


class InstanceOutput(NamedTuple):
    """What ``InstanceClassifier.forward`` returns."""

    features: torch.Tensor  # (B, n, J) in (0, 1)
    logits: torch.Tensor  # (B * n, num_classes), instances in the order the bag holds them


class InstanceClassifier(nn.Module):
    """``encoder`` then ``Linear(J, num_classes)``; takes bags ``(B, n, C, H, W)`` like ``UCCModel``
    (a bag is a batch of instances here) and classifies every instance on its own."""

    decoder: None = None  # nothing to reconstruct with, as a UCC model with alpha == 1

    def __init__(self, encoder: nn.Module, num_features: int, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(num_features, num_classes)
        self.channels_last = False  # set with .to(memory_format=torch.channels_last) on CUDA

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, J)`` features."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> InstanceOutput:
        b, n = x.shape[:2]
        features = encode_instances(self.encode, x, self.channels_last)  # (B*n, J)
        return InstanceOutput(features.view(b, n, -1), self.classifier(features))
