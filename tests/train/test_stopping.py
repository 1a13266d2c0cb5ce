"""The best epoch and early stopping: the rule on scripted metric sequences, then one real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
from ucc_test_support import read_jsonl, tiny

from ucc_tune.config import BestMetric, Config, ConfigError
from ucc_tune.data.loading import load_data
from ucc_tune.feature_scores import extract_features
from ucc_tune.models import build
from ucc_tune.schema import OBJECTIVES
from ucc_tune.train.__main__ import main as train_main
from ucc_tune.train.stopping import BestSoFar, stop_reason, supervision_label


def stopping_evaluation(values: list[float], metric: str, patience: int, min_delta: float) -> int | None:
    """The index of the evaluation after which the training loop's rule (``BestSoFar.update``,
    then ``exhausted``) stops a run of evaluations ``values``; None when it never does."""
    best = BestSoFar(metric)
    for index, value in enumerate(values):
        best.update(value, index, min_delta)
        if best.exhausted(patience):
            return index
    return None


@pytest.mark.parametrize(
    ("values", "metric", "patience", "min_delta", "stops_after"),
    [
        # max: 0.625 improves on 0.5; 0.65, 0.64, 0.7 gain less than 0.1 on it: the 3rd stale stops
        ([0.5, 0.625, 0.65, 0.64, 0.7, 0.9], "cluster_acc", 3, 0.1, 4),
        # min_delta 0: any strict gain counts, a tie does not
        ([0.5, 0.6, 0.65, 0.65, 0.7, 0.7, 0.7], "cluster_acc", 2, 0.0, 6),
        ([0.5, 0.6, 0.65, 0.65, 0.7, 0.7, 0.7], "cluster_acc", 3, 0.0, None),
        # min: a loss must fall by 0.05; 0.87 and 0.86 are too little, NaN never improves
        ([1.0, 0.9, 0.87, float("nan"), 0.86], "val_loss", 3, 0.05, 4),
        ([0.1, 0.2, 0.3], "js_min", 0, 0.0, None),  # patience 0: never stops
    ],
)
def test_stopping_rule_on_scripted_sequences(
    values: list[float], metric: str, patience: int, min_delta: float, stops_after: int | None
) -> None:
    assert stopping_evaluation(values, metric, patience, min_delta) == stops_after


def test_best_so_far_keeps_the_first_of_equal_values_and_round_trips() -> None:
    best = BestSoFar("val_loss")
    assert [best.update(v, e, 0.0) for e, v in enumerate([0.5, 0.4, 0.4, 0.45])] == [True, True, False, False]
    assert (best.value, best.epoch, best.stale) == (0.4, 1, 2)
    again = BestSoFar("val_loss")
    again.load_state_dict(best.state_dict())
    assert again == best
    with pytest.raises(ValueError, match="best_metric='val_loss', this run 'cluster_acc'"):
        BestSoFar("cluster_acc").load_state_dict(best.state_dict())


def test_stop_reason_in_words() -> None:
    assert stop_reason(10, 10, 4, 0, 0.0) == "ran all 10 epochs"
    assert stop_reason(7, 10, 3, 3, 0.01) == "no improvement >= 0.01 in 3 evaluations since epoch 3"


def test_best_metrics_are_the_schemas_objectives_and_bad_knobs_are_refused() -> None:
    assert set(get_args(BestMetric)) == set(OBJECTIVES)
    with pytest.raises(ConfigError, match="patience=-1 must be >= 0"):
        tiny(patience=-1)
    with pytest.raises(ConfigError, match="patience=2 stops one run early; a run of seeds=3 cannot"):
        tiny(patience=2, seeds=3)
    with pytest.raises(ConfigError, match="best_metric='accuracy' is not allowed"):
        tiny(best_metric="accuracy")


def test_a_search_refuses_early_stopping_before_ray_starts(tmp_path: Path, capsys) -> None:
    from ucc_tune.search import command as search

    args = ["--space", "smoke", "--set", "patience=2", "--seeds", "1", "--storage-path", str(tmp_path)]
    assert search.main(args) == 2
    assert "patience > 0 would end trials early" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_real_run_stops_early_and_tests_the_best_weights(tmp_path: Path, capsys) -> None:
    """min_delta=1: no evaluation after the first can improve, so patience 1 stops the run after
    its second evaluation (epoch 1, evaluated every epoch) with epoch 0 the best."""
    out = tmp_path / "run"
    sets = {"epochs": 5, "eval_every": 1, "patience": 1, "min_delta": 1, "test_cluster_methods": "kmeans"}
    config = tiny(**sets)
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    args += ["--set", "bag_size=8", "--set", "steps_per_epoch=3", "--set", "bags_per_label=2"]
    assert (
        train_main([*args, "--set", "eval_bags_per_label=3", "--set", "num_threads=1", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "no improvement >= 1 in 1 evaluations since epoch 0" in printed
    assert "test split scored with the weights of epoch 0 (the best)" in printed
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [0, 1] and "test_kmeans_acc" in rows[1]
    assert rows[1]["best_eval_epoch"] == rows[1]["tested_epoch"] == 0
    outcome = json.loads((out / "run.json").read_text())["outcome"]
    assert outcome["best_epoch"] == 0 and outcome["best_value"] == rows[0]["cluster_acc"]
    best = torch.load(out / "checkpoints" / "best" / "state.pt", weights_only=True)
    last = torch.load(out / "checkpoints" / "epoch_0001" / "state.pt", weights_only=True)
    assert best["epoch"] == 0 and last["best"]["epoch"] == 0
    # the test features saved are the best weights' features, not the last ones'
    data = load_data(config)
    saved = np.load(out / "artifacts" / "test_features.npz")["features"]
    for state, same in ((best, True), (last, False)):
        model = build(config, data.image_shape, data.num_classes)
        model.load_state_dict(state["model"])
        features = extract_features(model.encoder, data.images["test"], 512)
        assert np.allclose(features, saved, atol=1e-6) == same


def test_a_run_is_named_by_the_labels_it_learns_from() -> None:
    assert supervision_label(Config(alpha=0.5)) == "UCC (bag labels only)"
    assert supervision_label(Config(alpha=1.0)) == "UCC (bag labels only)"
    assert supervision_label(Config(alpha=0.0)).startswith("autoencoder (no labels")
    assert supervision_label(Config(alpha=0.0, rcc_weight=0.5)) == "UCC (bag labels only)"  # counts per bag
    assert (
        supervision_label(Config(alpha=0.0, supervision="instance"))
        == "supervised baseline (instance labels)"
    )
