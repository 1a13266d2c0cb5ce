"""The authors' Keras MNIST weights through our ``paper`` model, evaluated on real MNIST digits.

The weights file is the authors' release after 128,000 steps (Keras 2.1.2 HDF5). A plain numpy
forward pass of the Keras layers, channels-last with TensorFlow's 'same' padding, is the
reference our converted model must reproduce; the clustering of ``mnist_sample``'s test split
then checks the paper's figures (k-means 0.977 and spectral 0.984 on the official MNIST test set).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from ucc_test_support import WEIGHTS, write_keras_file

from ucc_tune.config import Config, PaperPadding
from ucc_tune.data.loading import Data, load_data
from ucc_tune.feature_scores import extract_features, summarize
from ucc_tune.models import UCCModel, build_model
from ucc_tune.models.keras_weights import load_keras_weights

CONFIG = Config(dataset="mnist_sample", model="paper", paper_padding="keras")


@pytest.fixture(scope="module")
def weights() -> Path:
    if not WEIGHTS.is_file():
        pytest.skip(f"the authors' weights file is not at {WEIGHTS}")
    return WEIGHTS


def authors_model(weights: Path, padding: PaperPadding = "keras", **changes: Any) -> UCCModel:
    config = dataclasses.replace(CONFIG, paper_padding=padding, **changes)
    model = build_model(config, (1, 28, 28), num_classes=10).eval()
    load_keras_weights(model, weights)
    return model


@pytest.fixture(scope="module")
def digits() -> Data:
    """``mnist_sample`` split and per-image standardised as training sees it (test: 100 per class)."""
    return load_data(CONFIG)


@pytest.fixture(scope="module")
def features(weights: Path, digits: Data) -> dict[str, np.ndarray]:
    """Test-split features of the authors' encoder with either padding."""
    paddings: tuple[PaperPadding, ...] = ("keras", "symmetric")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # about a second of one CPU per 1,000 images
    try:
        encoders = {p: authors_model(weights, p, alpha=1.0).encoder for p in paddings}
        return {p: extract_features(encoder, digits.images["test"]) for p, encoder in encoders.items()}
    finally:
        torch.set_num_threads(threads)


# --- a numpy reference of the Keras layers (channels-last, float64) ------------------------------


def keras_conv(x: np.ndarray, w: dict[str, np.ndarray], name: str, stride: int = 1) -> np.ndarray:
    """Keras ``Conv2D(padding='same')`` on ``(N, H, W, C)``: TensorFlow pads ``max((out - 1) *
    stride + k - size, 0)`` pixels per axis with the extra one at the end, ``out = ceil(size / stride)``."""
    kernel, bias = w[f"{name}/kernel"], w[f"{name}/bias"]  # (k, k, c_in, c_out)
    k = kernel.shape[0]
    pads = []
    for size in x.shape[1:3]:
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    windows = sliding_window_view(np.pad(x, [(0, 0), *pads, (0, 0)]), (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (N, H', W', c_in, k, k)
    return np.tensordot(windows, kernel, axes=([3, 4, 5], [2, 0, 1])) + bias


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def widen(x: np.ndarray, channels: int) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0), (0, 0), (0, channels - x.shape[-1])])


