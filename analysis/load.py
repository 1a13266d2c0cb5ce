"""Read experiment folders as files (no Ray, no torch, no GPU) into pandas tables.

A trial's folder holds what the project writes: ``run.json`` (trial id, config, placement),
``metrics.jsonl`` (one line per epoch) and ``artifacts/``; the rows of ``trials`` come from
``ucc_tune.schema.trial_row``, the same function the search's own ``trials.parquet`` uses, so the
two tables have the same columns. Ray's files are read for two things only, each in one
tolerant function: the status of the trials of an unfinished search, and a trial's error.
Reading tolerates what real folders hold: running or errored trials, a trial with no results
yet, a truncated last line, missing artifacts. Such trials keep their row and status, and a
warning is recorded and printed; nothing raises.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ucc_tune.config import Config, ConfigError, field_names
from ucc_tune.schema import (
    ARTIFACTS_DIR,
    JS_FILE,
    METRICS_FILE,
    OBJECTIVES,
    REPORTED,
    RUN_FILE,
    SEARCH_FILE,
    SEEDS_DIR,
    json_object,
    read_history,
    trial_row,
    trials_frame,
)
from ucc_tune.search.ranking import rank_trials
from ucc_tune.storage import Storage, is_uri, local_mirror, redact


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
        (path / SEARCH_FILE).is_file()
        or (path / "tuner.pkl").is_file()
        or any(path.glob("experiment_state-*.json"))
    )


def ray_trial_states(exp: Path) -> dict[str, str]:
    """Trial folder name -> Ray's status (``RUNNING``, ``PENDING``, ``TERMINATED``, ...).

    Reads Ray Tune's private experiment state, ``experiment_state-<time>.json`` in the
    experiment folder (format of Ray 2.5x-2.60: ``{"trial_data": [[trial_json, runtime_json],
    ...]}``, each ``trial_json`` holding ``relative_logdir`` and ``status``). Tolerant: a missing,
    damaged or reshaped file gives no states, and the statuses then follow from the trials' own
    files alone.
    """
    states = sorted(exp.glob("experiment_state-*.json"))
    try:
        entries = json.loads(states[-1].read_text()).get("trial_data", []) if states else []
    except (OSError, ValueError, AttributeError):
        return {}
    out: dict[str, str] = {}
    for entry in entries:
        try:
            trial = json.loads(entry[0])
            out[str(trial["relative_logdir"])] = str(trial["status"])
        except (TypeError, ValueError, KeyError, IndexError):
            continue
    return out


def ray_error(trial_dir: Path) -> str | None:
    """The last line of the ``error.txt`` Ray Tune writes into the folder of a failed trial."""
    path = trial_dir / "error.txt"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:1000] if lines else "error"


def read_json(path: Path, notes: list[str], consequence: str) -> dict[str, Any]:
    """A JSON object file of ours; a missing one is ``{}``, a damaged one too, with a note."""
    if not path.is_file():
        return {}
    try:
        found = json_object(path.read_text())
    except ValueError:  # not UTF-8
        found = None
    if found is None:
        notes.append(f"{path}: not valid JSON; {consequence}")
        return {}
    return found


def read_trial(
    exp: Path, trial_dir: Path, ray_status: str | None, notes: list[str]
) -> tuple[dict, list[dict]]:
    """A trial's row (``trial_row``) and its per-epoch history rows. A trial whose ``run.json``
    holds no valid config is an ERROR row (its budget and parameters are unknown, so it is not ranked),
    and a last epoch whose objective is not a finite number is said in a note."""
    info = read_json(trial_dir / RUN_FILE, notes, "skipped")
    metrics = trial_dir / METRICS_FILE
    history = read_history(_text(metrics, notes), notes, str(metrics))
    trial_id = str(info.get("trial_id") or trial_dir.name)
    seed_files = sorted((trial_dir / SEEDS_DIR).glob(f"*/{METRICS_FILE}"))
    seeds = [read_history(_text(f, notes), notes, str(f)) for f in seed_files]
    config, error = info.get("config"), ray_error(trial_dir)
    # a trial with neither run.json nor results is only starting; with results, its config is missing
    started = (trial_dir / RUN_FILE).is_file() or bool(history)
    if started and (problem := _config_problem(config)):
        notes.append(
            f"{trial_dir / RUN_FILE}: {problem}; the trial's budget and parameters are unknown, "
            "it is shown as ERROR and not ranked"
        )
        error = error or f"{RUN_FILE}: {problem}"
    config = config if isinstance(config, dict) else {}
    row = trial_row(exp.name, trial_id, str(trial_dir), config, history, error, ray_status, seeds or None)
    if not history:
        notes.append(f"{trial_dir.name}: no results yet (status {row['status']})")
    elif bad := [m for m in OBJECTIVES if math.isnan(row[f"last_{m}"]) and not math.isnan(row[f"best_{m}"])]:
        notes.append(
            f"{trial_dir.name}: its last epoch's {', '.join(bad)} is not a finite number; "
            "it is not ranked on an earlier epoch's value"
        )
    rows = [
        {"experiment": exp.name, "trial_id": trial_id, **{k: r.get(k) for k in ("epoch", *REPORTED)}}
        for r in history
    ]
    return row, rows


def _config_problem(config: Any) -> str:
    """Why a trial's recorded config cannot be trusted, or "" when it makes a valid ``Config``."""
    if not isinstance(config, dict):
        return "no config"
    try:
        Config.from_dict({k: v for k, v in config.items() if k in field_names()})
    except ConfigError as err:
        return f"its config is not valid ({err})"
    return ""


