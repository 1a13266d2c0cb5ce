"""The UCC model's loss terms as pure functions, and their weighted total.

``L = alpha * CE(ucc) + (1 - alpha) * recon + rcc_weight * rcc + consistency_weight * consistency``

The first two terms are the paper's (Oner, Lee, Sung, ICLR 2020); the RCC terms are this
platform's additions. Cross-entropy is taken on logits: the public PyTorch ports apply
softmax before ``F.cross_entropy``, a double softmax we avoid. Every term is computed in float32
at least, whatever the autocast dtype of the model outputs.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields
from typing import Protocol

import torch
import torch.nn.functional as F

from ucc_tune.config import RECON_KINDS  # the values of Config.recon_loss

SSIM_MAX_WINDOW = 11  # pytorch-msssim's default Gaussian window
MS_SSIM_DOWNSAMPLINGS = 4  # pytorch-msssim's MS-SSIM: 5 scales, so 4 halvings

_ms_ssim_fallback_warned: set[tuple[int, int]] = set()  # image sizes already warned about


class MSSSIMFallbackWarning(UserWarning):
    """MS-SSIM was asked for on images too small for its 4 halvings; SSIM is used instead."""


class LossConfig(Protocol):
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


class LossOutputs(Protocol):
    @property
    def ucc_logits(self) -> torch.Tensor: ...  # (B, K)
    @property
    def rcc(self) -> torch.Tensor | None: ...  # (B, C) class fractions
    @property
    def reconstructions(self) -> torch.Tensor | None: ...  # (B * n, C, H, W)


class LossBatch(Protocol):
    @property
    def x(self) -> torch.Tensor: ...  # (B, n, C, H, W) standardised images
    @property
    def ucc(self) -> torch.Tensor: ...  # (B,) long: ucc - ucc_min
    @property
    def rcc(self) -> torch.Tensor: ...  # (B, C) instance counts per class


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, name: str = "cross_entropy") -> torch.Tensor:
    """Mean cross-entropy of ``(B, K)`` logits (not probabilities) against ``(B,)`` label indices;
    ``name`` is the caller named in a shape error."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            f"{name} needs logits (B, K) and target (B,), got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    return F.cross_entropy(_at_least_float32(logits), target)


def ucc_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``(B, K)`` logits over ucc labels against ``(B,)`` label indices."""
    return cross_entropy(logits, target, "ucc_loss")


def ssim_window_size(height: int, width: int) -> int:
    """The largest odd window <= 11 that fits in the image: 7 for 8x8 digits, 11 from 11x11 up."""
    size = min(SSIM_MAX_WINDOW, height, width)
    size -= 1 - size % 2
    if size < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return size


def ms_ssim_window_size(height: int, width: int) -> int | None:
    """The largest odd window <= 11 with ``min(H, W) > (window - 1) * 2**4``; None if below 3.

    A window of 3 already needs a smaller side of at least 33 pixels, so 8x8, 28x28 and 32x32
    images get None.
    """
    size = min(SSIM_MAX_WINDOW, (min(height, width) - 1) // 2**MS_SSIM_DOWNSAMPLINGS + 1)
    size -= 1 - size % 2
    return size if size >= 3 else None


def _to_unit_range(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine map for both, taking the target's batch min/max to [0, 1]; recon is clipped."""
    low, high = target.detach().min(), target.detach().max()
    span = (high - low).clamp_min(1e-6)  # a constant target would otherwise divide by zero
    return ((recon - low) / span).clamp(0, 1), (target - low) / span


def _no_autocast(device: torch.device) -> AbstractContextManager[object]:
    # SSIM's variances are differences of means of squares: in bf16/fp16 they lose all precision.
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()


def _warn_ms_ssim_fallback(height: int, width: int) -> None:
    if (height, width) in _ms_ssim_fallback_warned:
        return
    _ms_ssim_fallback_warned.add((height, width))
    warnings.warn(
        f"MS-SSIM (5 scales) needs min(H, W) > (window - 1) * 16, at least 33 pixels for the smallest "
        f"window of 3; {height}x{width} images are too small, so SSIM is used instead",
        MSSSIMFallbackWarning,
        stacklevel=4,
    )


