"""Loss terms on tiny hand-computed tensors, the SSIM branch on standardised images, the total."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import SimpleNamespace

import pytest
import torch
from pytorch_msssim import ssim

from ucc_tune import losses
from ucc_tune.config import Config
from ucc_tune.losses import (
    RECON_KINDS,
    MSSSIMFallbackWarning,
    instance_loss,
    ms_ssim_window_size,
    rcc_loss,
    reconstruction_loss,
    ssim_window_size,
    total_loss,
    ucc_loss,
    ucc_rcc_consistency,
)


@pytest.fixture(autouse=True)
def fresh_fallback_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The MS-SSIM fallback warns once per image size and process; every test starts afresh."""
    monkeypatch.setattr(losses, "_ms_ssim_fallback_warned", set())
    yield


def standardised(*shape: int, seed: int = 0) -> torch.Tensor:
    """``(N, C, H, W)`` smooth-ish images, mean 0 and std 1 per image, like the data pipeline's."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    x = x + x.roll(1, -1) + x.roll(1, -2)  # some spatial structure for SSIM to see
    return (x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True)


def noisy(x: torch.Tensor, scale: float, seed: int = 1) -> torch.Tensor:
    return x + scale * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


# --- ucc, mse, rcc ---------------------------------------------------------------------------


def test_ucc_loss_is_cross_entropy_on_logits() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([2, 0])
    first = -(3.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    expected = (first + math.log(3)) / 2
    assert float(ucc_loss(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_ucc_loss_bad_shapes() -> None:
    with pytest.raises(ValueError, match="logits \\(B, K\\) and target \\(B,\\)"):
        ucc_loss(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


def test_mse_hand_computed() -> None:
    recon = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert float(reconstruction_loss(recon, torch.zeros_like(recon), "mse")) == pytest.approx(7.5)


@pytest.mark.parametrize(
    ("pred", "counts", "expected"),
    [
        ([[0.5, 0.5, 0.0]], [[2, 2, 0]], 0.0),
        ([[1.0, 0.0, 0.0]], [[2, 2, 0]], (0.25 + 0.25) / 3),
        ([[0.25, 0.75, 0.0], [0.0, 0.0, 1.0]], [[1, 3, 0], [0, 4, 0]], (1 + 1) / 6),
    ],
)
def test_rcc_loss_compares_fractions(pred: list, counts: list, expected: float) -> None:
    value = rcc_loss(torch.tensor(pred), torch.tensor(counts), bag_size=4)
    assert float(value) == pytest.approx(expected)


def test_rcc_loss_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        rcc_loss(torch.zeros(2, 3), torch.zeros(2, 4), bag_size=4)


# --- consistency -----------------------------------------------------------------------------


def test_consistency_hand_computed() -> None:
    def sigmoid(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    logits = torch.tensor([[0.0, 0.0]])  # expected ucc 0.5 * 1 + 0.5 * 2 = 1.5
    rcc = torch.tensor([[0.25, 0.75]])  # 1 and 3 of 4 instances
    expected = (sigmoid(0.5) + sigmoid(2.5) - 1.5) ** 2
    value = ucc_rcc_consistency(logits, rcc, ucc_min=1, bag_size=4, temperature=1.0)
    assert float(value) == pytest.approx(expected, rel=1e-5)  # float32


def test_consistency_low_when_heads_agree_high_when_not() -> None:
    on_two = torch.tensor([[-20.0, 20.0, -20.0]])  # ucc in {1, 2, 3}: surely 2
    on_one = torch.tensor([[20.0, -20.0, -20.0]])
    two_classes = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    agree = ucc_rcc_consistency(on_two, two_classes, ucc_min=1, bag_size=32, temperature=0.1)
    disagree = ucc_rcc_consistency(on_one, two_classes, ucc_min=1, bag_size=32, temperature=0.1)
    assert float(agree) < 1e-3
    assert float(disagree) == pytest.approx(1.0, abs=0.05)


def test_consistency_is_differentiable_in_both_heads() -> None:
    logits = torch.randn(3, 4, requires_grad=True)
    rcc = torch.softmax(torch.randn(3, 5), 1).requires_grad_()
    ucc_rcc_consistency(logits, rcc, ucc_min=1, bag_size=8, temperature=0.5).backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    assert rcc.grad is not None and float(rcc.grad.abs().sum()) > 0


def test_consistency_bad_temperature() -> None:
    with pytest.raises(ValueError, match=r"temperature=0\.0 must be > 0"):
        ucc_rcc_consistency(torch.zeros(1, 2), torch.zeros(1, 3), 1, 4, 0.0)


# --- SSIM kinds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ssim_window", "ms_ssim_window"),
    [
        (3, 3, None),
        (4, 3, None),
        (8, 7, None),
        (28, 11, None),
        (32, 11, None),
        (33, 11, 3),
        (64, 11, 3),
        (81, 11, 5),
        (176, 11, 11),
        (500, 11, 11),
    ],
)
def test_window_sizes(size: int, ssim_window: int, ms_ssim_window: int | None) -> None:
    assert ssim_window_size(size, size + 5) == ssim_window
    assert ms_ssim_window_size(size + 5, size) == ms_ssim_window


def test_window_too_small() -> None:
    with pytest.raises(ValueError, match="at least 3x3"):
        ssim_window_size(2, 8)


@pytest.mark.parametrize("kind", ["ssim", "ms_ssim", "mse+ssim"])
@pytest.mark.parametrize("size", [8, 28, 32, 40])
def test_ssim_kinds_on_standardised_images(kind: str, size: int) -> None:
    target = standardised(2, 1, size, size)
    falls_back = kind == "ms_ssim" and size < 33
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if falls_back else "error", MSSSIMFallbackWarning)
        same = reconstruction_loss(target.clone(), target, kind)
        values = [float(reconstruction_loss(noisy(target, s), target, kind)) for s in (0.1, 0.5, 2.0)]
    assert abs(float(same)) < 1e-5
    assert 0 < values[0] < values[1] < values[2]


@pytest.mark.parametrize("size", [8, 28, 32])
def test_ms_ssim_falls_back_to_ssim_once(size: int) -> None:
    target = standardised(2, 2, size, size)
    recon = noisy(target, 0.5)
    with pytest.warns(MSSSIMFallbackWarning, match=f"{size}x{size} images are too small"):
        fallback = reconstruction_loss(recon, target, "ms_ssim")
    torch.testing.assert_close(fallback, reconstruction_loss(recon, target, "ssim"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MSSSIMFallbackWarning)
        reconstruction_loss(recon, target, "ms_ssim")  # the second time it stays quiet


def test_mse_plus_ssim_is_the_sum() -> None:
    target = standardised(3, 1, 8, 8)
    recon = noisy(target, 0.3)
    both = reconstruction_loss(recon, target, "mse+ssim")
    parts = reconstruction_loss(recon, target, "mse") + reconstruction_loss(recon, target, "ssim")
    torch.testing.assert_close(both, parts)


def test_ssim_rescaling_uses_target_range() -> None:
    target = standardised(3, 1, 28, 28)
    recon = noisy(target, 0.5)
    # One affine map of both tensors changes nothing: only the target's range sets the scale.
    torch.testing.assert_close(
        reconstruction_loss(3 * recon + 7, 3 * target + 7, "ssim"), reconstruction_loss(recon, target, "ssim")
    )
    low, high = target.min(), target.max()
    unit_recon, unit_target = ((recon - low) / (high - low)).clamp(0, 1), (target - low) / (high - low)
    expected = 1 - ssim(unit_recon, unit_target, data_range=1.0, size_average=True, win_size=11)
    torch.testing.assert_close(reconstruction_loss(recon, target, "ssim"), expected)


def test_explicit_data_range_passes_images_unchanged() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 16, 16, generator=g)
    recon = (target + 0.1 * torch.rand(target.shape, generator=g)).clamp(0, 1)
    expected = 1 - ssim(recon, target, data_range=1.0, size_average=True, win_size=11)
    torch.testing.assert_close(reconstruction_loss(recon, target, "ssim", data_range=1.0), expected)


def test_ssim_gradients_are_finite() -> None:
    target = standardised(1, 1, 40, 40)
    for kind in RECON_KINDS:
        recon = noisy(target, 0.5).requires_grad_()
        reconstruction_loss(recon, target, kind).backward()
        assert recon.grad is not None and bool(torch.isfinite(recon.grad).all()), kind


def test_unknown_kind_and_bad_shapes() -> None:
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="'l1' is unknown; choose one of mse, ssim, ms_ssim, mse\\+ssim"):
        reconstruction_loss(x, x, "l1")
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_loss(x, torch.zeros(1, 1, 8, 7), "mse")


# --- total -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    alpha: float = 0.5
    recon_loss: str = "mse"
    rcc_weight: float = 0.0
    consistency_weight: float = 0.0
    consistency_temperature: float = 0.1
    bag_size: int = 4
    ucc_min: int = 1


def tiny_case(seed: int = 0) -> tuple[SimpleNamespace, SimpleNamespace]:
    """Two bags of 4 instances of 1x8x8 images, ucc labels {1, 2}, 3 classes."""
    g = torch.Generator().manual_seed(seed)
    x = standardised(8, 1, 8, 8, seed=seed).view(2, 4, 1, 8, 8)
    batch = SimpleNamespace(x=x, ucc=torch.tensor([0, 1]), rcc=torch.tensor([[4, 0, 0], [0, 2, 2]]))
    outputs = SimpleNamespace(
        ucc_logits=torch.randn(2, 2, generator=g),
        rcc=torch.softmax(torch.randn(2, 3, generator=g), 1),
        reconstructions=noisy(x.flatten(0, 1), 0.3),
    )
    return outputs, batch


def test_alpha_one_is_exactly_the_ucc_term() -> None:
    outputs, batch = tiny_case()
    outputs.reconstructions = None
    terms = total_loss(Weights(alpha=1.0), outputs, batch)
    assert torch.equal(terms.total, ucc_loss(outputs.ucc_logits, batch.ucc))
    for zero in (terms.recon, terms.rcc, terms.consistency):
        assert zero.shape == () and float(zero) == 0.0


def test_total_weights_every_term() -> None:
    outputs, batch = tiny_case()
    config = Weights(alpha=0.3, recon_loss="mse+ssim", rcc_weight=2.0, consistency_weight=0.5, bag_size=4)
    terms = total_loss(config, outputs, batch)
    ucc = ucc_loss(outputs.ucc_logits, batch.ucc)
    recon = reconstruction_loss(outputs.reconstructions, batch.x.flatten(0, 1), "mse+ssim")
    rcc = rcc_loss(outputs.rcc, batch.rcc, 4)
    consistency = ucc_rcc_consistency(outputs.ucc_logits, outputs.rcc, 1, 4, 0.1)
    for got, want in [
        (terms.ucc, ucc),
        (terms.recon, recon),
        (terms.rcc, rcc),
        (terms.consistency, consistency),
    ]:
        torch.testing.assert_close(got, want)
        assert float(want) > 0
    torch.testing.assert_close(terms.total, 0.3 * ucc + 0.7 * recon + 2.0 * rcc + 0.5 * consistency)


def test_zero_weight_terms_stay_out_of_the_total() -> None:
    outputs, batch = tiny_case()
    terms = total_loss(Weights(alpha=0.0, consistency_weight=1.0), outputs, batch)
    assert float(terms.ucc) > 0 and float(terms.rcc) > 0  # still reported
    torch.testing.assert_close(terms.total, terms.recon + terms.consistency)


def test_total_backward_reaches_every_output() -> None:
    outputs, batch = tiny_case()
    for name in ("ucc_logits", "rcc", "reconstructions"):
        setattr(outputs, name, getattr(outputs, name).clone().requires_grad_())
    total_loss(
        Weights(alpha=0.5, recon_loss="ssim", rcc_weight=1.0, consistency_weight=1.0), outputs, batch
    ).total.backward()
    for name in ("ucc_logits", "rcc", "reconstructions"):
        grad = getattr(outputs, name).grad
        assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0, name


def test_missing_reconstructions() -> None:
    outputs, batch = tiny_case()
    outputs.reconstructions = None
    with pytest.raises(ValueError, match=r"alpha=0\.5 < 1 needs reconstructions"):
        total_loss(Weights(alpha=0.5), outputs, batch)


@pytest.mark.parametrize("weights", [{"rcc_weight": 1.0}, {"consistency_weight": 0.1}])
def test_missing_rcc(weights: dict) -> None:
    outputs, batch = tiny_case()
    outputs.rcc = None
    with pytest.raises(ValueError, match="need RCC predictions"):
        total_loss(Weights(alpha=1.0, **weights), outputs, batch)


def test_accepts_the_real_config() -> None:
    outputs, batch = tiny_case()
    config = replace(Config(), alpha=0.5, rcc_weight=1.0, bag_size=4, ucc_min=1, ucc_max=2)
    terms = total_loss(config, outputs, batch)
    assert bool(torch.isfinite(terms.total))


def test_instance_loss_is_the_cross_entropy_of_each_instance() -> None:
    # softmax of (0, ln 3) is (1/4, 3/4): -log(3/4) for class 1, -log(1/4) for class 0
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    terms = instance_loss(logits, torch.tensor([1, 0]))
    torch.testing.assert_close(terms.total, torch.tensor((math.log(4 / 3) + math.log(4)) / 2))
    assert float(terms.ucc) == float(terms.recon) == float(terms.rcc) == 0.0
    with pytest.raises(ValueError, match=r"instance_loss needs logits \(B, K\) and target \(B,\)"):
        instance_loss(logits, torch.tensor([1]))
