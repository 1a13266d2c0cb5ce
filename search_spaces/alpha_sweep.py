"""How much should the autoencoder branch weigh? Sweeps ``alpha`` over [0, 1], ``alpha = 1`` included.

The paper's central comparison: UCC (alpha = 0.5) against UCC with no decoder (alpha = 1), with
the rest of the defaults fixed. alpha = 0 is the pure autoencoder baseline.
"""

from typing import Any

GRID = {"alpha": [i / 8 for i in range(9)]}  # every value once
NUM_SAMPLES = 9  # trials when --num-samples is not given: the whole grid


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.0, 1.0, step=0.125)
    return {"epochs": 8, "steps_per_epoch": 50}  # the demo budget: 9 trials in about 10 minutes
