"""Ray's overhead per trial: a search of N short trials at concurrency 2 against the same trials
run one after another by ``train()`` in this process.

Run: ``.venv/bin/python -m benchmarks.search_overhead [--trials 4 --steps 40]``.
Writes ``benchmarks/results/search_overhead.json``. Each trial uses one thread in both cases, so
with 2 trials at once on 2 cores the ideal search wall time is half the summed training time.
Two trials side by side also slow each other down (shared caches, and the 2 "cores" may be
hyperthreads), so the overhead is measured against the training loops' own clocks inside the
search: ``(2 * search wall - sum of in-trial loop times) / N`` process-seconds per trial (actor
start, imports, data loading, reporting, scheduling gaps), also as a fraction of a one-minute
trial. Against the direct runs instead (``overhead_per_trial_vs_direct_s``) it also counts the
contention; ``contention_factor`` is in-search loop time over direct loop time. Cluster start-up
is reported on its own.
Target (issue 7): in-process trial overhead below 10% of a 1-minute trial.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    alphas = [round(0.25 + 0.75 * i / max(1, args.trials - 1), 4) for i in range(args.trials)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        direct = []
        for alpha in alphas:
            config = Config(alpha=alpha, epochs=args.epochs, steps_per_epoch=args.steps, num_threads=1)
            start = time.perf_counter()
            train(config, LocalSession(folder / f"direct-{alpha}"))
            direct.append(time.perf_counter() - start)
        import ray

        from ucc_tune import search

        start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
        startup = time.perf_counter() - start
        space = space_file(folder, alphas, args.epochs, args.steps)
        start = time.perf_counter()
        code = search.main([
            "--space", str(space), "--num-samples", str(args.trials), "--max-concurrent", "2",
            "--scheduler", "fifo", "--storage-path", str(folder / "exp"), "--name", "overhead",
        ])  # fmt: skip
        wall = time.perf_counter() - start
        ray.shutdown()
        assert code == 0, "the search failed"
        inside = pd.read_parquet(folder / "exp" / "overhead" / "trials.parquet")["last_time_s"].tolist()
    total = sum(direct)
    per_trial = (2 * wall - total) / args.trials
    per_trial_inside = (2 * wall - sum(inside)) / args.trials
    figures: dict[str, Any] = {
        "trials": args.trials,
        "trial": {"epochs": args.epochs, "steps_per_epoch": args.steps, "alphas": alphas, "threads": 1},
        "direct_seconds_each": [round(d, 2) for d in direct],
        "direct_sum_s": round(total, 2),
        "search_wall_s_concurrency_2": round(wall, 2),
        "ray_init_s": round(startup, 2),
        "train_loop_seconds_inside_search": [round(t, 2) for t in inside],
        "contention_factor": round(sum(inside) / total, 3),
        "overhead_per_trial_s": round(per_trial_inside, 2),
        "overhead_fraction_of_1_minute_trial": round(per_trial_inside / 60, 4),
        "overhead_per_trial_vs_direct_s": round(per_trial, 2),
        "target_fraction": 0.10,
    }
    write_results("search_overhead", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
