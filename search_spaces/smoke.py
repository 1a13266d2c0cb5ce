"""Does the search machinery work end to end? Two parameters and a tiny budget (tests, --smoke-test)."""

from typing import Any

NUM_SAMPLES = 2


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.5, 1.0)
    trial.suggest_float("lr", 1e-3, 1e-2, log=True)
    return {"epochs": 2, "steps_per_epoch": 3, "bag_size": 8, "bags_per_label": 2, "eval_bags_per_label": 3}
