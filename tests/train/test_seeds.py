"""Seeds as an axis: a run of N seeds reports the mean of its seeds, each seed trains as it would
alone, every seed's curve stays on disk, and a resumed run continues all seeds exactly."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from ucc_test_support import read_jsonl, tiny

from ucc_tune.train import LocalSession, train
from ucc_tune.train.seeds import aggregate

TIMING = {"time_s", "instances_per_s"}


def test_aggregate_is_the_mean_of_the_seeds_by_hand() -> None:
    rows = [
        {"epoch": 2, "epochs_done": 3, "cluster_eval_epoch": 2, "cluster_acc": 0.5, "time_s": 4.0},
        {"epoch": 2, "epochs_done": 3, "cluster_eval_epoch": 2, "cluster_acc": 0.7, "time_s": 6.0},
        {"epoch": 2, "epochs_done": 3, "cluster_eval_epoch": 2, "cluster_acc": 0.9, "time_s": 5.0},
    ]
    out = aggregate(rows)
    assert out == {
        "epoch": 2, "epochs_done": 3, "cluster_eval_epoch": 2, "cluster_acc": pytest.approx(0.7),
        "time_s": 6.0, "seeds": 3, "seeds_collapsed": 0,
    }  # fmt: skip
    rows[1] = {
        "epoch": 2,
        "epochs_done": 3,
        "cluster_eval_epoch": 2,
        "cluster_acc": 0.2,
        "seeds_collapsed": 1,
    }
    rows[0]["train_loss"], rows[2]["train_loss"] = 1.0, 2.0  # a collapsed seed has no training loss
    out = aggregate(rows)
    assert out["seeds_collapsed"] == 1 and out["train_loss"] == 1.5
    assert out["cluster_acc"] == pytest.approx((0.5 + 0.2 + 0.9) / 3)


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    train(tiny(seeds=3, seed=5, augment_flip=True), LocalSession(out))
    return out


def test_each_seed_of_a_group_trains_as_it_would_alone(three_seeds: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    train(tiny(seed=6, augment_flip=True), LocalSession(alone))  # seed 5 + 1: the group's second seed
    mine = read_jsonl(three_seeds / "seeds" / "seed_1" / "metrics.jsonl")
    theirs = read_jsonl(alone / "metrics.jsonl")
    assert len(mine) == len(theirs) == 3
    for a, b in zip(mine, theirs, strict=True):
        assert {k: v for k, v in a.items() if k not in TIMING} == {
            k: v for k, v in b.items() if k not in TIMING
        }


def test_the_run_reports_the_mean_of_its_seeds_files(three_seeds: Path) -> None:
    rows = read_jsonl(three_seeds / "metrics.jsonl")
    seeds = [read_jsonl(three_seeds / "seeds" / f"seed_{k}" / "metrics.jsonl") for k in range(3)]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for epoch, row in enumerate(rows):
        assert row["seeds"] == 3
        for name in ("cluster_acc", "train_loss", "val_ucc_acc", "js_min"):
            by_hand = sum(s[epoch][name] for s in seeds) / 3
            assert math.isclose(row[name], by_hand, rel_tol=1e-12), name
    assert "test_kmeans_acc" in rows[-1]
    info = json.loads((three_seeds / "run.json").read_text())
    assert info["config"]["seeds"] == 3
    for k in range(3):
        seed_info = json.loads((three_seeds / "seeds" / f"seed_{k}" / "run.json").read_text())
        assert seed_info["config"]["seed"] == 5 + k
    assert (three_seeds / "artifacts" / "js.npz").exists()  # seed 0's
    assert (three_seeds / "seeds" / "seed_2" / "artifacts" / "js.npz").exists()
    newest = sorted((three_seeds / "checkpoints").iterdir())[-1]
    assert sorted(p.name for p in newest.iterdir()) == ["seed_0", "seed_1", "seed_2"]


def test_a_resumed_group_continues_every_seed_exactly(three_seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(three_seeds, out)
    shutil.rmtree(out / "checkpoints" / "epoch_0002")  # as if killed before the last epoch's report
    train(tiny(seeds=3, seed=5, augment_flip=True), LocalSession(out, resume=True))

    def same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]

    assert same(read_jsonl(out / "metrics.jsonl")) == same(read_jsonl(three_seeds / "metrics.jsonl"))
    for k in range(3):
        seed_rows = read_jsonl(out / "seeds" / f"seed_{k}" / "metrics.jsonl")
        assert same(seed_rows) == same(read_jsonl(three_seeds / "seeds" / f"seed_{k}" / "metrics.jsonl"))


def test_the_test_score_is_the_final_checkpoints(three_seeds: Path, tmp_path: Path) -> None:
    """The ranking refers to the last epoch; its test scores come from the weights of that epoch's
    checkpoint: re-scoring the checkpoint of seed 1 on the test split gives seed 1's test row."""
    from ucc_tune.trained.evaluate import main as evaluate_main

    newest = sorted((three_seeds / "checkpoints").iterdir())[-1]
    last = read_jsonl(three_seeds / "seeds" / "seed_1" / "metrics.jsonl")[-1]
    assert newest.name == f"epoch_{last['epoch']:04d}"  # the checkpoint of the ranked (last) epoch
    assert evaluate_main([str(three_seeds), "--out", str(tmp_path / "x")]) == 2  # which seed? says so
    assert evaluate_main([str(newest / "seed_1"), "--split", "test", "--out", str(tmp_path / "e")]) == 0
    scores = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert scores["metrics"]["test_kmeans_acc"] == pytest.approx(last["test_kmeans_acc"])
    assert scores["metrics"]["test_js_min"] == pytest.approx(last["test_js_min"])


