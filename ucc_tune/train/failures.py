"""Failures that would repeat the same way are not retried.

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

from ucc_tune.config import ConfigError
from ucc_tune.data.bags import BagSizeError
from ucc_tune.schema import error_text
from ucc_tune.train.loop import FeatureCollapseError, NonFiniteLossError
from ucc_tune.train.session import RunFolder

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
