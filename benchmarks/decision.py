"""Does the demo search answer its question? Its ranked-first configuration against a ground truth.

Run: ``.venv/bin/python -m benchmarks.decision [--runs 5] [--truth-seeds 4]`` (about an hour on a
2-core CPU: run it in the background). Writes ``benchmarks/results/decision.json``.

1. **Ground truth** for the demo's question (the ``alpha_sweep`` space, its budget): every grid
   point trained to the full budget (no scheduler) on ``--truth-seeds`` seeds that no demo run
   uses (100, 101, ...), two at a time; per configuration the test-split mean and range of the
   objective's test counterpart (``test_kmeans_acc`` for ``cluster_acc``). A run that collapses
   counts as failed for that seed. Cached in ``benchmarks/results/decision_truth.json`` with the
   git commit, the space and the budget; reused while those match (``--fresh-truth`` recomputes).
2. **The demo search itself**, ``--runs`` times, as ``make demo`` runs it (its scheduler, its seeds, its
   grid) except for the streams: run ``r`` seeds the sampler with ``r`` and the models with
   ``1000 * (r + 1)``. Per run: the configuration it ranks first, whether that configuration's
   ground-truth test mean is within 0.01 of the ground truth's best, the regret, whether the
   ground truth's best configuration was stopped early, and the compute (seed-epochs and wall
   time) against the ground truth's.

Targets: the ranked-first configuration is within 0.01 of the ground-truth best in at least 4 of 5
runs, and the eventual best is never stopped early.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import RESULTS, write_results
from ucc_tune.provenance import git_commit
from ucc_tune.schema import TRIALS_FILE

REPO = Path(__file__).resolve().parents[1]
SPACE = "alpha_sweep"
TRUTH_FILE = RESULTS / "decision_truth.json"
TRUTH_SEED = 100
WITHIN = 0.01


def demo_space() -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """The demo space's grid and the constants (budget) every trial shares."""
    from ucc_tune.search.spaces import load_space

    space = load_space(SPACE)
    assert space.grid is not None, f"{SPACE} has no GRID"
    constants = space.fn(_FirstOfGrid(space.grid)) or {}
    return space.grid, constants


class _FirstOfGrid:
    """A stand-in Optuna trial that answers each suggestion with the grid's first value."""

    def __init__(self, grid: dict[str, list[Any]]):
        self.grid = grid

    def __getattr__(self, name: str) -> Any:
        return lambda key, *args, **kwargs: self.grid[key][0]


def train_one(values: dict[str, Any]) -> dict[str, Any]:
    """One seed of one configuration to the full budget, in this process; its final scores."""
    from ucc_tune.config import Config
    from ucc_tune.train import FeatureCollapseError, LocalSession, NonFiniteLossError, train

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        try:
            final = train(Config.from_dict(values), LocalSession(Path(out)))
        except (FeatureCollapseError, NonFiniteLossError) as err:
            return {**values, "failed": str(err)[:200], "wall_s": time.perf_counter() - start}
    keep = ("cluster_acc", "test_kmeans_acc", "test_spectral_acc", "epochs_done")
    return {**values, **{k: final.get(k) for k in keep}, "wall_s": time.perf_counter() - start}


