"""``python -m ucc_tune.evaluate``: a trained model evaluated again from each kind of source, and
bad input refused in one line (exit 2)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ucc_test_support import WEIGHTS, write_keras_file

from ucc_tune.config import Config
from ucc_tune.train.__main__ import main as train_main
from ucc_tune.trained.evaluate import main

# tests/support/ucc_test_support.py's tiny(): 3 epochs of 3 steps on digits, one thread
TINY = {
    "epochs": 3, "steps_per_epoch": 3, "bag_size": 8, "bags_per_label": 2, "eval_bags_per_label": 3,
    "eval_every": 3, "num_threads": 1, "test_cluster_methods": "kmeans,spectral",
}  # fmt: skip


def settings(values: dict[str, Any]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``python -m ucc_tune.train`` run (checkpoints of epochs 1 and 2)."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    assert train_main([*settings(TINY), "--out", str(out)]) == 0
    return out


def test_a_run_folder_reproduces_the_runs_final_test_scores(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    assert main([str(run_dir)]) == 0
    printed = capsys.readouterr().out
    out = run_dir / "evaluation-test"
    record = read_json(out / "evaluation.json")
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["metrics"] == {k: v for k, v in final.items() if k.startswith("test_")}
    assert {"test_kmeans_acc", "test_spectral_acc_paper", "test_js_min"} <= set(record["metrics"])
    assert record["kind"] == "run" and record["checkpoint_epoch"] == 2
    assert record["checkpoint"].endswith("epoch_0002") and record["source"] == str(run_dir)
    assert Config.from_dict(record["config"]) == Config.from_dict(read_json(run_dir / "run.json")["config"])
    assert record["split"] == "test" and record["dataset"] == "digits" and record["git_commit"] is not None
    assert "torch" in record["versions"] and record["changed_from_checkpoint"] == {}
    for name, key in (("js.npz", "js_matrix"), ("test_features.npz", "features")):
        np.testing.assert_array_equal(np.load(out / name)[key], np.load(run_dir / "artifacts" / name)[key])
    assert (out / "reconstructions.png").is_file() and (out / "config.json").is_file()
    assert "kmeans" in printed and "spectral" in printed and "closest classes" in printed


def test_a_checkpoint_folder_on_val_with_kmedoids(run_dir: Path, tmp_path: Path) -> None:
    checkpoint = run_dir / "checkpoints" / "epoch_0002"
    assert (
        main([str(checkpoint), "--split", "val", "--methods", "kmeans,kmedoids", "--out", str(tmp_path)]) == 0
    )
    record = read_json(tmp_path / "evaluation.json")
    assert record["kind"] == "checkpoint" and record["methods"] == ["kmeans", "kmedoids"]
    scores = record["metrics"]
    per_method = {k for k in scores if not k.startswith(("val_js", "val_mean_clustering"))}
    assert {k.split("_")[1] for k in per_method} == {"kmeans", "kmedoids"}
    mean = np.mean([scores[f"val_{m}_{s}"] for m in ("kmeans", "kmedoids") for s in ("ari", "nmi")])
    assert scores["val_mean_clustering_score"] == pytest.approx(mean)
    assert 0 < scores["val_kmedoids_acc"] <= 1 and scores["val_js_min"] <= scores["val_js_max"]
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert scores["val_kmeans_acc"] == final["cluster_acc"]  # the run's own val evaluation at epoch 2
    features = np.load(tmp_path / "val_features.npz")
    assert len(features["clusters_kmedoids"]) == len(features["labels"]) == record["num_images"]
    assert not (tmp_path / "test_features.npz").exists()


def copy_checkpoint(run_dir: Path, epoch: int, to: Path) -> None:
    to.mkdir(parents=True)
    shutil.copy(run_dir / "checkpoints" / f"epoch_{epoch:04d}" / "state.pt", to / "state.pt")


def run_record(folder: Path, **extra: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"config": dict(TINY), **extra}))


def tune_trial(run_dir: Path, root: Path) -> Path:
    """A trial of a search: Tune's checkpoint_NNNNNN folders inside the trial folder."""
    trial = root / "experiment" / "trial_a"
    run_record(trial, trial_id="a1")
    copy_checkpoint(run_dir, 1, trial / "checkpoint_000000")
    copy_checkpoint(run_dir, 2, trial / "checkpoint_000001")
    return trial