def _text(path: Path, notes: list[str]) -> str:
    """A text file of ours, "" when missing; undecodable bytes are replaced, with a note."""
    if not path.is_file():
        return ""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"{path}: not UTF-8 text; its undecodable lines are skipped")
        return data.decode("utf-8", errors="replace")


def read_arrays(
    path: Path, keys: tuple[str, ...], notes: list[str] | None = None, prefix: str | None = None
) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` (and every array named ``prefix...``) of one of our ``.npz`` files, or
    None when it is missing or damaged (not an archive, truncated, a key missing): then a note
    names the file."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [*keys, *(k for k in data.files if prefix is not None and k.startswith(prefix))]
            return {k: np.asarray(data[k]) for k in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        if notes is not None:
            notes.append(f"{path}: unreadable ({type(err).__name__}: {err}); skipped")
        return None


def read_js(trial_dir: Path, trial_id: str, experiment: str, notes: list[str]) -> list[dict[str, Any]]:
    path = trial_dir / ARTIFACTS_DIR / JS_FILE
    arrays = read_arrays(path, ("js_matrix", "class_names"), notes)
    if arrays is None:
        return []
    matrix, names = arrays["js_matrix"], [str(n) for n in arrays["class_names"]]
    if matrix.shape != (len(names), len(names)) or not np.isfinite(matrix).all():
        notes.append(f"{path}: a {matrix.shape} matrix for {len(names)} classes, or not finite; skipped")
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
        rows.append(
            {
                "experiment": experiment,
                "trial_id": trial_id,
                "js_min": group["js"].min(),
                "js_mean": group["js"].mean(),
                "js_max": group["js"].max(),
                "closest_a": closest["class_a"],
                "closest_b": closest["class_b"],
            }
        )
    return pd.DataFrame(rows)


def trial_folders(exp: Path) -> list[Path]:
    """Folders of trials that started: those with a ``run.json`` or Ray's ``params.json``."""
    found = (p for p in exp.iterdir() if p.is_dir())
    return sorted(p for p in found if (p / RUN_FILE).is_file() or (p / "params.json").is_file())


def load_one(exp: Path, notes: list[str]) -> tuple[list[dict], list[dict], list[dict], dict[str, Any]]:
    search = read_json(exp / SEARCH_FILE, notes, "the search's settings are unknown")
    states = ray_trial_states(exp)
    trials, history, js = [], [], []
    for trial_dir in trial_folders(exp):
        row, rows = read_trial(exp, trial_dir, states.get(trial_dir.name), notes)
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
    history_frame = pd.DataFrame(history, columns=["experiment", "trial_id", "epoch", *REPORTED])
    metric, mode = objective(searches)
    ranked = rank_trials(trials_frame(trials), metric, mode)
    return Experiment(paths, ranked, history_frame, js_frame, summarize_js(js_frame), searches, notes)


def objectives(searches: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The first search's objectives and their modes (``cluster_acc``, ``max`` when unknown)."""
    first = next(iter(searches.values()), {})
    return list(first.get("metrics") or ["cluster_acc"]), list(first.get("modes") or ["max"])


def objective(searches: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The first search's first objective and its mode."""
    metrics, modes = objectives(searches)
    return metrics[0], modes[0]