def keras_encoder(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    h = keras_conv(x, w, "conv2d_1")
    a = relu(h)
    h = keras_conv(relu(keras_conv(a, w, "conv2d_2")), w, "conv2d_3") + widen(a, 32)
    stages = (("conv2d_4", "conv2d_5", "conv2d_6", 64), ("conv2d_7", "conv2d_8", "conv2d_9", 128))
    for conv1, conv2, shortcut, width in stages:  # the stride-2 blocks
        a = relu(h)
        main = keras_conv(relu(keras_conv(a, w, conv1, 2)), w, conv2)
        h = main + widen(keras_conv(a, w, shortcut, 2), width)
    flat = relu(h).reshape(len(h), -1)  # (N, 7 * 7 * 128), channels-last
    return 1 / (1 + np.exp(-flat @ w["fc_sigmoid/kernel"]))


def keras_decoder(f: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    h = (f @ w["dense_1/kernel"] + w["dense_1/bias"]).reshape(len(f), 7, 7, 128)
    a = relu(h).repeat(2, 1).repeat(2, 2)  # UpSampling2D: nearest neighbour
    h = keras_conv(relu(keras_conv(a, w, "conv2d_10")), w, "conv2d_11") + a
    a = relu(h).repeat(2, 1).repeat(2, 2)
    h = keras_conv(relu(keras_conv(a, w, "conv2d_12")), w, "conv2d_13") + keras_conv(a, w, "conv2d_14")
    a = relu(h)
    h = keras_conv(relu(keras_conv(a, w, "conv2d_15")), w, "conv2d_16") + keras_conv(a, w, "conv2d_17")
    return keras_conv(relu(h), w, "conv2d_18")  # (N, 28, 28, 1)


def raw_weights(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of the file as float64, keyed ``"<layer>/kernel"`` (read with h5py alone)."""
    found: dict[str, np.ndarray] = {}

    def keep(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):  # ".../conv2d_1/kernel:0" -> "conv2d_1/kernel"
            found["/".join(name.split("/")[-2:]).split(":")[0]] = obj[()].astype(np.float64)

    with h5py.File(path, "r") as handle:
        handle.visititems(keep)
    return found


# --- the tests --------------------------------------------------------------------------------------


def test_our_model_computes_what_the_keras_layers_compute(weights: Path, digits: Data) -> None:
    picks = [int(np.flatnonzero(digits.labels["test"] == c)[0]) for c in (0, 3, 8, 9)]
    x = digits.images["test"][picks]  # (4, 1, 28, 28)
    w = raw_weights(weights)
    expected_f = keras_encoder(x.permute(0, 2, 3, 1).double().numpy(), w)
    expected_x = keras_decoder(expected_f, w).transpose(0, 3, 1, 2)
    model = authors_model(weights)
    assert model.decoder is not None
    with torch.no_grad():
        f = model.encoder(x)
        reconstruction = model.decoder(torch.from_numpy(expected_f).float())
    np.testing.assert_allclose(f.numpy(), expected_f, atol=2e-5)
    np.testing.assert_allclose(reconstruction.numpy(), expected_x, atol=2e-4)


def test_authors_weights_cluster_real_mnist(features: dict[str, np.ndarray], digits: Data) -> None:
    labels = digits.labels["test"]
    summary = summarize(features["keras"], labels, ["kmeans", "spectral"], 11, 0.1, digits.class_names)
    assert summary["clustering"]["kmeans"]["acc"] >= 0.97
    assert summary["clustering"]["spectral"]["acc"] >= 0.97
    assert summary["js"]["closest_pair"] == ("8", "9") and 0.15 < summary["js"]["js_min"] < 0.35


def test_symmetric_padding_changes_the_features_and_loses_accuracy(
    features: dict[str, np.ndarray], digits: Data
) -> None:
    assert np.abs(features["keras"] - features["symmetric"]).max() > 0.1
    accuracy = {
        padding: summarize(f, digits.labels["test"], ["kmeans"], 11, 0.1)["clustering"]["kmeans"]["acc"]
        for padding, f in features.items()
    }
    assert accuracy["symmetric"] < accuracy["keras"] - 0.05


def test_decoder_reconstructs_standardised_digits(
    weights: Path, features: dict[str, np.ndarray], digits: Data
) -> None:
    model = authors_model(weights)
    assert model.decoder is not None
    every_fifth = slice(None, None, 5)  # 20 per class: the test split is ordered by class
    with torch.no_grad():
        reconstruction = model.decoder(torch.from_numpy(features["keras"][every_fifth]))
    mse = float((reconstruction - digits.images["test"][every_fifth]).square().mean())
    assert mse < 0.15  # pixel variance is 1


def test_a_file_of_another_architecture_is_named_with_the_layer_and_shapes(tmp_path: Path) -> None:
    model = build_model(CONFIG, (1, 28, 28), num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "rgb.h5"
    write_keras_file(path, {"conv2d_1": {"kernel": np.zeros((3, 3, 3, 16)), "bias": np.zeros(16)}})
    shapes = r"kernel shape \(3, 3, 3, 16\), expected \(3, 3, 1, 16\)"
    with pytest.raises(ValueError, match=rf"'conv2d_1' .*{shapes}") as err:
        load_keras_weights(model, path)
    assert str(path) in str(err.value)
    write_keras_file(path, {"conv2d_1": {"kernel": np.ones((3, 3, 1, 16)), "bias": np.zeros(16)}})
    with pytest.raises(
        ValueError, match=r"'conv2d_2' .*not in the file, whose layers with weights are conv2d_1"
    ):
        load_keras_weights(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing written


def test_other_features_count_fails_before_anything_is_written(weights: Path) -> None:
    model = build_model(dataclasses.replace(CONFIG, num_features=16), (1, 28, 28), num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"'fc_sigmoid' .*\(6272, 10\), expected \(6272, 16\)"):
        load_keras_weights(model, weights)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_truncated_or_missing_file_is_named(weights: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.h5"
    with open(weights, "rb") as source:
        path.write_bytes(source.read(1000))
    model = build_model(CONFIG, (1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match="not a readable Keras HDF5 weights file") as err:
        load_keras_weights(model, path)
    assert str(path) in str(err.value)
    shutil.copy(weights, tmp_path / "copy.h5")  # a whole copy loads
    load_keras_weights(model, tmp_path / "copy.h5")
    with pytest.raises(FileNotFoundError, match=r"missing\.h5"):
        load_keras_weights(model, tmp_path / "missing.h5")
