"""``python -m ucc_tune.evaluate``: evaluate a trained model on one split of a dataset, no training.

The model comes from one of

- a run folder of ``python -m ucc_tune.train``: its newest complete checkpoint in
  ``checkpoints/epoch_NNNN/`` (or ``ray_train/checkpoint_*/`` for a ``--workers`` run);
- a trial folder of a search: its Tune checkpoints ``checkpoint_NNNNNN/``, or for a DDP trial
  ``<experiment>/train_runs/train-<trial id>/checkpoint_*/``;
- one checkpoint folder (``state.pt``, a dict holding ``config`` and ``model``);
- ``--keras-weights FILE.h5``, the UCC authors' weights, in the ``paper`` model of ``--set``/``--config``.

The evaluation is the one at the end of a training run (``loop.setup`` and ``loop.cluster_eval``):
encoder features of every image of the split, clustered by each method, the clustering scores of
``ucc_tune.metrics.METRICS``, the class KDEs and their JS divergences. ``--set``/``--config``
change data and evaluation settings; the model's own fields always come from the checkpoint.
``--out`` receives ``feature_scores.json`` (scores named ``<split>_<method>_<score>`` as a run names
its final ``test_*`` metrics, and what was evaluated) and a run's artifacts, with the features
file named after the split (``val_features.npz``). Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import torch
from torch import nn

from ucc_tune import feature_scores, schema
from ucc_tune.checkpoints import find_checkpoints, newest_complete, seed_folders, state_file_damage
from ucc_tune.config import CLUSTER_METHODS, Config, ConfigError, Device
from ucc_tune.config.flags import add_config_arguments, config_values
from ucc_tune.data.bags import BagSizeError
from ucc_tune.data.loading import SPLITS
from ucc_tune.data.sources import DatasetNotFoundError
from ucc_tune.models import UCCModel
from ucc_tune.models.keras_weights import load_keras_weights
from ucc_tune.provenance import provenance
from ucc_tune.schema import CHECKPOINT_STATE_FILE, EVALUATION_FILE, RUN_FILE
from ucc_tune.train.artifacts import write_artifacts
from ucc_tune.train.checkpoint import load_state
from ucc_tune.train.loop import setup
from ucc_tune.train.run import Run
from ucc_tune.train.scoring import cluster_eval, test_metrics
from ucc_tune.train.session import WritesRunFiles, resolve_device

# the fields that make the model what it is; --set/--config may not change them for a checkpoint
MODEL_FIELDS = (
    "model",
    "num_features",
    "num_bins",
    "kde_sigma",
    "head_hidden1",
    "head_hidden2",
    "head_dropout",
    "encoder_dropout",
    "paper_padding",
    "alpha",
    "rcc_weight",
    "consistency_weight",
)


class EvaluationError(ValueError):
    """Bad input to the evaluation: the message names the file and what was expected."""


@dataclass(frozen=True)
class Source:
    """What is evaluated: ``kind`` (run, trial, checkpoint, keras_weights), the folder or file the
    user named, the checkpoint folder (or weights file) read and the checkpoints skipped as damaged."""

    kind: str
    path: Path
    weights: Path
    skipped: tuple[str, ...] = ()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ucc_tune.evaluate",
        description="Evaluate a trained UCC model's feature clustering on one split, without training.",
    )
    parser.add_argument(
        "source", nargs="?", type=Path, help="a run folder, a trial folder or a checkpoint folder (state.pt)"
    )
    parser.add_argument("--keras-weights", type=Path, help="the UCC authors' Keras weights (.h5) instead")
    parser.add_argument("--split", default="test", help=f"the split to evaluate: {', '.join(SPLITS)}")
    parser.add_argument(
        "--methods", help="comma-separated clustering methods (default: the config's test_cluster_methods)"
    )
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder (default <source>/evaluation-<split>)")
    parser.add_argument("--device", help="auto, cpu or cuda (default: the config's)")
    return parser


# --- where the model comes from -----------------------------------------------------------------


def find_source(path: Path) -> Source:
    """The checkpoint folder to evaluate for a run, trial or checkpoint folder (or a ``state.pt``)."""
    if path.is_file() and path.name == CHECKPOINT_STATE_FILE:
        path = path.parent
    if (path / CHECKPOINT_STATE_FILE).is_file():
        return Source("checkpoint", path, path)
    if not (path / RUN_FILE).is_file():
        problem = f"no {RUN_FILE} or {CHECKPOINT_STATE_FILE} in it" if path.exists() else "no such folder"
        raise EvaluationError(
            f"{path}: {problem}; expected a run or trial folder ({RUN_FILE}) or a checkpoint folder "
            f"({CHECKPOINT_STATE_FILE}), or pass --keras-weights FILE.h5"
        )
    info = _run_record(path / RUN_FILE)
    trial_id = str(info["trial_id"]) if "trial_id" in info else None
    return _newest_checkpoint(path, trial_id)


def _newest_checkpoint(path: Path, trial_id: str | None) -> Source:
    """The newest complete checkpoint of a run (``trial_id`` None) or trial folder, with the newer
    damaged ones it skipped; a run of several seeds names one seed's checkpoint to evaluate."""
    found = find_checkpoints(path, trial_id)
    if not found:
        looked = ", ".join(f"{base / pattern}/" for base, pattern in schema.checkpoint_places(path, trial_id))
        raise EvaluationError(
            f"{path}: {RUN_FILE} but no checkpoint; looked for {CHECKPOINT_STATE_FILE} in {looked}"
        )
    seeds = seed_folders(found[-1])
    if seeds:
        raise EvaluationError(
            f"{path}: a run of several seeds; evaluate one seed's checkpoint, e.g. {seeds[-1]} "
            f"(the seeds of that checkpoint: {', '.join(seed.name for seed in seeds)})"
        )
    newest = newest_complete(found)
    if newest.folder is None:
        raise EvaluationError(f"{path}: no complete checkpoint; {'; '.join(newest.skipped)}")
    return Source("run" if trial_id is None else "trial", path, newest.folder, newest.skipped)


