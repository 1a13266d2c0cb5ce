"""Read experiment folders as files (no Ray, no GPU) into pandas tables.

An experiment folder is Ray Tune's layout plus ``search.json``, ``optuna.db`` and per-trial
``artifacts/``. Reading tolerates what real folders hold: running or errored trials, a trial
with no results yet, a truncated last line in ``result.json``, missing artifacts. Such trials
keep their row and status, and a warning is recorded and printed; nothing raises.
"""

from __future__ import annotations

import json
import typing
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ucc_tune.config import Config, ConfigError
from ucc_tune.storage import Storage, is_uri, local_mirror, redact
from ucc_tune.train import METRIC_NAMES, last_and_best

REPORTED = tuple(m for m in METRIC_NAMES if m not in ("epoch", "cluster_eval_epoch"))


class NotAnExperimentError(ValueError):
    """The path does not exist or is not an experiment folder."""


@dataclass
class Experiment:
    """Tables of one or more experiments: ``trials``, ``history``, ``js`` and ``js_summary``."""

    paths: list[Path]
    trials: pd.DataFrame
    history: pd.DataFrame
    js: pd.DataFrame
    js_summary: pd.DataFrame
    searches: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def is_experiment(path: Path) -> bool:
    return path.is_dir() and (
        (path / "search.json").is_file()
        or (path / "tuner.pkl").is_file()
        or any(path.glob("experiment_state-*.json"))
    )


