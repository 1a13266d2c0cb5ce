"""What a person watching a search sees, on a real local Ray cluster: the progress view in place
of Ray's table and checkpoint lines, and a time budget that ends a search early."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from ucc_tune.search import command as search

VIEW_HEADER = ["trial", "alpha", "lr", "cluster_acc", "best", "epochs", "status"]


def test_the_smoke_search_prints_the_progress_view_and_no_checkpoint_lines(
    smoke_search: tuple[Path, str],
) -> None:
    exp, out = smoke_search
    assert "Checkpoint successfully created" not in out
    assert "Configuration for experiment" not in out and "Trial status:" not in out  # Ray's own
    lines = out.splitlines()
    headers = [i for i, line in enumerate(lines) if line.split() == VIEW_HEADER]
    assert headers, out[-3000:]
    last = headers[-1]  # the view printed when the search ended
    head = next(line for line in reversed(lines[:last]) if line.startswith("trials "))
    assert head.startswith("trials 3/3: 3 finished")
    table = pd.read_parquet(exp / "trials.parquet")
    best = table[table["rank"] == 1].iloc[0]
    assert lines[last - 1].startswith(f"best: alpha={best['alpha']:.4g}, lr={best['lr']:.4g}: ")
    assert f"cluster_acc {best['last_cluster_acc']:.4f}" in lines[last - 1]
    rows = [line.split() for line in lines[last + 1 : last + 4]]
    assert {r[0] for r in rows} == set(table["trial_id"])
    assert all(r[-2:] == ["2/2", "TERMINATED"] for r in rows)
    assert rows[0][0] == best["trial_id"]  # ranked first, as in trials.parquet


def test_a_time_budget_ends_the_search_early_with_complete_tables(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """2 s: the first trial starts, its first epoch ends after the budget (a trial process takes
    longer than that to start), so it stops there and the other 3 trials never start."""
    args = ["--storage-path", str(tmp_path), "--name", "budget", "--space", "smoke", "--num-samples", "4"]
    args += ["--max-concurrent", "1", "--scheduler", "fifo", "--set", "num_threads=1", "--time-budget", "2s"]
    assert search.main(args) == 0
    out = capsys.readouterr().out
    exp = tmp_path / "budget"
    table = pd.read_parquet(exp / "trials.parquet")
    assert len(table) == 1 and table["status"].tolist() == ["STOPPED"] and table["epochs_run"].tolist() == [1]
    assert len((Path(table["trial_dir"].iloc[0]) / "metrics.jsonl").read_text().splitlines()) == 1
    study = optuna.load_study(study_name="budget", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["PRUNED"]  # the never-started ones are not there
    assert json.loads((exp / "search.json").read_text())["time_budget_s"] == 2.0
    assert "- time budget: used " in out and " of 2s (" in out
    assert "it ran out before 3 of the 4 planned trials started (not run)" in out


def test_a_spent_budget_stops_each_trial_at_its_result_and_refuses_new_trials() -> None:
    from ray.tune.search import Searcher

    from ucc_tune.ray_adapter.budget import BudgetLimiter, TimeBudget

    class Fixed(Searcher):
        def suggest(self, trial_id: str) -> dict:
            return {"alpha": 0.5}

    budget = TimeBudget(3600)
    limiter = BudgetLimiter(Fixed(metric="cluster_acc", mode="max"), 2, budget)
    assert limiter.suggest("a") == {"alpha": 0.5} and not budget("a", {"epochs_done": 1})
    budget.started -= 3600  # an hour later
    assert budget("a", {"epochs_done": 2}) and not budget.stop_all()  # never all at once
    assert limiter.suggest("b") == Searcher.FINISHED
    assert "budget" not in limiter.get_state()  # a restore keeps the tuner's budget, not a copy
    budget.setup()  # the clock restarts when an experiment (or its resume) is set up
    assert not budget("a", {"epochs_done": 2}) and limiter.suggest("c") == {"alpha": 0.5}