def structural_loss(
    recon: torch.Tensor, target: torch.Tensor, multiscale: bool = False, data_range: float | None = None
) -> torch.Tensor:
    """``1 - SSIM`` (or ``1 - MS-SSIM``) of ``(N, C, H, W)`` images, averaged over the batch.

    See :func:`reconstruction_loss` for the range handling and the window sizes.
    """
    from pytorch_msssim import ms_ssim, ssim  # imported here: only the SSIM kinds need it

    if recon.dim() != 4:
        raise ValueError(f"SSIM losses need (N, C, H, W) images, got shape {tuple(recon.shape)}")
    height, width = recon.shape[-2:]
    with _no_autocast(recon.device):
        r, t = _at_least_float32(recon), _at_least_float32(target)
        if data_range is None:
            r, t = _to_unit_range(r, t)
            data_range = 1.0
        if multiscale:
            window = ms_ssim_window_size(height, width)
            if window is not None:
                return 1 - ms_ssim(r, t, data_range=data_range, size_average=True, win_size=window)
            _warn_ms_ssim_fallback(height, width)
        window = ssim_window_size(height, width)
        return 1 - ssim(r, t, data_range=data_range, size_average=True, win_size=window)


def reconstruction_loss(
    recon: torch.Tensor, target: torch.Tensor, kind: str, data_range: float | None = None
) -> torch.Tensor:
    """Reconstruction error of ``(N, C, H, W)`` images: ``mse``, ``ssim``, ``ms_ssim`` or ``mse+ssim``.

    ``ssim`` is ``1 - SSIM``; ``mse+ssim`` is ``MSE + 1 - SSIM``. Images are standardised (mean 0,
    std 1 per image) and the decoder is linear, so there is no fixed value range: with
    ``data_range=None`` both tensors are mapped to [0, 1] by one affine map that takes the
    target's batch minimum and maximum to 0 and 1 (the reconstruction is clipped to [0, 1]
    afterwards, so values beyond the target's range get no SSIM gradient, only the MSE one) and
    SSIM uses ``data_range=1``. A float ``data_range`` says the images already lie in a fixed
    range of that width and are passed to SSIM unchanged. MSE is always on the raw values.

    The SSIM window is the largest odd size <= 11 that fits (7 for 8x8 digits; images under 3x3
    are an error). MS-SSIM needs ``min(H, W) > (window - 1) * 16``; where no window >= 3 fits
    (8x8, 28x28 and 32x32 all fail: it takes 33 pixels), ``ms_ssim`` falls back to SSIM and
    warns once per image size with an ``MSSSIMFallbackWarning``.
    """
    if kind not in RECON_KINDS:
        raise ValueError(f"reconstruction loss {kind!r} is unknown; choose one of {', '.join(RECON_KINDS)}")
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ in shape")
    if data_range is not None and not data_range > 0:
        raise ValueError(f"data_range={data_range} must be > 0 (or None to rescale by the target)")
    if kind == "mse":
        return F.mse_loss(_at_least_float32(recon), _at_least_float32(target))
    structural = structural_loss(recon, target, multiscale=kind == "ms_ssim", data_range=data_range)
    if kind == "mse+ssim":
        return F.mse_loss(_at_least_float32(recon), _at_least_float32(target)) + structural
    return structural


def rcc_loss(pred: torch.Tensor, counts: torch.Tensor, bag_size: int) -> torch.Tensor:
    """MSE between predicted class fractions ``(B, C)`` and true counts ``(B, C)`` / ``bag_size``.

    The RCC head predicts the FRACTION of the bag's instances in each class (a softmax in the
    model), not raw counts, so the target is ``counts / bag_size`` and the loss does not grow
    with the bag size.
    """
    if pred.shape != counts.shape:
        raise ValueError(f"rcc pred {tuple(pred.shape)} and counts {tuple(counts.shape)} differ in shape")
    if bag_size < 1:
        raise ValueError(f"bag_size={bag_size} must be >= 1")
    return F.mse_loss(_at_least_float32(pred), _at_least_float32(counts) / bag_size)