def read_results(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """JSON lines of ``result.json``; a damaged (e.g. truncated) line is skipped with a note."""
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            notes.append(f"{path}: line {number} is not valid JSON (truncated?); skipped")
    return rows


def trial_states(exp: Path) -> dict[str, dict[str, Any]]:
    """Trial folder name -> ``{"status", "trial_id"}`` from the newest experiment state file."""
    states = sorted(exp.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    out = {}
    for entry in data.get("trial_data", []):
        try:
            trial = json.loads(entry[0])
        except (TypeError, json.JSONDecodeError, IndexError):
            continue
        out[str(trial.get("relative_logdir"))] = {
            "status": trial.get("status"),
            "trial_id": trial.get("trial_id"),
        }
    return out


def resolve_config(params: dict[str, Any]) -> dict[str, Any]:
    known = {k: v for k, v in params.items() if k in Config.__dataclass_fields__}
    try:
        return Config.from_dict(known).to_dict()
    except ConfigError:
        return {**{f.name: None for f in fields(Config)}, **known}


def error_text(trial_dir: Path) -> str | None:
    path = trial_dir / "error.txt"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:1000] if lines else "error"


def read_trial(
    exp: Path, trial_dir: Path, state: dict[str, Any], notes: list[str]
) -> tuple[dict, list[dict]]:
    params = (
        json.loads((trial_dir / "params.json").read_text()) if (trial_dir / "params.json").is_file() else {}
    )
    config = resolve_config(params)
    results = read_results(trial_dir / "result.json", notes)
    trial_id = state.get("trial_id") or (results[-1].get("trial_id") if results else None) or trial_dir.name
    error = error_text(trial_dir)
    epochs_run = max((int(r["epoch"]) + 1 for r in results if "epoch" in r), default=0)
    status = state.get("status") or ("ERROR" if error else "UNKNOWN")
    if not results:
        notes.append(f"{trial_dir.name}: no results yet (status {status})")
    history = [{"experiment": exp.name, "trial_id": trial_id, **{k: r.get(k) for k in ("epoch", *REPORTED)}}
               for r in results if "epoch" in r]  # fmt: skip
    planned = config.get("epochs")
    row: dict[str, Any] = {
        "experiment": exp.name,
        "trial_id": trial_id,
        "trial_dir": str(trial_dir),
        "status": status,
        "error": error,
        **config,
        "epochs_run": epochs_run,
        "wall_time_s": results[-1].get("time_total_s") if results else None,
        "asha_stopped": bool(status == "TERMINATED" and planned and epochs_run < planned and not error),
    }
    if row["asha_stopped"]:
        row["status"] = "STOPPED"  # as in the search's own trials.parquet
    row.update(last_and_best(pd.DataFrame([{k: r.get(k) for k in REPORTED} for r in results]), REPORTED))
    final = results[-1] if results else {}
    for key, value in final.items():
        if key.startswith("test_") and isinstance(value, (int, float)):
            row[key] = float(value)
    return row, history


def read_js(trial_dir: Path, trial_id: str, experiment: str, notes: list[str]) -> list[dict[str, Any]]:
    path = trial_dir / "artifacts" / "js.npz"
    if not path.is_file():
        return []
    try:
        with np.load(path, allow_pickle=False) as data:
            matrix, names = data["js_matrix"], [str(n) for n in data["class_names"]]
    except (OSError, ValueError, KeyError) as err:
        notes.append(f"{path}: unreadable ({err}); skipped")
        return []
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    return [
        {
            "experiment": experiment,
            "trial_id": trial_id,
            "class_a": names[a],
            "class_b": names[b],
            "js": float(matrix[a, b]),
        }
        for a, b in pairs
    ]


def summarize_js(js: pd.DataFrame) -> pd.DataFrame:
    """Per trial: ``js_min``, ``js_mean``, ``js_max`` and the closest class pair."""
    if js.empty:
        return pd.DataFrame(
            columns=["experiment", "trial_id", "js_min", "js_mean", "js_max", "closest_a", "closest_b"]
        )
    rows = []
    for (experiment, trial_id), group in js.groupby(["experiment", "trial_id"], sort=False):
        closest = group.loc[group["js"].idxmin()]
        rows.append({
            "experiment": experiment, "trial_id": trial_id, "js_min": group["js"].min(),
            "js_mean": group["js"].mean(), "js_max": group["js"].max(),
            "closest_a": closest["class_a"], "closest_b": closest["class_b"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def typed_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """Config columns in their own dtypes (nullable where a value is missing), not strings."""
    hints = typing.get_type_hints(Config)
    for name, tp in hints.items():
        if name not in frame:
            continue
        kind = {int: "Int64", float: "float64", bool: "boolean"}.get(tp, "string")
        frame[name] = frame[name].astype(kind)
    for name in ("experiment", "trial_id", "trial_dir", "status", "error"):
        frame[name] = frame[name].astype("string")
    frame["epochs_run"] = frame["epochs_run"].astype("Int64")
    frame["asha_stopped"] = frame["asha_stopped"].astype("boolean")
    return frame


def load_one(exp: Path, notes: list[str]) -> tuple[list[dict], list[dict], list[dict], dict[str, Any]]:
    search = json.loads((exp / "search.json").read_text()) if (exp / "search.json").is_file() else {}
    states = trial_states(exp)
    trials, history, js = [], [], []
    for trial_dir in sorted(p for p in exp.iterdir() if p.is_dir() and (p / "params.json").is_file()):
        row, rows = read_trial(exp, trial_dir, states.get(trial_dir.name, {}), notes)
        row["space"] = search.get("space")
        trials.append(row)
        history += rows
        js += read_js(trial_dir, row["trial_id"], exp.name, notes)
    return trials, history, js, search


def fetch(location: str | Path) -> Path:
    """A local folder for ``location``: itself, or for a storage URI (``s3://...``) a local copy
    (``~/.cache/ucc-tune/remote/...``) of everything but the checkpoints."""
    if not is_uri(location):
        return Path(location)
    shown = redact(str(location))
    try:
        storage = Storage(location)
        found = storage.exists()
    except (ValueError, OSError) as err:
        raise NotAnExperimentError(f"cannot read {shown}: {err}") from None
    if not found:
        raise NotAnExperimentError(f"{shown} does not exist")
    try:
        return storage.download_tree(local_mirror(storage), skip=is_checkpoint)
    except OSError as err:
        raise NotAnExperimentError(f"cannot read {shown}: {err}") from None


def is_checkpoint(relative: str) -> bool:
    return any(part.startswith("checkpoint_") for part in relative.split("/"))


def load(path_or_paths: str | Path | list[str | Path]) -> Experiment:
    """Read one or more experiment folders (or storage URIs, copied locally first); raises
    ``NotAnExperimentError`` for a bad path."""
    paths = [fetch(p) for p in (path_or_paths if isinstance(path_or_paths, list) else [path_or_paths])]
    for path in paths:
        if not path.exists():
            raise NotAnExperimentError(f"{path} does not exist")
        if not is_experiment(path):
            raise NotAnExperimentError(
                f"{path} is not an experiment folder (no search.json, tuner.pkl or experiment_state-*.json); "
                "pass the folder that python -m ucc_tune.search printed"
            )
    notes: list[str] = []
    trials, history, js, searches = [], [], [], {}
    for path in paths:
        t, h, j, s = load_one(path, notes)
        trials += t
        history += h
        js += j
        searches[path.name] = s
    for note in notes:
        warnings.warn(note, stacklevel=2)
    js_frame = pd.DataFrame(js, columns=["experiment", "trial_id", "class_a", "class_b", "js"])
    trials_frame = (
        typed_trials(pd.DataFrame(trials)) if trials else pd.DataFrame(columns=["trial_id", "status"])
    )
    history_frame = pd.DataFrame(history, columns=["experiment", "trial_id", "epoch", *REPORTED])
    return Experiment(paths, trials_frame, history_frame, js_frame, summarize_js(js_frame), searches, notes)
