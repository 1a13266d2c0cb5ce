"""``python -m ucc_tune.search --space NAME``: a Ray Tune + Optuna search over UCC configs.

Everything is validated before Ray starts (space, metrics, modes, ``--set`` values: exit code 2
with the reason). The experiment folder is Ray's own layout plus ``search.json`` (what ran),
``optuna.db`` (the Optuna study, for ``optuna-dashboard sqlite:///.../optuna.db``) and, at the
end, ``trials.parquet`` (one row per trial) for ``python -m analysis``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

from ucc_tune.cli import add_config_arguments, config_from_args
from ucc_tune.config import Config, ConfigError, field_names, parse_assignments
from ucc_tune.storage import Storage, local_mirror, redact

# metrics a search may optimise: the per-epoch ones that have a direction
OBJECTIVES = ("cluster_acc", "cluster_nmi", "cluster_ari", "js_min", "js_mean", "val_ucc_acc", "val_loss")
SPACE_DEFAULT_SAMPLES = {"alpha_sweep": 9, "smoke": 2}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ucc_tune.search",
        description="Search UCC hyperparameters with Ray Tune + Optuna (TPE; NSGA-II for several metrics).",
    )
    p.add_argument(
        "--space", default="alpha_sweep", help="a named space (search_spaces.SPACES) or a .py file"
    )
    p.add_argument("--num-samples", type=int, help="trials to run (default: the space's budget, else 8)")
    p.add_argument(
        "--metric", default="cluster_acc", help=f"objective(s), comma-separated, from {OBJECTIVES}"
    )
    p.add_argument(
        "--mode", default=None, help="max|min per metric, comma-separated (default: max; min for val_loss)"
    )
    p.add_argument(
        "--scheduler", choices=("asha", "fifo"), default="asha", help="ASHA stops poor trials early"
    )
    p.add_argument(
        "--grace-period", type=int, default=2, help="epochs every trial runs before ASHA may stop it"
    )
    p.add_argument("--reduction-factor", type=int, default=3, help="ASHA keeps 1/this of the trials per rung")
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: CPUs / cpus-per-trial)")
    p.add_argument(
        "--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (per worker with workers)"
    )
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions share a GPU")
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
        "--smoke-test", action="store_true", help="tiny budget: space smoke, 2 trials, 2 short epochs"
    )
    return p


class UsageError(ValueError):
    """Bad command-line input: reported with exit code 2 before Ray starts."""


def parse_objectives(metric: str, mode: str | None) -> tuple[list[str], list[str]]:
    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    bad = [m for m in metrics if m not in OBJECTIVES]
    if not metrics or bad:
        raise UsageError(
            f"--metric {metric!r}: unknown {', '.join(bad) or 'metric'}; choose from {', '.join(OBJECTIVES)}"
        )
    if mode is None:
        modes = ["min" if m == "val_loss" else "max" for m in metrics]
    else:
        modes = [m.strip() for m in mode.split(",")]
    if len(modes) != len(metrics) or any(m not in ("max", "min") for m in modes):
        raise UsageError(f"--mode {mode!r}: give max or min for each of the {len(metrics)} metric(s)")
    return metrics, modes


def resolve_plan(args: argparse.Namespace) -> Any:
    """Validate everything and decide the plan; raises UsageError/ConfigError, starts nothing."""
    from search_spaces import SPACES, get_space

    if args.smoke_test:
        args.space, args.num_samples = "smoke", args.num_samples or 2
    try:
        space = get_space(args.space)
    except ValueError as err:
        raise UsageError(str(err)) from None
    metrics, modes = parse_objectives(args.metric, args.mode)
    fixed = config_from_args(args)
    overrides = {k: v for k, v in fixed.to_dict().items() if v != getattr(Config(), k)}
    overrides["num_workers"] = args.workers_per_trial
    if args.workers_per_trial == 0:
        overrides["num_threads"] = max(1, math.floor(args.cpus_per_trial))
    args.searched, epochs = _check_space(space, overrides, set(parse_assignments(args.set)))
    if args.scheduler == "asha" and len(metrics) > 1:
        print("note: several metrics make a multi-objective search; ASHA needs one metric, so FIFO runs")
        args.scheduler = "fifo"
    name = args.name or f"{Path(args.space).stem}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if args.resume and not args.name:
        raise UsageError("--resume needs --name (and the same --storage-path) of the experiment to continue")
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"--name {name!r}: give a plain folder name (no '/')")
    try:
        storage = Storage(args.storage_path)
    except ValueError as err:
        raise UsageError(f"--storage-path: {err}") from None
    from ucc_tune.tune import SearchPlan

    experiment = storage.child(name)
    return SearchPlan(
        experiment_dir=local_mirror(experiment),
        storage=storage.uri,
        experiment_uri=experiment.uri,
        space=args.space if args.space in SPACES else str(Path(args.space).resolve()),
        fixed=overrides,
        metrics=metrics,
        modes=modes,
        num_samples=args.num_samples or SPACE_DEFAULT_SAMPLES.get(args.space, 8),
        scheduler=args.scheduler,
        max_concurrent=args.max_concurrent or 0,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        workers_per_trial=args.workers_per_trial,
        max_failures=args.max_failures,
        seed=args.seed,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        epochs=epochs,
    )


def _check_space(space: Any, fixed: dict[str, Any], user_set: set[str]) -> tuple[list[str], int]:
    """Ask the space for one trial from a throwaway study: names and values must make a Config."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    constants = space(trial) or {}
    clash = sorted(user_set & set(trial.params))
    if clash:
        raise UsageError(
            f"--set {', '.join(clash)}: the space searches it; drop the --set or use another space"
        )
    values = {**constants, **fixed, **trial.params}
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise UsageError(f"the space sets unknown key(s) {', '.join(unknown)}; use Config field names")
    config = Config.from_dict(values)
    return sorted(trial.params), config.epochs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = resolve_plan(args)
    except (UsageError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from ucc_tune import tune

    where = redact(plan.experiment_uri)  # to show; Ray gets the URI itself
    exists = tune.experiment_exists(plan.experiment_uri)
    if exists and not args.resume:
        print(f"error: {where} exists; pass --resume to continue it or use another --name", file=sys.stderr)
        return 2
    if args.resume and not exists:
        print(f"error: nothing to resume at {where}", file=sys.stderr)
        return 2
    tune.start_ray(args.address, args.num_cpus, args.dashboard, args.dashboard_host)
    if not plan.max_concurrent:
        plan.max_concurrent = tune.default_concurrency(plan)
    plan.experiment_dir.mkdir(parents=True, exist_ok=True)
    if args.resume and plan.remote:
        tune.fetch_driver_files(plan)
    if not args.resume:
        write_search_json(plan, args, argv)
        tune.publish(plan, "search.json")
    print(f"experiment: {where}  ({plan.num_samples} trials, {plan.max_concurrent} at once)")
    if plan.remote:
        print(f"  local copy of optuna.db, search.json, trials.parquet: {plan.experiment_dir}")
    grid = tune.run_search(plan, restore=args.resume)
    table = tune.write_trials_table(grid, plan)
    record_searched(plan, table.attrs["searched"])
    tune.publish(plan)
    print_summary(table, plan)
    return 0


def write_search_json(plan: Any, args: argparse.Namespace, argv: list[str] | None) -> None:
    from ucc_tune.provenance import provenance

    record = {
        "space": args.space,
        "searched": args.searched,
        "arguments": {k: v for k, v in vars(args).items() if k != "config"}
        | {"config": str(args.config), "storage_path": redact(args.storage_path)},
        "metrics": plan.metrics,
        "modes": plan.modes,
        "num_samples": plan.num_samples,
        "scheduler": plan.scheduler,
        "fixed": plan.fixed,
        "resolved_fixed_config": Config.from_dict(plan.fixed).to_dict(),
        **provenance(argv),
    }
    (plan.experiment_dir / "search.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def record_searched(plan: Any, names: list[str]) -> None:
    """Store the parameter names the study actually searched (conditional ones included)."""
    path = plan.experiment_dir / "search.json"
    if path.is_file():
        record = json.loads(path.read_text())
        record["searched"] = sorted(set(record.get("searched", [])) | set(names))
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def print_summary(table: Any, plan: Any) -> None:
    metric, mode = plan.metrics[0], plan.modes[0]
    counts = table["status"].value_counts().to_dict()
    print(f"\ntrials: {len(table)} ({', '.join(f'{v} {k}' for k, v in counts.items())})")
    best_col = f"best_{metric}"
    if best_col in table and table[best_col].notna().any():
        searched = table.attrs.get("searched", [])
        shown = table.sort_values(best_col, ascending=mode == "min").head(5)
        cols = ["trial_id", "status", *searched, *[f"best_{m}" for m in plan.metrics], "epochs_run"]
        print(f"best trials by {metric} ({mode}):")
        print(shown[[c for c in cols if c in shown]].to_string(index=False))
    where = redact(plan.experiment_uri)
    print(f"\nexperiment folder: {where}")
    print(f"next: python -m analysis {where}")


if __name__ == "__main__":
    raise SystemExit(main())
