"""Which model, learning rate and loss weight learn fastest on real MNIST digits on a CPU?

Short trials (8 epochs of 50 steps, 2 bags per ucc label) on the
5,000-digit ``mnist_sample``; ASHA stops the slow learners after half the epochs. The winner seeds
``benchmarks/quality_mnist_sample.py``'s long run.
"""

from typing import Any

NUM_SAMPLES = 16


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_categorical("model", ["paper", "conv"])
    trial.suggest_float("lr", 1e-4, 3e-3, log=True)
    trial.suggest_categorical("alpha", [0.5, 0.75, 1.0])
    trial.suggest_categorical("bag_size", [8, 16, 32])
    trial.suggest_categorical("num_features", [10, 16, 32])
    return {
        "dataset": "mnist_sample",
        "epochs": 8,
        "steps_per_epoch": 50,
        "bags_per_label": 2,
    }