def ground_truth(seeds: int, fresh: bool) -> dict[str, Any]:
    grid, constants = demo_space()
    key = {"space": SPACE, "grid": grid, "constants": constants, "seeds": seeds}
    if TRUTH_FILE.exists() and not fresh:
        cached = json.loads(TRUTH_FILE.read_text())
        if cached.get("key") == key:
            print(f"ground truth from {TRUTH_FILE} (git commit {cached['git_commit']})")
            return dict(cached)
    ((name, values),) = grid.items()  # the demo searches one parameter
    jobs = [
        {**constants, name: v, "seeds": 1, "seed": TRUTH_SEED + s, "num_threads": 1}
        for v in values for s in range(seeds)
    ]  # fmt: skip
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(train_one, jobs))
    wall = time.perf_counter() - start
    per_config = []
    for v in values:
        mine = [r for r in runs if r[name] == v]
        test = [r["test_kmeans_acc"] for r in mine if not r.get("failed")]
        per_config.append({
            name: v, "test_mean": statistics.fmean(test) if test else math.nan,
            "test_min": min(test, default=math.nan), "test_max": max(test, default=math.nan),
            "seeds_ok": len(test), "seeds_failed": len(mine) - len(test),
        })  # fmt: skip
    done = [c for c in per_config if c["seeds_ok"]]
    best = max(done, key=lambda c: c["test_mean"])
    epochs = sum(int(r.get("epochs_done") or 0) for r in runs)
    truth = {
        "key": key, "git_commit": git_commit() or "unknown", "parameter": name, "configs": per_config,
        "best": best[name], "best_test_mean": best["test_mean"], "seed_epochs": epochs, "wall_s": wall,
        "runs": runs,
    }  # fmt: skip
    TRUTH_FILE.write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def demo_run(r: int, folder: Path) -> dict[str, Any]:
    """``make demo``'s search with sampler seed ``r`` and model seeds from ``1000 * (r + 1)``."""
    name = f"decision-{r}"
    command = [sys.executable, "-m", "ucc_tune.search", "--space", SPACE, "--seed", str(r)]
    command += ["--set", f"seed={1000 * (r + 1)}", "--storage-path", str(folder), "--name", name]
    start = time.perf_counter()
    log = folder / f"{name}.log"
    with log.open("w") as out:
        code = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"demo run {r} exited {code}; see {log}:\n{log.read_text()[-2000:]}")
    table = pd.read_parquet(folder / name / TRIALS_FILE)
    verdict = [line[2:] for line in log.read_text().splitlines() if line.startswith("- ")]
    return {"table": table, "wall_s": wall, "verdict": verdict}


def judge(run: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    name, table = truth["parameter"], run["table"]
    means = {c[name]: c["test_mean"] for c in truth["configs"]}
    ranked = table[table["rank"].notna()].sort_values("rank")
    first = float(ranked[name].iloc[0]) if len(ranked) else None
    regret = truth["best_test_mean"] - means[first] if first is not None else math.nan
    best_row = table[table[name] == truth["best"]]
    epochs = table["epochs_run"].fillna(0).astype(int) * table["n_seeds"].fillna(1).astype(int)
    return {
        "ranked_first": first, "within": bool(regret <= WITHIN), "regret": regret,
        "truth_best_status": str(best_row["status"].iloc[0]) if len(best_row) else "missing",
        "statuses": {str(k): str(v) for k, v in zip(table[name], table["status"], strict=True)},
        "ranked": [float(v) for v in ranked[name]],
        "seed_epochs": int(epochs.sum()), "wall_s": run["wall_s"], "verdict": run["verdict"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decision", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="demo searches to run")
    p.add_argument("--truth-seeds", type=int, default=4, help="seeds per configuration of the ground truth")
    p.add_argument("--fresh-truth", action="store_true", help="recompute the cached ground truth")
    args = p.parse_args(argv)
    truth = ground_truth(args.truth_seeds, args.fresh_truth)
    runs = []
    with tempfile.TemporaryDirectory(prefix="decision-") as folder:
        for r in range(args.runs):
            runs.append(judge(demo_run(r, Path(folder)), truth))
            print(json.dumps(runs[-1]), flush=True)
    walls = [r["wall_s"] for r in runs]
    figures = {
        "space": SPACE, "budget": truth["key"]["constants"], "ground_truth": {
            k: truth[k] for k in ("parameter", "configs", "best", "best_test_mean", "seed_epochs", "wall_s",
                                  "git_commit")
        },
        "runs": runs,
        "within_0.01": sum(r["within"] for r in runs), "of_runs": len(runs),
        "truth_best_stopped_early": sum(r["truth_best_status"] == "STOPPED" for r in runs),
        "median_demo_wall_s": statistics.median(walls) if walls else None,
        "median_seed_epochs_vs_truth": (
            statistics.median(r["seed_epochs"] for r in runs) / truth["seed_epochs"] if runs else None
        ),
    }  # fmt: skip
    write_results("decision", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
