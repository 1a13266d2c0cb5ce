"""``python -m ucc_tune.predict``: cluster assignments of new images by a trained UCC model.

The model is found as ``python -m ucc_tune.evaluate`` finds it (a run folder, a trial folder of a
search or a checkpoint folder) and its clustering is the one the run saved at its end,
``artifacts/cluster_model.npz`` (``ucc_tune.train.artifacts.cluster_model``): the PCA fitted on
the test features (when ``cluster_pca`` asked for one), the k-means centroids and k-medoids
medoids of the test clustering, and the cluster -> class matching made on the labelled validation
split. A new image is normalised exactly as in training (the run's ``normalization``), encoded,
projected, and assigned to its nearest centre, so the run's own test images get the cluster ids
of ``artifacts/test_features.npz``.

Spectral clustering has no rule for points outside the set it clustered (its embedding is of
that set's neighbour graph), so ``--method spectral`` is refused with that reason.

Images come from a split of the run's dataset (``--split test``), a folder of image files
(``--images DIR``, searched recursively, sorted by path) or a ``.npy`` array ``(N, H, W)`` or
``(N, C, H, W)`` (``--images FILE.npy``), given as the dataset's raw pixels: uint8 0..255 or
floats in [0, 1]. Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucc_tune import feature_scores
from ucc_tune.config import CLUSTER_METHODS, Config, ConfigError
from ucc_tune.data.bags import BagSizeError
from ucc_tune.data.loading import SPLITS, config_splits, normalize_splits
from ucc_tune.data.sources import IMAGE_SUFFIXES, DatasetNotFoundError, read_images
from ucc_tune.data.splits import Split
from ucc_tune.schema import ARTIFACTS_DIR, CLUSTER_MODEL_FILE
from ucc_tune.train.run import Run
from ucc_tune.trained.evaluate import EvaluationError, Source, build_run, open_checkpoint


class PredictionError(ValueError):
    """Bad input to the prediction: the message names the file or value and what was expected."""


@dataclass(frozen=True)
class ClusterModel:
    """One method's saved clustering: ``centers`` ``(K, D)`` in the space after ``projection``,
    ``class_of_cluster`` ``(K,)`` indices into ``class_names`` (-1: no class matched)."""

    method: str
    centers: np.ndarray
    class_of_cluster: np.ndarray
    class_names: tuple[str, ...]
    projection: feature_scores.Projection | None
    digest: str

    def assign(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster ids ``(N,)`` and distances to their centres ``(N,)`` of ``(N, J)`` features."""
        return feature_scores.assign(feature_scores.project(features, self.projection), self.centers)

    def class_name(self, cluster: int) -> str:
        index = int(self.class_of_cluster[cluster])
        return self.class_names[index] if index >= 0 else ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ucc_tune.predict",
        description="Assign images to the clusters (and matched classes) of a trained UCC model.",
    )
    parser.add_argument("source", type=Path, help="a run folder, a trial folder or a checkpoint folder")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--split", help=f"a split of the run's dataset: {', '.join(SPLITS)} (default test)")
    images.add_argument("--images", type=Path, help="a folder of image files or a .npy array")
    parser.add_argument("--method", default="kmeans", help="kmeans or kmedoids (default kmeans)")
    parser.add_argument("--out", type=Path, help="the Parquet file (default <source>/predictions.parquet)")
    parser.add_argument("--csv", action="store_true", help="also write the table as CSV beside it")
    parser.add_argument("--cluster-model", type=Path, help=f"the {CLUSTER_MODEL_FILE} (default: the run's)")
    parser.add_argument("--device", help="auto, cpu or cuda (default: the run's)")
    return parser


# --- the saved clustering ----------------------------------------------------------------------


def find_cluster_model(source: Source) -> Path:
    """``artifacts/cluster_model.npz`` of the run or trial the source belongs to."""
    places = dict.fromkeys([source.path, source.weights.parent, source.weights.parent.parent])
    for folder in places:
        if (folder / ARTIFACTS_DIR / CLUSTER_MODEL_FILE).is_file():
            return folder / ARTIFACTS_DIR / CLUSTER_MODEL_FILE
    looked = ", ".join(str(f / ARTIFACTS_DIR) for f in places)
    raise PredictionError(
        f"{source.path}: no {CLUSTER_MODEL_FILE} in {looked}; a run saves it when it finishes "
        "(or pass --cluster-model FILE)"
    )


def read_cluster_model(path: Path, method: str) -> ClusterModel:
    """The saved clustering of ``method``; spectral and unknown methods are refused."""
    if method == "spectral":
        raise PredictionError(
            "--method spectral: spectral clustering has no rule for new images (it embeds the "
            "neighbour graph of the images it clustered); use kmeans or kmedoids"
        )
    if method not in CLUSTER_METHODS:
        raise PredictionError(f"--method {method!r} is unknown; choose kmeans or kmedoids")
    try:
        saved = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as err:
        raise PredictionError(f"{path}: not readable ({err}); expected a {CLUSTER_MODEL_FILE}") from None
    if f"centers_{method}" not in saved:
        raise PredictionError(f"{path}: holds no {method} clustering; it has {', '.join(saved['methods'])}")
    projection = None
    if "pca_mean" in saved:
        projection = feature_scores.Projection(saved["pca_mean"], saved["pca_components"])
    return ClusterModel(
        method,
        saved[f"centers_{method}"],
        saved[f"class_of_cluster_{method}"],
        tuple(str(n) for n in saved["class_names"]),
        projection,
        str(saved["encoder_digest"]),
    )


