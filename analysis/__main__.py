"""``python -m analysis EXPERIMENT [EXPERIMENT ...] [--out DIR] [--metric M] [--top K]``.

Writes ``trials.parquet``, ``history.parquet``, ``js_divergence.parquet``, ``js_summary.parquet``,
the plots, ``report.html`` and ``report.md`` into ``EXPERIMENT/analysis/`` (or ``--out``), and
prints the best trials.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import embedding, plots
from analysis.checkpoints import best_checkpoint_line
from analysis.load import Experiment, NotAnExperimentError, fetch, load, objectives
from analysis.report import Sentences, write_reports
from analysis.views import importance, pareto_front, seed_statistics, signal_correlation
from ucc_tune.config import field_names, first_method
from ucc_tune.schema import ARTIFACTS_DIR, JS_FILE, RECONSTRUCTIONS_FILE, TEST_FEATURES_FILE, metric_direction
from ucc_tune.search.ranking import budget_words, rank_trials, ranking_table, verdict

SHOWN = ["experiment", "trial_id", "status", "epochs_run"]


def search_table(exp: Experiment) -> pd.DataFrame:
    """One short row per search: its space, what it searched, its objectives, its planned trials,
    the values it fixed for every trial and the commit it ran."""
    rows = []
    for name, s in exp.searches.items():
        objectives = zip(s.get("metrics") or [], s.get("modes") or [], strict=False)
        rows.append(
            {
                "experiment": name,
                "space": s.get("space"),
                "searched": ", ".join(s.get("searched") or []),
                "objectives": ", ".join(f"{m} ({mode})" for m, mode in objectives),
                "trials": s.get("num_samples"),
                "fixed": ", ".join(f"{k}={v}" for k, v in (s.get("fixed") or {}).items()),
                "git_commit": str(s.get("git_commit") or "")[:10],
            }
        )
    return pd.DataFrame(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    p.add_argument(
        "experiments",
        nargs="+",
        help="experiment folder(s) of python -m ucc_tune.search, or storage URIs (s3://...: copied "
        "to ~/.cache/ucc-tune/remote/ first, checkpoints left out)",
    )
    p.add_argument("--out", type=Path, help="output folder (default EXPERIMENT/analysis of the first one)")
    p.add_argument("--metric", help="objective to rank by (default: the search's first metric)")
    p.add_argument("--top", type=int, default=5, help="how many ranked configurations to show and plot")
    return p


def write_tables(exp: Experiment, out: Path) -> None:
    exp.trials.to_parquet(out / "trials.parquet", index=False)
    exp.history.to_parquet(out / "history.parquet", index=False)
    exp.js.to_parquet(out / "js_divergence.parquet", index=False)
    exp.js_summary.to_parquet(out / "js_summary.parquet", index=False)


def searched(exp: Experiment) -> list[str]:
    names: set[str] = set()
    for search in exp.searches.values():
        names |= set(search.get("searched", []))
    if names:
        return sorted(names)
    candidates = ("alpha", "bag_size", "kde_sigma", "num_bins", "lr", "rcc_weight", "consistency_weight")
    return [
        c for c in (*candidates, "ucc_min", "recon_loss") if c in exp.trials and exp.trials[c].nunique() > 1
    ]


def best_trial_figures(best: pd.DataFrame, out: Path) -> tuple[list[Path], pd.DataFrame | None]:
    """The best trial's JS heatmap, reconstructions, feature maps and confusion image, and its
    confusion table; a missing artifact is warned about and its figures left out."""
    if not len(best):
        return [], None
    row = best.iloc[0]
    trial_dir = Path(row["trial_dir"])
    method = first_method(str(row.get("cluster_methods") or ""))  # the ranking's test score's
    maps, table = embedding.feature_figures(trial_dir, out, method)
    found = {
        JS_FILE: plots.js_heatmap(trial_dir, out),
        RECONSTRUCTIONS_FILE: plots.reconstructions(trial_dir, out),
        TEST_FEATURES_FILE: maps or None,
    }
    for name, figure in found.items():
        if figure is None:
            print(
                f"warning: the best trial has no {ARTIFACTS_DIR}/{name} ({trial_dir}); its figure is left out"
            )
    figures = [found[JS_FILE], found[RECONSTRUCTIONS_FILE], *maps]
    return [f for f in figures if isinstance(f, Path)], table


def only_searched(frame: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """``frame`` without the ``Config`` fields that were not searched: a table shows what varies."""
    fixed = set(field_names()) - set(params)
    return frame[[c for c in frame.columns if c not in fixed]]


def report_sections(
    exp: Experiment, params: list[str], metric: str, words: Sentences, top: int
) -> dict[str, Any]:
    """The report's sections in order: the verdict and the ranking first (the answer), then the
    search's settings and the other tables."""
    metrics, modes = objectives(exp.searches)
    apart = exp.trials[exp.trials["rank"].isna()] if len(exp.trials) else exp.trials
    sections: dict[str, Any] = {
        "Verdict": words,
        f"Ranking by the mean {metric} over seeds at the last epoch (finished trials)": (
            ranking_table(exp.trials, metric, params, top) if len(exp.trials) else pd.DataFrame()
        ),
        "Search": search_table(exp),
        "Not ranked (stopped early, failed or never ran)": apart[
            [c for c in [*SHOWN, *params, f"last_{metric}", "error"] if c in apart]
        ],
        "Status": exp.trials["status"].value_counts().rename_axis("status").reset_index(),
        "Importance (Optuna, fANOVA)": pd.concat(
            [importance(p).assign(experiment=p.name) for p in exp.paths], ignore_index=True
        ),
        "val_ucc_acc as a predictor (Spearman, finished trials)": signal_correlation(exp.trials),
    }
    across = seed_statistics(exp.trials, [metric])
    if "seed" in exp.trials and exp.trials["seed"].nunique() > 1 and len(across):
        # trials of one configuration that differ in seed (seeds inside a trial: the ranking's range)
        sections["Across seeds"] = across
    if len(metrics) > 1:
        front = pareto_front(exp.trials, metrics, modes)
        sections["Pareto front"] = front[[*SHOWN, *params, *[f"last_{m}" for m in metrics]]]
    return {k: only_searched(v, params) if isinstance(v, pd.DataFrame) else v for k, v in sections.items()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.experiments = [fetch(location) for location in args.experiments]
        exp = load(args.experiments)
    except NotAnExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics, modes = objectives(exp.searches)
    metric = args.metric or metrics[0]
    mode = metric_direction(metric) if args.metric else modes[0]
    out = args.out or args.experiments[0] / "analysis"
    try:  # a read-only experiment (a shared or archived one) needs --out elsewhere
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as err:
        print(
            f"error: cannot write the analysis to {out} ({err.strerror or err}); pass --out DIR",
            file=sys.stderr,
        )
        return 2
    if args.metric and len(exp.trials):
        exp.trials = rank_trials(exp.trials, metric, mode)
    write_tables(exp, out)
    params = searched(exp)
    words = Sentences(
        verdict(exp.trials, metric, mode, params, budget_words(exp.trials)) if len(exp.trials) else []
    )
    words.append(best_checkpoint_line(exp, params, metric, mode))
    sections = report_sections(exp, params, metric, words, args.top)
    best_view = next(iter(v for k, v in sections.items() if k.startswith("Ranking")))
    print(f"finished configurations ranked by the mean {metric} over seeds at the last epoch ({mode}):")
    print(best_view.to_string(index=False) if len(best_view) else "  (no trial ran its whole budget yet)")
    for line in words:
        print(f"- {line}")
    ranked = exp.trials[exp.trials["rank"].notna()] if len(exp.trials) else exp.trials
    best_figures, confusion = best_trial_figures(ranked.head(1), out)
    if confusion is not None:
        sections[
            "Best trial: test split, class by cluster (clusters in the order of their matched class)"
        ] = confusion
    figures = [
        plots.objective_vs_parameters(exp.trials, params, metric, out),
        plots.parallel_coordinates(exp.trials, params, metric, out),
        plots.learning_curves(exp.history, exp.trials, params, metric, out, args.top),
        plots.ucc_vs_cluster(exp.trials, out),
        *best_figures,
    ]
    html_path, _ = write_reports(
        out, f"ucc-tune analysis: {', '.join(exp.searches)}", sections, [f for f in figures if f is not None]
    )
    print(f"\ntables, plots and report in {out} (open {html_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
