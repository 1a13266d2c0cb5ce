"""Dataset sources: read a dataset into ``(N, C, H, W)`` arrays and split it deterministically.

``DATASETS`` names every source. ``digits`` (scikit-learn's bundled 8x8 digits) needs no
download; MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (its 20 coarse classes, as in the UCC
paper) are read from ``data_dir`` in torchvision's on-disk formats by our own readers, and
downloaded with torchvision only when asked (``download=True``); ``image_folder`` reads one
sub-folder of images per class. This module imports only numpy at the top, because
``ucc_tune.config`` imports it to validate dataset names.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where they should be; the message says how to get them."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, C, H, W) uint8, or float32 for float sources
    y: np.ndarray  # (N,) int64


@dataclass(frozen=True)
class RawData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class DataSplits:
    dataset: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def channels(self) -> int:
        return self.image_shape[0]


@dataclass(frozen=True)
class DatasetSpec:
    loader: Callable[[Path, bool], RawData]
    num_classes: int | None  # None: known only after reading (image_folder)
    has_test_split: bool
    description: str


# --- MNIST-style IDX files -----------------------------------------------------------------

MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) of unsigned bytes with ``ndim`` dimensions."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(
            f"{path}: magic number {magic:#010x} is not {_IDX_MAGIC[ndim]:#010x} (IDX, {ndim}-d)"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but holds {body.size}")
    return body.reshape(dims)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(dataset: str, folder: Path, names: list[str]) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {dataset!r}: files not found in {folder}: expected {', '.join(names)}. "
        f"Copy them there, or pass --set download=true (download=True) to fetch them with "
        f"torchvision's downloader into {folder.parent.parent if 'raw' in folder.parts else folder.parent}."
    )


def _mnist_like(
    subdir: str, torchvision_name: str, names: tuple[str, ...]
) -> Callable[[Path, bool], RawData]:
    def load(data_dir: Path, download: bool) -> RawData:
        folder = data_dir / subdir / "raw"
        paths = {key: _find(folder, name) for key, name in MNIST_FILES.items()}
        if any(p is None for p in paths.values()) and download:
            _torchvision_download(torchvision_name, data_dir)
            paths = {key: _find(folder, name) for key, name in MNIST_FILES.items()}
        if any(p is None for p in paths.values()):
            raise _missing(subdir, folder, list(MNIST_FILES.values()))
        x_train, y_train = read_idx(paths["train_x"], 3), read_idx(paths["train_y"], 1)  # type: ignore[arg-type]
        x_test, y_test = read_idx(paths["test_x"], 3), read_idx(paths["test_y"], 1)  # type: ignore[arg-type]
        for x, y, key in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
            if len(x) != len(y):
                raise ValueError(f"{folder}: {key} has {len(x)} images but {len(y)} labels")
        return RawData(
            x_train[:, None], y_train.astype(np.int64), x_test[:, None], y_test.astype(np.int64), names
        )

    return load


def _torchvision_download(name: str, data_dir: Path) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, name)
    for train in (True, False):
        cls(root=str(data_dir), train=train, download=True)


# --- CIFAR python pickles ------------------------------------------------------------------


def _unpickle(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _cifar_images(data: Any) -> np.ndarray:
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)  # channel-major RGB rows


def _load_cifar10(data_dir: Path, download: bool) -> RawData:
    folder = data_dir / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    if not all((folder / n).is_file() for n in names):
        if download:
            _torchvision_download("CIFAR10", data_dir)
        if not all((folder / n).is_file() for n in names):
            raise _missing("cifar10", folder, names)
    train = [_unpickle(folder / n) for n in names[:5]]
    test = _unpickle(folder / "test_batch")
    meta = _unpickle(folder / "batches.meta")
    return RawData(
        np.concatenate([_cifar_images(b["data"]) for b in train]),
        np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in train]),
        _cifar_images(test["data"]),
        np.asarray(test["labels"], dtype=np.int64),
        tuple(str(n) for n in meta["label_names"]),
    )


def _load_cifar100(data_dir: Path, download: bool) -> RawData:
    folder = data_dir / "cifar-100-python"
    names = ["train", "test", "meta"]
    if not all((folder / n).is_file() for n in names):
        if download:
            _torchvision_download("CIFAR100", data_dir)
        if not all((folder / n).is_file() for n in names):
            raise _missing("cifar100", folder, names)
    train, test, meta = (_unpickle(folder / n) for n in names)
    return RawData(
        _cifar_images(train["data"]),
        np.asarray(train["coarse_labels"], dtype=np.int64),
        _cifar_images(test["data"]),
        np.asarray(test["coarse_labels"], dtype=np.int64),
        tuple(str(n) for n in meta["coarse_label_names"]),
    )


# --- scikit-learn digits and image folders -------------------------------------------------


def _load_digits(data_dir: Path, download: bool) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # (N, 1, 8, 8), 0..16 -> 0..255
    return RawData(x, bunch.target.astype(np.int64), None, None, tuple(str(d) for d in range(10)))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _load_image_folder(data_dir: Path, download: bool) -> RawData:
    if download:
        raise ValueError(
            "image_folder reads your own images; there is nothing to download (use download=false)"
        )
    if not data_dir.is_dir():
        raise DatasetNotFoundError(
            f"image_folder: {data_dir} is not a folder; put one sub-folder per class there"
        )
    classes = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(
            f"image_folder: {data_dir} has no class sub-folders (one per class expected)"
        )
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (data_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DatasetNotFoundError(f"image_folder: class folder {data_dir / name} holds no images")
        files += [(p, label) for p in found]
    return RawData(
        _read_images([p for p, _ in files]), np.array([lbl for _, lbl in files]), None, None, tuple(classes)
    )


def _read_images(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    images = [Image.open(p) for p in paths]
    rgb = any(img.mode not in ("L", "1", "I;16") for img in images)
    size = images[0].size
    arrays = []
    for path, img in zip(paths, images, strict=True):
        if img.size != size:
            raise ValueError(
                f"image_folder: {path} is {img.size[0]}x{img.size[1]} but {paths[0]} is {size[0]}x{size[1]}"
            )
        arr = np.asarray(img.convert("RGB" if rgb else "L"), dtype=np.uint8)
        arrays.append(arr.transpose(2, 0, 1) if rgb else arr[None])
    return np.stack(arrays)


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(_load_digits, 10, False, "scikit-learn's bundled 8x8 handwritten digits"),
    "mnist": DatasetSpec(_mnist_like("MNIST", "MNIST", tuple(str(d) for d in range(10))), 10, True, "MNIST"),
    "fashion_mnist": DatasetSpec(
        _mnist_like(
            "FashionMNIST",
            "FashionMNIST",
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
        ),
        10,
        True,
        "Fashion-MNIST",
    ),
    "cifar10": DatasetSpec(_load_cifar10, 10, True, "CIFAR-10"),
    "cifar100": DatasetSpec(_load_cifar100, 20, True, "CIFAR-100, 20 coarse superclasses"),
    "image_folder": DatasetSpec(_load_image_folder, None, False, "one sub-folder of images per class"),
}


# --- splits ----------------------------------------------------------------------------------


def stratified_take(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``round(fraction * n_c)`` random members of every class ``c`` (sorted)."""
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        count = round(fraction * len(members))
        picked.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(picked))


