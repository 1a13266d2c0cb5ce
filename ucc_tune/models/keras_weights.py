"""Load the UCC authors' Keras weights (an HDF5 file written by Keras 2) into a ``paper`` model.

The authors' MNIST release (Oner et al., ICLR 2020) holds the feature extractor (``conv2d_1`` ..
``conv2d_9`` and ``fc_sigmoid``) and, as the nested model ``model_2``, the decoder (``dense_1``,
``conv2d_10`` .. ``conv2d_18``); the UCC head is not in it and is left as it is. Keras is
channels-last: conv kernels are ``(kh, kw, c_in, c_out)``, dense kernels ``(in, out)``, and the
flatten before ``fc_sigmoid`` (like the reshape after ``dense_1``) runs over ``(H, W, C)``, so
those two dense layers are permuted to our channels-first ``(C, H, W)`` order.

Every array is converted and its shape checked before any parameter is written: a file of
another architecture raises a ValueError naming the file, the layer and both shapes, and leaves
the model as it was. The model computes what the authors' model computes only with Keras'
stride-2 padding (``PaperEncoder(padding="keras")``, ``Config.paper_padding="keras"``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from ucc_tune.models.decoders import PaperDecoder
from ucc_tune.models.encoders import PaperEncoder
from ucc_tune.models.ucc import UCCModel

# our submodule -> the Keras layer holding its weights, in the authors' layer numbering; in each
# stride-2 block the Keras numbering puts the 1x1 shortcut before the block's 3x3 convolutions
ENCODER_LAYERS: dict[str, str] = {
    "stem": "conv2d_1",
    "blocks.0.conv1": "conv2d_2",
    "blocks.0.conv2": "conv2d_3",
    "blocks.1.shortcut": "conv2d_6",
    "blocks.1.conv1": "conv2d_4",
    "blocks.1.conv2": "conv2d_5",
    "blocks.2.shortcut": "conv2d_9",
    "blocks.2.conv1": "conv2d_7",
    "blocks.2.conv2": "conv2d_8",
    "fc": "fc_sigmoid",
}
DECODER_LAYERS: dict[str, str] = {
    "fc": "dense_1",
    "blocks.0.conv1": "conv2d_10",
    "blocks.0.conv2": "conv2d_11",
    "blocks.1.conv1": "conv2d_12",
    "blocks.1.conv2": "conv2d_13",
    "blocks.1.shortcut": "conv2d_14",
    "blocks.2.conv1": "conv2d_15",
    "blocks.2.conv2": "conv2d_16",
    "blocks.2.shortcut": "conv2d_17",
    "out": "conv2d_18",
}

Grid = tuple[int, int, int]  # (C, H, W) of a flattened feature map


def read_keras_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Every weight array of a Keras 2 HDF5 weights file, keyed ``"<layer>/kernel"`` or
    ``"<layer>/bias"``; the layers of a nested model keep their own names. A missing file is a
    FileNotFoundError, an unreadable or truncated one a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Keras weights file {path} does not exist")
    try:
        with h5py.File(path, "r") as handle:
            root = handle.get("model_weights", handle)  # the weights of a whole saved model, or the file
            return _arrays(root, path)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: not a readable Keras HDF5 weights file ({err})") from err


def _arrays(root: h5py.Group, path: Path) -> dict[str, np.ndarray]:
    if "layer_names" not in root.attrs:
        raise ValueError(f"{path}: no 'layer_names' attribute, so not a Keras weights file")
    arrays: dict[str, np.ndarray] = {}
    for layer in root.attrs["layer_names"]:
        group = root[_text(layer)]
        for name in group.attrs.get("weight_names", []):
            key = _text(name).rsplit(":", 1)[0]  # "conv2d_1/kernel:0" -> "conv2d_1/kernel"
            arrays[key] = np.asarray(group[_text(name)], dtype=np.float32)
    return arrays


def _text(value: bytes | str) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def load_keras_weights(model: UCCModel, path: str | Path) -> None:
    """Copy the authors' encoder (and decoder, when ``model`` has one) weights from ``path``.

    ``model`` must be built with ``model="paper"`` for the file's image shape and J. The UCC and
    RCC heads are not in the file and keep their values.
    """
    arrays = read_keras_weights(path)
    if not isinstance(model.encoder, PaperEncoder):
        raise ValueError(f"Keras weights fit model='paper' only, not a {type(model.encoder).__name__}")
    grid_in = (128, *model.encoder.grid)
    tensors = _converted(model.encoder, "encoder", ENCODER_LAYERS, arrays, path, {"fc": (grid_in, None)})
    if model.decoder is not None:
        if not isinstance(model.decoder, PaperDecoder):
            raise ValueError(f"Keras weights fit model='paper' only, not a {type(model.decoder).__name__}")
        grid_out = model.decoder.start
        decoder = _converted(model.decoder, "decoder", DECODER_LAYERS, arrays, path, {"fc": (None, grid_out)})
        tensors += decoder
    with torch.no_grad():
        for param, value in tensors:
            param.copy_(value)


def _converted(
    module: nn.Module,
    part: str,
    layers: dict[str, str],
    arrays: dict[str, np.ndarray],
    path: str | Path,
    grids: dict[str, tuple[Grid | None, Grid | None]],
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(our parameter, its value from the file) for every layer of ``layers``, all shapes checked."""
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    for prefix, layer in layers.items():
        ours = module.get_submodule(prefix)
        if not isinstance(ours, (nn.Conv2d, nn.Linear)):
            raise TypeError(f"{part}.{prefix} is a {type(ours).__name__}, not a Conv2d or Linear")
        where = f"{path}: Keras layer {layer!r} (the {part}'s {prefix})"
        kernel, bias = _layer_arrays(arrays, layer, ours.bias is not None, where)
        expected = _keras_shape(ours.weight)
        if kernel.shape != expected:
            raise ValueError(f"{where}: kernel shape {kernel.shape}, expected {expected}")
        if ours.bias is not None and bias is not None and bias.shape != tuple(ours.bias.shape):
            raise ValueError(f"{where}: bias shape {bias.shape}, expected {tuple(ours.bias.shape)}")
        if isinstance(ours, nn.Conv2d):
            weight = kernel.transpose(3, 2, 0, 1)  # (kh, kw, c_in, c_out) -> (c_out, c_in, kh, kw)
        else:
            weight, bias = _dense(kernel, bias, *grids.get(prefix, (None, None)))
        pairs.append((ours.weight, torch.from_numpy(np.ascontiguousarray(weight))))
        if ours.bias is not None and bias is not None:
            pairs.append((ours.bias, torch.from_numpy(np.ascontiguousarray(bias))))
    return pairs