def test_a_collapsed_seed_stops_and_counts_with_its_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ucc_tune.train import FeatureCollapseError, loop

    real = loop.raise_if_collapsed

    def seed_6_dies(run: Any, summary: Any, epoch: int) -> None:
        if run.config.seed == 6:
            raise FeatureCollapseError(epoch, "all features saturated (scripted)", run.config.lr)
        real(run, summary, epoch)

    monkeypatch.setattr(loop, "raise_if_collapsed", seed_6_dies)
    out = tmp_path / "run"
    train(tiny(seeds=3, seed=5), LocalSession(out))
    rows = read_jsonl(out / "metrics.jsonl")
    seeds = [read_jsonl(out / "seeds" / f"seed_{k}" / "metrics.jsonl") for k in range(3)]
    assert [r["seeds_collapsed"] for r in rows] == [1, 1, 1]
    dead = seeds[1]
    assert [r["epoch"] for r in dead] == [0, 1, 2] and len({r["cluster_acc"] for r in dead}) == 1
    assert "train_loss" not in dead[-1] and "test_kmeans_acc" in dead[-1]  # scored on test at the end
    for name in ("cluster_acc", "test_kmeans_acc"):
        assert rows[-1][name] == pytest.approx(sum(s[-1][name] for s in seeds) / 3)
    assert rows[-1]["train_loss"] == pytest.approx(
        (seeds[0][-1]["train_loss"] + seeds[2][-1]["train_loss"]) / 2
    )

    def all_die(run: Any, summary: Any, epoch: int) -> None:
        raise FeatureCollapseError(epoch, "all features saturated (scripted)", run.config.lr)

    monkeypatch.setattr(loop, "raise_if_collapsed", all_die)
    with pytest.raises(FeatureCollapseError, match="collapsed at epoch 0"):
        train(tiny(seeds=2, seed=5), LocalSession(tmp_path / "all"))


def test_the_only_seed_collapsing_fails_the_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of one seed fails with its seed's collapse, before any evaluation beyond the epoch's
    own and before any report."""
    from ucc_tune.train import FeatureCollapseError, loop

    def dies(run: Any, summary: Any, epoch: int) -> None:
        raise FeatureCollapseError(epoch, "all features saturated (scripted)", run.config.lr)

    calls: list[str] = []
    real_cluster_eval, real_validate = loop.cluster_eval, loop.validate

    def cluster_eval(run: Any, split: str, methods: list[str]) -> Any:
        calls.append(split)
        return real_cluster_eval(run, split, methods)

    def validate(run: Any) -> Any:
        calls.append("validate")
        return real_validate(run)

    monkeypatch.setattr(loop, "raise_if_collapsed", dies)
    monkeypatch.setattr(loop, "cluster_eval", cluster_eval)
    monkeypatch.setattr(loop, "validate", validate)
    with pytest.raises(FeatureCollapseError, match="collapsed at epoch 0: all features saturated"):
        train(tiny(seed=5), LocalSession(tmp_path))
    assert calls == ["validate", "val"]  # the epoch's own evaluation, no more
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()


def test_a_collapsing_seed_of_several_is_scored_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed that collapses keeps the scores its epoch measured: no second validation or
    clustering of its features."""
    from ucc_tune.train import FeatureCollapseError, loop

    real = loop.raise_if_collapsed

    def seed_6_dies(run: Any, summary: Any, epoch: int) -> None:
        if run.config.seed == 6:
            raise FeatureCollapseError(epoch, "all features saturated (scripted)", run.config.lr)
        real(run, summary, epoch)

    calls: list[tuple[int, str]] = []
    real_cluster_eval, real_validate = loop.cluster_eval, loop.validate

    def cluster_eval(run: Any, split: str, methods: list[str]) -> Any:
        calls.append((run.config.seed, split))
        return real_cluster_eval(run, split, methods)

    def validate(run: Any) -> Any:
        calls.append((run.config.seed, "validate"))
        return real_validate(run)

    monkeypatch.setattr(loop, "raise_if_collapsed", seed_6_dies)
    monkeypatch.setattr(loop, "cluster_eval", cluster_eval)
    monkeypatch.setattr(loop, "validate", validate)
    train(tiny(seeds=2, seed=5, epochs=1), LocalSession(tmp_path))
    assert [c for c in calls if c[0] == 6] == [(6, "validate"), (6, "val"), (6, "test")]
    dead = read_jsonl(tmp_path / "seeds" / "seed_1" / "metrics.jsonl")
    assert dead[0]["seeds_collapsed"] == 1 and "val_ucc_acc" in dead[0] and "cluster_acc" in dead[0]
