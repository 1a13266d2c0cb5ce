"""Does every default train? Feature collapses out of many seeds, per alpha, old recipe against new.

Run: ``.venv/bin/python -m benchmarks.robustness [--seeds 20] [--mnist-seeds 10] [--epochs 3]
[--mnist-epochs 1] [--steps 100] [--workers 2] [--recipes new,old] [--first-seed 0] [--extend]``
(run it in the background; ``--quick`` shrinks every size for a check). ``--extend`` adds the
runs to the cases already in the results file that have the same budget (say ``--first-seed 6``
to add seeds 6, 7, ... to a file holding seeds 0-5).
Writes ``benchmarks/results/robustness.json``.

Cases: ``digits`` with the ``paper`` model at every alpha in {0, 0.25, 0.5, 0.75, 1} on ``--seeds``
seeds, and ``mnist_sample`` with the ``paper`` model at alpha in {0.5, 1} on ``--mnist-seeds``
seeds; each under the **new** defaults (``Config()`` as it is) and under the **old** ones
(``lr=1e-3``, ``warmup_steps=0`` on ``digits``; no warm-up on ``mnist_sample``, whose lr is the
catalog's 1e-4 in both). A run is one seed trained for ``--epochs`` x ``--steps`` with the
training loop's own collapse detector (``FeatureCollapseError``: every feature saturated, or
every class's feature distribution the same) evaluated after every epoch; a collapse shows in
the first epochs, so the budget is short, and the accuracies it reports are of that budget, not
converged ones. Per case: collapses out of the seeds (and at which epochs), and over the seeds
that did not collapse the final test k-means accuracy and ``js_min`` (mean, min, max).

Runs go ``--workers`` at a time, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, write_results

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
MNIST_ALPHAS = (0.5, 1.0)
OLD: dict[str, dict[str, Any]] = {
    "digits": {"lr": 1e-3, "warmup_steps": 0},
    "mnist_sample": {"warmup_steps": 0},
}


def one_run(settings: dict[str, Any]) -> dict[str, Any]:
    """Train one seed of ``settings`` (``Config`` fields); its collapse epoch or final scores."""
    from ucc_tune.catalog import dataset_defaults
    from ucc_tune.config import Config
    from ucc_tune.train import FeatureCollapseError, LocalSession, train

    settings = {**dataset_defaults(settings["dataset"], set(settings)), **settings}  # as the CLIs do
    config = Config.from_dict({"num_threads": 1, **settings})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        try:
            final = train(config, LocalSession(Path(out)))
        except FeatureCollapseError as err:
            return {"seed": config.seed, "collapsed_epoch": err.epoch, "wall_s": _since(start)}
    return {
        "seed": config.seed,
        "collapsed_epoch": None,
        "wall_s": _since(start),
        "test_kmeans_acc": round(float(final["test_kmeans_acc"]), 4),
        "js_min": round(float(final["js_min"]), 4),
        "val_ucc_acc": round(float(final["val_ucc_acc"]), 4),
    }


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 1)


def cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (dataset, alpha, recipe) of the benchmark with its seeds and settings."""
    out = []
    for dataset, alphas, seeds, epochs in (
        ("digits", ALPHAS, args.seeds, args.epochs),
        ("mnist_sample", MNIST_ALPHAS, args.mnist_seeds, args.mnist_epochs),
    ):
        for alpha in alphas:
            for recipe in args.recipes:  # side by side: a run stopped early keeps pairs
                settings = {"dataset": dataset, "model": "paper", "alpha": alpha, "epochs": epochs}
                settings["steps_per_epoch"] = args.steps
                settings.update(OLD[dataset] if recipe == "old" else {})
                if args.quick:
                    settings.update(bag_size=8, bags_per_label=2, eval_bags_per_label=5)
                out.append(
                    {
                        "dataset": dataset,
                        "alpha": alpha,
                        "recipe": recipe,
                        "seeds": list(range(args.first_seed, args.first_seed + seeds)),
                        "settings": settings,
                    }
                )
    return out


