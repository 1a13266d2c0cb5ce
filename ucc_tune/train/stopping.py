"""The best epoch of a run so far, and when a run stops early (no torch).

A run follows one metric, ``Config.best_metric``, in the direction ``ucc_tune.schema`` gives it.
Only epochs that computed the metric count as evaluations (``schema.evaluated``: the clustering
and JS scores at the epochs of ``cluster_eval_epoch``; other epochs repeat them). An evaluation
*improves* when it beats the best so far by at least ``min_delta`` in the metric's direction
(strictly better when ``min_delta`` is 0); it then becomes the best. ``patience`` evaluations in
a row without an improvement stop the run after the one that exhausts it (0: never stop early).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ucc_tune.config import Config
from ucc_tune.schema import BEST_EPOCH, BEST_VALUE, TESTED_EPOCH, metric_direction

SUPERVISION_LABELS: dict[str, str] = {
    "ucc": "UCC (bag labels only)",
    "instance": "supervised baseline (instance labels)",
}
NO_LABELS = "autoencoder (no labels: alpha=0 gives the UCC loss no weight)"


@dataclass
class BestSoFar:
    """The best evaluation of ``metric`` so far: its ``value``, its ``epoch`` (None before the
    first evaluation) and ``stale``, the evaluations since it that did not improve on it."""

    metric: str
    value: float | None = None
    epoch: int | None = None
    stale: int = 0

    def update(self, value: float, epoch: int, min_delta: float) -> bool:
        """Count the evaluation ``value`` of ``epoch``; True when it improved (and is the best)."""
        sign = 1.0 if metric_direction(self.metric) == "max" else -1.0
        gain = math.inf if self.value is None else sign * (value - self.value)
        if math.isfinite(value) and gain > 0 and gain >= min_delta:
            self.value, self.epoch, self.stale = float(value), int(epoch), 0
            return True
        self.stale += 1
        return False

    def exhausted(self, patience: int) -> bool:
        """Whether the run should stop here: ``patience`` evaluations without an improvement."""
        return patience > 0 and self.stale >= patience

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["metric"] != self.metric:
            raise ValueError(
                f"the checkpoint follows best_metric={state['metric']!r}, this run {self.metric!r}; "
                "resume with the same best_metric"
            )
        self.value, self.epoch, self.stale = state["value"], state["epoch"], int(state["stale"])


def stop_reason(epochs_run: int, epochs: int, best_epoch: int | None, patience: int, min_delta: float) -> str:
    """Why a run of ``epochs`` planned epochs ended after ``epochs_run``, in words."""
    if epochs_run >= epochs:
        return f"ran all {epochs} epochs"
    return f"no improvement >= {min_delta:g} in {patience} evaluations since epoch {best_epoch}"


def supervision_label(config: Config) -> str:
    """What a run of ``config`` learns from, in words: bag labels (UCC), instance labels (the
    supervised baseline), or none at all (``alpha=0`` without the RCC terms: only the
    autoencoder's loss counts)."""
    if config.supervision == "ucc" and config.alpha == 0 and not config.use_rcc:
        return NO_LABELS
    return SUPERVISION_LABELS[config.supervision]


def run_outcome(config: Config, last: Mapping[str, Any]) -> dict[str, Any]:
    """What a run trained and how it ended, from its last row ``last`` (for ``run.json`` and the
    summary): ``supervision`` in words, the best epoch of ``best_metric`` and its value (None in
    a run of several seeds, whose rows are means), why it stopped, whose weights the test scored."""
    best_epoch = last.get(BEST_EPOCH)
    epochs_run = int(last.get("epochs_done", 0))
    return {
        "supervision": supervision_label(config),
        "best_metric": config.best_metric,
        "best_epoch": best_epoch,
        "best_value": last.get(BEST_VALUE),
        "stop_reason": stop_reason(epochs_run, config.epochs, best_epoch, config.patience, config.min_delta),
        "tested_epoch": last.get(TESTED_EPOCH),
    }
