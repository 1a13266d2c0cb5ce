"""The search plan resolved from the command's flags: the space probed, the values every trial
shares, the objectives, the scheduler, the resources and the experiment's place, every check
done before Ray starts (``UsageError``, ``ConfigError``, ``WarmStartError``, ``TrackerError``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from ucc_tune.config import Config
from ucc_tune.config.flags import config_values, defaults_from_dataset, parse_assignments
from ucc_tune.preflight import PreflightError, check_runs
from ucc_tune.resources import Resources
from ucc_tune.search.flags import UsageError, check_numbers, parse_objectives
from ucc_tune.search.plan import SearchPlan, grace_period
from ucc_tune.search.prefill import prefilled_plan
from ucc_tune.search.progress import parse_duration
from ucc_tune.search.spaces import Space, SpaceError, load_space, probe
from ucc_tune.search.trackers import check_trackers
from ucc_tune.storage import Storage, local_mirror

MAX_NAME = 200  # characters of an experiment name: a folder name, with room for Ray's suffixes


def resolve_plan(args: argparse.Namespace) -> SearchPlan:
    """Validate everything and decide the plan (raises UsageError, ConfigError, WarmStartError,
    TrackerError); starts nothing."""
    check_numbers(args)
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
