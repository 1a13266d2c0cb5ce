"""What a finished search prints: the ranking, the Pareto front of a search with several
objectives, the trials not ranked, the verdict in words and the share of the time budget it used."""

from __future__ import annotations

from typing import Any

from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.progress import format_duration
from ucc_tune.search.ranking import TOP, budget_words, ranking_table, verdict
from ucc_tune.storage import redact


def budget_used(budget_s: float, elapsed_s: float, trials: int, planned: int) -> str:
    """The time budget in words: what the search used of it, and the trials it left unstarted."""
    text = (
        f"time budget: used {format_duration(elapsed_s)} of {format_duration(budget_s)} "
        f"({100 * elapsed_s / budget_s:.0f}%)"
    )
    if trials < planned:
        text += f"; it ran out before {planned - trials} of the {planned} planned trials started (not run)"
    return text


def print_summary(table: Any, plan: SearchPlan, top: int = TOP, elapsed_s: float | None = None) -> None:
    """The finished configurations ranked (``ucc_tune.search.ranking``), the top ones with test scores,
    the trials not ranked listed apart, the verdict in words, and how much of the time budget
    the search used (``elapsed_s``: its wall time)."""
    metric, mode = plan.metrics[0], plan.modes[0]
    counts = table["status"].value_counts().to_dict()
    print(f"\ntrials: {len(table)} ({', '.join(f'{v} {k}' for k, v in counts.items())})")
    searched = list(plan.searched)
    finished = ranking_table(table, metric, searched)
    if len(finished):
        print(f"finished configurations ranked by the mean {metric} over seeds at the last epoch ({mode}):")
        print(finished.to_string(index=False))
        print(
            f"test split of the top {min(top, len(finished))}: the columns test_*, from the final checkpoint"
        )
    if "pareto" in table:
        print_pareto_front(table, plan)
    apart = table[table["rank"].isna()]
    if len(apart):
        cols = ["trial_id", "status", *searched, f"last_{metric}", "epochs_run", "error"]
        print("not ranked (stopped early, failed or never ran):")
        print(apart[[c for c in cols if c in apart]].to_string(index=False, max_colwidth=60))
    for line in verdict(table, metric, mode, searched, budget_words(table)):
        print(f"- {line}")
    if plan.time_budget_s is not None and elapsed_s is not None:
        print(f"- {budget_used(plan.time_budget_s, elapsed_s, len(table), plan.num_samples)}")
    where = redact(plan.experiment_uri)
    print(f"\nexperiment folder: {where}")
    print(f"next: python -m analysis {where}")


def print_pareto_front(table: Any, plan: SearchPlan) -> None:
    """The finished configurations no other beats on every objective (the ``pareto`` column)."""
    objectives = ", ".join(f"{m} ({mode})" for m, mode in zip(plan.metrics, plan.modes, strict=True))
    front = table[table["pareto"]]
    print(f"Pareto front of {objectives}: {len(front)} finished configuration(s) no other beats on all")
    if len(front):
        columns = ["trial_id", *plan.searched, *[f"last_{m}" for m in plan.metrics]]
        print(front[[c for c in columns if c in front]].to_string(index=False))