def summarize(case: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A case's collapse count and the spread of its surviving seeds' scores."""
    alive = [r for r in runs if r["collapsed_epoch"] is None]
    summary = {k: case[k] for k in ("dataset", "alpha", "recipe")}
    summary["collapses"] = f"{len(runs) - len(alive)}/{len(runs)}"
    summary["collapse_epochs"] = sorted(
        r["collapsed_epoch"] for r in runs if r["collapsed_epoch"] is not None
    )
    for key in ("test_kmeans_acc", "js_min"):
        values = [r[key] for r in alive]
        summary[key] = (
            {"mean": round(statistics.fmean(values), 4), "min": min(values), "max": max(values)}
            if values
            else None
        )
    summary["overrides"] = {
        k: v for k, v in case["settings"].items() if k not in ("dataset", "model", "alpha")
    }
    summary["runs"] = runs
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per digits case (0, 1, ...)")
    parser.add_argument("--mnist-seeds", type=int, default=10, help="seeds per mnist_sample case")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mnist-epochs", type=int, default=1, help="epochs of an mnist_sample run")
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipes", type=_recipes, default=("new", "old"), help="new,old or one")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed of every case")
    parser.add_argument("--extend", action="store_true", help="add to the results file's cases")
    parser.add_argument("--quick", action="store_true", help="small bags and two seeds: a check, not figures")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.mnist_seeds, args.epochs, args.mnist_epochs, args.steps = 2, 1, 1, 1, 3
    todo = [c for c in cases(args) if c["seeds"]]
    jobs = [{**c["settings"], "seed": s} for c in todo for s in c["seeds"]]
    earlier, args.earlier_wall_s = _earlier_runs(args) if args.extend else ({}, 0.0)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = iter(pool.map(one_run, jobs))
        summaries: list[dict[str, Any]] = [s for k, s in earlier.items() if k not in map(_key, todo)]
        for case in todo:
            runs = [next(results) for _ in case["seeds"]]
            summaries.append(summarize(case, earlier.get(_key(case), {}).get("runs", []) + runs))
            print({k: v for k, v in summaries[-1].items() if k != "runs"}, flush=True)
            if not args.quick:  # every finished case on disk: a long run stopped early keeps them
                write_results("robustness", figures(args, summaries, start), quiet=True)
    if args.quick:
        print(figures(args, summaries, start)["meets_target"], f"{_since(start)} s")
    else:
        write_results("robustness", figures(args, summaries, start))
    return 0


def _recipes(text: str) -> tuple[str, ...]:
    recipes = tuple(r.strip() for r in text.split(",") if r.strip())
    if not recipes or not set(recipes) <= {"new", "old"}:
        raise argparse.ArgumentTypeError(f"--recipes {text!r}: allowed are new, old or new,old")
    return recipes


def _key(case: dict[str, Any]) -> tuple[str, float, str]:
    return case["dataset"], case["alpha"], case["recipe"]


def _earlier_runs(args: argparse.Namespace) -> tuple[dict[tuple[str, float, str], dict[str, Any]], float]:
    """The results file's cases by key and its wall time, when its budget is this run's."""
    path = RESULTS / "robustness.json"
    if not path.exists():
        return {}, 0.0
    earlier = json.loads(path.read_text())
    if earlier.get("budget") != _budget(args):
        raise SystemExit(f"--extend: {path} has budget {earlier.get('budget')}, not {_budget(args)}")
    return {_key(case): case for case in earlier["cases"]}, float(earlier["wall_s"])


def _budget(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "digits_epochs": args.epochs,
        "mnist_sample_epochs": args.mnist_epochs,
        "steps_per_epoch": args.steps,
        "quick": args.quick,
    }


def figures(args: argparse.Namespace, summaries: list[dict[str, Any]], start: float) -> dict[str, Any]:
    """The benchmark's record of the cases done so far."""
    return {
        "budget": _budget(args),
        "wall_s": round(_since(start) + getattr(args, "earlier_wall_s", 0.0), 1),
        "cases": summaries,
        "target": "0 collapses in every case under the new defaults",
        "meets_target": all(s["collapses"].startswith("0/") for s in summaries if s["recipe"] == "new"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
