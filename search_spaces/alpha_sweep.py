"""How much should the autoencoder branch weigh? Sweeps ``alpha`` over 0, 0.25, ..., 1.

The paper's central comparison: UCC (alpha = 0.5) against UCC with no decoder (alpha = 1), with
the rest of the defaults fixed; alpha = 0 is the pure autoencoder baseline. This is the demo's
search (``make demo``), so its budget is chosen for a 2-core CPU: five configurations, each on
three seeds (a trial reports their mean, and the ranking compares the seeds' ranges), 6 epochs of
40 steps on ``digits``. At this budget alpha >= 0.5 is still learning when the trials end; the
search's verdict says so, and the ranking is a statement about this budget.
"""

from typing import Any

GRID = {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0]}  # every value once
NUM_SAMPLES = 5  # trials when --num-samples is not given: the whole grid


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.0, 1.0, step=0.25)
    return {"epochs": 6, "steps_per_epoch": 40, "seeds": 3}
