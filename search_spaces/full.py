"""Everything at once: the union of the named spaces, with conditional parameters.

The reconstruction loss only matters with a decoder (alpha < 1) and the consistency
temperature only with a consistency term, so they are suggested only then.
"""

from typing import Any


def space(trial: Any) -> dict[str, Any]:
    alpha = trial.suggest_float("alpha", 0.0, 1.0)
    if alpha < 1.0:
        trial.suggest_categorical("recon_loss", ["mse", "ssim", "mse+ssim"])
    bag_size = trial.suggest_categorical("bag_size", [8, 16, 32, 64])
    trial.suggest_categorical("ucc_min", [1, 2])
    trial.suggest_float("kde_sigma", 0.01, 0.5, log=True)
    trial.suggest_int("num_bins", 5, 31, step=2)
    trial.suggest_float("rcc_weight", 0.0, 1.0)
    if trial.suggest_float("consistency_weight", 0.0, 0.5) > 0.0:
        trial.suggest_float("consistency_temperature", 0.05, 0.5, log=True)
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    return {"bags_per_label": max(1, 160 // bag_size), "ucc_max": 4}
