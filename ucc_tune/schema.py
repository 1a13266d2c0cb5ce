"""The facts every part of ucc-tune shares; no torch, no Ray.

- the metrics a run reports, each with its direction in one explicit table (``DIRECTIONS``);
- the objectives a search may optimise (``OBJECTIVES``);
- the names of the files a run, a trial and an experiment consist of;
- ``last_and_best`` of a metric history, and **one** function, ``trial_row``, that turns what is
  known of a trial (its config, its ``metrics.jsonl`` rows, an error, Ray's state) into a row of
  ``trials.parquet`` with **one** status rule (``trial_status``). The search command and
  ``python -m analysis`` both build their tables here, so the two tables have the same columns.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

from ucc_tune.config import BEST_METRICS, CLUSTER_METHODS, Config, ConfigError, field_names

Direction = Literal["max", "min"]

# --- metrics ----------------------------------------------------------------------------------

# every key of a per-epoch report; None: a counter, not something to optimise
EPOCH_METRICS: dict[str, Direction | None] = {
    "epoch": None,  # 0-based
    "epochs_done": None,  # 1-based: ASHA's time attribute
    "train_loss": "min",
    "train_ucc_loss": "min",
    "train_recon_loss": "min",
    "train_rcc_loss": "min",
    "train_consistency_loss": "min",
    "val_ucc_acc": "max",
    "val_loss": "min",
    "cluster_acc": "max",
    "cluster_nmi": "max",
    "cluster_ari": "max",
    "mean_clustering_score": "max",  # mean of ARI and NMI of k-means and k-medoids
    "js_min": "max",
    "js_mean": "max",
    "cluster_eval_epoch": None,
    "time_s": "min",  # training time of the run, resumed runs included
    "instances_per_s": "max",
    "seeds": None,  # how many seeds the row is the mean of (a run of several seeds)
    "seeds_collapsed": None,  # how many of them collapsed (and stopped training)
}
METRIC_NAMES: tuple[str, ...] = tuple(EPOCH_METRICS)
# beside the metrics, a one-seed run's rows carry the best evaluation of ``Config.best_metric`` so
# far (its epoch and value), and its last row the epoch whose weights the test split scored
BEST_EPOCH, BEST_VALUE, TESTED_EPOCH = "best_eval_epoch", "best_eval_value", "tested_epoch"
# the metrics of a trial's history that get last_<name> and best_<name> columns
REPORTED: tuple[str, ...] = tuple(name for name, d in EPOCH_METRICS.items() if d is not None)

# clustering scores computed for every method at the end of a run (``test_<method>_<score>``)
CLUSTER_SCORES: tuple[str, ...] = (
    "acc",
    "acc_paper",
    "nmi",
    "ari",
    "ami",
    "homogeneity",
    "completeness",
    "v_measure",
)
JS_SCORES: tuple[str, ...] = ("js_min", "js_mean", "js_max")
TEST_METRICS: dict[str, Direction] = {
    **{f"test_{m}_{s}": "max" for m in CLUSTER_METHODS for s in CLUSTER_SCORES},
    **{f"test_{s}": "max" for s in JS_SCORES},
    "test_mean_clustering_score": "max",
}
DIRECTIONS: dict[str, Direction | None] = {**EPOCH_METRICS, **TEST_METRICS}

# what a search may optimise: per-epoch metrics with a direction that say something about quality
OBJECTIVES: tuple[str, ...] = BEST_METRICS  # the metrics a run may keep its best checkpoint by


# test scores that get a spread over seeds (``<name>_seed_min``/``_seed_max``) in a trial's row
SPREAD_TESTS: tuple[str, ...] = tuple(
    name
    for name in TEST_METRICS
    if name.endswith(("_acc", "_nmi", "_ari")) or name in ("test_js_min", "test_mean_clustering_score")
)
# a run's objective "still rises" when the mean of its last two evaluations beats the mean of the
# two before by more than this (in the metric's direction): not converged at this budget
RISE_TOLERANCE = 0.01


def metric_direction(name: str) -> Direction:
    """``"max"`` or ``"min"``: which values of metric ``name`` are better."""
    direction = DIRECTIONS.get(name)
    if direction is None:
        ranked = sorted(k for k, v in DIRECTIONS.items() if v is not None)
        raise ValueError(f"metric {name!r} has no direction; metrics with one: {', '.join(ranked)}")
    return direction


def last_and_best(history: Iterable[Mapping[str, Any]], names: Iterable[str]) -> dict[str, float]:
    """``last_<name>`` and ``best_<name>`` (by ``metric_direction``) of each metric over a run's
    rows; NaN where a metric was never reported. ``last_`` is what the last row that reports the
    metric says: NaN when that is NaN, infinite or not a number (never an earlier epoch's value);
    ``best_`` is over the finite values."""
    rows = list(history)
    out: dict[str, float] = {}
    for name in names:
        reported = [_number(r[name]) for r in rows if r.get(name) is not None]
        values = [v for v in reported if v is not None and math.isfinite(v)]
        pick = min if metric_direction(name) == "min" else max
        last = reported[-1] if reported else None
        out[f"last_{name}"] = last if last is not None and math.isfinite(last) else math.nan
        out[f"best_{name}"] = pick(values) if values else math.nan
    return out


def evaluated(row: Mapping[str, Any], name: str) -> bool:
    """Whether the epoch of ``row`` measured ``name``: clustering and JS scores only where the
    clustering evaluation ran (``cluster_eval_epoch == epoch``; other rows repeat it)."""
    clustered = name.startswith(("cluster_", "js_", "mean_clustering_"))
    return not clustered or row.get("cluster_eval_epoch") == row.get("epoch")


def evaluations(history: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    """The values of ``name`` at the epochs that measured it (``evaluated``)."""
    rows = [r for r in history if evaluated(r, name)]
    values = [_number(r.get(name)) for r in rows]
    return [v for v in values if v is not None and math.isfinite(v)]


def still_rising(history: Sequence[Mapping[str, Any]], name: str) -> bool | None:
    """Whether ``name`` was still improving at the end of the run: the mean of its last two
    evaluations beats the mean of the two before by more than ``RISE_TOLERANCE``. None with fewer
    than four evaluations (nothing to tell)."""
    values = evaluations(history, name)
    if len(values) < 4:
        return None
    gain = (values[-1] + values[-2] - values[-3] - values[-4]) / 2
    return bool((gain if metric_direction(name) == "max" else -gain) > RISE_TOLERANCE)


def seed_spread(seed_histories: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """``n_seeds`` and, over the seeds' last rows, ``last_<m>_seed_min``/``_seed_max`` of every
    objective and ``<t>_seed_min``/``_seed_max`` of the ``SPREAD_TESTS`` (NaN where no seed has it)."""
    lasts = [h[-1] for h in seed_histories if h]
    out: dict[str, Any] = {"n_seeds": len(seed_histories)}
    for name, column in [*((m, f"last_{m}") for m in OBJECTIVES), *((t, t) for t in SPREAD_TESTS)]:
        values = [v for v in (_number(r.get(name)) for r in lasts) if v is not None and math.isfinite(v)]
        if values or column.startswith("last_"):
            out[f"{column}_seed_min"] = min(values) if values else math.nan
            out[f"{column}_seed_max"] = max(values) if values else math.nan
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


# --- files ------------------------------------------------------------------------------------

METRICS_FILE = "metrics.jsonl"  # one JSON line per reported epoch, in every run and trial folder
RUN_FILE = "run.json"  # a run's or trial's metadata: trial id, config, placement of its ranks
CONFIG_FILE = "config.json"  # a resolved Config (beside artifacts and in checkpoints)
ARTIFACTS_DIR = "artifacts"  # final artifacts of a run: the files below
JS_FILE = "js.npz"
TEST_FEATURES_FILE = "test_features.npz"
CLUSTER_MODEL_FILE = "cluster_model.npz"  # PCA, centres and cluster -> class matching per method
RECONSTRUCTIONS_FILE = "reconstructions.png"
CHECKPOINT_STATE_FILE = "state.pt"
CHECKPOINTS_DIR = "checkpoints"  # a train run's checkpoints: checkpoints/epoch_NNNN/ and best/
EPOCH_CHECKPOINTS = "epoch_*"  # the names of a train run's epoch checkpoints in checkpoints/
RAY_CHECKPOINTS = "checkpoint_*"  # the names of Tune's and Ray Train's checkpoint folders
BEST_CHECKPOINT_DIR = "best"  # checkpoints/best/: the best epoch's checkpoint, beside epoch_NNNN/
EVALUATION_FILE = "evaluation.json"  # what python -m ucc_tune.evaluate measured, and of what
SEARCH_FILE = "search.json"  # what a search ran: plan, versions, git commit (written once)
STUDY_FILE = "optuna.db"  # the Optuna study (SQLite)
TRIALS_FILE = "trials.parquet"  # one row per trial (``trial_row``)
TRAIN_RUNS_DIR = "train_runs"  # Ray Train runs of DDP trials, one ``train-<trial id>`` each
TRAIN_RUN_PREFIX = "train-"
DDP_RUN_NAME = "ray_train"  # a ``python -m ucc_tune.train --workers N`` run's Ray Train folder
SEEDS_DIR = "seeds"  # a run of several seeds: seeds/seed_<k>/ holds seed k's own files


def seed_name(index: int) -> str:
    """The folder of seed ``index`` (0-based) of a run, in ``seeds/`` and in its checkpoints."""
    return f"seed_{index}"


def epoch_checkpoint(epoch: int) -> str:
    """The folder name of a train run's checkpoint of ``epoch`` (matches ``EPOCH_CHECKPOINTS``)."""
    return f"epoch_{epoch:04d}"


def checkpoint_places(folder: PurePath, trial_id: str | None = None) -> list[tuple[PurePath, str]]:
    """Where a run's or trial's checkpoints are (folder, glob pattern), in the order to look:
    a train run's ``checkpoints/epoch_*``, a ``--workers`` run's Ray Train ``ray_train/checkpoint_*``,
    a DDP trial's Ray Train run beside the trial folders, a trial's own Tune ``checkpoint_*``."""
    places = [(folder / CHECKPOINTS_DIR, EPOCH_CHECKPOINTS), (folder / DDP_RUN_NAME, RAY_CHECKPOINTS)]
    if trial_id is not None:
        places.append((folder.parent / TRAIN_RUNS_DIR / f"{TRAIN_RUN_PREFIX}{trial_id}", RAY_CHECKPOINTS))
    return [*places, (folder, RAY_CHECKPOINTS)]


DRIVER_FILES = (SEARCH_FILE, STUDY_FILE, TRIALS_FILE)  # kept by the search's driver


def metrics_row(line: str) -> dict[str, Any] | None:
    """One line of a ``metrics.jsonl`` as a row, or None when it is not one (damaged, blank,
    no numeric ``epoch``)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) and _is_number(row.get("epoch")) else None


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, or None when it holds none (damaged, truncated, another type)."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def read_history(text: str, notes: list[str] | None = None, source: str = "") -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``, one per epoch in epoch order.

    A damaged line (a driver killed mid-write) is skipped with a note; an epoch reported twice
    (a trial that resumed from an older checkpoint ran it again) keeps its latest row.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = metrics_row(line)
        if row is None:
            if notes is not None:
                notes.append(f"{source}: line {number} is not a metrics row (truncated?); skipped")
            continue
        by_epoch[int(row["epoch"])] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


# --- trials -----------------------------------------------------------------------------------

STATUSES = ("TERMINATED", "STOPPED", "ERROR", "RUNNING", "PENDING")
TRIAL_COLUMNS = ("experiment", "trial_id", "trial_dir", "status", "error", "epochs_run", "wall_time_s")


def trial_status(error: bool, epochs_run: int, planned_epochs: int | None, ray_status: str | None) -> str:
    """The one status rule of a trial.

    ``ERROR``: it raised (or Ray says so). ``RUNNING``/``PENDING``: Ray says it is running or
    waiting (``PAUSED`` counts as waiting). Otherwise it has ended: ``TERMINATED`` when it ran
    every planned epoch, ``STOPPED`` when it ended before (a scheduler such as ASHA stopped it),
    and ``PENDING`` when it never reported an epoch (it never ran, whatever Ray says).
    """
    if error or ray_status == "ERROR":
        return "ERROR"
    if ray_status == "RUNNING":
        return "RUNNING"
    if ray_status in ("PENDING", "PAUSED"):
        return "PENDING"
    if planned_epochs is not None and epochs_run >= planned_epochs:
        return "TERMINATED"
    return "STOPPED" if epochs_run > 0 else "PENDING"


def error_text(error: BaseException) -> str:
    """``Type: message`` (its last line) of the exception a trial raised, or of the exception an
    executor wrapped it in (``cause``)."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:1000]


def resolve_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``Config`` field of a trial: the resolved config when ``values`` make a valid one,
    else the known values as given and None for the rest (a row is never lost to a bad config)."""
    known = {k: v for k, v in values.items() if k in Config.__dataclass_fields__}
    try:
        return Config.from_dict(known).to_dict()
    except ConfigError:
        return {**dict.fromkeys(field_names()), **known}


def trial_row(
    experiment: str,
    trial_id: str,
    trial_dir: str,
    config: Mapping[str, Any],
    history: list[dict[str, Any]],
    error: str | None = None,
    ray_status: str | None = None,
    seed_histories: list[list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """One row of ``trials.parquet``: ``TRIAL_COLUMNS``, every ``Config`` field, ``last_`` and
    ``best_`` of every ``REPORTED`` metric and the final ``test_*`` scores (of a run of several
    seeds: their means), ``n_seeds`` and the spread over seeds (``seed_spread``), and per objective
    whether it was ``rising_<m>`` at the end (``still_rising``).

    ``history`` holds the trial's per-epoch rows (``read_history``), ``seed_histories`` each seed's
    rows when the run had several (``seeds/seed_<k>/metrics.jsonl``; default: ``history`` is the
    one seed); ``wall_time_s`` is the training time of its last row.
    """
    resolved = resolve_config(config)
    epochs_run = max((int(r["epoch"]) + 1 for r in history), default=0)
    planned = resolved.get("epochs")
    last = history[-1] if history else {}
    row: dict[str, Any] = {
        "experiment": experiment,
        "trial_id": trial_id,
        "trial_dir": trial_dir,
        "status": trial_status(error is not None, epochs_run, planned, ray_status),
        "error": error,
        "epochs_run": epochs_run,
        "wall_time_s": float(last["time_s"]) if _is_number(last.get("time_s")) else math.nan,
        **resolved,
        **last_and_best(history, REPORTED),
        **{f"rising_{m}": still_rising(history, m) for m in OBJECTIVES},
    }
    row.update({k: float(v) for k, v in last.items() if k.startswith("test_") and _is_number(v)})
    row.update(seed_spread(seed_histories or [history]))
    row["seeds_collapsed"] = int(last.get("seeds_collapsed") or 0)
    return row


def trials_frame(rows: list[dict[str, Any]]) -> Any:
    """The rows as a pandas DataFrame with one dtype per column: ``Config`` fields in their own
    types (nullable where missing), strings as strings, metrics as float64."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=_columns(rows))
    kinds = {int: "Int64", float: "float64", bool: "boolean", str: "string"}
    for name, tp in typing.get_type_hints(Config).items():
        frame[name] = frame[name].astype(kinds.get(tp, "string"))
    for name in ("experiment", "trial_id", "trial_dir", "status", "error"):
        frame[name] = frame[name].astype("string")
    frame["epochs_run"] = frame["epochs_run"].astype("Int64")
    frame[["n_seeds", "seeds_collapsed"]] = frame[["n_seeds", "seeds_collapsed"]].astype("Int64")
    rising = [f"rising_{m}" for m in OBJECTIVES]
    frame[rising] = frame[rising].astype("boolean")
    config = set(field_names())  # test_fraction is a Config field, not a test score
    metrics = [
        c
        for c in frame
        if c not in config
        and (c.startswith(("last_", "best_", "test_")) or c == "wall_time_s")
        and c not in rising
    ]
    frame[metrics] = frame[metrics].astype("float64")
    return frame


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Fixed columns first, then the test scores some trials have (in first-seen order)."""
    fixed = [*TRIAL_COLUMNS, *field_names()]
    fixed += [f"{k}_{m}" for m in REPORTED for k in ("last", "best")]
    fixed += [
        "n_seeds",
        "seeds_collapsed",
        *(f"last_{m}_seed_{b}" for m in OBJECTIVES for b in ("min", "max")),
    ]
    fixed += [f"rising_{m}" for m in OBJECTIVES]
    extra = dict.fromkeys(k for row in rows for k in row if k not in fixed)
    return fixed + list(extra)
