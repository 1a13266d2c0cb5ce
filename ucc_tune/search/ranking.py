"""Which configuration is best, and how sure that is: the ranking rule of a search, defined once.

- **The ranking value** of a trial is its objective's mean over its seeds at its **last epoch**
  (``last_<metric>``): the value the trial reported last, which is what the searcher was told and
  what its final checkpoint scores. Never the best of its epochs: the maximum over noisy
  evaluations picks the luckiest one.
- **Only trials that ran their whole budget** (``TERMINATED``) are ranked. Trials a scheduler
  stopped early are listed apart: a value after 2 of 8 epochs is not comparable to a finished one.
- **Ties across seeds**: a ranked trial is ``tied_with_best`` when the range of its seeds' final
  values reaches into the best trial's range (maximising: its best seed >= the best trial's worst
  seed). Such a configuration cannot be told apart from the best by these seeds. With one seed
  there is no range, so this is unknown (NA).
- **Test split**: every seed of a finished trial is scored on the test split at its last epoch,
  with the weights of the final checkpoint, the one the ranking refers to; the top trials' test
  means and ranges over seeds are reported beside the validation values.
- **Several objectives**: the ranking follows the first; ``on_pareto_front`` marks the finished
  trials that no other finished trial beats on all of them.
- **Budget**: a ranked configuration whose objective was still rising at its last evaluations
  (``ucc_tune.schema.still_rising``) has not converged; when the best or one tied with it is
  such, the answer is a statement about this budget and the verdict says so.
"""

from __future__ import annotations

from typing import Any

from ucc_tune.config import first_method
from ucc_tune.schema import RISE_TOLERANCE

TOP = 3  # configurations whose test scores the summary reports


def test_column(trials: Any, metric: str) -> str | None:
    """The test score that answers to validation ``metric``: the same score of the same clustering
    method on the test split (``cluster_acc`` -> ``test_kmeans_acc``), when the table has it."""
    score = {"cluster_acc": "acc", "cluster_nmi": "nmi", "cluster_ari": "ari"}.get(metric)
    if metric in ("js_min", "js_mean", "mean_clustering_score"):
        name = f"test_{metric}"
        return name if name in trials else None
    if score is None or "cluster_methods" not in trials or not len(trials):
        return None
    methods = trials["cluster_methods"].dropna()
    method = (first_method(str(methods.iloc[0])) if len(methods) else None) or "kmeans"
    name = f"test_{method}_{score}"
    return name if name in trials else None