def _layer_arrays(
    arrays: dict[str, np.ndarray], layer: str, has_bias: bool, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's kernel and bias (None when ours has none); a missing or extra array is an error."""
    if f"{layer}/kernel" not in arrays:
        names = sorted({key.split("/")[0] for key in arrays})
        raise ValueError(f"{where}: not in the file, whose layers with weights are {', '.join(names)}")
    if has_bias != (f"{layer}/bias" in arrays):
        found, ours = ("no bias", "one") if has_bias else ("a bias", "none")
        raise ValueError(f"{where}: {found} in the file, but ours has {ours}")
    return arrays[f"{layer}/kernel"], arrays.get(f"{layer}/bias")


def _keras_shape(weight: torch.Tensor) -> tuple[int, ...]:
    """The Keras kernel shape of our conv ``(c_out, c_in, kh, kw)`` or linear ``(out, in)`` weight."""
    if weight.dim() == 4:
        c_out, c_in, kh, kw = weight.shape
        return (kh, kw, c_in, c_out)
    return tuple(reversed(weight.shape))


def _dense(
    kernel: np.ndarray, bias: np.ndarray | None, grid_in: Grid | None, grid_out: Grid | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A Keras dense ``(in, out)`` kernel as our ``(out, in)`` weight. ``grid_in``/``grid_out``: the
    input/output is a ``(C, H, W)`` map that Keras flattens channels-last, ours channels-first."""
    if grid_in is not None:
        c, h, w = grid_in
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
    if grid_out is not None:
        c, h, w = grid_out
        kernel = kernel.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(len(kernel), -1)
        if bias is not None:
            bias = bias.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    return kernel.T, bias
