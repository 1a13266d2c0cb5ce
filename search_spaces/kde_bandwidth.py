"""Which KDE bandwidth and how many bins? ``kde_sigma`` on a log scale and ``num_bins``."""

from typing import Any


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("kde_sigma", 0.01, 0.5, log=True)
    trial.suggest_int("num_bins", 5, 31, step=2)
    return {}
