"""The training loop on digits: metrics, checkpoints, exact resume, NaN detection, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ucc_test_support import read_jsonl, tiny

from ucc_tune.config import Config
from ucc_tune.schema import METRIC_NAMES
from ucc_tune.train import FeatureCollapseError, LocalSession, NonFiniteLossError, train
from ucc_tune.train import loop as train_module
from ucc_tune.train.__main__ import main as train_main

TIMING = {"time_s", "instances_per_s"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("run")
    final = train(tiny(), LocalSession(out))
    return out, final


def test_every_report_carries_every_metric_and_they_are_finite(finished_run) -> None:
    out, final = finished_run
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert set(METRIC_NAMES) <= set(row)
        assert all(np.isfinite(row[k]) for k in METRIC_NAMES)
        assert 0 <= row["val_ucc_acc"] <= 1 and 0 <= row["cluster_acc"] <= 1
    # eval_every=3: epoch 0 is evaluated (first report), epoch 1 repeats it, epoch 2 is due and last
    assert [r["cluster_eval_epoch"] for r in rows] == [0, 0, 2]
    assert rows[1]["cluster_acc"] == rows[0]["cluster_acc"]
    for method in ("kmeans", "spectral"):
        for score in ("acc", "nmi", "ari"):
            assert 0 <= final[f"test_{method}_{score}"] <= 1 or score == "ari"
    assert final == rows[-1]


def test_checkpoints_and_artifacts_are_written(finished_run) -> None:
    out, _ = finished_run
    checkpoints = sorted((out / "checkpoints").glob("epoch_*"))
    assert [p.name for p in checkpoints] == ["epoch_0001", "epoch_0002"]  # keep_checkpoints=2
    state = torch.load(checkpoints[-1] / "state.pt", weights_only=True)
    assert state["epoch"] == 2 and Config.from_dict(state["config"]) == tiny()
    art = out / "artifacts"
    js = np.load(art / "js.npz")
    assert js["js_matrix"].shape == (10, 10) and js["class_distributions"].shape == (10, 10, 11)
    np.testing.assert_allclose(js["js_matrix"], js["js_matrix"].T)
    feats = np.load(art / "test_features.npz")
    assert feats["features"].shape[0] == feats["labels"].shape[0] == feats["clusters_kmeans"].shape[0]
    assert (art / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Config.from_json(art / "config.json") == tiny()


def test_a_run_of_one_seed_keeps_the_files_of_a_run(finished_run) -> None:
    """A run of one seed keeps the files a run always had: no ``seeds/`` folder, and every
    checkpoint holds ``state.pt`` at its top (no ``seed_0/``), where checkpoints written before
    runs of several seeds existed have it, so those still resume."""
    out, final = finished_run
    assert not (out / "seeds").exists()
    checkpoints = sorted((out / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["best", "epoch_0001", "epoch_0002"]
    for checkpoint in checkpoints:
        assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json", "state.pt"]
    info = json.loads((out / "run.json").read_text())
    assert "placement" in info and "seed_index" not in info
    assert final["seeds"] == 1 and final["seeds_collapsed"] == 0
    resumed = LocalSession(out, resume=True)
    assert str(resumed.latest_checkpoint()).endswith("epoch_0002")


class Interrupt(Exception):
    pass


class InterruptAfter(LocalSession):
    """Stops the run right after the report of ``stop_epoch`` (as a killed process would)."""

    stop_epoch: int = 0

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        super().report(metrics, checkpoint_dir)
        if metrics["epoch"] == self.stop_epoch:
            raise Interrupt


# the second also tracks the best weights (patience) through the resume: its test uses them
RESUMED = [tiny(), tiny(augment_flip=True, head_dropout=0.2, rcc_weight=0.5, eval_every=1, patience=5)]


@pytest.mark.parametrize("config", RESUMED)
def test_resume_continues_exactly(tmp_path: Path, config: Config) -> None:
    straight = LocalSession(tmp_path / "straight")
    train(config, straight)
    interrupted = InterruptAfter(tmp_path / "resumed")
    interrupted.stop_epoch = 1
    with pytest.raises(Interrupt):
        train(config, interrupted)
    resumed = LocalSession(tmp_path / "resumed", resume=True)
    assert str(resumed.latest_checkpoint()).endswith("epoch_0001")
    train(config, resumed)
    want = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    got = read_jsonl(tmp_path / "resumed" / "metrics.jsonl")
    assert [r["epoch"] for r in got] == [0, 1, 2]
    # time_s counts the training time of the run it resumed too: it only grows
    assert got[0]["time_s"] < got[1]["time_s"] < got[2]["time_s"]
    for a, b in zip(want, got, strict=True):
        assert {k: v for k, v in a.items() if k not in TIMING} == {
            k: v for k, v in b.items() if k not in TIMING
        }


def test_non_finite_loss_names_term_epoch_and_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_module.total_loss
    calls = {"n": 0}

    def poisoned(config, outputs, batch):
        terms = real(config, outputs, batch)
        calls["n"] += 1
        if calls["n"] == 2:  # the second training step of epoch 0
            return dataclasses.replace(terms, ucc=terms.ucc * float("nan"), total=terms.total * float("nan"))
        return terms

    monkeypatch.setattr(train_module, "total_loss", poisoned)
    with pytest.raises(NonFiniteLossError) as err:
        train(tiny(), LocalSession(tmp_path))
    assert (err.value.term, err.value.epoch, err.value.step) == ("ucc", 0, 1)
    assert "non-finite ucc loss" in str(err.value) and "epoch 0, step 1" in str(err.value)
    assert not list((tmp_path / "checkpoints").glob("epoch_*"))


def test_cli_rejects_bad_settings_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert train_main(["--set", "alpha=2", "--out", str(tmp_path / "x")]) == 2
    assert "alpha=2.0 must be in [0, 1]" in capsys.readouterr().err
    assert train_main(["--set", "colour=red", "--out", str(tmp_path / "x")]) == 2
    assert "unknown config key(s) 'colour'" in capsys.readouterr().err
    assert train_main(["--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_trains_and_records_what_ran(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config_file = tmp_path / "c.json"
    tiny(epochs=1).to_json(config_file)
    out = tmp_path / "cli"
    assert train_main(["--config", str(config_file), "--set", "model=linear", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1/1" in printed and "test_kmeans_acc" in printed
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["model"] == "linear" and record["config"]["epochs"] == 1
    assert record["versions"]["torch"] and "git_commit" in record
    (rank,) = record["placement"]  # merged into what the command line wrote
    assert rank["rank"] == 0 and rank["world_size"] == 1 and rank["device"] == "cpu"


def test_training_steps_never_wait_for_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our code synchronises host and device (``.item()``, ``.tolist()``, ``bool(tensor)``,
    ``.cpu()``, ``.numpy()``) a fixed number of times per epoch, however many steps it has: none
    inside a step. On a GPU each would stall the step until the device caught up. (Calls made by
    torch itself are not counted: Adam reads its step counters, which stay on the host.)"""
    calls = {"n": 0}
    for name in ("item", "tolist", "__bool__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if f"{os.sep}ucc_tune{os.sep}" in caller:
                calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def syncs_in_an_epoch(steps: int) -> int:
        run = train_module.setup(tiny(steps_per_epoch=steps), LocalSession(tmp_path / f"s{steps}"))
        calls["n"] = 0
        train_module.train_epoch(run, 0)
        return calls["n"]

    few, many = syncs_in_an_epoch(2), syncs_in_an_epoch(12)
    assert few == many and 1 <= many <= 4  # the epoch's one NaN check and its loss means


@pytest.mark.parametrize("checkpoint_every", [1, 2])
def test_resume_skips_a_damaged_checkpoint_and_records_each_epoch_once(
    tmp_path: Path, checkpoint_every: int
) -> None:
    """The run dies right after epoch 2 was reported. Every epoch checkpointed: the newest
    checkpoint (epoch 2) is then damaged, the resume names it and goes on from epoch 1. Every
    second epoch checkpointed: epoch 2 has no checkpoint, the resume goes on from epoch 1. Either
    way epoch 2 runs again, and metrics.jsonl ends with exactly one line per epoch."""
    # min_delta=1: no epoch after the first is a new best, which would be checkpointed off schedule
    config = tiny(epochs=4, checkpoint_every=checkpoint_every, keep_checkpoints=3, min_delta=1.0)
    interrupted = InterruptAfter(tmp_path)
    interrupted.stop_epoch = 2
    with pytest.raises(Interrupt):
        train(config, interrupted)
    if checkpoint_every == 1:
        state = tmp_path / "checkpoints" / "epoch_0002" / "state.pt"
        state.write_bytes(state.read_bytes()[:5000])  # truncated, as by a full disk
        with pytest.warns(UserWarning, match=f"{state} is damaged"):
            resumed = LocalSession(tmp_path, resume=True)
    else:
        resumed = LocalSession(tmp_path, resume=True)
    assert str(resumed.latest_checkpoint()).endswith("epoch_0001")
    train(config, resumed)
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [0, 1, 2, 3]


def test_cli_refuses_to_mix_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = ["--set", "epochs=1", "--set", "steps_per_epoch=2", "--set", "bag_size=8", "--out", str(out)]
    assert train_main(["--resume", *args]) == 2
    assert f"nothing to resume in {out}" in capsys.readouterr().err
    assert train_main(args) == 0
    before = (out / "metrics.jsonl").read_text()
    assert train_main(args) == 2  # an earlier run is there: no silent append or overwrite
    assert f"{out} holds an earlier run (metrics.jsonl, checkpoints)" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == before


def test_collapse_reasons_by_hand() -> None:
    from ucc_tune.feature_scores import collapse

    rng = np.random.default_rng(0)
    healthy = rng.random((200, 10))
    assert collapse(healthy, js_max=0.3) is None
    saturated = np.concatenate([np.full((200, 7), 1.0), np.full((200, 3), 1e-6)], axis=1)
    reason = str(collapse(saturated, js_max=0.0))
    assert reason.startswith("all 10 features are saturated, each varying by less than 0.001 over the split")
    assert reason.endswith("; 3 stuck near 0, 7 near 1), too little for the KDE to tell bags apart")
    assert "every class has the same feature distribution" in str(collapse(healthy, js_max=0.0))


def test_a_collapsed_model_stops_the_run_at_its_first_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real = train_module.build

    def saturated(*args: Any, **kwargs: Any) -> Any:
        model = real(*args, **kwargs)
        model.encoder.register_forward_hook(lambda module, inputs, out: torch.ones_like(out))
        return model

    monkeypatch.setattr(train_module, "build", saturated)
    with pytest.raises(FeatureCollapseError, match="collapsed at epoch 0: all 10 features are saturated"):
        train(tiny(), LocalSession(tmp_path / "lib"))
    assert not (tmp_path / "lib" / "metrics.jsonl").exists()  # nothing reported for that epoch
    out = tmp_path / "cli"
    assert (
        train_main(
            ["--set", "epochs=2", "--set", "steps_per_epoch=2", "--set", "bag_size=8", "--out", str(out)]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error: the features collapsed at epoch 0") and "lr=0.0003" in err


def test_training_errors_survive_being_sent_between_processes() -> None:
    """Ray pickles a trial's exception to hand it to the driver: the message must arrive whole."""
    import pickle

    for error in (FeatureCollapseError(4, "all 10 features are constant", 1e-3),
                  NonFiniteLossError("ucc", 2, 7, float("nan"))):  # fmt: skip
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


def test_the_paper_model_trains_on_mnist_sample(tmp_path: Path) -> None:
    config = tiny(dataset="mnist_sample", model="paper", epochs=1, steps_per_epoch=2, bags_per_label=1,
                  eval_bags_per_label=2, test_cluster_methods="kmeans")  # fmt: skip
    final = train(config, LocalSession(tmp_path))
    assert np.isfinite(final["train_loss"]) and 0 <= final["test_kmeans_acc"] <= 1
    assert (tmp_path / "metrics.jsonl").is_file()


def test_cli_trains_the_supervised_baseline_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "sup"
    sets = ["epochs=1", "steps_per_epoch=2", "bag_size=8", "bags_per_label=2", "eval_bags_per_label=3"]
    sets += ["supervision=instance", "num_threads=1", "test_cluster_methods=kmeans", "model=linear"]
    assert train_main([a for kv in sets for a in ("--set", kv)] + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(supervised baseline (instance labels)) on digits" in printed
    assert "supervised baseline (instance labels): ran all 1 epochs" in printed
    record = json.loads((out / "run.json").read_text())
    assert record["outcome"]["supervision"] == "supervised baseline (instance labels)"
    assert record["config"]["supervision"] == "instance"
    (row,) = read_jsonl(out / "metrics.jsonl")
    # cross-entropy over 10 classes starts near ln 10; no UCC head, so no UCC terms or accuracy
    assert 1.0 < row["train_loss"] < 3.5 and row["train_ucc_loss"] == row["train_recon_loss"] == 0
    assert np.isnan(row["val_ucc_acc"]) and 1.0 < row["val_loss"] < 3.5
    assert 0 <= row["test_kmeans_acc"] <= 1
    assert not (out / "artifacts" / "reconstructions.png").exists()


@pytest.mark.slow
def test_ucc_without_the_autoencoder_trains_under_the_defaults(tmp_path: Path) -> None:
    """alpha=1 on digits under the defaults: no collapse at the first evaluation, and the UCC
    head has learnt something (its validation loss below ln 4, the loss of a uniform guess over
    the four ucc labels). At lr=1e-3 without a warm-up this seed collapses within 30 steps
    (``benchmarks/robustness.py`` counts it over many seeds)."""
    config = Config(alpha=1.0, seed=0, epochs=1, steps_per_epoch=150, num_threads=1)
    final = train(config, LocalSession(tmp_path))
    assert final["seeds_collapsed"] == 0
    assert final["val_loss"] < math.log(4) - 0.01
