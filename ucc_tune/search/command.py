"""``python -m ucc_tune.search --space NAME``: a Ray Tune + Optuna search over UCC configs.

The command resolves its flags into one frozen ``SearchPlan`` before Ray starts (space,
objectives, ``--set`` values, resources, storage: bad input exits 2 with the reason), hands it to
the Ray adapter, and at the end writes ``trials.parquet`` from the trials' own files. The
experiment folder is Ray's layout plus ``search.json`` (the plan and what ran, written once),
``optuna.db`` (the Optuna study, for ``optuna-dashboard``) and one folder per trial with
``run.json``, ``metrics.jsonl`` and ``artifacts/``.
"""

from __future__ import annotations

import shutil
import sys
import time

from ucc_tune.config import ConfigError
from ucc_tune.resources import ResourceError
from ucc_tune.schema import SEARCH_FILE
from ucc_tune.search.flags import UsageError, build_parser
from ucc_tune.search.lock import LOCK_FILE, ExperimentLock, ExperimentLocked
from ucc_tune.search.plan import (
    SearchPlan,
    changed_command,
    changed_defaults,
    fetch_driver_files,
    publish,
)
from ucc_tune.search.prefill import WarmStartError
from ucc_tune.search.resolve import resolve_plan
from ucc_tune.search.summary import print_summary
from ucc_tune.search.tables import write_search_json, write_trials_table
from ucc_tune.search.trackers import TrackerError
from ucc_tune.storage import redact, redact_text

__all__ = ["SearchPlan", "UsageError", "build_parser", "main", "resolve_plan"]


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
