"""Loss terms of the UCC model as pure functions, and their weighted total.

``L = alpha * CE(ucc) + (1 - alpha) * recon + rcc_weight * rcc + consistency_weight * consistency``
(UCC_NOTES 2.1 for the first two terms; the RCC terms are this platform's additions). Cross-
entropy is computed on logits: the public PyTorch ports apply softmax twice, which we do not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

RECON_KINDS = ("mse", "ssim", "ms_ssim", "mse+ssim")
MS_SSIM_LEVELS = 5  # pytorch-msssim's default weights: 5 scales, 4 halvings


class LossConfig(Protocol):  # read-only views of ucc_tune.config.Config
    @property
    def alpha(self) -> float: ...
    @property
    def recon_loss(self) -> str: ...
    @property
    def rcc_weight(self) -> float: ...
    @property
    def consistency_weight(self) -> float: ...
    @property
    def consistency_temperature(self) -> float: ...
    @property
    def bag_size(self) -> int: ...
    @property
    def ucc_min(self) -> int: ...


class Outputs(Protocol):  # ucc_tune.models.UCCOutput
    @property
    def ucc_logits(self) -> torch.Tensor: ...
    @property
    def rcc(self) -> torch.Tensor | None: ...
    @property
    def reconstructions(self) -> torch.Tensor | None: ...


class Batch(Protocol):  # ucc_tune.data.bags.BagBatch
    @property
    def x(self) -> torch.Tensor: ...
    @property
    def ucc(self) -> torch.Tensor: ...
    @property
    def rcc(self) -> torch.Tensor: ...


def ucc_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(B, K)`` logits against ``(B,)`` ucc label indices."""
    return F.cross_entropy(logits.float(), target)


def ssim_window(height: int, width: int) -> int:
    """The largest odd window <= 11 that fits the image (at least 3)."""
    size = min(11, height, width)
    size -= 1 - size % 2
    if size < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return size


def ms_ssim_window(height: int, width: int) -> int | None:
    """The largest odd window <= 11 with ``min(H, W) > (window - 1) * 16``, or None (too small)."""
    size = min(11, (min(height, width) - 1) // 2 ** (MS_SSIM_LEVELS - 1) + 1)
    size -= 1 - size % 2
    return size if size >= 3 else None


def _to_unit_range(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Map both tensors by the target's per-batch min/max to [0, 1] (recon clipped to it)."""
    low, high = target.min(), target.max()
    scale = (high - low).clamp_min(1e-6)
    return ((recon - low) / scale).clamp(0, 1), (target - low) / scale


def ssim_loss(recon: torch.Tensor, target: torch.Tensor, multiscale: bool = False) -> torch.Tensor:
    """``1 - SSIM`` (or ``1 - MS-SSIM``) of standardised ``(N, C, H, W)`` images.

    Standardised images have no fixed range, so both are mapped to [0, 1] by the target's
    per-batch min and max and compared with ``data_range = 1``. The window is the largest odd
    size <= 11 that fits (8x8 digits get 7). MS-SSIM needs ``min(H, W) > (window - 1) * 16``;
    where no window >= 3 fits that (e.g. 8x8 and 28x28), it falls back to SSIM with a warning.
    """
    from pytorch_msssim import ms_ssim, ssim

    h, w = recon.shape[-2:]
    r, t = _to_unit_range(recon.float(), target.float())
    if multiscale:
        window = ms_ssim_window(h, w)
        if window is not None:
            return 1 - ms_ssim(r, t, data_range=1.0, size_average=True, win_size=window)
        warnings.warn(
            f"MS-SSIM needs larger than {h}x{w} images for {MS_SSIM_LEVELS} scales; using SSIM instead",
            stacklevel=2,
        )
    return 1 - ssim(r, t, data_range=1.0, size_average=True, win_size=ssim_window(h, w))


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """``mse``, ``ssim`` (1 - SSIM), ``ms_ssim`` or ``mse+ssim`` between ``(N, C, H, W)`` images."""
    if kind not in RECON_KINDS:
        raise ValueError(f"reconstruction loss {kind!r} is unknown; choose one of {', '.join(RECON_KINDS)}")
    mse = F.mse_loss(recon.float(), target.float())
    if kind == "mse":
        return mse
    structural = ssim_loss(recon, target, multiscale=kind == "ms_ssim")
    return mse + structural if kind == "mse+ssim" else structural


def rcc_loss(pred: torch.Tensor, counts: torch.Tensor, bag_size: int) -> torch.Tensor:
    """MSE between predicted class fractions ``(B, C)`` and true counts divided by bag size."""
    return F.mse_loss(pred.float(), counts.float() / bag_size)


def ucc_rcc_consistency(
    ucc_logits: torch.Tensor, rcc_pred: torch.Tensor, ucc_min: int, bag_size: int, temperature: float
) -> torch.Tensor:
    """Agreement of the RCC head's number of present classes with the UCC head's prediction.

    ``present_c = sigmoid((rcc_c * bag_size - 0.5) / temperature)`` is a soft "at least one
    instance of class c" on the predicted count; ``soft_count = sum_c present_c``; the UCC head's
    expected count is ``sum_k softmax(logits)_k * (ucc_min + k)``; the loss is the mean squared
    difference of the two over the bags. Differentiable in both heads.
    """
    present = torch.sigmoid((rcc_pred.float() * bag_size - 0.5) / temperature)
    soft_count = present.sum(dim=1)
    values = ucc_min + torch.arange(ucc_logits.shape[1], device=ucc_logits.device, dtype=torch.float32)
    expected = (torch.softmax(ucc_logits.float(), dim=1) * values).sum(dim=1)
    return (soft_count - expected).square().mean()


@dataclass(frozen=True)
class LossTerms:
    total: torch.Tensor
    ucc: torch.Tensor
    recon: torch.Tensor
    rcc: torch.Tensor
    consistency: torch.Tensor


def total_loss(config: LossConfig, outputs: Outputs, batch: Batch) -> LossTerms:
    """Every term (zero where unused) and their weighted sum."""
    zero = outputs.ucc_logits.new_zeros((), dtype=torch.float32)
    ucc = ucc_loss(outputs.ucc_logits, batch.ucc)
    recon = zero
    if config.alpha < 1:
        if outputs.reconstructions is None:
            raise ValueError(f"alpha={config.alpha} < 1 needs reconstructions, but the model has no decoder")
        target = batch.x.reshape(outputs.reconstructions.shape)
        recon = reconstruction_loss(outputs.reconstructions, target, config.recon_loss)
    rcc = consistency = zero
    if config.rcc_weight > 0 or config.consistency_weight > 0:
        if outputs.rcc is None:
            raise ValueError(
                "rcc_weight or consistency_weight > 0 needs the RCC head, but the model has none"
            )
        rcc = rcc_loss(outputs.rcc, batch.rcc, config.bag_size)
        consistency = ucc_rcc_consistency(
            outputs.ucc_logits, outputs.rcc, config.ucc_min, config.bag_size, config.consistency_temperature
        )
    total = (
        config.alpha * ucc
        + (1 - config.alpha) * recon
        + config.rcc_weight * rcc
        + config.consistency_weight * consistency
    )
    return LossTerms(total, ucc, recon, rcc, consistency)
