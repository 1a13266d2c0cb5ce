"""The progress view of a running search (``ucc_tune.search.progress``), from scripted events, no Ray."""

from __future__ import annotations

import pytest

from ucc_tune.search.progress import SearchProgress, format_duration, parse_duration


def scripted() -> SearchProgress:
    """Three trials of 4 epochs: a finished at 0.80, b finished at 0.90 (best epoch 0.95), c
    running after 2 epochs at 0.97 (better now, but not final)."""
    p = SearchProgress(["alpha", "lr"], "cluster_acc", num_samples=5)
    for tid, alpha in (("a", 0.25), ("b", 0.5), ("c", 0.75)):
        p.trial(tid, {"alpha": alpha, "lr": 1e-3, "epochs": 4}, 4, "RUNNING")
    for tid, values in (("a", [0.5, 0.6, 0.7, 0.8]), ("b", [0.7, 0.95, 0.85, 0.9]), ("c", [0.9, 0.97])):
        for epoch, value in enumerate(values):
            p.result(tid, {"epoch": epoch, "epochs_done": epoch + 1, "cluster_acc": value})
    p.trial("a", {"alpha": 0.25, "lr": 1e-3}, 4, "TERMINATED")
    p.trial("b", {"alpha": 0.5, "lr": 1e-3}, 4, "TERMINATED")
    return p


def test_the_view_shows_parameters_objective_epochs_and_status() -> None:
    lines = scripted().lines(width=120, elapsed_s=125)
    assert (
        lines[0] == "trials 3/5: 1 running, 2 finished | elapsed 2m05s, about 2m05s left at most"
    )  # 10 epochs in 125 s, 10 to go
    # finished trials ranked by their last value (b 0.90 over a 0.80), not by c's better current value
    assert lines[1] == "best: alpha=0.5, lr=0.001: cluster_acc 0.9000 (ran all 4 epochs)"
    assert lines[2].split() == ["trial", "alpha", "lr", "cluster_acc", "best", "epochs", "status"]
    assert [line.split() for line in lines[3:]] == [
        ["b", "0.5", "0.001", "0.9", "0.95", "4/4", "TERMINATED"],
        ["a", "0.25", "0.001", "0.8", "0.8", "4/4", "TERMINATED"],
        ["c", "0.75", "0.001", "0.97", "0.97", "2/4", "RUNNING"],
    ]


def test_before_any_trial_finished_the_leader_is_marked_not_final() -> None:
    p = SearchProgress(["alpha"], "val_loss", num_samples=2, budget_s=3600)
    for tid, loss in (("x", 0.4), ("y", 0.3)):
        p.trial(tid, {"alpha": 1.0 if tid == "x" else 0.0}, 6, "RUNNING")
        p.result(tid, {"epochs_done": 1, "val_loss": loss})
    head, best = p.lines(width=200, elapsed_s=600)[:2]
    assert head.endswith("elapsed 10m00s, 50m00s left of the 1h00m budget")
    assert best.startswith("leading (not final") and "alpha=0: val_loss 0.3000 after 1/6 epochs" in best


def test_fifty_trials_show_the_top_three_the_running_and_count_the_rest() -> None:
    p = SearchProgress(["alpha"], "cluster_acc", num_samples=50)
    for i in range(50):
        tid = f"t{i:02d}"
        p.trial(tid, {"alpha": i / 50}, 2, "RUNNING")
        if i < 44:  # 40 finished, 4 stopped early by the scheduler
            p.result(tid, {"epochs_done": 1 if i >= 40 else 2, "cluster_acc": i / 100})
            p.trial(tid, {"alpha": i / 50}, 2, "TERMINATED")
        elif i < 47:  # running; t44 has a value
            p.result(tid, {"epochs_done": 1, "cluster_acc": 0.5}) if i == 44 else None
        else:
            p.trial(tid, {"alpha": i / 50}, 2, "PENDING")
    lines = p.lines(width=100, elapsed_s=60)
    ids = [line.split()[0] for line in lines[3:-1]]
    assert ids == ["t39", "t38", "t37", "t44", "t45", "t46"]  # top 3 by rank, then running
    assert lines[-1] == "+44 more: 3 PENDING, 4 STOPPED, 37 TERMINATED"
    assert len(lines) == 10


@pytest.mark.parametrize("width", [100, 60, 40, 25])
def test_every_line_fits_the_terminal(width: int) -> None:
    p = scripted()
    p.searched.append("reconstruction_loss")  # a long parameter name
    p.trial("a", {"alpha": 0.25, "lr": 1e-3, "reconstruction_loss": "ms_ssim"}, 4, "TERMINATED")
    lines = p.lines(width=width, elapsed_s=3)
    assert max(len(line) for line in lines) <= width
    if width == 60:  # the clock on its own line, narrowed parameter columns, the objective's whole
        assert lines[1] == "elapsed 3s, about 3s left at most"
        header = next(line for line in lines if line.split()[0] == "trial")
        assert "rec~" in header and "cluster_acc" in header


def test_durations() -> None:
    assert [parse_duration(t) for t in ("2h", "90m", "3600s", "1h30m", "45", "0.5h")] == [
        7200,
        5400,
        3600,
        5400,
        45,
        1800,
    ]
    for bad in ("2 hours", "-5m", "0s", "h", ""):
        with pytest.raises(ValueError, match=r"duration|longer than 0"):
            parse_duration(bad)
    assert [format_duration(s) for s in (0, 59.6, 61, 3599, 3661)] == [
        "0s",
        "1m00s",
        "1m01s",
        "59m59s",
        "1h01m",
    ]


def test_the_time_left_does_not_count_the_start_up_and_holds_steady() -> None:
    """Two trials at a time, 10 s of training per epoch, after a start-up of 50 s: the estimate
    is the epochs left x 10 s / 2 running, the same after one epoch as after three."""
    p = SearchProgress(["alpha"], "cluster_acc", num_samples=4)
    for tid in ("a", "b"):
        p.trial(tid, {"alpha": 0.5}, 4, "RUNNING")
    estimates = []
    for epochs in (1, 3):
        for tid in ("a", "b"):
            p.result(tid, {"epochs_done": epochs, "cluster_acc": 0.5, "time_s": 10.0 * epochs})
        estimates.append(p.clock(elapsed_s=50 + 10 * epochs))
    # 16 epochs planned; after 2 done 14 remain (70 s), after 6 done 10 remain (50 s)
    assert estimates == ["elapsed 1m00s, about 1m10s left at most", "elapsed 1m20s, about 50s left at most"]
