"""``python -m analysis EXPERIMENT [EXPERIMENT ...] [--out DIR] [--metric M] [--top K]``.

Writes ``trials.parquet``, ``history.parquet``, ``js_divergence.parquet``, ``js_summary.parquet``,
the plots, ``report.html`` and ``report.md`` into ``EXPERIMENT/analysis/`` (or ``--out``), and
prints the best trials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.checkpoints import best_checkpoint_line
from analysis.load import Experiment, NotAnExperimentError, fetch, load
from analysis.report import Sentences, write_reports
from analysis.views import importance, pareto_front, seed_statistics, signal_correlation
from ucc_tune.schema import ARTIFACTS_DIR, JS_FILE, RECONSTRUCTIONS_FILE, metric_direction
from ucc_tune.selection import budget_words, rank_trials, ranking_table, verdict

SHOWN = ["experiment", "trial_id", "status", "epochs_run"]


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


def best_trial_figures(best: pd.DataFrame, out: Path) -> list[Path | None]:
    """The best trial's JS heatmap and reconstructions; a missing artifact is warned about."""
    if not len(best):
        return []
    trial_dir = Path(best["trial_dir"].iloc[0])
    figures = [plots.js_heatmap(trial_dir, out), plots.reconstructions(trial_dir, out)]
    for figure, name in zip(figures, (JS_FILE, RECONSTRUCTIONS_FILE), strict=True):
        if figure is None:
            print(
                f"warning: the best trial has no {ARTIFACTS_DIR}/{name} ({trial_dir}); its figure is left out"
            )
    return figures


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.experiments = [fetch(location) for location in args.experiments]
        exp = load(args.experiments)
    except NotAnExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    first = next(iter(exp.searches.values()), {})
    metrics = first.get("metrics") or ["cluster_acc"]
    modes = first.get("modes") or ["max"]
    metric = args.metric or metrics[0]
    mode = metric_direction(metric) if args.metric else modes[0]
    out = args.out or args.experiments[0] / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    if args.metric and len(exp.trials):
        exp.trials = rank_trials(exp.trials, metric, mode)
    write_tables(exp, out)
    params = searched(exp)
    ranked = exp.trials[exp.trials["rank"].notna()] if len(exp.trials) else exp.trials
    best = ranked.head(args.top)
    best_view = ranking_table(exp.trials, metric, params, args.top) if len(exp.trials) else pd.DataFrame()
    apart = exp.trials[exp.trials["rank"].isna()] if len(exp.trials) else exp.trials
    apart_view = apart[[c for c in [*SHOWN, *params, f"last_{metric}", "error"] if c in apart]]
    words = Sentences(
        verdict(exp.trials, metric, mode, params, budget_words(exp.trials)) if len(exp.trials) else []
    )
    words.append(best_checkpoint_line(exp, params, metric, mode))
    print(f"finished configurations ranked by the mean {metric} over seeds at the last epoch ({mode}):")
    print(best_view.to_string(index=False) if len(best_view) else "  (no trial ran its whole budget yet)")
    for line in words:
        print(f"- {line}")
    figures = [
        plots.objective_vs_parameters(exp.trials, params, metric, out),
        plots.learning_curves(exp.history, list(best["trial_id"]) if len(best) else [], metric, out),
        plots.ucc_vs_cluster(exp.trials, out),
        *best_trial_figures(best, out),
    ]
    sections = {
        "Search": {
            name: {k: s.get(k) for k in ("space", "metrics", "modes", "num_samples", "fixed", "git_commit")}
            for name, s in exp.searches.items()
        },
        "Verdict": words,
        f"Ranking by the mean {metric} over seeds at the last epoch (finished trials)": best_view,
        "Not ranked (stopped early, failed or never ran)": apart_view,
        "Status": exp.trials["status"].value_counts().rename_axis("status").reset_index(),
        "Importance (Optuna, fANOVA)": pd.concat(
            [importance(p).assign(experiment=p.name) for p in exp.paths], ignore_index=True
        ),
        "val_ucc_acc as a predictor (Spearman)": signal_correlation(exp.trials),
        "Across seeds": seed_statistics(exp.trials, [metric]),
    }
    if len(metrics) > 1:
        sections["Pareto front"] = pareto_front(exp.trials, metrics, modes)[
            [*SHOWN, *[f"last_{m}" for m in metrics]]
        ]
    html_path, _ = write_reports(out, f"ucc-tune analysis: {', '.join(exp.searches)}", sections,
                                 [f for f in figures if f is not None])  # fmt: skip
    print(f"\ntables, plots and report in {out} (open {html_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