def load_splits(
    dataset: str,
    data_dir: str | Path = "data",
    split_seed: int = 0,
    val_fraction: float = 1 / 6,
    test_fraction: float = 0.2,
    download: bool = False,
) -> DataSplits:
    """Read ``dataset`` and split it into train/val/test, stratified and fixed by ``split_seed``.

    With an official test split: test is that split and val is ``val_fraction`` of the official
    training set. Without: test is ``test_fraction`` and val ``val_fraction`` of everything.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
    raw = DATASETS[dataset].loader(Path(data_dir).expanduser(), download)
    rng = np.random.default_rng(split_seed)
    x, y = raw.x_train, raw.y_train
    if raw.x_test is not None and raw.y_test is not None:
        test = Split(raw.x_test, raw.y_test)
        val_fraction_of_rest = val_fraction
    else:
        test_pos = stratified_take(y, test_fraction, rng)
        test = Split(x[test_pos], y[test_pos])
        keep = np.setdiff1d(np.arange(len(y)), test_pos)
        x, y = x[keep], y[keep]
        val_fraction_of_rest = val_fraction / (1 - test_fraction)
    val_pos = stratified_take(y, val_fraction_of_rest, rng)
    train_pos = np.setdiff1d(np.arange(len(y)), val_pos)
    splits = DataSplits(
        dataset, raw.class_names, Split(x[train_pos], y[train_pos]), Split(x[val_pos], y[val_pos]), test
    )
    _check_every_class_present(splits)
    return splits


def _check_every_class_present(splits: DataSplits) -> None:
    for name in ("train", "val", "test"):
        present = np.unique(getattr(splits, name).y)
        missing = sorted(set(range(splits.num_classes)) - set(present.tolist()))
        if missing:
            raise ValueError(
                f"dataset {splits.dataset!r}: the {name} split has no instance of class(es) "
                f"{[splits.class_names[c] for c in missing]}; add data or change val_fraction/test_fraction"
            )