def _run_record(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvaluationError(f"{path}: not readable JSON ({err}); expected a run's record") from None
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise EvaluationError(f"{path}: expected a JSON object with a 'config', as runs and trials write")
    return info


def read_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's state dict; a damaged file or one without ``config`` and ``model`` is an error."""
    path = folder / CHECKPOINT_STATE_FILE
    damage = state_file_damage(path)
    try:
        if damage is not None:
            raise RuntimeError(damage)
        state = load_state(folder)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise EvaluationError(
            f"{path}: damaged or not a checkpoint ({err}); expected a state file written by torch.save"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(state.get(k), dict) for k in ("config", "model")):
        raise EvaluationError(f"{path}: expected a checkpoint dict holding 'config' and 'model'")
    return state


def evaluation_config(trained: dict[str, Any], overrides: dict[str, Any], where: Path) -> Config:
    """The checkpoint's config with the data and evaluation settings of ``overrides``."""
    changed = [k for k in MODEL_FIELDS if k in overrides and k in trained and overrides[k] != trained[k]]
    if changed:
        pairs = ", ".join(f"{k}={overrides[k]!r} (the checkpoint's: {trained[k]!r})" for k in changed)
        raise EvaluationError(
            f"{where}: {pairs}: the model's fields come from the checkpoint; "
            "--set/--config may change data and evaluation settings only"
        )
    try:
        return Config.from_dict({**trained, **overrides, "compile": False})  # no compile to evaluate
    except ConfigError as err:
        raise EvaluationError(
            f"{where}: the checkpoint's config with the overrides is not valid: {err}"
        ) from None


# --- the evaluation -------------------------------------------------------------------------


class EvaluationSession(WritesRunFiles):
    """The ``Session`` that ``setup`` builds an evaluation run with: this process, nothing to
    resume, nothing reported or written (the evaluation writes its own files)."""

    rank, world_size, folder = 0, 1, None

    def device(self, requested: str) -> torch.device:
        return resolve_device(requested)

    def start(self, config: dict[str, Any], device: torch.device) -> None: ...

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None: ...

    def latest_checkpoint(self) -> str | None:
        return None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model


def load_weights(run: Run, source: Source, state: dict[str, Any] | None) -> None:
    """The checkpoint's (or the Keras file's) weights into the run's model, shapes checked first."""
    model = run.model_core
    if state is None:
        if not isinstance(model, UCCModel):
            raise EvaluationError("the authors' Keras weights are a UCC model's: use supervision=ucc")
        try:
            load_keras_weights(model, source.weights)
        except (ValueError, FileNotFoundError) as err:
            shape = f"dataset={run.config.dataset!r}, images {run.data.image_shape}"
            raise EvaluationError(f"{err} (the paper model for {shape})") from None
        return
    path, weights, ours = source.weights / CHECKPOINT_STATE_FILE, state["model"], model.state_dict()
    missing, extra = sorted(set(ours) - set(weights)), sorted(set(weights) - set(ours))
    if missing or extra:
        raise EvaluationError(
            f"{path}: the checkpoint's layers do not match a {run.config.model!r} model "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(ours[name].shape):
            raise EvaluationError(
                f"{path}: {name} is {tuple(tensor.shape)} in the checkpoint, trained on "
                f"dataset={state['config'].get('dataset')!r}, but {tuple(ours[name].shape)} for "
                f"dataset={run.config.dataset!r} (images {run.data.image_shape}, "
                f"{run.data.num_classes} classes); evaluate it on data of the shape it was trained on"
            )
    model.load_state_dict(weights)


def write_outputs(run: Run, summary: dict[str, Any], split: str, out: Path, record: dict[str, Any]) -> None:
    """``feature_scores.json`` and the artifacts of a run, the features file named for ``split``."""
    out.mkdir(parents=True, exist_ok=True)
    write_artifacts(run, summary, out, split)
    (out / EVALUATION_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")


def print_report(summary: dict[str, Any], header: str, out: Path) -> None:
    """One row per method, one column per score, then the JS summary."""
    print(header)
    clustering = summary["clustering"]
    names = list(next(iter(clustering.values())))
    widths = [max(len(n), 6) for n in names]
    print(f"  {'method':10s}" + " ".join(f"{n:>{w}s}" for n, w in zip(names, widths, strict=True)))
    for method, scores in clustering.items():
        cells = [f"{scores[n]:>{w}.4f}" for n, w in zip(names, widths, strict=True)]
        print(f"  {method:10s}" + " ".join(cells))
    js = summary["js"]
    first, second = js["closest_pair"]
    print(
        f"  js_min {js['js_min']:.4f}  js_mean {js['js_mean']:.4f}  js_max {js['js_max']:.4f}  "
        f"closest classes: {first} and {second}"
    )
    print(f"wrote {out / EVALUATION_FILE} and the artifacts beside it")


# --- the command --------------------------------------------------------------------------------


def _methods(text: str | None) -> list[str] | None:
    if text is None:
        return None
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in CLUSTER_METHODS]
    if bad or not methods:
        raise EvaluationError(
            f"--methods {text!r}: unknown or no method ({', '.join(bad) or 'empty'}); "
            f"choose from {', '.join(CLUSTER_METHODS)}"
        )
    return methods


def open_source(
    args: argparse.Namespace, overrides: dict[str, Any]
) -> tuple[Source, Config, dict[str, Any] | None]:
    """The source, the config to evaluate with and the checkpoint state (None for Keras weights)."""
    if (args.source is None) == (args.keras_weights is None):
        raise EvaluationError("give either a run, trial or checkpoint folder, or --keras-weights FILE.h5")
    if args.source is not None:
        return open_checkpoint(args.source, overrides)
    weights: Path = args.keras_weights
    if not weights.is_file():
        raise EvaluationError(f"--keras-weights {weights}: no such file; expected a Keras HDF5 weights file")
    config = Config.from_dict({**overrides, "compile": False})
    if config.model != "paper":
        raise EvaluationError(
            f"--keras-weights {weights}: the authors' weights fit model=paper, not {config.model}"
        )
    return Source("keras_weights", weights, weights), config, None


def open_checkpoint(path: Path, overrides: dict[str, Any]) -> tuple[Source, Config, dict[str, Any]]:
    """The source of a run, trial or checkpoint folder, its config with ``overrides`` and its state."""
    source = find_source(path)
    state = read_state(source.weights)
    where = source.weights / CHECKPOINT_STATE_FILE
    return source, evaluation_config(state["config"], overrides, where), state


def build_run(source: Source, config: Config, state: dict[str, Any] | None) -> Run:
    """A run of ``config`` (data loaded and normalised as in training) holding the source's weights;
    skipped damaged checkpoints are named on stderr."""
    try:
        resolve_device(config.device)
    except RuntimeError as err:
        raise EvaluationError(str(err)) from None
    for skipped in source.skipped:
        print(f"warning: {skipped}; evaluating the checkpoint before it", file=sys.stderr)
    run = setup(config, EvaluationSession())
    load_weights(run, source, state)
    return run


def evaluate(args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.split not in SPLITS:
        raise EvaluationError(f"--split {args.split!r} is unknown; choose one of {', '.join(SPLITS)}")
    methods = _methods(args.methods)
    overrides = config_values(args)
    if args.device is not None:
        if args.device not in (devices := get_args(Device)):
            raise EvaluationError(f"--device {args.device!r} is unknown; choose one of {', '.join(devices)}")
        overrides["device"] = args.device
    source, config, state = open_source(args, overrides)
    run = build_run(source, config, state)
    methods = methods or config.cluster_method_list(test=True)
    summary = cluster_eval(run, args.split, methods)
    collapse = feature_scores.collapse(summary["features"], float(summary["js"]["js_max"]))
    if collapse is not None:
        print(f"warning: the features carry no class information: {collapse}", file=sys.stderr)
    record = evaluation_record(summary, args.split, methods, source, config, state, run, collapse)
    record.update(provenance(argv))
    out = args.out or default_out(source, args.split)
    write_outputs(run, summary, args.split, out, record)
    at = f" (epoch {record['checkpoint_epoch']})" if state is not None else ""
    where = f"{config.dataset} {args.split} ({record['num_images']} images)"
    print_report(summary, f"{source.kind} {source.weights}{at}: {where}", out)
    return 0


def evaluation_record(
    summary: dict[str, Any],
    split: str,
    methods: list[str],
    source: Source,
    config: Config,
    state: dict[str, Any] | None,
    run: Run,
    collapse: str | None,
) -> dict[str, Any]:
    """The scores and what was evaluated: source, checkpoint and its epoch, split, config."""
    trained = state["config"] if state is not None else {}
    return {
        "metrics": test_metrics(summary, split),
        "closest_pair": list(summary["js"]["closest_pair"]),
        "collapse": collapse,
        "split": split,
        "dataset": config.dataset,
        "num_images": len(run.data.labels[split]),
        "methods": methods,
        "cluster_dim": summary["cluster_dim"],  # of the features clustered, after cluster_pca
        "source": str(source.path),
        "kind": source.kind,
        "checkpoint": str(source.weights),
        "checkpoint_epoch": int(state["epoch"]) if state is not None and "epoch" in state else None,
        "skipped_checkpoints": list(source.skipped),
        "config": config.to_dict(),
        "changed_from_checkpoint": {
            k: v for k, v in config.to_dict().items() if k in trained and trained[k] != v
        },
    }


def default_out(source: Source, split: str) -> Path:
    if source.kind == "keras_weights":
        return Path("runs") / f"evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return source.path / f"evaluation-{split}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return evaluate(args, argv)
    except (EvaluationError, ConfigError, DatasetNotFoundError, BagSizeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
