"""The search command's flags, and the checks that need nothing but the flags themselves.

Bad input is a ``UsageError``: the command reports it with exit code 2 before Ray starts.
"""

from __future__ import annotations

import argparse

from ucc_tune.bounds import MAX_TRIALS, SEED_LIMIT, BoundsError, check_number
from ucc_tune.config.flags import add_config_arguments
from ucc_tune.schema import OBJECTIVES, metric_direction
from ucc_tune.search.plan import REDUCTION_FACTOR
from ucc_tune.search.prefill import add_prefill_arguments
from ucc_tune.search.ranking import TOP
from ucc_tune.search.trackers import add_tracker_argument


class UsageError(ValueError):
    """Bad command-line input: reported with exit code 2 before Ray starts."""


def build_parser() -> argparse.ArgumentParser:
    """Every flag of the search command, by concern."""
    p = argparse.ArgumentParser(
        prog="python -m ucc_tune.search",
        description="Search UCC hyperparameters with Ray Tune + Optuna (TPE; NSGA-II for several metrics).",
    )
    _add_question_flags(p)
    _add_scheduler_flags(p)
    _add_resource_flags(p)
    add_config_arguments(p)
    _add_experiment_flags(p)
    _add_run_flags(p)
    add_prefill_arguments(p)
    add_tracker_argument(p)
    p.add_argument(
        "--smoke-test", action="store_true", help="tiny budget: space smoke, 2 trials, 2 short epochs"
    )
    return p


def _add_question_flags(p: argparse.ArgumentParser) -> None:
    """What is searched and for what: the space, the trials, the objectives."""
    p.add_argument(
        "--space", default="alpha_sweep", help="a named space (ucc_tune.search.spaces.SPACES) or a .py file"
    )
    p.add_argument(
        "--num-samples", type=int, help="trials to run (default: the space's NUM_SAMPLES or grid, else 8)"
    )
    p.add_argument(
        "--metric", default="cluster_acc", help=f"objective(s), comma-separated, from {OBJECTIVES}"
    )
    p.add_argument("--mode", help="max|min per metric, comma-separated (default: each metric's direction)")


def _add_scheduler_flags(p: argparse.ArgumentParser) -> None:
    """How trials are scheduled: ASHA's rungs and how many run at once."""
    p.add_argument(
        "--scheduler",
        choices=("asha", "fifo"),
        help="ASHA stops poor trials early (default: asha; fifo for a space with a GRID)",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        help="epochs every trial runs before ASHA may stop it (default: half the trials' epochs)",
    )
    p.add_argument(
        "--reduction-factor",
        type=int,
        default=REDUCTION_FACTOR,
        help="ASHA keeps 1/this of the trials per rung",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once (default: as many as the cluster's CPUs and GPUs fit)",
    )


def _add_resource_flags(p: argparse.ArgumentParser) -> None:
    """What each trial holds: CPUs, GPUs, DDP workers, restarts."""
    p.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs per trial; per DDP worker with --workers-per-trial",
    )
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="GPUs per trial (fractions share a GPU: 0.25 runs four trials on one); per DDP worker, whole, "
        "with --workers-per-trial",
    )
    p.add_argument(
        "--workers-per-trial", type=int, default=0, help="Ray Train DDP workers per trial; 0 = in-process"
    )
    p.add_argument(
        "--max-failures", type=int, default=1, help="restarts of a crashed trial from its checkpoint"
    )


def _add_experiment_flags(p: argparse.ArgumentParser) -> None:
    """Where the experiment lives and which cluster runs it."""
    p.add_argument(
        "--storage-path",
        default="experiments",
        help="where experiments live: a folder (shared, e.g. NFS, on a multi-node cluster) or a "
        "pyarrow.fs URI such as s3://bucket/path (the driver keeps a local copy of optuna.db)",
    )
    p.add_argument("--name", help="experiment name (default <space>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the experiment --storage-path/--name")
    p.add_argument(
        "--address", help="join a running cluster (e.g. auto, or host:6379 from `ray start --head`)"
    )
    p.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: all)")
    p.add_argument("--dashboard", action="store_true", help="start the Ray dashboard (token auth stays on)")
    p.add_argument(
        "--dashboard-host", default="127.0.0.1", help="dashboard bind address (0.0.0.0 exposes it)"
    )


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """The sampler's seed, seeds per configuration, the time budget, what is shown."""
    p.add_argument("--seed", type=int, default=0, help="seed of the Optuna sampler")
    p.add_argument(
        "--seeds",
        type=int,
        help="seeds each configuration trains on; trials report, and are ranked by, their mean "
        "(the same as --set seeds=N; default: the space's, else 1)",
    )
    p.add_argument(
        "--time-budget",
        metavar="DURATION",
        help="no trial starts after this (2h, 90m, 3600s); running trials end after their current epoch",
    )
    p.add_argument("--top", type=int, default=TOP, help="finished configurations shown with test scores")


def parse_objectives(metric: str, mode: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    metrics = tuple(m.strip() for m in metric.split(",") if m.strip())
    bad = [m for m in metrics if m not in OBJECTIVES]
    if len(set(metrics)) < len(metrics):
        raise UsageError(f"--metric {metric!r}: names a metric twice; give each objective once")
    if not metrics or bad:
        raise UsageError(
            f"--metric {metric!r}: unknown {', '.join(bad) or 'metric'}; choose from {', '.join(OBJECTIVES)}"
        )
    modes = (
        tuple(metric_direction(m) for m in metrics)
        if mode is None
        else tuple(m.strip() for m in mode.split(","))
    )
    if len(modes) != len(metrics) or any(m not in ("max", "min") for m in modes):
        raise UsageError(f"--mode {mode!r}: give max or min for each of the {len(metrics)} metric(s)")
    return metrics, modes


def check_numbers(args: argparse.Namespace) -> None:
    numbers = [
        ("--num-samples", args.num_samples, 1, MAX_TRIALS),
        ("--grace-period", args.grace_period, 1, None),
        ("--reduction-factor", args.reduction_factor, 2, None),
        ("--max-concurrent", args.max_concurrent, 1, None),
        ("--max-failures", args.max_failures, -1, None),
        ("--num-cpus", args.num_cpus, 1, None),
        ("--seeds", args.seeds, 1, None),
        ("--top", args.top, 1, None),
        ("--seed", args.seed, 0, SEED_LIMIT - 1),
    ]
    for flag, value, low, high in numbers:
        if value is not None:
            try:
                check_number(flag, value, low, high, whole=True)
            except BoundsError as err:
                raise UsageError(str(err)) from None
