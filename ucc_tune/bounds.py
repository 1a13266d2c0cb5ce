"""The one check every number a user gives passes: of the right kind, finite, within its range.

Flags, ``--set`` values and space-file constants all go through ``check_number``, so a value
such as ``nan``, ``inf``, ``1e-9`` CPUs or a seed wider than the random generators take is
refused with one message that names it and says what is allowed, before anything starts.
"""

from __future__ import annotations

import math
from typing import Any

SEED_LIMIT = 2**32  # numpy's and scikit-learn's random states take seeds below this
MAX_TRIALS = 100_000  # trials one search may plan (each is a row, a folder and a study entry)


class BoundsError(ValueError):
    """A number out of its allowed range; the message names the value and the range."""


def check_number(
    label: str, value: Any, low: float | None = None, high: float | None = None, whole: bool = False
) -> None:
    """Raise ``BoundsError`` unless ``value`` is a finite number (an integer if ``whole``) in
    ``[low, high]`` (an open end where ``None``)."""
    is_number = isinstance(value, int if whole else (int, float)) and not isinstance(value, bool)
    in_range = (
        is_number
        and math.isfinite(value)
        and (low is None or value >= low)
        and (high is None or value <= high)
    )
    if not in_range:
        kind = "a whole number" if whole else "a number"
        raise BoundsError(f"{label} {value!r}: must be {kind} {_range_text(low, high)}")


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {_text(low)} to {_text(high)}"
    if low is not None:
        return f">= {_text(low)}"
    return f"<= {_text(high)}" if high is not None else "(finite)"


def _text(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
