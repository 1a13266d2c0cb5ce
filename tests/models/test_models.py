"""Every ``MODELS`` entry on digits-, MNIST- and CIFAR-shaped bags."""

from __future__ import annotations

import copy as copy_module
import dataclasses
import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from ucc_tune.config import Config, ConfigError, ModelName
from ucc_tune.models import MODELS, MODELS_WITH_DROPOUT, InstanceClassifier, build, build_model
from ucc_tune.models.decoders import PaperDecoder, upsample_nearest
from ucc_tune.models.encoders import PaperEncoder, PreActBlock, same_padding

SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar": (3, 32, 32)}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape_name", sorted(SHAPES))
def test_forward_backward_shapes(name: ModelName, shape_name: str) -> None:
    torch.manual_seed(0)
    shape = SHAPES[shape_name]
    config = Config(model=name, num_features=6, num_bins=5, rcc_weight=0.5, ucc_min=1, ucc_max=3)
    model = build_model(config, shape, num_classes=10)
    x = torch.randn(2, 4, *shape)  # (B, n, C, H, W)
    out = model(x)
    assert out.features.shape == (2, 4, 6)
    assert bool(((out.features > 0) & (out.features < 1)).all())
    assert out.distributions.shape == (2, 6, 5)
    torch.testing.assert_close(out.distributions.sum(-1), torch.ones(2, 6))
    assert out.ucc_logits.shape == (2, 3)
    assert out.rcc is not None and out.rcc.shape == (2, 10)
    assert out.reconstructions is not None and out.reconstructions.shape == (8, *shape)
    loss = out.ucc_logits.square().mean() + out.reconstructions.square().mean() + out.rcc.sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_decoder_when_alpha_is_one(name: ModelName) -> None:
    config = Config(model=name, alpha=1.0)
    model = build_model(config, SHAPES["digits"], num_classes=10)
    assert model.decoder is None and model.rcc_head is None
    out = model(torch.randn(2, 3, *SHAPES["digits"]))
    assert out.reconstructions is None and out.rcc is None
    with_decoder = build_model(dataclasses.replace(config, alpha=0.5), SHAPES["digits"], 10)
    assert count(with_decoder) > count(model)


def unchecked(config: Config, **changes: object) -> Config:
    """``config`` with ``changes`` that skip ``Config``'s own validation (to test ``build_model``'s)."""
    copy = copy_module.copy(config)  # not dataclasses.replace: that validates
    for name, value in changes.items():
        object.__setattr__(copy, name, value)
    return copy


