"""Named search spaces: one file per question, each ``def space(trial) -> dict`` (define-by-run).

``space`` only calls ``trial.suggest_*`` (with ``Config`` field names as parameter names) and
returns constants to fix alongside. A space that defines ``GRID`` (parameter -> values) is
searched exhaustively, one trial per grid point, instead of by TPE. ``get_space`` also loads a
user's own ``.py`` file, which means running that file's code.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from search_spaces import alpha_sweep, bag_size, full, kde_bandwidth, loss_weights, smoke

SpaceFn = Callable[[Any], dict[str, Any]]

SPACES: dict[str, SpaceFn] = {
    "alpha_sweep": alpha_sweep.space,
    "bag_size": bag_size.space,
    "kde_bandwidth": kde_bandwidth.space,
    "loss_weights": loss_weights.space,
    "full": full.space,
    "smoke": smoke.space,
}


def _module(name_or_path: str) -> ModuleType:
    if name_or_path in SPACES:
        return importlib.import_module(f"search_spaces.{name_or_path}")
    path = Path(name_or_path)
    if path.suffix != ".py":
        raise ValueError(
            f"unknown search space {name_or_path!r}; choose one of {', '.join(SPACES)} or a .py file"
        )
    if not path.is_file():
        raise ValueError(f"search space file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"user_space_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_space(name_or_path: str) -> SpaceFn:
    """A registered space by name, or ``space`` from a ``.py`` file (the file's code is run)."""
    if name_or_path in SPACES:
        return SPACES[name_or_path]
    fn = getattr(_module(name_or_path), "space", None)
    if not callable(fn):
        raise ValueError(f"{name_or_path} must define `def space(trial) -> dict`")
    return fn


def get_grid(name_or_path: str) -> dict[str, list[Any]] | None:
    """The space's ``GRID`` (parameter -> values), when it asks to be searched exhaustively."""
    grid = getattr(_module(name_or_path), "GRID", None)
    return dict(grid) if grid else None