# --- the images --------------------------------------------------------------------------------


def normalise_like_training(raw: np.ndarray, config: Config) -> np.ndarray:
    """``(N, C, H, W)`` raw images normalised by the function and statistics training used."""
    splits = config_splits(config)
    given = dataclasses.replace(splits, test=Split(raw, np.zeros(len(raw), dtype=np.int64)))
    return normalize_splits(given, config)["test"]


def read_raw_images(path: Path) -> tuple[np.ndarray, list[Any]]:
    """Raw ``(N, C, H, W)`` images of a folder (ids: paths) or a ``.npy`` file (ids: indices)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PredictionError(f"--images {path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        try:
            return read_images(files), [str(p) for p in files]
        except (OSError, ValueError) as err:
            raise PredictionError(f"--images {path}: {err}") from None
    if path.suffix != ".npy" or not path.is_file():
        raise PredictionError(f"--images {path}: expected a folder of images or an existing .npy file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise PredictionError(f"--images {path}: not a readable .npy array ({err})") from None
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise PredictionError(
            f"--images {path}: an array {array.dtype} {array.shape}; expected uint8 or float images "
            "of shape (N, H, W) or (N, C, H, W)"
        )
    if np.issubdtype(array.dtype, np.floating) and not (finite := np.isfinite(array)).all():
        bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
        raise PredictionError(
            f"--images {path}: {len(bad)} image(s) hold NaN or infinite pixels (index "
            f"{', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''}); every pixel must be finite"
        )
    return array, list(range(len(array)))


def images_to_predict(
    args: argparse.Namespace, run: Run
) -> tuple[torch.Tensor, list[Any], np.ndarray | None]:
    """The normalised images ``(N, C, H, W)``, their ids and, for a split, their true classes."""
    if args.images is None:
        split = args.split or "test"
        if split not in SPLITS:
            raise PredictionError(f"--split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
        return run.data.images[split], list(range(len(run.data.labels[split]))), run.data.labels[split]
    raw, ids = read_raw_images(args.images)
    expected = run.data.image_shape
    if tuple(raw.shape[1:]) != expected:
        c, h, w = raw.shape[1:]
        raise PredictionError(
            f"--images {args.images}: {c} channel(s) of {h}x{w} pixels, but the model was trained on "
            f"{expected[0]} channel(s) of {expected[1]}x{expected[2]} (dataset {run.config.dataset})"
        )
    normalised = normalise_like_training(raw, run.config)
    return torch.from_numpy(np.ascontiguousarray(normalised)).to(run.device), ids, None


# --- the table ---------------------------------------------------------------------------------


def prediction_table(
    features: np.ndarray, ids: list[Any], model: ClusterModel, true_labels: np.ndarray | None
) -> Any:
    """One row per image: ``image``, ``cluster``, ``class_name``, ``distance``, (``true_class``),
    ``f0`` .. ``f{J-1}``."""
    import pandas as pd

    clusters, distances = model.assign(features)
    table = pd.DataFrame(
        {
            "image": ids,
            "cluster": clusters.astype(np.int64),
            "class_name": pd.array([model.class_name(c) for c in clusters], dtype="string"),
            "distance": distances,
        }
    )
    if true_labels is not None:
        table["true_class"] = pd.array([model.class_names[t] for t in true_labels], dtype="string")
    for j in range(features.shape[1]):
        table[f"f{j}"] = features[:, j]
    return table


def print_counts(table: Any, model: ClusterModel) -> None:
    """Images per cluster, with the class each cluster was matched to."""
    counts = table["cluster"].value_counts()
    print(f"{'cluster':>7s}  {'class':12s} {'images':>7s}")
    for cluster in range(len(model.centers)):
        print(f"{cluster:>7d}  {model.class_name(cluster):12s} {int(counts.get(cluster, 0)):>7d}")
    print(f"{'all':>7s}  {'':12s} {len(table):>7d}")


# --- the command -------------------------------------------------------------------------------


def open_model(args: argparse.Namespace) -> tuple[Run, ClusterModel, Path]:
    """The trained model and its saved clustering; refuses a clustering of other weights."""
    overrides = {"device": args.device} if args.device is not None else {}
    source, config, state = open_checkpoint(args.source, overrides)
    cluster_file = args.cluster_model or find_cluster_model(source)
    model = read_cluster_model(cluster_file, args.method)
    run = build_run(source, config, state)
    if feature_scores.weights_digest(run.model_core.encoder) != model.digest:
        raise PredictionError(
            f"{cluster_file} was fitted on the features of other weights than {source.weights}; "
            "give the run's final checkpoint (or the run folder), or the matching --cluster-model"
        )
    return run, model, cluster_file


def predict(args: argparse.Namespace) -> int:
    run, model, cluster_file = open_model(args)
    images, ids, true_labels = images_to_predict(args, run)
    encoder = run.model_core.encoder
    features = feature_scores.extract_features(encoder, images, run.config.eval_batch_size)
    table = prediction_table(features, ids, model, true_labels)
    out: Path = args.out or args.source / "predictions.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    written = [out]
    if args.csv:
        written.append(out.with_suffix(".csv"))
        table.to_csv(written[-1], index=False)
    print(f"{len(table)} images, {model.method} clusters of {cluster_file}")
    print_counts(table, model)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return predict(args)
    except (PredictionError, EvaluationError, ConfigError, DatasetNotFoundError, BagSizeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
