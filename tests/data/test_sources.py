"""Dataset readers on tiny files written here in the real formats (IDX, CIFAR pickles, PNGs).

The writers below are independent of ``ucc_tune.data.sources``: they follow the published
formats (big-endian IDX headers, CIFAR's channel-major pickled rows), so a reader that only
agreed with itself would fail.
"""

from __future__ import annotations

import ast
import gzip
import pickle
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ucc_tune.catalog import CATALOG
from ucc_tune.data import sources
from ucc_tune.data.sources import DATASETS, DatasetNotFoundError
from ucc_tune.data.splits import DataSplits, load_splits

MNIST_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
TORCHVISION = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}

# --- independent writers of the on-disk formats -----------------------------------------------


def write_bytes(path: Path, payload: bytes, gz: bool) -> None:
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def idx_images(images: np.ndarray, magic: int = 0x00000803) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", magic, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def balanced_labels(per_class: int, classes: int = 10) -> np.ndarray:
    return np.tile(np.arange(classes), per_class)


def make_mnist(
    root: Path, subdir: str = "MNIST", gz: bool | tuple[bool, ...] = False, per_class: int = 6
) -> dict[str, np.ndarray]:
    """Writes train (``per_class`` per class) and t10k (2 per class) files of 5x4 random images."""
    raw = root / subdir / "raw"
    raw.mkdir(parents=True)
    gzs = gz if isinstance(gz, tuple) else (gz,) * 4
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (prefix, count) in enumerate((("train", per_class), ("t10k", 2))):
        labels = balanced_labels(count)
        images = rng.integers(0, 256, size=(len(labels), 5, 4), dtype=np.uint8)
        write_bytes(raw / f"{prefix}-images-idx3-ubyte", idx_images(images), gzs[2 * i])
        write_bytes(raw / f"{prefix}-labels-idx1-ubyte", idx_labels(labels), gzs[2 * i + 1])
        arrays[f"{prefix}_x"], arrays[f"{prefix}_y"] = images, labels
    return arrays


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def dump(path: Path, obj: dict[Any, Any], byte_keys: bool = False) -> None:
    if byte_keys:  # as the original pickles read into Python 3 look
        obj = {k.encode(): v for k, v in obj.items()}
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_cifar10(root: Path, byte_keys: bool = False, per_batch: int = 2) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = balanced_labels(per_batch)
    rows = [cifar_rows(len(labels), seed) for seed in range(1, 6)]
    for i, batch in enumerate(rows, start=1):
        dump(folder / f"data_batch_{i}", {"data": batch, "labels": labels.tolist()}, byte_keys)
    test_rows = cifar_rows(10, 9)
    dump(folder / "test_batch", {"data": test_rows, "labels": list(range(10))}, byte_keys)
    dump(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_vis": 3072}, byte_keys)
    return {"train_rows": np.concatenate(rows), "test_rows": test_rows}


def write_pngs(root: Path, modes: dict[str, str], size: tuple[int, int] = (6, 5), per_class: int = 6) -> None:
    """One folder per class of ``modes``; image ``i`` of class ``c`` is the constant ``c * 60 + i * 5``."""
    from PIL import Image

    for c, (name, mode) in enumerate(modes.items()):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = (c * 60 + i * 5) % 256
            colour = value if mode == "L" else (value, 255 - value, 7)
            Image.new(mode, size, colour).save(root / name / f"{i}.png")


def all_splits(splits: DataSplits) -> list[Any]:
    return [splits.train, splits.val, splits.test]


def image_shapes(splits: DataSplits) -> set[tuple[int, ...]]:
    """The ``(C, H, W)`` shapes of the splits' images (one shape when they agree)."""
    return {s.x.shape[1:] for s in all_splits(splits)}


def assert_partition(parts: list[np.ndarray], expected: np.ndarray) -> None:
    """The rows of ``parts`` (each ``(n_i, ...)``) are exactly the rows of ``expected``, each once."""
    joined = np.concatenate([p.reshape(len(p), -1) for p in parts])
    assert sorted(map(bytes, joined)) == sorted(map(bytes, expected.reshape(len(expected), -1)))


# --- the registry and the module's imports ----------------------------------------------------


def test_registry_names_every_source() -> None:
    assert list(DATASETS) == [
        "digits", "mnist_sample", "mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder",
    ]  # fmt: skip
    assert {n: CATALOG[n].classes for n in DATASETS} == {
        "digits": 10, "mnist_sample": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 20,
        "image_folder": None,
    }  # fmt: skip


def test_module_imports_only_numpy_and_the_standard_library_at_the_top() -> None:
    tree = ast.parse(Path(sources.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    ours = {m for m in modules if m.startswith("ucc_tune")}
    assert ours == set()  # the readers need nothing of the package at import time
    roots = {m.split(".")[0] for m in modules if m not in ours} - {"__future__", "numpy"}
    assert roots and roots <= set(sys.stdlib_module_names), roots


# --- MNIST-style IDX -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True, (True, False, False, True)], ids=["plain", "gz", "mixed"])
@pytest.mark.parametrize(("name", "subdir"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_files_read_exactly(
    tmp_path: Path, gz: bool | tuple[bool, ...], name: str, subdir: str
) -> None:
    arrays = make_mnist(tmp_path, subdir, gz)
    splits = load_splits(name, tmp_path, split_seed=0, val_fraction=1 / 3)
    np.testing.assert_array_equal(splits.test.x[:, 0], arrays["t10k_x"])  # the official test split, in order
    np.testing.assert_array_equal(splits.test.y, arrays["t10k_y"])
    assert image_shapes(splits) == {(1, 5, 4)} and splits.num_classes == 10
    assert splits.train.x.dtype == np.uint8 and splits.train.y.dtype == np.int64
    assert (np.bincount(splits.val.y) == 2).all() and (np.bincount(splits.train.y) == 4).all()  # round(6 / 3)
    assert_partition([splits.train.x, splits.val.x], arrays["train_x"])  # train + val = official train
    for s in all_splits(splits):  # labels travel with their images
        lookup = {bytes(img): lbl for img, lbl in zip(arrays["train_x"], arrays["train_y"], strict=True)}
        if s is not splits.test:
            assert [lookup[bytes(img[0])] for img in s.x] == s.y.tolist()
    expected_names = sources.FASHION_MNIST_NAMES if name == "fashion_mnist" else tuple("0123456789")
    assert splits.class_names == expected_names
    if name == "fashion_mnist":
        assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"


@pytest.mark.parametrize("gz", [False, True])
def test_idx_magic_number_error_names_the_file(tmp_path: Path, gz: bool) -> None:
    make_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte").unlink()
    write_bytes(raw / "t10k-images-idx3-ubyte", idx_images(np.zeros((20, 5, 4)), magic=0x00000801), gz)
    bad = raw / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    with pytest.raises(ValueError, match=rf"{bad}: magic number 0x00000801 is not 0x00000803"):
        load_splits("mnist", tmp_path)


def test_idx_sizes_are_checked(tmp_path: Path) -> None:
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(struct.pack(">II", 0x00000801, 5) + bytes(3))
    with pytest.raises(ValueError, match=rf"{short}: header says \[5\] \(5 bytes\) but holds 3"):
        sources.read_idx(short, 1)
    make_mnist(tmp_path / "m")
    raw = tmp_path / "m" / "MNIST" / "raw"
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_labels(balanced_labels(5)))  # 50 labels, 60 images
    with pytest.raises(
        ValueError, match=r"train-images-idx3-ubyte holds 60 images but .*labels-idx1-ubyte holds 50"
    ):
        load_splits("mnist", tmp_path / "m")


def test_splits_are_deterministic_stratified_contiguous_and_writable(tmp_path: Path) -> None:
    make_mnist(tmp_path, per_class=12)
    a = load_splits("mnist", tmp_path, split_seed=4, val_fraction=0.25)
    b = load_splits("mnist", tmp_path, split_seed=4, val_fraction=0.25)
    c = load_splits("mnist", tmp_path, split_seed=5, val_fraction=0.25)
    for sa, sb in zip(all_splits(a), all_splits(b), strict=True):
        np.testing.assert_array_equal(sa.x, sb.x)
        np.testing.assert_array_equal(sa.y, sb.y)
    assert not np.array_equal(a.val.x, c.val.x)
    assert (np.bincount(a.val.y) == 3).all() and (np.bincount(a.train.y) == 9).all()
    for s in all_splits(a):
        assert s.x.flags.c_contiguous and s.x.flags.writeable and s.y.flags.c_contiguous


# --- missing files and downloads ---------------------------------------------------------------


def forbid_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    def no_download(*_: object, **__: object) -> None:
        raise AssertionError("torchvision was called without download=True")

    for cls in TORCHVISION.values():
        monkeypatch.setattr(torchvision.datasets, cls, no_download)


@pytest.mark.parametrize(
    ("name", "folder", "files"),
    [
        ("mnist", "MNIST/raw", MNIST_NAMES),
        ("fashion_mnist", "FashionMNIST/raw", MNIST_NAMES),
        (
            "cifar10",
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
        ),
        ("cifar100", "cifar-100-python", ["train", "test", "meta"]),
    ],
)
def test_missing_files_say_where_and_how_and_download_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, folder: str, files: list[str]
) -> None:
    forbid_torchvision(monkeypatch)
    with pytest.raises(DatasetNotFoundError) as err:
        load_splits(name, tmp_path)
    message = str(err.value)
    assert str(tmp_path / folder) in message and "download=true" in message
    assert all(f in message for f in files), message
    assert not any(tmp_path.iterdir())  # nothing was written


def test_one_missing_file_is_still_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_torchvision(monkeypatch)
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        load_splits("cifar10", tmp_path)


def test_download_true_calls_torchvision_then_reads_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    calls = []

    def fake_mnist(root: str, train: bool, download: bool) -> None:
        calls.append((root, train, download))
        if not (Path(root) / "MNIST").exists():
            make_mnist(Path(root), gz=True)  # torchvision keeps the .gz files too

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    splits = load_splits("mnist", tmp_path, download=True)
    assert calls == [(str(tmp_path), True, True)] and splits.num_classes == 10
    load_splits("mnist", tmp_path, download=True)  # files present: no second download
    assert len(calls) == 1


def test_failed_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    def offline(**_: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DatasetNotFoundError, match=r"downloading CIFAR100 into .* failed .*copy the files"):
        load_splits("cifar100", tmp_path, download=True)


# --- CIFAR pickles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("byte_keys", [False, True])
def test_cifar10_pickles_read_channel_major(tmp_path: Path, byte_keys: bool) -> None:
    rows = make_cifar10(tmp_path, byte_keys)
    splits = load_splits("cifar10", tmp_path, val_fraction=0.2)
    assert splits.class_names == tuple(CIFAR10_NAMES) and image_shapes(splits) == {(3, 32, 32)}
    first = splits.test.x[0]
    np.testing.assert_array_equal(first[0].ravel(), rows["test_rows"][0, :1024])  # red plane first
    np.testing.assert_array_equal(first[1].ravel(), rows["test_rows"][0, 1024:2048])
    np.testing.assert_array_equal(first[2].ravel(), rows["test_rows"][0, 2048:])  # blue plane last
    assert (
        first[0, 0, 1] == rows["test_rows"][0, 1] and first[0, 1, 0] == rows["test_rows"][0, 32]
    )  # row-major
    np.testing.assert_array_equal(splits.test.y, np.arange(10))
    assert_partition([splits.train.x, splits.val.x], rows["train_rows"])
    assert len(splits.train.y) == 80 and len(splits.val.y) == 20  # round(0.2 * 10) of each class


def test_cifar_label_names_given_as_bytes_are_decoded(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    dump(
        tmp_path / "cifar-10-batches-py" / "batches.meta",
        {b"label_names": [n.encode() for n in CIFAR10_NAMES]},
    )
    assert load_splits("cifar10", tmp_path).class_names == tuple(CIFAR10_NAMES)


def test_cifar_errors_name_the_file(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    dump(batch, {"data": np.zeros((20, 32, 32, 3), np.uint8), "labels": [0] * 20})
    with pytest.raises(ValueError, match=rf"{batch}: data \(20, 32, 32, 3\)"):
        load_splits("cifar10", tmp_path)
    dump(batch, {"data": cifar_rows(20, 0), "labels": [10] * 20})  # a label beyond the 10 classes
    with pytest.raises(ValueError, match=r"train labels span 0..10 but there are 10 class names"):
        load_splits("cifar10", tmp_path)


def test_cifar100_uses_the_20_coarse_classes(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    coarse = balanced_labels(3, 20)
    fine = (coarse * 5 + 1) % 100  # never equal to the coarse label
    train_rows = cifar_rows(len(coarse), 1)
    dump(
        folder / "train", {"data": train_rows, "coarse_labels": coarse.tolist(), "fine_labels": fine.tolist()}
    )
    test_coarse = balanced_labels(1, 20)[::-1].copy()
    test_rows = cifar_rows(20, 2)
    dump(
        folder / "test",
        {"data": test_rows, "coarse_labels": test_coarse.tolist(), "fine_labels": list(range(20))},
    )
    names = [f"super{i}" for i in range(20)]
    dump(folder / "meta", {"coarse_label_names": names, "fine_label_names": [f"f{i}" for i in range(100)]})
    splits = load_splits("cifar100", tmp_path, val_fraction=1 / 3)
    assert splits.num_classes == 20 == CATALOG["cifar100"].classes
    assert splits.class_names == tuple(names)
    np.testing.assert_array_equal(splits.test.y, test_coarse)
    np.testing.assert_array_equal(splits.test.x.reshape(20, -1), test_rows)
    assert (np.bincount(splits.val.y, minlength=20) == 1).all()
    assert (np.bincount(splits.train.y, minlength=20) == 2).all()


# --- image folders, digits and the split rules --------------------------------------------------


@pytest.mark.parametrize(
    ("modes", "channels"),
    [({"cats": "L", "dogs": "L", "owls": "L"}, 1), ({"cats": "RGB", "dogs": "RGB", "owls": "RGB"}, 3)],
)
def test_image_folder(tmp_path: Path, modes: dict[str, str], channels: int) -> None:
    write_pngs(tmp_path, modes)
    splits = load_splits("image_folder", tmp_path, val_fraction=1 / 6, test_fraction=1 / 6)
    assert splits.class_names == ("cats", "dogs", "owls")
    assert image_shapes(splits) == {(channels, 5, 6)} and splits.train.x.dtype == np.uint8
    assert [len(s.y) for s in all_splits(splits)] == [12, 3, 3]
    for c in range(3):  # every image of class c is a constant c * 60 + i * 5, each present once
        images = np.concatenate([s.x[s.y == c] for s in all_splits(splits)])
        assert sorted(int(v) for v in images[:, 0, 0, 0]) == [c * 60 + i * 5 for i in range(6)]
        assert (images == images[:, :, :1, :1]).all()
    if channels == 3:
        green = np.concatenate([s.x[:, 1, 0, 0] for s in all_splits(splits)]).astype(int)
        red = np.concatenate([s.x[:, 0, 0, 0] for s in all_splits(splits)]).astype(int)
        assert (green == 255 - red).all()


def test_image_folder_with_one_colour_image_is_all_rgb(tmp_path: Path) -> None:
    write_pngs(tmp_path, {"a": "L", "b": "RGB"}, per_class=5)
    splits = load_splits("image_folder", tmp_path, val_fraction=0.2, test_fraction=0.2)
    assert image_shapes(splits) == {(3, 5, 6)}
    grey = np.concatenate([s.x[s.y == 0] for s in all_splits(splits)])
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()


def test_image_folder_errors(tmp_path: Path) -> None:
    from PIL import Image

    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'nowhere'} is not a folder"):
        load_splits("image_folder", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        load_splits("image_folder", tmp_path)
    write_pngs(tmp_path / "data", {"cats": "L", "dogs": "L", "owls": "L"})
    Image.new("L", (9, 9)).save(tmp_path / "data" / "owls" / "big.PNG")
    with pytest.raises(ValueError, match=r"big.PNG is 9x9 but .*cats/0.png is 6x5"):
        load_splits("image_folder", tmp_path / "data")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path / 'empty' / 'a'} holds no images"):
        load_splits("image_folder", tmp_path / "empty")
    with pytest.raises(ValueError, match="nothing to download"):
        load_splits("image_folder", tmp_path / "data", download=True)


def test_split_counts_round_per_class_and_cover_everything(tmp_path: Path) -> None:
    from PIL import Image

    write_pngs(tmp_path / "a", {"x": "L"}, per_class=10)  # values 0, 5, ..., 45
    (tmp_path / "a" / "y").mkdir()
    for i in range(6):
        Image.new("L", (6, 5), 200 + i).save(tmp_path / "a" / "y" / f"{i}.png")
    splits = load_splits("image_folder", tmp_path / "a", val_fraction=0.25, test_fraction=0.25)
    # x: 10 -> test round(2.5) = 3, val 3, train 4;  y: 6 -> test round(1.5) = 2, val 2, train 2
    assert [np.bincount(s.y).tolist() for s in all_splits(splits)] == [[4, 2], [3, 2], [3, 2]]
    values = np.concatenate([s.x[:, 0, 0, 0] for s in all_splits(splits)])
    assert sorted(values.tolist()) == [i * 5 for i in range(10)] + [200 + i for i in range(6)]
    other = load_splits("image_folder", tmp_path / "a", split_seed=1, val_fraction=0.25, test_fraction=0.25)
    assert not np.array_equal(splits.test.x, other.test.x)


def test_a_class_missing_from_a_split_is_an_error(tmp_path: Path) -> None:
    write_pngs(tmp_path, {"many": "L", "few": "L"}, per_class=2)
    with pytest.raises(ValueError, match=r"the train split has no instance of class\(es\) \['few', 'many'\]"):
        load_splits("image_folder", tmp_path, val_fraction=0.3, test_fraction=0.3)


def test_digits_is_embedded() -> None:
    splits = load_splits("digits")
    assert image_shapes(splits) == {(1, 8, 8)} and splits.train.x.dtype == np.uint8
    assert max(int(s.x.max()) for s in all_splits(splits)) == 255 and splits.num_classes == 10
    assert splits.class_names == tuple("0123456789")
    assert sum(len(s.y) for s in all_splits(splits)) == 1797
    assert len(splits.test.y) == pytest.approx(0.2 * 1797, abs=10)
    assert len(splits.val.y) == pytest.approx(1797 / 6, abs=10)
    from sklearn.datasets import load_digits

    scaled = np.round(load_digits().images * 255 / 16).astype(np.uint8)
    assert_partition([s.x[:, 0] for s in all_splits(splits)], scaled)


def test_unknown_dataset_and_bad_fractions() -> None:
    with pytest.raises(
        ValueError, match="dataset 'svhn' is unknown; choose one of digits, mnist_sample, mnist, fashion"
    ):
        load_splits("svhn")
    with pytest.raises(ValueError, match="val_fraction"):
        load_splits("digits", val_fraction=0.5, test_fraction=0.5)
