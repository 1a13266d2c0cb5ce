"""How a run fails: the errors training raises when going on would waste compute
(``NonFiniteLossError``, ``FeatureCollapseError``), and why failures that would repeat the same way
are not retried.

A retried trial resumes from its checkpoint and replays exactly, so an invalid config, bags too
large for a split, a non-finite loss or collapsed features fail again, after spending the
compute a second time. (Missing data is retried: on a cluster the retry may run on a node that
has it, and the search checks the data on its own node before it starts.) ``fails_once``
records such a failure in the run's ``run.json`` (``failed``) and makes a retry of that run stop
at once with ``NotRetried``, whose message carries the first failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ucc_tune.config import ConfigError
from ucc_tune.data.bags import BagSizeError
from ucc_tune.schema import error_text
from ucc_tune.train.session import RunFolder


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; says which term, at which epoch and step."""

    def __init__(self, term: str, epoch: int, step: int, value: float):
        self.term, self.epoch, self.step, self.value = term, epoch, step, value
        super().__init__(
            f"non-finite {term} loss ({value}) at epoch {epoch}, step {step}; "
            "no checkpoint was written for this epoch (try a lower lr or grad_clip)"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # Ray sends a trial's exception between processes
        return type(self), (self.term, self.epoch, self.step, self.value)


class FeatureCollapseError(RuntimeError):
    """The features stopped carrying class information (saturated, or identical class KDEs):
    training on would only spend compute. Says at which epoch, what was seen and the likely cause."""

    def __init__(self, epoch: int, reason: str, lr: float):
        self.epoch, self.reason, self.lr = epoch, reason, lr
        super().__init__(
            f"the features collapsed at epoch {epoch}: {reason}; the run stops here. Likely cause: a "
            f"learning rate too high for this input (lr={lr:g}; the paper used 1e-4 at 28x28), or "
            "too short a warm-up (warmup_steps)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.epoch, self.reason, self.lr)


REPEATING = (ConfigError, BagSizeError, FeatureCollapseError, NonFiniteLossError)


class NotRetried(RuntimeError):
    """A retry of a run whose failure would repeat: stopped before any work."""


@contextmanager
def fails_once(folder: RunFolder) -> Iterator[None]:
    """Run the block unless ``folder``'s run already failed in a way that repeats; record such
    a failure when the block raises one."""
    failed = folder.info().get("failed")
    if failed:
        raise NotRetried(f"{failed} (it would fail the same way again: not retried)")
    try:
        yield
    except REPEATING as err:
        folder.update_info(failed=error_text(err))
        raise
