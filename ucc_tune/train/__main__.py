"""``python -m ucc_tune.train``: one training run, no search.

Thin by design: parse, build a validated ``Config`` before any work (bad input exits 2 with the
``Config`` message), run, print. With ``--workers N`` the run is a Ray Train (DDP) job of N ranks;
either way ``--out`` holds ``run.json``, ``metrics.jsonl`` and ``artifacts/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from ucc_tune.config import Config, ConfigError
from ucc_tune.config.flags import add_config_arguments, config_values, defaults_from_dataset
from ucc_tune.data.bags import BagSizeError
from ucc_tune.data.sources import DatasetNotFoundError
from ucc_tune.preflight import PreflightError, check_runs
from ucc_tune.resources import ResourceError
from ucc_tune.schema import BEST_CHECKPOINT_DIR, CHECKPOINTS_DIR, DDP_RUN_NAME, METRICS_FILE, RUN_FILE
from ucc_tune.train.failures import FeatureCollapseError, NonFiniteLossError
from ucc_tune.train.loop import train
from ucc_tune.train.session import LocalSession, RunFolder
from ucc_tune.train.stopping import run_outcome, supervision_label


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ucc_tune.train",
        description="Train one UCC model (no search) and evaluate its feature clustering.",
    )
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder (default runs/train-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument(
        "--workers", type=int, help="Ray Train DDP workers (sets num_workers; 0 = this process)"
    )
    parser.add_argument(
        "--gpus-per-worker", type=int, default=0, help="GPUs each DDP worker asks Ray for (with --workers)"
    )
    return parser


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


class ProgressPrinter:
    """One line per epoch: loss terms, UCC accuracy, cluster accuracy when evaluated, speed, ETA."""

    def __init__(self, config: Config):
        self.config = config

    def __call__(self, m: dict[str, Any]) -> None:
        epoch = int(m["epoch"])
        done = epoch + 1
        eta = m["time_s"] / done * (self.config.epochs - done) if done else 0.0
        fresh = m.get("cluster_eval_epoch") == epoch
        cluster = f"cluster_acc {m['cluster_acc']:.3f} js_min {m['js_min']:.3f}" if fresh else "cluster -"
        print(
            f"epoch {done:3d}/{self.config.epochs} loss {m['train_loss']:.4f} "
            f"(ucc {m['train_ucc_loss']:.4f} recon {m['train_recon_loss']:.4f} "
            f"rcc {m['train_rcc_loss']:.4f}) "
            f"val_ucc_acc {m['val_ucc_acc']:.3f} {cluster} "
            f"{m['instances_per_s']:,.0f} inst/s eta {eta:.0f}s",
            flush=True,
        )


def print_summary(metrics: dict[str, Any], run_dir: Path, outcome: dict[str, Any]) -> None:
    print(f"\n{outcome['supervision']}: {outcome['stop_reason']}")
    if outcome["best_epoch"] is not None:
        print(
            f"best epoch {outcome['best_epoch']} (from 0): {outcome['best_metric']} "
            f"{outcome['best_value']:.4f}, kept in checkpoints/{BEST_CHECKPOINT_DIR}/"
        )
    if outcome["tested_epoch"] is not None:
        whose = "the best" if outcome["tested_epoch"] == outcome["best_epoch"] else "the last"
        print(f"test split scored with the weights of epoch {outcome['tested_epoch']} ({whose})")
    print("final metrics:")
    for key in sorted(k for k in metrics if k.startswith("test_") or k in ("val_ucc_acc", "cluster_acc")):
        value = metrics[key]
        print(f"  {key:28s} {value:.4f}" if isinstance(value, float) else f"  {key:28s} {value}")
    print(f"run folder: {run_dir}  ({RUN_FILE}, {METRICS_FILE}, checkpoints, artifacts/)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        values = config_values(args)
        if args.workers is not None:
            values["num_workers"] = args.workers
        if added := defaults_from_dataset(values):
            print(f"defaults of dataset {values['dataset']}: {_pairs(added)} (set them to override)")
            values |= added
        config = Config.from_dict(values)
        if args.gpus_per_worker < 0 or (args.gpus_per_worker and config.num_workers < 1):
            raise ConfigError(
                f"--gpus-per-worker {args.gpus_per_worker}: give a count >= 0, and use it with --workers >= 1"
            )
        check_runs([config])
    except (ConfigError, PreflightError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.resume and args.out is None:
        print("error: --resume needs --out, the folder of the run to continue", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / f"train-{dt.datetime.now():%Y%m%d-%H%M%S}"
    earlier = [name for name in (METRICS_FILE, CHECKPOINTS_DIR, DDP_RUN_NAME) if (out / name).exists()]
    if earlier and not args.resume:
        print(
            f"error: {out} holds an earlier run ({', '.join(earlier)}); pass --resume to continue it "
            "or use a new --out",
            file=sys.stderr,
        )
        return 2
    if args.resume and not earlier:
        print(
            f"error: nothing to resume in {out} (no {METRICS_FILE}, checkpoints/ or {DDP_RUN_NAME}/)",
            file=sys.stderr,
        )
        return 2
    from ucc_tune.provenance import provenance

    out.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "resume": args.resume, **provenance(argv)}
    (out / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    seeds = (
        f", seeds {config.seed}..{config.seed + config.seeds - 1} (lines: their mean)"
        if config.seeds > 1
        else ""
    )
    kind = supervision_label(config)
    print(f"training {config.model} ({kind}) on {config.dataset}{seeds} -> {out}", flush=True)
    try:
        metrics = run_training(config, out, args.resume, args.gpus_per_worker)
    except (DatasetNotFoundError, BagSizeError, ResourceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FeatureCollapseError, NonFiniteLossError) as err:  # the run failed, said in one line
        print(f"error: {err}", file=sys.stderr)
        return 1
    outcome = run_outcome(config, metrics)
    RunFolder(out).update_info(outcome=outcome)
    print_summary(metrics, out, outcome)
    return 0


def run_training(config: Config, out: Path, resume: bool, gpus_per_worker: int = 0) -> dict[str, Any]:
    if config.num_workers >= 1:
        from ucc_tune.ray_adapter import train_distributed  # the only module that imports Ray

        return train_distributed(config, out, resume, gpus_per_worker, on_report=ProgressPrinter(config))
    session = LocalSession(
        out, resume=resume, keep=config.keep_checkpoints, on_report=ProgressPrinter(config)
    )
    return train(config, session)


if __name__ == "__main__":
    raise SystemExit(main())
