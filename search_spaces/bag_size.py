"""Which bag size, and which ucc range (the paper's 1..4 against its 2..4 variant without pure bags)?

Bags per label are tied to the bag size so every step sees about 640 instances.
"""

from typing import Any


def space(trial: Any) -> dict[str, Any]:
    bag_size = trial.suggest_categorical("bag_size", [8, 16, 32, 64])
    trial.suggest_categorical("ucc_min", [1, 2])
    return {"bags_per_label": max(1, 160 // bag_size), "ucc_max": 4}
