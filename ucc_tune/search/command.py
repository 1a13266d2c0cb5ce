"""``python -m ucc_tune.search --space NAME``: a Ray Tune + Optuna search over UCC configs.

The command resolves its flags into one frozen ``SearchPlan`` before Ray starts (space,
objectives, ``--set`` values, resources, storage: bad input exits 2 with the reason), hands it to
the Ray adapter, and at the end writes ``trials.parquet`` from the trials' own files. The
experiment folder is Ray's layout plus ``search.json`` (the plan and what ran, written once),
``optuna.db`` (the Optuna study, for ``optuna-dashboard``) and one folder per trial with
``run.json``, ``metrics.jsonl`` and ``artifacts/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ucc_tune.bounds import MAX_TRIALS, SEED_LIMIT, BoundsError, check_number
from ucc_tune.config import Config, ConfigError
from ucc_tune.config.flags import (
    add_config_arguments,
    config_values,
    defaults_from_dataset,
    parse_assignments,
)
from ucc_tune.preflight import PreflightError, check_runs
from ucc_tune.schema import (
    METRICS_FILE,
    OBJECTIVES,
    RUN_FILE,
    SEARCH_FILE,
    SEEDS_DIR,
    TRIALS_FILE,
    json_object,
    metric_direction,
    read_history,
    seed_name,
    trial_row,
    trials_frame,
)
from ucc_tune.search.lock import LOCK_FILE, ExperimentLock, ExperimentLocked
from ucc_tune.search.plan import (
    REDUCTION_FACTOR,
    ResourceError,
    Resources,
    SearchPlan,
    changed_command,
    changed_defaults,
    fetch_driver_files,
    grace_period,
    publish,
)
from ucc_tune.search.prefill import WarmStartError, add_prefill_arguments, prefilled_plan
from ucc_tune.search.progress import parse_duration
from ucc_tune.search.ranking import TOP, on_pareto_front, rank_trials
from ucc_tune.search.spaces import Space, SpaceError, load_space, probe
from ucc_tune.search.summary import print_summary
from ucc_tune.search.trackers import TrackerError, add_tracker_argument, check_trackers
from ucc_tune.storage import Storage, local_mirror, redact, redact_text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ucc_tune.search",
        description="Search UCC hyperparameters with Ray Tune + Optuna (TPE; NSGA-II for several metrics).",
    )
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
    add_config_arguments(p)
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
    add_prefill_arguments(p)
    add_tracker_argument(p)
    p.add_argument(
        "--smoke-test", action="store_true", help="tiny budget: space smoke, 2 trials, 2 short epochs"
    )
    return p


MAX_NAME = 200  # characters of an experiment name: a folder name, with room for Ray's suffixes


class UsageError(ValueError):
    """Bad command-line input: reported with exit code 2 before Ray starts."""


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


def _check_numbers(args: argparse.Namespace) -> None:
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


def resolve_plan(args: argparse.Namespace) -> SearchPlan:
    """Validate everything and decide the plan (raises UsageError, ConfigError, WarmStartError,
    TrackerError); starts nothing."""
    _check_numbers(args)
    try:
        resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.workers_per_trial)
    except ValueError as err:
        raise UsageError(str(err)) from None
    metrics, modes = parse_objectives(args.metric, args.mode)
    space, searched, configs, fixed = _resolve_space(args, resources)
    config = configs[0]
    grace = args.grace_period or grace_period(config.epochs)
    # a grid is the question itself: every point runs its whole budget, whose near-ties an early
    # rung would cut on noise (ASHA stopped the demo grid's best alpha at its rung in one of two runs)
    scheduler = args.scheduler or ("fifo" if space.grid else "asha")
    if scheduler == "asha" and grace > config.epochs:
        raise UsageError(f"--grace-period {grace}: must be <= the trials' {config.epochs} epochs")
    if scheduler == "asha" and len(metrics) > 1:
        print("note: several metrics make a multi-objective search; ASHA needs one metric, so FIFO runs")
        scheduler = "fifo"
    name, storage, experiment = _resolve_experiment(args, space)
    plan = SearchPlan(
        name=name,
        storage=storage.uri,
        experiment_uri=experiment.uri,
        experiment_dir=local_mirror(experiment),
        space=space,
        searched=tuple(searched),
        fixed=fixed,
        metrics=metrics,
        modes=modes,
        num_samples=args.num_samples or space.num_samples,
        scheduler=scheduler,
        epochs=config.epochs,
        keep_checkpoints=config.keep_checkpoints,
        resources=resources,
        max_concurrent=args.max_concurrent,
        grace_period=grace,
        reduction_factor=args.reduction_factor,
        max_failures=args.max_failures,
        seed=args.seed,
        resume=args.resume,
        address=args.address,
        num_cpus=args.num_cpus,
        dashboard=args.dashboard,
        dashboard_host=args.dashboard_host,
        time_budget_s=_time_budget(args),
        log_to=check_trackers(args.log_to),  # raises TrackerError
    )
    return prefilled_plan(plan, args.enqueue, args.warm_start)  # raises WarmStartError


def _time_budget(args: argparse.Namespace) -> float | None:
    if args.resume and args.time_budget is not None:
        raise UsageError(
            f"--time-budget {args.time_budget} with --resume: a resumed search keeps its own budget"
        )
    try:
        return None if args.time_budget is None else parse_duration(args.time_budget)
    except ValueError as err:
        raise UsageError(f"--time-budget {err}") from None


def _resolve_space(
    args: argparse.Namespace, resources: Resources
) -> tuple[Space, list[str], list[Config], dict[str, Any]]:
    """The space, its searched names and probe Configs, and the values every trial shares: the
    resources' (torch threads follow the CPUs unless ``--set`` says otherwise; DDP from the flag
    alone), ``--config``/``--set``, and the dataset's defaults for what neither names."""
    try:
        space = load_space("smoke" if args.smoke_test else args.space)
    except SpaceError as err:
        raise UsageError(str(err)) from None
    fixed = {"num_threads": resources.threads} | config_values(args) | {"num_workers": resources.workers}
    if args.seeds is not None:
        fixed["seeds"] = args.seeds
    if resources.gpus > 0 and fixed.get("device") == "cpu":
        raise UsageError(f"--gpus-per-trial {resources.gpus:g} with device=cpu: the GPUs would sit idle")
    try:
        searched, configs, problems = probe(space, fixed, set(parse_assignments(args.set)))
    except SpaceError as err:
        raise UsageError(str(err)) from None
    if problems:
        print(
            f"note: {len(problems)} of the space's probe draws make no valid Config (e.g. {problems[0]}); "
            "such trials will be ERROR rows"
        )
    if added := defaults_from_dataset(fixed, set(searched)):
        print(f"defaults of dataset {fixed['dataset']}: {added} (set them to override)")
        fixed |= added
    try:
        check_runs(configs)  # the data's facts, once, before Ray
    except PreflightError as err:
        raise UsageError(str(err)) from None
    if any(c.patience > 0 for c in configs):
        raise UsageError(
            "patience > 0 would end trials early on their own; in a search the scheduler "
            "decides (--scheduler asha): leave patience at 0"
        )
    return space, searched, configs, fixed