def test_encoder_dropout_changes_the_linear_model_in_training_mode_only() -> None:
    torch.manual_seed(0)
    config = Config(model="linear", num_features=6, encoder_dropout=0.5)
    model = build_model(config, SHAPES["digits"], 10)
    plain = build_model(dataclasses.replace(config, encoder_dropout=0.0), SHAPES["digits"], 10)
    plain.load_state_dict(model.state_dict())  # the same weights: only the dropout differs
    x, f = torch.randn(12, *SHAPES["digits"]), torch.rand(12, 6)
    assert model.decoder is not None and plain.decoder is not None
    with torch.no_grad():
        assert not torch.allclose(model.encoder(x), plain.encoder(x))
        assert not torch.allclose(model.decoder(f), plain.decoder(f))
        model.eval()
        torch.testing.assert_close(model.encoder(x), plain.encoder(x))
        torch.testing.assert_close(model.decoder(f), plain.decoder(f))


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(MODELS_WITH_DROPOUT)))
def test_build_model_refuses_dropout_for_models_without_it(name: ModelName) -> None:
    config = unchecked(Config(model=name), encoder_dropout=0.3)
    with pytest.raises(ValueError, match=rf"model='{name}' has no dropout layers.*are linear$"):
        build_model(config, SHAPES["digits"], 10)
    build_model(unchecked(config, encoder_dropout=0.0), SHAPES["digits"], 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_only_the_models_with_dropout_take_a_dropout_argument(name: str) -> None:
    for cls in MODELS[name]:
        takes = "dropout" in inspect.signature(cls).parameters
        assert takes == (name in MODELS_WITH_DROPOUT), cls.__name__
        module = cls(SHAPES["digits"], 6, **({"dropout": 0.1} if takes else {}))
        assert any(isinstance(m, torch.nn.Dropout) for m in module.modules()) == takes, cls.__name__


def test_paper_sizes_match_the_original_weights() -> None:
    # the authors' model: feature extractor 358,848 and decoder 513,217 parameters (28x28x1, J=10);
    # the UCC head is 117,316 parameters for K=4.
    assert count(PaperEncoder((1, 28, 28), 10)) == 358_848
    assert count(PaperDecoder((1, 28, 28), 10)) == 513_217
    model = build_model(Config(dataset="mnist"), (1, 28, 28), num_classes=10)
    assert count(model.ucc_head) == 117_316


def test_head_returns_logits_not_probabilities() -> None:
    torch.manual_seed(0)
    model = build_model(Config(alpha=1.0), SHAPES["digits"], 10)
    with torch.no_grad():
        last = model.ucc_head[-1]
        assert isinstance(last, torch.nn.Linear)
        last.bias.fill_(5.0)
        logits = model(torch.randn(3, 4, *SHAPES["digits"])).ucc_logits
    assert not torch.allclose(logits.sum(1), torch.ones(3))
    assert float(logits.min()) > 1.0  # a softmax output would lie in (0, 1)


def test_bag_pooling_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    model = build_model(Config(), SHAPES["digits"], 10).eval()
    x = torch.randn(2, 6, *SHAPES["digits"])
    perm = torch.randperm(6)
    with torch.no_grad():
        a, b = model(x), model(x[:, perm])
    torch.testing.assert_close(a.ucc_logits, b.ucc_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((3, 4, 7, 7), (14, 14)),  # the decoder's 2x steps
        ((2, 3, 14, 14), (28, 28)),
        ((2, 3, 7, 8), (21, 16)),  # different whole factors per axis
        ((2, 3, 7, 7), (13, 15)),  # not whole: F.interpolate itself
        ((2, 3, 8, 8), (8, 8)),  # factor 1
        ((2, 3, 4, 4), (8, 8)),  # small input: F.interpolate itself
    ],
)
def test_upsample_nearest_equals_interpolate_values_and_gradients(
    shape: tuple[int, int, int, int], size: tuple[int, int]
) -> None:
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(shape[0], shape[1], *size, dtype=torch.float64)
    ours = upsample_nearest(x, size)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    reference = torch.nn.functional.interpolate(x, size=size, mode="nearest")
    (grad_ref,) = torch.autograd.grad((reference * weights).sum(), x)
    assert ours.shape == reference.shape and torch.equal(ours, reference)
    assert torch.allclose(grad_ours, grad_ref)
    # hand check of one value: output pixel (i, j) repeats input pixel (i * h // H, j * w // W)
    i, j = size[0] - 1, size[1] - 1
    assert ours[0, 0, i, j] == x[0, 0, i * shape[2] // size[0], j * shape[3] // size[1]]


@pytest.mark.parametrize("size", [28, 8, 32, 7, 9])
def test_paper_padding_keeps_the_sizes(size: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, size, size)
    shapes = {}
    for padding in ("keras", "symmetric"):
        encoder = build_model(Config(paper_padding=padding), (1, size, size), 10).encoder
        assert isinstance(encoder, PaperEncoder)
        shapes[padding] = [tuple(h.shape) for h in _block_outputs(encoder, x)]
        assert encoder(x).shape == (2, 10)
    stages = (size, math.ceil(size / 2), math.ceil(size / 4))
    expected = [(2, c, s, s) for c, s in zip((32, 64, 128), stages, strict=True)]
    assert shapes["keras"] == shapes["symmetric"] == expected


def _block_outputs(encoder: PaperEncoder, x: torch.Tensor) -> list[torch.Tensor]:
    h, outputs = encoder.stem(x), []
    for block in encoder.blocks:
        h = block(h)
        outputs.append(h)
    return outputs


def test_keras_padding_pads_after_on_even_sizes_and_evenly_on_odd_ones() -> None:
    assert [same_padding(n, 3, 2) for n in (28, 14, 8, 7, 5)] == [(0, 1)] * 3 + [(1, 1)] * 2
    assert same_padding(28, 3, 1) == (1, 1) and same_padding(14, 1, 2) == (0, 0)
    torch.manual_seed(0)
    keras, symmetric = PreActBlock(4, 8, 2, "keras"), PreActBlock(4, 8, 2, "symmetric")
    symmetric.load_state_dict(keras.state_dict())
    h = torch.randn(2, 4, 14, 14)
    a = torch.relu(h)
    by_hand = F.conv2d(F.pad(a, (0, 1, 0, 1)), keras.conv1.weight, keras.conv1.bias, stride=2)
    main = keras.conv2(torch.relu(by_hand))
    with torch.no_grad():
        torch.testing.assert_close(keras(h), main + F.pad(keras.shortcut(a), (0, 0, 0, 0, 0, 4)))
        assert not torch.allclose(keras(h), symmetric(h))
    with pytest.raises(ValueError, match="padding='same' is unknown; choose keras or symmetric"):
        PreActBlock(4, 8, 2, "same")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_supervised_baseline_is_the_same_encoder_and_a_linear_classifier(name: ModelName) -> None:
    config = Config(model=name, supervision="instance", num_features=6)
    torch.manual_seed(0)
    model = build(config, SHAPES["digits"], num_classes=10)
    torch.manual_seed(0)
    ucc = build_model(dataclasses.replace(config, supervision="ucc"), SHAPES["digits"], num_classes=10)
    assert isinstance(model, InstanceClassifier) and model.decoder is None
    assert count(model) == count(ucc.encoder) + 6 * 10 + 10  # the encoder, then Linear(J, classes)
    assert torch.equal(next(model.encoder.parameters()), next(ucc.encoder.parameters()))
    out = model(torch.randn(3, 4, *SHAPES["digits"]))  # 3 bags of 4 instances
    assert out.features.shape == (3, 4, 6) and out.logits.shape == (12, 10)
    torch.testing.assert_close(out.logits, model.classifier(out.features.reshape(12, 6)))


def test_the_supervised_baseline_refuses_the_ucc_only_knobs() -> None:
    with pytest.raises(ConfigError, match=r"supervision='instance' trains no RCC head: rcc_weight=0\.5"):
        Config(supervision="instance", rcc_weight=0.5)
    with pytest.raises(ConfigError, match="best_metric='val_ucc_acc' is not measured"):
        Config(supervision="instance", best_metric="val_ucc_acc")
