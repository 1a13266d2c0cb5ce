"""The tables a search writes: ``search.json`` once when it starts (the plan and what ran) and
``trials.parquet`` at the end (a row per trial from its own files, ranked; the Pareto front of
a search with several objectives).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ucc_tune.config import Config
from ucc_tune.schema import (
    METRICS_FILE,
    RUN_FILE,
    SEARCH_FILE,
    SEEDS_DIR,
    TRIALS_FILE,
    json_object,
    read_history,
    seed_name,
    trial_row,
    trials_frame,
)
from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.ranking import on_pareto_front, rank_trials
from ucc_tune.storage import Storage, redact


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