def ddp_trial(run_dir: Path, root: Path) -> Path:
    """A DDP trial: its Ray Train run in <experiment>/train_runs/train-<trial id>."""
    trial = root / "experiment" / "trial_b"
    run_record(trial, trial_id="b2")
    runs = root / "experiment" / "train_runs" / "train-b2"
    copy_checkpoint(run_dir, 1, runs / "checkpoint_2026-01-01_10-00-00.000001")
    copy_checkpoint(run_dir, 2, runs / "checkpoint_2026-01-01_10-00-09.000002")
    return trial


def workers_run(run_dir: Path, root: Path) -> Path:
    """A ``python -m ucc_tune.train --workers N`` run: checkpoints in ray_train/."""
    run = root / "ddp_run"
    run_record(run)
    copy_checkpoint(run_dir, 2, run / "ray_train" / "checkpoint_2026-01-01_10-00-09.000002")
    return run


@pytest.mark.parametrize("layout, kind", [(tune_trial, "trial"), (ddp_trial, "trial"), (workers_run, "run")])
def test_trial_and_ddp_folders_find_their_newest_checkpoint(
    run_dir: Path, tmp_path: Path, layout: Callable[[Path, Path], Path], kind: str
) -> None:
    source = layout(run_dir, tmp_path)
    assert main([str(source), "--methods", "kmeans"]) == 0
    record = read_json(source / "evaluation-test" / "evaluation.json")
    assert record["kind"] == kind and record["checkpoint_epoch"] == 2


