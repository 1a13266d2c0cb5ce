"""``python -m ucc_tune.predict`` and ``python -m ucc_tune.export`` on a trained tiny run: the run's
own test clusters reproduced from its saved clustering, through a split, a raw array and a
TorchScript file loaded without this package; bad input refused in one line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ucc_tune.data.splits import load_splits
from ucc_tune.train.__main__ import main as train_main
from ucc_tune.trained.export import main as export_main
from ucc_tune.trained.predict import main

# ucc_test_support.tiny() cut to 2 epochs of 2 steps, a 3-component PCA before clustering, k-means alone
TINY = {
    "epochs": 2, "steps_per_epoch": 2, "bag_size": 8, "bags_per_label": 2, "eval_bags_per_label": 3,
    "eval_every": 2, "num_threads": 1, "test_cluster_methods": "kmeans", "cluster_pca": 3,
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    assert train_main([*(a for k, v in TINY.items() for a in ("--set", f"{k}={v}")), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def raw_test_images(run_dir: Path) -> Path:
    """The test split's raw pixels (uint8, as the dataset stores them) as ``(N, 8, 8)``."""
    path = run_dir.parent / "test_images.npy"
    np.save(path, load_splits("digits", split_seed=0).test.x[:, 0])
    return path


def test_the_saved_clustering_reproduces_the_runs_test_clusters(
    run_dir: Path, raw_test_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    saved = np.load(run_dir / "artifacts" / "test_features.npz")
    model = np.load(run_dir / "artifacts" / "cluster_model.npz")
    assert int(model["cluster_dim"]) == 3 and model["pca_components"].shape == (3, 10)
    assert model["centers_kmeans"].shape == model["centers_kmedoids"].shape == (10, 3)
    assert main([str(run_dir), "--split", "test", "--out", str(tmp_path / "p.parquet"), "--csv"]) == 0
    table = pd.read_parquet(tmp_path / "p.parquet")
    np.testing.assert_array_equal(table["cluster"], saved["clusters_kmeans"])
    np.testing.assert_allclose(table[[f"f{j}" for j in range(10)]].to_numpy(), saved["features"], atol=1e-6)
    assert table["image"].tolist() == list(range(len(saved["labels"])))
    assert (table["true_class"] == saved["class_names"][saved["labels"]]).all()
    # the matching was made on the validation split; on the test split it beats chance (0.1)
    assert (table["class_name"] == table["true_class"]).mean() > 0.25
    assert pd.read_csv(tmp_path / "p.csv")["cluster"].tolist() == table["cluster"].tolist()
    printed = capsys.readouterr().out
    assert "cluster" in printed and f"all {len(table):>20d}".split()[1] in printed
    out = tmp_path / "medoids.parquet"
    assert (
        main([str(run_dir), "--images", str(raw_test_images), "--method", "kmedoids", "--out", str(out)]) == 0
    )
    np.testing.assert_array_equal(pd.read_parquet(out)["cluster"], saved["clusters_kmedoids"])


EXPORTED = """
import sys, numpy as np, torch
model = torch.jit.load(sys.argv[1])
features, cluster, class_index, distance = model(torch.from_numpy(np.load(sys.argv[2]))[:, None])
names = [model.class_names[int(i)] for i in class_index]
assert not any(name.startswith("ucc_tune") for name in sys.modules), "ucc_tune was imported"
np.savez(sys.argv[3], features=features.numpy(), cluster=cluster.numpy(), names=np.array(names),
         distance=distance.numpy())
"""


def test_the_exported_file_runs_without_the_package(
    run_dir: Path, raw_test_images: Path, tmp_path: Path
) -> None:
    assert main([str(run_dir), "--images", str(raw_test_images), "--out", str(tmp_path / "p.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "p.parquet")
    assert export_main([str(run_dir), "--out", str(tmp_path / "model.pt")]) == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = [sys.executable, "-c", EXPORTED, str(tmp_path / "model.pt"), str(raw_test_images)]
    subprocess.run([*script, str(tmp_path / "out.npz")], check=True, env=env, cwd=tmp_path, timeout=120)
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["features"], table[[f"f{j}" for j in range(10)]].to_numpy(), atol=1e-5)
    np.testing.assert_array_equal(out["cluster"], table["cluster"])
    np.testing.assert_array_equal(out["names"], table["class_name"].to_numpy(dtype=str))
    np.testing.assert_allclose(out["distance"], table["distance"], atol=1e-4)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--method", "dbscan"], "--method 'dbscan' is unknown; choose kmeans or kmedoids"),
        (["--method", "spectral"], "spectral clustering has no rule for new images"),
        (
            ["--images", "{tmp}/big.npy"],
            "1 channel(s) of 28x28 pixels, but the model was trained on 1 channel(s) of 8x8",
        ),
        (
            ["--images", "{tmp}/rgb.npy"],
            "3 channel(s) of 8x8 pixels, but the model was trained on 1 channel(s)",
        ),
        (["--split", "holdout"], "--split 'holdout' is unknown; choose one of train, val, test"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, arguments: list[str], fragment: str
) -> None:
    np.save(tmp_path / "big.npy", np.zeros((2, 28, 28), np.uint8))
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 8, 8), np.uint8))
    capsys.readouterr()
    assert main([str(run_dir), *(a.format(tmp=tmp_path) for a in arguments)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_export_to_a_folder_or_an_unwritable_place_exits_2_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert export_main([str(run_dir), "--out", str(tmp_path)]) == 2
    assert "is a folder; give the file to write" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("keep me")  # a path under a file: unwritable even for root
    assert export_main([str(run_dir), "--out", str(tmp_path / "a_file" / "model.pt")]) == 2
    err = capsys.readouterr().err
    assert "cannot write it" in err and err.count("\n") == 1
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_folder_without_a_model_exits_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(tmp_path)]) == 2  # no run at all
    assert "no run.json or state.pt in it" in capsys.readouterr().err
    checkpoint = run_dir / "checkpoints" / "epoch_0000"  # a checkpoint, but not the one clustered
    assert main([str(checkpoint), "--out", str(tmp_path / "p.parquet")]) == 2
    assert "was fitted on the features of other weights" in capsys.readouterr().err
    assert json.loads((run_dir / "run.json").read_text())["config"]["cluster_pca"] == 3
