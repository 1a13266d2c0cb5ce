"""The KDE layer against a slow loop reference, its invariances, gradients, chunking and errors."""

from __future__ import annotations

import math

import pytest
import torch

from ucc_tune.models.kde import KDE, kde


def reference_kde(features: torch.Tensor, num_bins: int, sigma: float) -> torch.Tensor:
    """The paper's KDE formula written out as loops, in float64."""
    b, n, j = features.shape
    out = torch.zeros(b, j, num_bins, dtype=torch.float64)
    for bag in range(b):
        for feature in range(j):
            for k in range(num_bins):
                v = k / (num_bins - 1)
                out[bag, feature, k] = sum(
                    math.exp(-((v - float(features[bag, i, feature])) ** 2) / (2 * sigma**2))
                    for i in range(n)
                )
            out[bag, feature] /= out[bag, feature].sum()
    return out


def random_features(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize(("num_bins", "sigma"), [(11, 0.1), (5, 0.3), (21, 0.0167), (2, 1.0)])
def test_matches_loop_reference(num_bins: int, sigma: float) -> None:
    f = random_features(3, 6, 4)
    torch.testing.assert_close(kde(f, num_bins, sigma), reference_kde(f, num_bins, sigma))


def test_hand_computed_single_instance() -> None:
    # One instance at 0.5, bins 0, 0.5, 1, sigma 0.1: kernel exp(-12.5), 1, exp(-12.5).
    f = torch.full((1, 1, 1), 0.5, dtype=torch.float64)
    e = math.exp(-0.25 / 0.02)
    expected = torch.tensor([[[e, 1.0, e]]], dtype=torch.float64) / (1 + 2 * e)
    torch.testing.assert_close(kde(f, 3, 0.1), expected)


def test_shape_and_sums_to_one() -> None:
    f = random_features(4, 7, 5, dtype=torch.float32)
    out = kde(f, 11, 0.1)
    assert out.shape == (4, 5, 11) and out.dtype == torch.float32
    assert bool((out >= 0).all())
    torch.testing.assert_close(out.sum(-1), torch.ones(4, 5))


def test_instance_permutation_invariant() -> None:
    f = random_features(2, 9, 3)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(kde(f[:, perm], 11, 0.1), kde(f, 11, 0.1))


@pytest.mark.parametrize("max_elements", [None, 2 * 8 * 3 * 5, 3 * 5])  # one broadcast, bags, instances
def test_gradcheck(max_elements: int | None) -> None:
    f = random_features(3, 8, 3).requires_grad_()
    limit = 2**24 if max_elements is None else max_elements
    assert torch.autograd.gradcheck(lambda x: kde(x, 5, 0.2, limit), (f,))


@pytest.mark.parametrize(
    "max_elements",
    [
        2 * 12 * 4 * 11 + 1,  # bags in chunks of 2, 2, 1
        12 * 4 * 11,  # one bag per chunk
        5 * 4 * 11,  # instance chunks of 5, 5, 2
        1,  # one instance per chunk
    ],
)
def test_chunked_equals_unchunked(max_elements: int) -> None:
    f = random_features(5, 12, 4, dtype=torch.float32).requires_grad_()
    weights = random_features(5, 4, 11, seed=3, dtype=torch.float32)
    whole = kde(f, 11, 0.1)
    (grad_whole,) = torch.autograd.grad((whole * weights).sum(), f)
    chunked = kde(f, 11, 0.1, max_elements=max_elements)
    (grad_chunked,) = torch.autograd.grad((chunked * weights).sum(), f)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(grad_chunked, grad_whole)
    with torch.no_grad():
        torch.testing.assert_close(kde(f, 11, 0.1, max_elements=max_elements), whole.detach())


def test_small_sigma_does_not_underflow() -> None:
    # Midway between bins 0 and 0.25 with sigma 0.001: every kernel value exp(-7812.5) underflows
    # to 0, yet the histogram is the limit, half in each neighbouring bin.
    f = torch.full((1, 3, 1), 0.125)
    out = kde(f, 5, 0.001)
    torch.testing.assert_close(out, torch.tensor([[[0.5, 0.5, 0.0, 0.0, 0.0]]]))
    f.requires_grad_()
    (grad,) = torch.autograd.grad(kde(f, 5, 0.001).sum(), f)
    assert bool(torch.isfinite(grad).all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_returns_input_dtype(dtype: torch.dtype) -> None:
    f = random_features(2, 6, 3, dtype=torch.float64)
    out = kde(f.to(dtype), 11, 0.1)
    assert out.dtype == dtype
    tol = 1e-2 if dtype in (torch.bfloat16, torch.float16) else 1e-6
    torch.testing.assert_close(out.double(), reference_kde(f.to(dtype).double(), 11, 0.1), atol=tol, rtol=tol)


def test_module_equals_function() -> None:
    f = random_features(2, 5, 3)
    layer = KDE(7, 0.15, max_elements=10)
    torch.testing.assert_close(layer(f), kde(f, 7, 0.15))
    assert repr(layer) == "KDE(num_bins=7, sigma=0.15, max_elements=10)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_bins": 1}, "num_bins=1 must be an integer >= 2"),
        ({"num_bins": 2.5}, "num_bins=2.5"),
        ({"sigma": 0.0}, "sigma=0.0 must be"),
        ({"sigma": -0.1}, "sigma=-0.1 must be"),
        ({"sigma": float("nan")}, "sigma=nan must be"),
        ({"max_elements": 0}, "max_elements=0 must be"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"num_bins": 11, "sigma": 0.1, "max_elements": 100} | kwargs
    with pytest.raises(ValueError, match=message):
        kde(random_features(1, 2, 3), **args)
    with pytest.raises(ValueError, match=message):
        KDE(**args)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (torch.rand(4, 3), "must be \\(bags, instances, features\\)"),
        (torch.ones(1, 2, 3, dtype=torch.long), "floating point"),
        (torch.rand(2, 0, 3), "at least one instance"),
    ],
)
def test_bad_features(features: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kde(features, 11, 0.1)


def test_empty_batch() -> None:
    assert kde(torch.rand(0, 4, 3), 11, 0.1).shape == (0, 3, 11)
