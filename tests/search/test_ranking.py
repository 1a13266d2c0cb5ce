"""The ranking rule: last-epoch seed means, finished trials only, ties by overlapping seed ranges,
the convergence flag, and the verdict in words; on constructed trials with hand-known answers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from ucc_tune.schema import DIRECTIONS, OBJECTIVES, still_rising, trial_row, trials_frame
from ucc_tune.search.ranking import rank_trials, ranking_table, verdict
from ucc_tune.search.ranking import test_column as score_column_of  # (pytest collects names test_*)

EPOCHS = 4


def curve(values: list[float], **last: float) -> list[dict[str, Any]]:
    """A history whose cluster_acc is ``values`` (every epoch evaluated); ``last`` adds keys to the
    last row (test scores)."""
    rows = [
        {"epoch": e, "cluster_eval_epoch": e, "cluster_acc": v, "time_s": float(e)}
        for e, v in enumerate(values)
    ]
    rows[-1].update(last)
    return rows


def trial(trial_id: str, alpha: float, seeds: list[list[float]], status_epochs: int = EPOCHS) -> dict:
    """A trial of len(seeds) seeds whose reported history is the seeds' mean."""
    histories = [curve(s[:status_epochs], test_kmeans_acc=s[status_epochs - 1] - 0.01) for s in seeds]
    mean = [sum(s[e] for s in seeds) / len(seeds) for e in range(status_epochs)]
    history = curve(mean, test_kmeans_acc=mean[-1] - 0.01)
    config = {"alpha": alpha, "epochs": EPOCHS, "seeds": len(seeds)}
    return trial_row("exp", trial_id, f"/x/{trial_id}", config, history, None, None, histories)


def test_still_rising_compares_the_last_two_evaluations_with_the_two_before() -> None:
    assert still_rising(curve([0.5, 0.6, 0.7, 0.8]), "cluster_acc") is True  # +0.2 > 0.01
    assert still_rising(curve([0.8, 0.8, 0.805, 0.80]), "cluster_acc") is False  # gain 0.0025
    assert still_rising(curve([0.8, 0.8, 0.8]), "cluster_acc") is None  # three evaluations: unknown
    # rows that repeat an older clustering evaluation do not count as evaluations
    repeated = [{"epoch": e, "cluster_eval_epoch": e - e % 2, "cluster_acc": 0.1 * e} for e in range(8)]
    assert still_rising(repeated, "cluster_acc") is True
    assert still_rising(repeated[:6], "cluster_acc") is None  # evaluations at 0, 2, 4 only


def test_a_row_carries_the_spread_over_seeds() -> None:
    row = trial("t", 0.5, [[0.1, 0.2, 0.3, 0.90], [0.1, 0.2, 0.3, 0.80], [0.1, 0.2, 0.3, 0.70]])
    assert row["n_seeds"] == 3
    assert row["last_cluster_acc"] == pytest.approx(0.80)
    assert (row["last_cluster_acc_seed_min"], row["last_cluster_acc_seed_max"]) == (0.70, 0.90)
    assert row["test_kmeans_acc_seed_min"] == pytest.approx(0.69)
    assert row["rising_cluster_acc"] is True
    one = trial_row("exp", "u", "/x/u", {"epochs": EPOCHS}, curve([0.1, 0.2, 0.3, 0.4]))
    assert one["n_seeds"] == 1 and one["last_cluster_acc_seed_min"] == one["last_cluster_acc_seed_max"] == 0.4


def table(*rows: dict) -> Any:
    return rank_trials(trials_frame(list(rows)), "cluster_acc", "max")


FLAT = [0.5, 0.5, 0.5]


def test_ranking_uses_the_last_epoch_not_the_best_and_only_finished_trials() -> None:
    lucky = trial("lucky", 0.1, [[0.99, *FLAT], [0.99, *FLAT]])  # best epoch 0.99, last 0.5
    steady = trial("steady", 0.2, [[0.6, 0.6, 0.6, 0.7], [0.6, 0.6, 0.6, 0.72]])
    early = trial("early", 0.3, [[0.95, 0.96, 0.99, 0.99], [0.95, 0.96, 0.99, 0.99]], status_epochs=2)
    ranked = table(lucky, steady, early)
    assert list(ranked["trial_id"]) == ["steady", "lucky", "early"]
    assert list(ranked["rank"].iloc[:2]) == [1, 2]
    assert early["status"] == "STOPPED" and ranked["rank"].isna().iloc[2]
    assert list(ranking_table(ranked, "cluster_acc", ["alpha"])["alpha"]) == [0.2, 0.1]


