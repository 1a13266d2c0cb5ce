"""The paper decoder's fused upsampling against the plain computation it replaces.

``UpBlock`` computes nearest 2x upsampling + 3x3 conv as one transposed convolution and adds the
shortcut of the small input by broadcasting; the paper networks run channels-last on the CPU.
Each is checked here against ``F.interpolate`` + ``F.conv2d`` on random inputs, forward and
backward, in float64 (where only the order of the sums differs) and in float32.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ucc_tune.models.decoders import PaperDecoder, UpBlock, upsample2x_conv_kernel
from ucc_tune.models.encoders import PaperEncoder


def plain_up_block(block: UpBlock, h: torch.Tensor) -> torch.Tensor:
    """``UpBlock``'s function written out: ``F.interpolate``, then the two convs and the shortcut."""
    a = F.relu(h)
    if block.size is not None:
        a = F.interpolate(a, size=block.size, mode="nearest")
    return block.conv2(F.relu(block.conv1(a))) + block.shortcut(a)


def plain_paper_decoder(decoder: PaperDecoder, f: torch.Tensor) -> torch.Tensor:
    h = decoder.fc(f).view(-1, *decoder.start)
    for block in decoder.blocks:
        assert isinstance(block, UpBlock)
        h = plain_up_block(block, h)
    return decoder.out(F.relu(h))


def plain_paper_encoder(encoder: PaperEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder in the default (contiguous) memory format."""
    h = encoder.stem(x)
    for block in encoder.blocks:
        h = block(h.contiguous())
    return torch.sigmoid(encoder.fc(F.relu(h).contiguous().flatten(1)))


def values_and_gradients(
    fn: object, module: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor
) -> list[torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = fn(x)  # type: ignore[operator]
    (out * weights).sum().backward()
    assert x.grad is not None
    return [out.detach(), x.grad] + [p.grad for p in module.parameters() if p.grad is not None]


def assert_all_close(ours: list[torch.Tensor], reference: list[torch.Tensor], dtype: torch.dtype) -> None:
    assert len(ours) == len(reference)
    rtol = 1e-9 if dtype == torch.float64 else 1e-4
    for a, b in zip(ours, reference, strict=True):
        assert a.shape == b.shape
        a, b = a.detach(), b.detach()
        scale = float(b.abs().max())
        assert float((a - b).abs().max()) <= rtol * max(scale, 1e-12), (float((a - b).abs().max()), scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("in_size", [(2, 2), (7, 7), (3, 5)])
def test_upsample2x_conv_kernel_equals_interpolate_then_conv(
    dtype: torch.dtype, in_size: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, *in_size, dtype=dtype, requires_grad=True)
    weight = torch.randn(4, 5, 3, 3, dtype=dtype, requires_grad=True)
    bias = torch.randn(4, dtype=dtype, requires_grad=True)
    fused = F.conv_transpose2d(x, upsample2x_conv_kernel(weight), bias, stride=2, padding=1)
    plain = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)
    assert fused.shape == plain.shape == (3, 4, 2 * in_size[0], 2 * in_size[1])
    w = torch.randn_like(plain)
    grads_fused = torch.autograd.grad((fused * w).sum(), (x, weight, bias))
    grads_plain = torch.autograd.grad((plain * w).sum(), (x, weight, bias))
    assert_all_close([fused, *grads_fused], [plain, *grads_plain], dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("c_in", "c_out", "in_size", "size"),
    [
        (8, 8, (7, 7), (14, 14)),  # identity shortcut, fused
        (8, 4, (2, 3), (4, 6)),  # 1x1 shortcut, fused
        (8, 4, (5, 5), (9, 9)),  # not a doubling: the plain computation
        (8, 4, (6, 6), None),  # no upsampling
    ],
)
def test_up_block_equals_the_plain_computation(
    dtype: torch.dtype, c_in: int, c_out: int, in_size: tuple[int, int], size: tuple[int, int] | None
) -> None:
    torch.manual_seed(0)
    block = UpBlock(c_in, c_out, size).to(dtype)
    for channels_last in (False, True):
        h = torch.randn(2, c_in, *in_size, dtype=dtype)
        if channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        out_size = size or in_size
        weights = torch.randn(2, c_out, *out_size, dtype=dtype)
        ours = values_and_gradients(block, block, h, weights)
        plain = values_and_gradients(lambda t: plain_up_block(block, t), block, h, weights)
        assert_all_close(ours, plain, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 9, 9)])
def test_paper_networks_equal_the_plain_computation(dtype: torch.dtype, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    decoder = PaperDecoder(shape, 6).to(dtype)
    f = torch.rand(5, 6, dtype=dtype)
    weights = torch.randn(5, *shape, dtype=dtype)
    ours = values_and_gradients(decoder, decoder, f, weights)
    plain = values_and_gradients(lambda t: plain_paper_decoder(decoder, t), decoder, f, weights)
    assert_all_close(ours, plain, dtype)

    encoder = PaperEncoder(shape, 6).to(dtype)
    x = torch.randn(5, *shape, dtype=dtype)
    weights = torch.randn(5, 6, dtype=dtype)
    ours = values_and_gradients(encoder, encoder, x, weights)
    plain = values_and_gradients(lambda t: plain_paper_encoder(encoder, t), encoder, x, weights)
    assert_all_close(ours, plain, dtype)
