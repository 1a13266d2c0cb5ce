"""How should the loss terms be weighted? ``alpha``, the RCC and consistency weights, the recon loss."""

from typing import Any


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.1, 1.0)
    trial.suggest_float("rcc_weight", 0.0, 1.0)
    trial.suggest_float("consistency_weight", 0.0, 0.5)
    trial.suggest_categorical("recon_loss", ["mse", "ssim", "mse+ssim"])
    return {}