@pytest.mark.parametrize("second, tied", [([0.70, 0.76], True), ([0.60, 0.74], False)])
def test_a_configuration_whose_seeds_overlap_the_best_is_tied(second: list[float], tied: bool) -> None:
    best = trial("best", 0.25, [[*FLAT, 0.75], [*FLAT, 0.80], [*FLAT, 0.85]])  # range 0.75-0.85
    other = trial("other", 0.5, [[*FLAT, v] for v in second])  # max 0.76 reaches it; 0.74 does not
    ranked = table(best, other)
    assert list(ranked["trial_id"]) == ["best", "other"]
    assert bool(ranked["tied_with_best"].iloc[1]) is tied
    words = " ".join(verdict(ranked, "cluster_acc", "max", ["alpha"], "4 epochs"))
    assert ("cannot be told apart from the best" in words and "alpha=0.5" in words) is tied
    assert ("below the best's range" in words) is not tied


def test_one_seed_cannot_tell_configurations_apart() -> None:
    ranked = table(trial("a", 0.1, [[*FLAT, 0.8]]), trial("b", 0.2, [[*FLAT, 0.7]]))
    assert ranked["tied_with_best"].isna().all()
    assert any(
        "one seed per configuration" in line for line in verdict(ranked, "cluster_acc", "max", [], "b")
    )


def test_the_verdict_says_when_the_answer_depends_on_the_budget() -> None:
    rising = trial("r", 0.5, [[0.2, 0.4, 0.6, 0.8], [0.2, 0.4, 0.6, 0.82]])
    flat = trial("f", 0.25, [[0.7, 0.7, 0.7, 0.7], [0.7, 0.7, 0.7, 0.71]])
    words = verdict(table(rising, flat), "cluster_acc", "max", ["alpha"], "4 epochs x 9 steps")
    assert words[0].startswith("best: alpha=0.5: cluster_acc 0.810")
    assert "test split test_kmeans_acc 0.800" in words[0]
    assert any("not converged at this budget (4 epochs x 9 steps)" in w and "alpha=0.5" in w for w in words)
    calm = verdict(table(flat), "cluster_acc", "max", ["alpha"], "4 epochs")
    assert not any("not converged" in w for w in calm)
    assert math.isclose(float(table(flat)["last_cluster_acc"].iloc[0]), 0.705)


def test_the_verdict_names_configurations_that_lost_seeds() -> None:
    lost = trial("l", 0.75, [[*FLAT, 0.8], [*FLAT, 0.7]])
    lost["seeds_collapsed"] = 1
    words = verdict(
        table(lost, trial("k", 0.25, [[*FLAT, 0.6], [*FLAT, 0.5]])), "cluster_acc", "max", ["alpha"], "b"
    )
    assert any("collapsed" in w and "alpha=0.75 (1 of 2)" in w for w in words)
    assert not any("alpha=0.25 (" in w for w in words)


def test_every_clustering_objective_names_its_test_score() -> None:
    """The summary shows the test score of the objective a search ranked by: every objective but the
    bag-level ones has one, computed by the same clustering method on the test split."""
    columns = {name: [0.5] for name in DIRECTIONS if name.startswith("test_")}
    trials = pd.DataFrame({**columns, "cluster_methods": ["kmedoids,kmeans"]})
    want = {
        "cluster_acc": "test_kmedoids_acc", "cluster_nmi": "test_kmedoids_nmi",
        "cluster_ari": "test_kmedoids_ari", "mean_clustering_score": "test_mean_clustering_score",
        "js_min": "test_js_min", "js_mean": "test_js_mean", "val_ucc_acc": None, "val_loss": None,
    }  # fmt: skip
    assert {m: score_column_of(trials, m) for m in OBJECTIVES} == want