def test_a_damaged_newest_checkpoint_is_named_and_skipped(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    run_record(run)
    copy_checkpoint(run_dir, 1, run / "checkpoints" / "epoch_0001")
    copy_checkpoint(run_dir, 2, run / "checkpoints" / "epoch_0002")
    damaged = run / "checkpoints" / "epoch_0002" / "state.pt"
    damaged.write_bytes(damaged.read_bytes()[:2000])
    assert main([str(run), "--methods", "kmeans"]) == 0
    assert f"warning: {damaged} is damaged" in capsys.readouterr().err
    assert read_json(run / "evaluation-test" / "evaluation.json")["checkpoint_epoch"] == 1


def test_the_authors_keras_weights_cluster_mnist_through_the_cli(tmp_path: Path) -> None:
    if not WEIGHTS.is_file():
        pytest.skip(f"the authors' weights file is not at {WEIGHTS}")
    argv = ["--keras-weights", str(WEIGHTS), "--set", "dataset=mnist_sample", "--set", "num_threads=1"]
    assert main([*argv, "--methods", "kmeans", "--out", str(tmp_path)]) == 0
    record = read_json(tmp_path / "evaluation.json")
    assert record["metrics"]["test_kmeans_acc"] >= 0.97  # the paper: 0.977 on MNIST's test set
    assert record["kind"] == "keras_weights" and record["checkpoint_epoch"] is None
    assert record["num_images"] == 1000 and (tmp_path / "reconstructions.png").is_file()


def rgb_weights(tmp: Path) -> Path:
    """Keras weights whose first convolution reads 3 channels: another architecture."""
    path = tmp / "rgb.h5"
    write_keras_file(path, {"conv2d_1": {"kernel": np.zeros((3, 3, 3, 16)), "bias": np.zeros(16)}})
    return path


def truncated_weights(tmp: Path) -> Path:
    path = rgb_weights(tmp)
    path.write_bytes(path.read_bytes()[:800])
    return path


def truncated_state(run_dir: Path, tmp: Path) -> Path:
    copy_checkpoint(run_dir, 2, tmp / "ckpt")
    state = tmp / "ckpt" / "state.pt"
    state.write_bytes(state.read_bytes()[:3000])
    return tmp / "ckpt"


def foreign_state(tmp: Path) -> Path:
    (tmp / "ckpt").mkdir()
    torch.save({"weights": torch.zeros(3)}, tmp / "ckpt" / "state.pt")
    return tmp / "ckpt"


def only_damaged(run_dir: Path, tmp: Path) -> Path:
    run_record(tmp / "run")
    truncated = truncated_state(run_dir, tmp)
    shutil.move(truncated, tmp / "run" / "checkpoints" / "epoch_0002")
    return tmp / "run"


def empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def no_checkpoint(tmp: Path) -> Path:
    run_record(tmp / "run")
    return tmp / "run"


def bad_record(tmp: Path) -> Path:
    (tmp / "run").mkdir()
    (tmp / "run" / "run.json").write_text("{not json")
    return tmp / "run"


KERAS_DIGITS = ["--set", "dataset=digits", "--set", "num_threads=1"]
Case = Callable[[Path, Path], tuple[list[str], Path | None]]
# name -> (the arguments, from the finished run and a scratch folder, with the file the message
# must name; what the one line on stderr must say)
BAD_INPUTS: dict[str, tuple[Case, str]] = {
    "not a source": (lambda r, t: ([str(empty(t))], t / "empty"), "no run.json or state.pt in it"),
    "missing": (lambda r, t: ([str(t / "nothing")], t / "nothing"), "no such folder; expected a run"),
    "no checkpoint": (lambda r, t: ([str(no_checkpoint(t))], t / "run"), "run.json but no checkpoint"),
    "run.json damaged": (lambda r, t: ([str(bad_record(t))], t / "run" / "run.json"), "not readable JSON"),
    "state.pt damaged": (
        lambda r, t: ([str(truncated_state(r, t))], t / "ckpt" / "state.pt"),
        "damaged or not a checkpoint",
    ),
    "state.pt foreign": (
        lambda r, t: ([str(foreign_state(t))], t / "ckpt" / "state.pt"),
        "expected a checkpoint dict holding 'config' and 'model'",
    ),
    "all damaged": (lambda r, t: ([str(only_damaged(r, t))], t / "run"), "no complete checkpoint;"),
    "image shape": (
        lambda r, t: ([str(r), "--set", "dataset=mnist_sample"], r / "checkpoints" / "epoch_0002"),
        "encoder.fc.weight is (10, 512) in the checkpoint, trained on dataset='digits', but (10, 6272) "
        "for dataset='mnist_sample' (images (1, 28, 28)",
    ),
    "model field": (
        lambda r, t: ([str(r), "--set", "num_features=12"], r / "checkpoints" / "epoch_0002"),
        "num_features=12 (the checkpoint's: 10): the model's fields come from the checkpoint",
    ),
    "keras architecture": (
        lambda r, t: (["--keras-weights", str(rgb_weights(t)), *KERAS_DIGITS], t / "rgb.h5"),
        "Keras layer 'conv2d_1' (the encoder's stem): kernel shape (3, 3, 3, 16), expected (3, 3, 1, 16)",
    ),
    "keras truncated": (
        lambda r, t: (["--keras-weights", str(truncated_weights(t)), *KERAS_DIGITS], t / "rgb.h5"),
        "not a readable Keras HDF5 weights file",
    ),
    "keras missing": (lambda r, t: (["--keras-weights", str(t / "x.h5")], t / "x.h5"), "no such file"),
    "keras other model": (
        lambda r, t: (["--keras-weights", str(rgb_weights(t)), "--set", "model=conv"], t / "rgb.h5"),
        "the authors' weights fit model=paper, not conv",
    ),
    "split": (lambda r, t: ([str(r), "--split", "holdout"], None), "--split 'holdout' is unknown"),
    "method": (lambda r, t: ([str(r), "--methods", "kmeans,dbscan"], None), "unknown or no method (dbscan)"),
    "device": (lambda r, t: ([str(r), "--device", "tpu"], None), "--device 'tpu' is unknown"),
    "no source": (
        lambda r, t: ([], None),
        "give either a run, trial or checkpoint folder, or --keras-weights",
    ),
    "bad --set": (lambda r, t: ([str(r), "--set", "colour=red"], None), "unknown config key(s) 'colour'"),
}


@pytest.mark.parametrize("case, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: Case, message: str
) -> None:
    argv, named = case(run_dir, tmp_path)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and (named is None or str(named) in err)
    assert not (tmp_path / "out").exists()
