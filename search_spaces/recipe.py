"""Which optimisation recipe trains UCC without collapse? ``lr``, ``warmup_steps`` and the
feature layer's initialisation, at ``alpha=1`` (UCC alone, the case that collapsed most often).

Each trial trains 6 seeds for 200 steps (a collapse shows in the first epochs); a seed that
collapses keeps the scores it collapsed with, so the mean ``cluster_acc`` a trial reports counts
collapses as the failures they are, and ``trials.parquet``'s ``seeds_collapsed`` counts them.
Run: ``python -m ucc_tune.search --space recipe`` (about an hour on a 2-core CPU).
"""

from typing import Any

NUM_SAMPLES = 16


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("lr", 1e-4, 3e-3, log=True)
    trial.suggest_categorical("warmup_steps", [0, 50, 100, 200])
    trial.suggest_categorical("feature_init", ["glorot", "data"])
    return {"alpha": 1.0, "seeds": 6, "epochs": 2, "steps_per_epoch": 100}
