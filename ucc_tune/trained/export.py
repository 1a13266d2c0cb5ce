"""``python -m ucc_tune.export``: a trained model and its matched clustering as one TorchScript file.

The file holds the encoder, the run's input normalisation, the PCA and centres of one clustering
method and the cluster -> class matching of ``artifacts/cluster_model.npz`` (the clustering
``python -m ucc_tune.predict`` uses), with the class names. It loads with ``torch.jit.load``
alone, in Python or C++ (libtorch), without this package:

    model = torch.jit.load("model.pt")
    features, cluster, class_index, distance = model(images)  # raw (N, C, H, W) images
    model.class_names[class_index[0]]

``images`` are raw pixels as the dataset stores them (uint8 0..255, or floats in [0, 1]); the
module normalises them as training did. ``features`` ``(N, J)`` float32 are the encoder's,
``cluster`` ``(N,)`` the nearest centre (after the PCA), ``class_index`` ``(N,)`` the class that
cluster was matched to (-1: none), ``distance`` ``(N,)`` float64 the distance to that centre.

Why TorchScript: ``torch.jit.load`` needs neither the Python classes of the model nor this
package, the same file runs from C++, and one scripted wrapper carries the clustering's
branches and buffers beside the traced encoder. ``torch.export`` programs would need the batch
size declared as a dynamic dimension and ``torch.export.load`` to read them back, and their
Python-free runtime (AOTInductor) compiles per platform.
"""

# no ``from __future__ import annotations``: TorchScript reads the annotations of ClusteredEncoder
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ucc_tune.config import Config, ConfigError
from ucc_tune.data.bags import BagSizeError
from ucc_tune.data.sources import DatasetNotFoundError
from ucc_tune.data.stats import EPS
from ucc_tune.provenance import provenance
from ucc_tune.trained.evaluate import EvaluationError
from ucc_tune.trained.predict import ClusterModel, PredictionError, normalise_like_training, open_model


class ClusteredEncoder(nn.Module):
    """Raw images ``(N, C, H, W)`` -> features, cluster ids, class indices and distances."""

    channel_mean: torch.Tensor  # (1, C, 1, 1); the buffers registered in __init__
    channel_std: torch.Tensor  # (1, C, 1, 1)
    pca_mean: torch.Tensor  # (J,)
    pca_components: torch.Tensor  # (D, J)
    centers: torch.Tensor  # (K, D)
    class_of_cluster: torch.Tensor  # (K,)

    def __init__(
        self,
        encoder: nn.Module,
        normalization: str,
        channels: tuple[np.ndarray, np.ndarray],
        model: ClusterModel,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.normalization = normalization
        self.eps = EPS  # the floor on a standard deviation in training's normalisation
        self.class_names = list(model.class_names)
        j = int(model.centers.shape[1]) if model.projection is None else model.projection.mean.shape[0]
        mean, components = (
            (np.zeros(j), np.eye(j))
            if model.projection is None
            else (model.projection.mean, model.projection.components)
        )
        as_buffer = {
            "channel_mean": torch.tensor(channels[0], dtype=torch.float32).view(1, -1, 1, 1),
            "channel_std": torch.tensor(channels[1], dtype=torch.float32).view(1, -1, 1, 1),
            "pca_mean": torch.tensor(mean, dtype=torch.float64),  # (J,)
            "pca_components": torch.tensor(components, dtype=torch.float64),  # (D, J)
            "centers": torch.tensor(model.centers, dtype=torch.float64),  # (K, D)
            "class_of_cluster": torch.tensor(model.class_of_cluster, dtype=torch.int64),  # (K,)
        }
        for name, tensor in as_buffer.items():
            self.register_buffer(name, tensor)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """As ``ucc_tune.data.stats``: uint8 to [0, 1], then per image, per channel or not at all."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.normalization == "per_image":
            flat = x.reshape(x.shape[0], -1)
            mean = flat.mean(dim=1, keepdim=True)
            std = flat.std(dim=1, keepdim=True, unbiased=False).clamp_min(self.eps)
            return ((flat - mean) / std).reshape(x.shape)
        if self.normalization == "dataset":
            return (x - self.channel_mean) / self.channel_std
        return x

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():  # an inference file: outputs convert to numpy as they are
            features = self.encoder(self.normalise(images))  # (N, J)
        points = (features.double() - self.pca_mean) @ self.pca_components.t()  # (N, D)
        squared = ((points[:, None, :] - self.centers[None]) ** 2).sum(dim=-1)  # (N, K)
        cluster = squared.argmin(dim=1)
        distance = squared.gather(1, cluster[:, None]).squeeze(1).sqrt()
        return features, cluster, self.class_of_cluster[cluster], distance


def channel_constants(config: Config, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of ``normalization=dataset``, read back from the training
    normalisation itself (black and white images); ones and zeros for the other methods."""
    if config.normalization != "dataset":
        return np.zeros(channels), np.ones(channels)
    shape = (2, channels, *([1] * 2))
    probe = np.stack([np.zeros(shape[1:], np.uint8), np.full(shape[1:], 255, np.uint8)])
    low, high = normalise_like_training(probe, config)[:, :, 0, 0]  # (C,) each: -m/s and (1-m)/s
    std = 1.0 / (high - low)
    return -low * std, std


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ucc_tune.export",
        description="Write a trained UCC model and its matched clustering as one TorchScript file.",
    )
    parser.add_argument("source", type=Path, help="a run folder, a trial folder or a checkpoint folder")
    parser.add_argument("--method", default="kmeans", help="kmeans or kmedoids (default kmeans)")
    parser.add_argument("--out", type=Path, help="the file (default <source>/model-<method>.pt)")
    parser.add_argument("--cluster-model", type=Path, help="the cluster_model.npz (default: the run's)")
    return parser


def export(args: argparse.Namespace, argv: list[str] | None) -> int:
    args.device = "cpu"  # a file that loads anywhere; torch.jit.load(map_location=...) moves it
    if args.out is not None and args.out.is_dir():
        raise PredictionError(f"--out {args.out} is a folder; give the file to write (model.pt)")
    run, model, cluster_file = open_model(args)
    encoder = run.model_core.encoder.eval()
    example = run.data.images["val"][:4].cpu()
    traced = torch.jit.trace(encoder, example)
    c = run.data.image_shape[0]
    module = ClusteredEncoder(traced, run.config.normalization, channel_constants(run.config, c), model)
    scripted = torch.jit.script(module)
    out: Path = args.out or args.source / f"model-{model.method}.pt"
    record = {
        "method": model.method,
        "class_names": list(model.class_names),
        "cluster_model": str(cluster_file),
        "config": run.config.to_dict(),
        **provenance(argv),
    }
    extra = {"ucc_tune.json": json.dumps(record, default=str)}
    try:  # a whole file or none: written beside the target, then moved over it
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as part:
            staged = Path(part.name)
        try:
            torch.jit.save(scripted, str(staged), _extra_files=extra)
            staged.replace(out)
        finally:
            staged.unlink(missing_ok=True)
    except OSError as err:
        raise PredictionError(f"--out {out}: cannot write it ({err.strerror or err})") from None
    print(f"wrote {out}: {model.method}, {len(model.centers)} clusters, images {run.data.image_shape}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return export(args, argv)
    except (PredictionError, EvaluationError, ConfigError, DatasetNotFoundError, BagSizeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