def ucc_rcc_consistency(
    ucc_logits: torch.Tensor, rcc_pred: torch.Tensor, ucc_min: int, bag_size: int, temperature: float
) -> torch.Tensor:
    """Disagreement between the classes the RCC head finds present and the UCC head's prediction.

    With ``rcc_pred`` ``(B, C)`` class fractions and ``ucc_logits`` ``(B, K)`` over ucc labels
    ``ucc_min .. ucc_min + K - 1``::

        present_c    = sigmoid((rcc_pred_c * bag_size - 0.5) / temperature)  # soft "count >= 1"
        soft_count   = sum_c present_c
        expected_ucc = sum_k softmax(ucc_logits)_k * (ucc_min + k)
        loss         = mean over bags of (soft_count - expected_ucc)^2

    Differentiable in both heads; a smaller ``temperature`` makes ``present_c`` closer to a hard
    threshold at half an instance.
    """
    if ucc_logits.dim() != 2 or rcc_pred.dim() != 2 or ucc_logits.shape[0] != rcc_pred.shape[0]:
        raise ValueError(
            f"need ucc_logits (B, K) and rcc_pred (B, C), got {tuple(ucc_logits.shape)} and "
            f"{tuple(rcc_pred.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    logits, fractions = _at_least_float32(ucc_logits), _at_least_float32(rcc_pred)
    present = torch.sigmoid((fractions * bag_size - 0.5) / temperature)  # (B, C)
    soft_count = present.sum(dim=1)  # (B,)
    labels = ucc_min + torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)  # (K,)
    expected_ucc = (torch.softmax(logits, dim=1) * labels).sum(dim=1)  # (B,)
    return (soft_count - expected_ucc).square().mean()


@dataclass(frozen=True)
class LossTerms:
    """The weighted total and each (unweighted) term; unused terms are zero tensors."""

    total: torch.Tensor
    ucc: torch.Tensor
    recon: torch.Tensor
    rcc: torch.Tensor
    consistency: torch.Tensor


LOSS_TERMS: tuple[str, ...] = tuple(f.name for f in fields(LossTerms))  # "total" first


def total_loss(config: LossConfig, outputs: LossOutputs, batch: LossBatch) -> LossTerms:
    """All terms and ``alpha*ucc + (1-alpha)*recon + rcc_weight*rcc + consistency_weight*consistency``.

    A term enters the total only when its weight is non-zero (so a NaN in an unused term cannot
    leak in through ``0 * NaN``). ``alpha < 1`` needs ``outputs.reconstructions`` and positive RCC
    weights need ``outputs.rcc``; either missing is a ValueError.
    """
    zero = torch.zeros((), device=outputs.ucc_logits.device)
    ucc = ucc_loss(outputs.ucc_logits, batch.ucc)
    recon = rcc = consistency = zero
    if config.alpha < 1:
        if outputs.reconstructions is None:
            raise ValueError(f"alpha={config.alpha} < 1 needs reconstructions, but the outputs have none")
        target = batch.x.flatten(0, 1)  # (B * n, C, H, W), the order the model encodes instances in
        recon = reconstruction_loss(outputs.reconstructions, target, config.recon_loss)
    if config.rcc_weight > 0 or config.consistency_weight > 0:
        if outputs.rcc is None:
            raise ValueError(
                f"rcc_weight={config.rcc_weight} / consistency_weight={config.consistency_weight} "
                "need RCC predictions, but the outputs have none"
            )
        rcc = rcc_loss(outputs.rcc, batch.rcc, config.bag_size)
        consistency = ucc_rcc_consistency(
            outputs.ucc_logits, outputs.rcc, config.ucc_min, config.bag_size, config.consistency_temperature
        )
    weighted = [
        (config.alpha, ucc),
        (1 - config.alpha, recon),
        (config.rcc_weight, rcc),
        (config.consistency_weight, consistency),
    ]
    total = zero
    for weight, term in weighted:
        if weight != 0:
            total = total + weight * term
    return LossTerms(total=total, ucc=ucc, recon=recon, rcc=rcc, consistency=consistency)


def instance_loss(logits: torch.Tensor, labels: torch.Tensor) -> LossTerms:
    """The supervised baseline's loss: cross-entropy of every instance's ``(N, C)`` logits against
    its ``(N,)`` class index; it is the total, and the UCC terms are zero."""
    loss = cross_entropy(logits, labels, "instance_loss")
    zero = torch.zeros((), device=logits.device)
    return LossTerms(total=loss, ucc=zero, recon=zero, rcc=zero, consistency=zero)
