"""Dataset readers on tiny files written here in the real formats (IDX, CIFAR pickles, PNGs)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from ucc_tune.data.sources import DATASETS, DatasetNotFoundError, load_splits, read_idx

# --- independent writers of the on-disk formats -----------------------------------------------


def write_idx_images(path: Path, images: np.ndarray, gz: bool = False) -> None:
    n, h, w = images.shape
    payload = struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def write_idx_labels(path: Path, labels: np.ndarray, gz: bool = False) -> None:
    payload = struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def balanced_labels(per_class: int, classes: int = 10) -> np.ndarray:
    return np.tile(np.arange(classes), per_class)


def make_mnist(
    root: Path, subdir: str = "MNIST", gz: bool = False, per_class: int = 6
) -> dict[str, np.ndarray]:
    raw = root / subdir / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, count in (("train", per_class), ("t10k", 2)):
        labels = balanced_labels(count)
        images = rng.integers(0, 256, size=(len(labels), 5, 4), dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
        arrays[f"{prefix}_x"], arrays[f"{prefix}_y"] = images, labels
    return arrays


def cifar_rows(labels: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)


def dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


# --- MNIST-style IDX -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(("name", "subdir"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_files_read_exactly(tmp_path: Path, gz: bool, name: str, subdir: str) -> None:
    arrays = make_mnist(tmp_path, subdir, gz)
    splits = load_splits(name, tmp_path, split_seed=0, val_fraction=1 / 3)
    np.testing.assert_array_equal(splits.test.x[:, 0], arrays["t10k_x"])  # the official test split, in order
    np.testing.assert_array_equal(splits.test.y, arrays["t10k_y"])
    assert splits.image_shape == (1, 5, 4) and splits.train.x.dtype == np.uint8
    assert len(splits.val.y) == 10 * 2 and len(splits.train.y) == 10 * 4  # round(6 / 3) per class
    # train + val are exactly the official training images, each once
    joined = np.concatenate([splits.train.x[:, 0], splits.val.x[:, 0]]).reshape(60, -1)
    expected = arrays["train_x"].reshape(60, -1)
    assert sorted(map(bytes, joined)) == sorted(map(bytes, expected))
    if name == "fashion_mnist":
        assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"


def test_idx_magic_number_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 0x00000801, 1, 2, 2) + bytes(4))
    with pytest.raises(ValueError, match=f"{path}: magic number 0x00000801 is not 0x00000803"):
        read_idx(path, 3)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(struct.pack(">II", 0x00000801, 5) + bytes(3))
    with pytest.raises(ValueError, match="header says"):
        read_idx(short, 1)


def test_splits_are_deterministic_disjoint_and_stratified(tmp_path: Path) -> None:
    make_mnist(tmp_path, per_class=12)
    a = load_splits("mnist", tmp_path, split_seed=4, val_fraction=0.25)
    b = load_splits("mnist", tmp_path, split_seed=4, val_fraction=0.25)
    c = load_splits("mnist", tmp_path, split_seed=5, val_fraction=0.25)
    np.testing.assert_array_equal(a.val.x, b.val.x)
    assert not np.array_equal(a.val.x, c.val.x)
    assert (np.bincount(a.val.y) == 3).all() and (np.bincount(a.train.y) == 9).all()


def test_missing_files_say_where_and_how_and_download_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    def no_download(*_: object, **__: object) -> None:
        raise AssertionError("torchvision was asked to download")

    monkeypatch.setattr(torchvision.datasets, "MNIST", no_download)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_download)
    with pytest.raises(DatasetNotFoundError) as err:
        load_splits("mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "download=true" in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in message
    with pytest.raises(
        DatasetNotFoundError, match=r"cifar-10-batches-py.*data_batch_1.*test_batch.*download"
    ):
        load_splits("cifar10", tmp_path)


def test_download_true_calls_torchvision_then_reads_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    calls = []

    def fake_mnist(root: str, train: bool, download: bool) -> None:
        calls.append((root, train, download))
        if not (Path(root) / "MNIST").exists():
            make_mnist(Path(root))

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    splits = load_splits("mnist", tmp_path, download=True)
    assert calls and all(download for _, _, download in calls)
    assert splits.num_classes == 10


# --- CIFAR pickles ---------------------------------------------------------------------------------


def test_cifar10_pickles_read_channel_major(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows = {}
    for i in range(1, 6):
        labels = balanced_labels(1)
        rows[i] = cifar_rows(labels, i)
        dump(folder / f"data_batch_{i}", {b"data": rows[i], b"labels": labels.tolist()})
    test_labels = balanced_labels(1)
    test_rows = cifar_rows(test_labels, 9)
    dump(folder / "test_batch", {"data": test_rows, "labels": test_labels.tolist()})  # str keys also work
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump(folder / "batches.meta", {b"label_names": names})
    splits = load_splits("cifar10", tmp_path, val_fraction=0.2)
    assert splits.class_names == tuple(names) and splits.image_shape == (3, 32, 32)
    first = splits.test.x[0]
    np.testing.assert_array_equal(first[0].ravel(), test_rows[0, :1024])  # red plane first
    np.testing.assert_array_equal(first[2].ravel(), test_rows[0, 2048:])  # blue plane last
    assert len(splits.train.y) + len(splits.val.y) == 50 and len(splits.val.y) == 10


def test_cifar100_uses_the_20_coarse_classes(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    coarse = balanced_labels(3, 20)
    fine = (coarse * 5 + 1) % 100
    dump(
        folder / "train",
        {"data": cifar_rows(coarse, 1), "coarse_labels": coarse.tolist(), "fine_labels": fine.tolist()},
    )
    test = balanced_labels(1, 20)
    dump(
        folder / "test",
        {"data": cifar_rows(test, 2), "coarse_labels": test.tolist(), "fine_labels": test.tolist()},
    )
    names = [f"super{i}" for i in range(20)]
    dump(folder / "meta", {"coarse_label_names": names, "fine_label_names": [f"f{i}" for i in range(100)]})
    splits = load_splits("cifar100", tmp_path, val_fraction=1 / 3)
    assert splits.num_classes == 20 == DATASETS["cifar100"].num_classes
    assert splits.class_names == tuple(names)
    assert set(np.unique(splits.train.y)) == set(range(20))


# --- image folders and digits -------------------------------------------------------------------


def write_pngs(root: Path, mode: str, size: tuple[int, int] = (6, 5), per_class: int = 6) -> None:
    from PIL import Image

    for c, name in enumerate(["cats", "dogs", "owls"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            value = (c * 60 + i * 5) % 256
            colour = value if mode == "L" else (value, 255 - value, 7)
            Image.new(mode, size, colour).save(root / name / f"{i}.png")


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_image_folder(tmp_path: Path, mode: str, channels: int) -> None:
    write_pngs(tmp_path, mode)
    splits = load_splits("image_folder", tmp_path, val_fraction=1 / 6, test_fraction=1 / 6)
    assert splits.class_names == ("cats", "dogs", "owls")
    assert splits.image_shape == (channels, 5, 6)
    assert [len(s.y) for s in (splits.train, splits.val, splits.test)] == [12, 3, 3]
    # every image of class "dogs" (label 1) starts at grey value 60
    dogs = np.concatenate([s.x[s.y == 1] for s in (splits.train, splits.val, splits.test)])
    assert sorted({int(v) for v in dogs[:, 0, 0, 0]}) == [60, 65, 70, 75, 80, 85]


def test_image_folder_errors(tmp_path: Path) -> None:
    from PIL import Image

    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        load_splits("image_folder", tmp_path)
    write_pngs(tmp_path / "data", "L")
    Image.new("L", (9, 9)).save(tmp_path / "data" / "owls" / "big.png")
    with pytest.raises(ValueError, match=r"big.png is 9x9 but .* is 6x5"):
        load_splits("image_folder", tmp_path / "data")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="holds no images"):
        load_splits("image_folder", tmp_path / "empty")


def test_digits_is_embedded() -> None:
    splits = load_splits("digits")
    assert splits.image_shape == (1, 8, 8) and splits.train.x.dtype == np.uint8
    assert splits.train.x.max() == 255 and splits.num_classes == 10
    assert sum(len(s.y) for s in (splits.train, splits.val, splits.test)) == 1797


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="dataset 'svhn' is unknown; choose one of digits"):
        load_splits("svhn")