def _resolve_experiment(args: argparse.Namespace, space: Space) -> tuple[str, Storage, Storage]:
    """The experiment's name, the storage (opened once: a URI may cost a request) and the
    experiment's place in it, which must be usable."""
    if args.resume and not args.name:
        raise UsageError("--resume needs --name (and the same --storage-path) of the experiment to continue")
    name = args.name or f"{space.label}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if not name or "/" in name or name in (".", "..") or len(name) > MAX_NAME or not name.isprintable():
        raise UsageError(
            f"--name {name[:40]!r}: give a plain folder name (no '/', at most {MAX_NAME} characters)"
        )
    try:
        storage = Storage(args.storage_path)
        experiment = storage.child(name)
    except ValueError as err:
        raise UsageError(f"--storage-path: {err}") from None
    if experiment.is_local:
        _check_writable(Path(args.storage_path).expanduser())
    return name, storage, experiment


def _check_writable(folder: Path) -> None:
    """``--storage-path`` is a folder (or can become one) that this user can write into: a file
    is made and removed there (``os.access`` says yes to root even on ``/proc``)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--storage-path {folder}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryDirectory(prefix=".ucc-tune-probe-", dir=existing):
            pass
    except OSError as err:
        raise UsageError(f"--storage-path {folder}: {existing} is not writable ({err.strerror})") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = resolve_plan(args)
    except (UsageError, ConfigError, WarmStartError, TrackerError) as err:
        print(f"error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    from ucc_tune import ray_adapter

    where = redact(plan.experiment_uri)  # to show; Ray gets the URI itself
    exists = ray_adapter.experiment_exists(plan.experiment_uri)
    if exists != plan.resume:
        problem = (
            "exists; pass --resume to continue it or use another --name"
            if exists
            else "holds nothing to resume"
        )
        print(f"error: {where} {problem}", file=sys.stderr)
        return 2
    created = not plan.experiment_dir.exists()
    plan.experiment_dir.mkdir(parents=True, exist_ok=True)
    try:
        with ExperimentLock(plan.experiment_dir):
            return _run_locked(plan, args.top, argv)
    except (ExperimentLocked, UsageError) as err:
        print(f"error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    finally:
        if created and {p.name for p in plan.experiment_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(plan.experiment_dir)  # refused before it wrote anything: leave no folder


def _run_locked(plan: SearchPlan, top: int, argv: list[str] | None) -> int:
    """The search, once its experiment is locked: the resume checks, Ray, the trials, the tables."""
    from ucc_tune import ray_adapter

    where = redact(plan.experiment_uri)
    if plan.resume:
        fetch_driver_files(plan)
        if changed := changed_command(plan):
            raise UsageError(
                f"--resume of {where} with another command: {changed}; "
                "resume with the command that started it"
            )
        if changed := changed_defaults(plan.experiment_dir):
            raise UsageError(
                f"{where} was started with other defaults than this version's: {changed}; "
                "its trials would resume under the new ones. Continue it with the version "
                "that started it, or start a new experiment"
            )
    if plan.dashboard_host not in ("127.0.0.1", "localhost"):
        print(f"warning: the dashboard binds to {plan.dashboard_host}, reachable from other machines")
    url = ray_adapter.start_ray(plan.address, plan.num_cpus, plan.dashboard, plan.dashboard_host)
    if url:
        print(f"Ray dashboard: http://{url}")
        print(
            "  token authentication is on: the token is in ~/.ray/auth_token (or $RAY_AUTH_TOKEN_PATH); "
            "send it as the header 'Authorization: Bearer <token>' or the cookie 'ray-authentication-token'"
        )
    try:
        resources = ray_adapter.ray_resources(
            plan.resources, str(plan.fixed.get("device", "auto")), plan.max_concurrent
        )
    except ResourceError as err:
        raise UsageError(str(err)) from None
    if not plan.resume:
        write_search_json(plan, resources, argv)
        publish(plan, SEARCH_FILE)
    print(f"experiment: {where}  ({plan.num_samples} trials, {resources.concurrency} at once)")
    if plan.remote:
        print(f"  local copy of optuna.db, search.json, trials.parquet: {plan.experiment_dir}")
    started = time.monotonic()
    trials = ray_adapter.run_search(plan, resources)
    try:
        table = write_trials_table(plan, trials)
        publish(plan)
    except OSError as err:  # a full disk or storage gone: the trials' own files are still there
        print(
            f"error: cannot write the search's tables to {where} ({err.strerror or err}); the trials' "
            f"files are kept: free space, then `python -m analysis {where}` rebuilds them",
            file=sys.stderr,
        )
        return 1
    print_summary(table, plan, top, time.monotonic() - started)
    return 0


def write_search_json(plan: SearchPlan, resources: Any, argv: list[str] | None) -> None:
    """``search.json``, written once when a search starts: the plan, what Ray was given, the
    resolved config every trial shares, versions, git commit and command line."""
    from ucc_tune.provenance import provenance

    record = {
        **plan.record(),
        "storage": redact(plan.storage),
        "experiment_uri": redact(plan.experiment_uri),
        "ray": asdict(resources),
        "resolved_fixed_config": Config.from_dict(plan.fixed).to_dict(),
        **provenance(argv),
    }
    (plan.experiment_dir / SEARCH_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")


def _whole(value: Any) -> int:
    """A seed count as recorded, 1 when it is not a whole number from 1 to 10,000."""
    return value if isinstance(value, int) and 1 <= value <= 10_000 else 1


def write_trials_table(plan: SearchPlan, trials: list[dict[str, Any]]) -> Any:
    """``trials.parquet`` from each trial's own files (``run.json``, ``metrics.jsonl``) and the
    error Ray recorded; rows by ``ucc_tune.schema.trial_row``."""
    experiment = Storage(plan.experiment_uri)
    rows = []
    for trial in trials:
        folder = experiment.child(trial["folder"])
        info = (json_object(folder.read_text(RUN_FILE)) or {}) if folder.exists(RUN_FILE) else {}
        history = read_history(folder.read_text(METRICS_FILE)) if folder.exists(METRICS_FILE) else []
        recorded = info.get("config")
        config: dict[str, Any] = recorded if isinstance(recorded, dict) else dict(trial["config"] or {})
        trial_id = str(info.get("trial_id") or trial["trial_id"])
        seeds = [
            read_history(folder.read_text(SEEDS_DIR, folder_name, METRICS_FILE))
            for folder_name in (seed_name(k) for k in range(_whole(config.get("seeds"))))
            if folder.exists(SEEDS_DIR, folder_name, METRICS_FILE)
        ]
        rows.append(
            trial_row(
                plan.name, trial_id, redact(folder.uri), config, history, trial["error"], None, seeds or None
            )
        )
    table = rank_trials(trials_frame(rows), plan.metrics[0], plan.modes[0])
    if len(plan.metrics) > 1:
        table["pareto"] = on_pareto_front(table, list(plan.metrics), list(plan.modes))
    table.to_parquet(plan.experiment_dir / TRIALS_FILE, index=False)
    return table