def rank_trials(trials: Any, metric: str, mode: str) -> Any:
    """``trials`` with ``rank`` (1 = best, finished trials with a value only) and
    ``tied_with_best``, sorted: ranked trials first, in rank order."""
    import pandas as pd

    value, low, high = f"last_{metric}", f"last_{metric}_seed_min", f"last_{metric}_seed_max"
    out = trials.copy()
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["tied_with_best"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if value not in out or not len(out):
        return out
    ranked_rows = out.index[finished(out) & out[value].notna()]
    # equal values rank by trial id: the same order whoever builds the table
    order = (
        out.loc[ranked_rows, [value, "trial_id"]]
        .sort_values([value, "trial_id"], ascending=[mode == "min", True])
        .index
    )
    out.loc[order, "rank"] = range(1, len(order) + 1)
    if len(order):
        best = out.loc[order[0]]
        for index in order:
            row = out.loc[index]
            if min(int(row.get("n_seeds", 1)), int(best.get("n_seeds", 1))) < 2:
                continue
            overlaps = row[high] >= best[low] if mode == "max" else row[low] <= best[high]
            out.loc[index, "tied_with_best"] = bool(overlaps)
    ranked = out["rank"].notna()
    return pd.concat([out[ranked].sort_values("rank"), out[~ranked]])


def finished(trials: Any) -> Any:
    """Whether each row ran its whole budget (``TERMINATED``): the only trials whose values are
    compared, a stopped trial's being of a smaller budget. True everywhere for a table without a
    ``status``."""
    import pandas as pd

    if "status" not in trials:
        return pd.Series(True, index=trials.index, dtype=bool)
    return trials["status"] == "TERMINATED"


def on_pareto_front(trials: Any, metrics: list[str], modes: list[str]) -> Any:
    """Per row of ``trials``, whether it is on the Pareto front of ``metrics``: a trial with every
    ``last_<metric>`` (the seed mean at the last epoch) that no other such trial beats on all of
    them (at least as good on every one, better on one). Where the table has a ``status``, only
    trials that ran their whole budget (``TERMINATED``) take part, as in the ranking."""
    import numpy as np
    import pandas as pd

    columns = [f"last_{m}" for m in metrics]
    if not all(c in trials for c in columns):
        return pd.Series(False, index=trials.index, dtype=bool)
    eligible = trials[columns].notna().all(axis=1) & finished(trials)
    signs = np.array([1.0 if mode == "max" else -1.0 for mode in modes])
    values = trials.loc[eligible, columns].to_numpy(dtype=float) * signs
    dominated = [bool(np.any(np.all(values >= v, axis=1) & np.any(values > v, axis=1))) for v in values]
    front = pd.Series(False, index=trials.index, dtype=bool)
    front[eligible[eligible].index] = [not d for d in dominated]
    return front


def budget_words(trials: Any) -> str:
    """The trials' budget in words: "8 epochs x 50 steps, 3 seed(s)" (a range where it varies)."""
    parts = []
    for column, unit in (("epochs", "epochs"), ("steps_per_epoch", "steps"), ("seeds", "seed(s)")):
        values = trials[column].dropna() if column in trials else []
        low, high = (int(min(values)), int(max(values))) if len(values) else (0, 0)
        parts.append(f"{low if low == high else f'{low}-{high}'} {unit}")
    return f"{parts[0]} x {parts[1]}, {parts[2]}"


def describe(row: Any, searched: list[str]) -> str:
    """A configuration in words: its searched values (``alpha=0.25, lr=0.001``)."""
    return ", ".join(f"{p}={_short(row[p])}" for p in searched if p in row) or f"trial {row['trial_id']}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def ranking_table(ranked: Any, metric: str, searched: list[str], top: int | None = None) -> Any:
    """The finished trials in rank order with the columns a reader needs: the ranking value and
    its range over seeds, the number of seeds, epochs, whether still rising, tied with the best,
    and the test counterpart's mean and range."""
    test = test_column(ranked, metric)
    columns = [
        "rank",
        *searched,
        f"last_{metric}",
        f"last_{metric}_seed_min",
        f"last_{metric}_seed_max",
        "n_seeds",
        "seeds_collapsed",
        "epochs_run",
        f"rising_{metric}",
        "tied_with_best",
    ]
    if test is not None:
        columns += [test, f"{test}_seed_min", f"{test}_seed_max"]
    rows = ranked[ranked["rank"].notna()]
    rows = rows if top is None else rows.head(top)
    return rows[[c for c in columns if c in rows]].reset_index(drop=True)


def verdict(ranked: Any, metric: str, mode: str, searched: list[str], budget: str) -> list[str]:
    """What the ranking says, in words: the best configuration with its spread and test score,
    those that cannot be told apart from it, trials not ranked, and whether the answer depends on
    the budget (``budget`` names it, e.g. "8 epochs x 50 steps")."""
    done = ranked[ranked["rank"].notna()]
    stopped = int((ranked["status"] == "STOPPED").sum())
    failed = int((ranked["status"] == "ERROR").sum())
    lines = []
    if stopped or failed:
        lines.append(
            f"not ranked: {stopped} stopped early (by the scheduler or the time budget), "
            f"{failed} failed (listed apart)"
        )
    if not len(done):
        return [f"no trial ran its whole budget ({budget}): nothing to rank", *lines]
    best = done.iloc[0]
    spread = f"seeds {best[f'last_{metric}_seed_min']:.3f}-{best[f'last_{metric}_seed_max']:.3f}"
    text = f"best: {describe(best, searched)}: {metric} {best[f'last_{metric}']:.3f} "
    text += (
        f"(mean of {int(best['n_seeds'])} seed(s), {spread}) at the last of {int(best['epochs_run'])} epochs"
    )
    test = test_column(ranked, metric)
    if test is not None and best.get(test) == best.get(test):
        low, high = best[f"{test}_seed_min"], best[f"{test}_seed_max"]
        text += f"; test split {test} {best[test]:.3f} ({low:.3f}-{high:.3f})"
    lines.insert(0, text)
    tied = done[done["tied_with_best"].fillna(False).astype(bool)].iloc[1:]
    if int(best["n_seeds"]) < 2:
        lines.append("one seed per configuration: no spread to tell configurations apart (use --seeds 3)")
    elif len(tied):
        names = "; ".join(describe(r, searched) for _, r in tied.iterrows())
        lines.append(f"cannot be told apart from the best (their seed ranges overlap): {names}")
    elif len(done) > 1:
        lines.append("every other finished configuration lies below the best's range over seeds")
    if "seeds_collapsed" in done and (lost := done[done["seeds_collapsed"].fillna(0) > 0]).shape[0]:
        names = "; ".join(
            f"{describe(r, searched)} ({r['seeds_collapsed']} of {r['n_seeds']})" for _, r in lost.iterrows()
        )
        lines.append(
            f"seeds whose features collapsed (in the means with their scores at the collapse): {names}"
        )
    leaders = done[done["tied_with_best"].fillna(False).astype(bool) | (done["rank"] == 1)]
    flag = f"rising_{metric}"
    rising = leaders[leaders[flag].fillna(False).astype(bool)] if flag in done else leaders.iloc[:0]
    if len(rising):
        names = "; ".join(describe(r, searched) for _, r in rising.iterrows())
        lines.append(
            f"not converged at this budget ({budget}): {metric} of {names} still rose by more than "
            f"{RISE_TOLERANCE} over its last evaluations; the ranking holds for this budget, "
            "more epochs may change it"
        )
    return lines
