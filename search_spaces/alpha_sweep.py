"""How much should the autoencoder branch weigh? Sweeps ``alpha`` over 0, 0.25, ..., 1.

The paper's central comparison: UCC (alpha = 0.5) against UCC with no decoder (alpha = 1), with
the rest of the defaults fixed; alpha = 0 is the pure autoencoder baseline (no labels at all).
This is the demo's search (``make demo``), so its budget is chosen for a 2-core CPU and for an
answer at convergence: five configurations, each on three seeds (a trial reports their mean, and
the ranking compares the seeds' ranges), 15 epochs of 100 steps on ``digits`` with the
``linear`` model (a 512-256 perceptron encoder and its mirror decoder, ~0.02 s a step on one
thread, where the paper's convolutional encoder and decoder take ~0.6 s). Measured on seed 0:
alpha = 0.5 rises to ~0.95 validation cluster accuracy by epoch 11 and stays there, alpha = 0
levels off at ~0.70 from epoch 3, alpha = 1 at ~0.62 from epoch 10; ``--set model=paper`` asks
the same question of the paper's architecture at about 30 times the cost.
"""

from typing import Any

GRID = {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0]}  # every value once
NUM_SAMPLES = 5  # trials when --num-samples is not given: the whole grid


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.0, 1.0, step=0.25)
    return {"model": "linear", "epochs": 15, "steps_per_epoch": 100, "seeds": 3}
