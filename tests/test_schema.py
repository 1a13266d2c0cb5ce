"""The shared facts: metric directions, the one status rule, the one trial row, history reading."""

from __future__ import annotations

import json
import math

import pytest

from ucc_tune.config import Config
from ucc_tune.metrics import METRICS
from ucc_tune.schema import (
    DIRECTIONS,
    EPOCH_METRICS,
    OBJECTIVES,
    REPORTED,
    TRIAL_COLUMNS,
    error_text,
    last_and_best,
    metric_direction,
    read_history,
    trial_row,
    trial_status,
    trials_frame,
)  # fmt: skip


def test_directions_are_explicit() -> None:
    assert metric_direction("val_loss") == "min" and metric_direction("cluster_acc") == "max"
    assert metric_direction("time_s") == "min" and metric_direction("instances_per_s") == "max"
    assert metric_direction("test_spectral_acc_paper") == "max" and metric_direction("test_js_min") == "max"
    with pytest.raises(ValueError, match="'epoch' has no direction"):
        metric_direction("epoch")
    with pytest.raises(ValueError, match="'lossy_metric' has no direction"):
        metric_direction("lossy_metric")  # no substring rule: an unknown name is an error
    assert all(DIRECTIONS[o] is not None for o in OBJECTIVES)


def test_every_clustering_score_has_a_test_column() -> None:
    assert {f"test_kmeans_{s}" for s in METRICS} <= set(DIRECTIONS)


def test_last_and_best_by_hand() -> None:
    history = [
        {"epoch": 0, "cluster_acc": 0.5, "val_loss": 2.0},
        {"epoch": 1, "cluster_acc": 0.8, "val_loss": 1.0},
        {"epoch": 2, "cluster_acc": 0.6, "val_loss": math.nan},
    ]
    out = last_and_best(history, ["cluster_acc", "val_loss", "js_min"])
    assert out["last_cluster_acc"] == 0.6 and out["best_cluster_acc"] == 0.8
    # the last epoch's NaN is what the run ended with: never replaced by an earlier value
    assert math.isnan(out["last_val_loss"]) and out["best_val_loss"] == 1.0  # min is best
    assert math.isnan(out["last_js_min"]) and math.isnan(out["best_js_min"])


@pytest.mark.parametrize(
    ("error", "epochs_run", "ray_status", "want"),
    [
        (False, 4, None, "TERMINATED"),
        (False, 4, "TERMINATED", "TERMINATED"),
        (False, 2, "TERMINATED", "STOPPED"),  # a scheduler ended it early
        (False, 2, None, "STOPPED"),
        (True, 4, None, "ERROR"),
        (False, 1, "ERROR", "ERROR"),
        (False, 2, "RUNNING", "RUNNING"),
        (False, 0, "PENDING", "PENDING"),
        (False, 0, "PAUSED", "PENDING"),
        (False, 0, None, "PENDING"),  # started, nothing reported yet
        (False, 0, "TERMINATED", "PENDING"),  # a trial that never ran is not STOPPED
    ],
)
def test_status_rule(error: bool, epochs_run: int, ray_status: str | None, want: str) -> None:
    assert trial_status(error, epochs_run, 4, ray_status) == want


def test_read_history_skips_damage_and_keeps_the_latest_row_of_an_epoch() -> None:
    lines = [
        {"epoch": 0, "cluster_acc": 0.1},
        {"epoch": 1, "cluster_acc": 0.2},
        {"epoch": 1, "cluster_acc": 0.3},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + '\n{"epoch": 2, "clus'
    notes: list[str] = []
    rows = read_history(text, notes, "m.jsonl")
    assert [r["cluster_acc"] for r in rows] == [0.1, 0.3]
    assert notes == ["m.jsonl: line 4 is not a metrics row (truncated?); skipped"]


def test_trial_row_and_frame() -> None:
    history = [{"epoch": e, "cluster_acc": 0.5 + e / 10, "time_s": 3.0 * (e + 1)} for e in range(2)]
    history[-1]["test_kmeans_acc"] = 0.7
    config = {"alpha": 0.25, "epochs": 2}
    row = trial_row("exp", "t1", "/x/t1", config, history)
    assert row["status"] == "TERMINATED" and row["epochs_run"] == 2 and row["wall_time_s"] == 6.0
    assert row["alpha"] == 0.25 and row["bag_size"] == Config().bag_size  # resolved config
    assert row["best_cluster_acc"] == 0.6 and row["test_kmeans_acc"] == 0.7
    stopped = trial_row("exp", "t2", "/x/t2", {"alpha": 2.0, "epochs": 4}, history[:1], error=None)
    assert stopped["status"] == "STOPPED" and stopped["alpha"] == 2.0 and stopped["bag_size"] is None
    frame = trials_frame([row, stopped])
    assert list(frame.columns[: len(TRIAL_COLUMNS)]) == list(TRIAL_COLUMNS)
    assert {f"best_{m}" for m in REPORTED} <= set(frame.columns)
    assert frame["test_fraction"].dtype == "float64" and frame["bag_size"].dtype == "Int64"
    assert frame["test_cluster_methods"].dtype == "string" and frame["amp"].dtype == "boolean"
    assert math.isnan(frame.loc[1, "test_kmeans_acc"])


def test_epoch_metrics_name_the_loop_reports() -> None:
    assert "epoch" in EPOCH_METRICS and "epochs_done" in EPOCH_METRICS


def test_error_text_names_the_cause() -> None:
    wrapped = RuntimeError("outer")
    wrapped.cause = ValueError("first line\nbag_size=64 is too large")  # type: ignore[attr-defined]
    assert error_text(wrapped) == "ValueError: bag_size=64 is too large"


def test_mean_clustering_score_is_an_objective_to_maximise() -> None:
    from ucc_tune.search.flags import parse_objectives

    assert parse_objectives("mean_clustering_score", None) == (("mean_clustering_score",), ("max",))
    assert metric_direction("test_mean_clustering_score") == "max"
