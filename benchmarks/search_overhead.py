"""Ray's overhead per trial: a search of N short trials at concurrency 2 against the same trials
run one after another by ``train()`` in this process.

Run: ``.venv/bin/python -m benchmarks.search_overhead [--trials 8 --steps 40]``.
Writes ``benchmarks/results/search_overhead.json``. Each trial uses one thread in both cases, so
with 2 trials at once on 2 cores the ideal search wall time is half the summed training time.
The trials are of equal length (every ``alpha`` below 1 runs the decoder), so that no core idles
at the end waiting for a long trial, which would count as overhead.

- ``overhead_per_trial_s``: ``(2 * search wall - sum of in-trial loop times) / N``
  process-seconds per trial: everything that is not the training loop (the search's start and
  end, actor start, imports, data loading, model set-up, reporting, scheduling gaps). The loop
  times are the trials' own clocks inside the search, so that two trials slowing each other down
  on shared cores is not counted; ``contention_factor`` is in-search over direct loop time and
  ``overhead_per_trial_vs_direct_s`` counts the contention too.
- ``setup_in_trial_s``: per trial, the seconds between the trial function's start and its loop's
  start (Tune's ``time_total_s`` minus our ``time_s``), and whether the trial ran in a process
  that an earlier trial had used (Tune's ``reuse_actors``).
Cluster start-up (``ray.init``) is reported on its own.
Target: in-process trial overhead below 10% of a 1-minute trial. With
``--workers-per-trial 1`` every trial is a Ray Train ``TorchTrainer`` run of one worker instead
(results in ``search_overhead_ray_train.json``): its overhead is documented, not targeted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from ucc_tune.config import Config
from ucc_tune.train import LocalSession, train


def space_file(folder: Path, alphas: list[float], epochs: int, steps: int) -> Path:
    path = folder / "overhead_space.py"
    path.write_text(
        f"GRID = {{'alpha': {alphas!r}}}\n\n"
        "def space(trial):\n"
        f"    trial.suggest_categorical('alpha', {alphas!r})\n"
        f"    return {{'epochs': {epochs}, 'steps_per_epoch': {steps}}}\n"
    )
    return path


def trial_timings(experiment: Path) -> list[dict[str, Any]]:
    """From each trial's ``result.json``: loop time, set-up inside the trial, process reuse."""
    rows = []
    for result in experiment.glob("*/result.json"):
        reports = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        last = reports[-1]
        start = last["timestamp"] - last["time_total_s"]
        rows.append({"start": start, "pid": last["pid"], "loop_s": last["time_s"],
                     "in_trial_s": last["time_total_s"], "alpha": last["config"]["alpha"]})  # fmt: skip
    rows.sort(key=lambda row: row["start"])
    seen: set[int] = set()
    for row in rows:
        row["reused_process"] = row["pid"] in seen
        seen.add(row["pid"])
        row["setup_in_trial_s"] = round(row.pop("in_trial_s") - row["loop_s"], 2)
        del row["start"], row["pid"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--workers-per-trial", type=int, default=0, help="1: Ray Train trials")
    args = parser.parse_args(argv)
    alphas = [round(0.1 + 0.8 * i / max(1, args.trials - 1), 4) for i in range(args.trials)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        direct = []
        for alpha in alphas:
            config = Config(alpha=alpha, epochs=args.epochs, steps_per_epoch=args.steps, num_threads=1)
            start = time.perf_counter()
            train(config, LocalSession(folder / f"direct-{alpha}"))
            direct.append(time.perf_counter() - start)
        import ray

        from ucc_tune import ray_adapter as tune
        from ucc_tune.search import command as search

        start = time.perf_counter()
        # with the dashboard: Ray Train V2 cleans up placement groups through the State API
        tune.start_ray(num_cpus=2, dashboard=args.workers_per_trial > 0)
        startup = time.perf_counter() - start
        space = space_file(folder, alphas, args.epochs, args.steps)
        start = time.perf_counter()
        code = search.main([
            "--space", str(space), "--num-samples", str(args.trials), "--max-concurrent", "2",
            "--scheduler", "fifo", "--storage-path", str(folder / "exp"), "--name", "overhead",
            "--workers-per-trial", str(args.workers_per_trial),
        ])  # fmt: skip
        wall = time.perf_counter() - start
        ray.shutdown()
        assert code == 0, "the search failed"
        timings = trial_timings(folder / "exp" / "overhead")
    inside = [t["loop_s"] for t in timings]
    total = sum(direct)
    per_trial = (2 * wall - total) / args.trials
    per_trial_inside = (2 * wall - sum(inside)) / args.trials
    fresh = [t["setup_in_trial_s"] for t in timings if not t["reused_process"]]
    reused = [t["setup_in_trial_s"] for t in timings if t["reused_process"]]
    figures: dict[str, Any] = {
        "trials": args.trials,
        "workers_per_trial": args.workers_per_trial,
        "trial": {"epochs": args.epochs, "steps_per_epoch": args.steps, "alphas": alphas, "threads": 1},
        "direct_seconds_each": [round(d, 2) for d in direct],
        "direct_sum_s": round(total, 2),
        "search_wall_s_concurrency_2": round(wall, 2),
        "ray_init_s": round(startup, 2),
        "train_loop_seconds_inside_search": [round(t, 2) for t in inside],
        "contention_factor": round(sum(inside) / total, 3),
        "trials_in_order_of_start": [t | {"loop_s": round(t["loop_s"], 2)} for t in timings],
        "mean_setup_in_trial_s": {
            "new_process": round(sum(fresh) / len(fresh), 2) if fresh else None,
            "reused_process": round(sum(reused) / len(reused), 2) if reused else None,
        },
        "overhead_per_trial_s": round(per_trial_inside, 2),
        "overhead_fraction_of_1_minute_trial": round(per_trial_inside / 60, 4),
        "overhead_per_trial_vs_direct_s": round(per_trial, 2),
    }
    if args.workers_per_trial == 0:
        figures |= {"target_fraction": 0.10, "meets_target": per_trial_inside / 60 < 0.10}
    write_results("search_overhead" if args.workers_per_trial == 0 else "search_overhead_ray_train", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
