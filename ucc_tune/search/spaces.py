"""Search spaces: the named ones in ``search_spaces/`` and a user's own ``.py`` file.

A space is a module with ``def space(trial) -> dict`` (define-by-run: it calls
``trial.suggest_*`` with ``Config`` field names and returns constants to fix), and optionally
``GRID`` (parameter -> values: searched exhaustively, one trial per point) and ``NUM_SAMPLES``
(its default budget). ``load_space`` reads one; ``probe`` checks, before anything runs, that
its trials make valid ``Config``s; ``SpaceWithConstants`` is what the Optuna searcher calls
(its sampler is ``ucc_tune.search.samplers``'). Loading a user's file runs that file's code.
Optuna is imported only to probe.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ucc_tune.bounds import MAX_TRIALS, BoundsError, check_number
from ucc_tune.config import Config, ConfigError, field_names

SpaceFn = Callable[[Any], dict[str, Any]]
DEFAULT_SAMPLES = 8  # trials of a space that names no NUM_SAMPLES and no GRID
PROBE_TRIALS = 32  # random trials drawn by ``probe`` to find every (conditional) parameter

# name -> module: one entry per file in search_spaces/
SPACES: dict[str, str] = {
    "alpha_sweep": "search_spaces.alpha_sweep",
    "bag_size": "search_spaces.bag_size",
    "kde_bandwidth": "search_spaces.kde_bandwidth",
    "loss_weights": "search_spaces.loss_weights",
    "full": "search_spaces.full",
    "recipe": "search_spaces.recipe",
    "smoke": "search_spaces.smoke",
}


class SpaceError(ValueError):
    """A space that cannot be used: unknown name, missing file, no ``space`` function, or
    trials that do not make a valid ``Config``."""


@dataclass(frozen=True)
class Space:
    """A loaded space: where it came from (a name or an absolute path) and what it defines."""

    source: str
    fn: SpaceFn
    grid: dict[str, list[Any]] | None
    num_samples: int

    @property
    def label(self) -> str:
        """The name, or the file's stem: what experiment names start with."""
        return Path(self.source).stem

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as where it came from and loaded again from there: Tune saves the searcher
        (and its space) with the experiment, and a user's ``.py`` space is no importable module."""
        return load_space, (self.source,)


def _module(name_or_path: str) -> ModuleType:
    if name_or_path in SPACES:
        return importlib.import_module(SPACES[name_or_path])
    path = Path(name_or_path)
    if path.suffix != ".py":
        raise SpaceError(
            f"unknown search space {name_or_path!r}; choose one of {', '.join(SPACES)} or a .py file"
        )
    if not path.is_file():
        raise SpaceError(f"search space file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"user_space_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # a syntax error, a failing import, sys.exit: the user's file
        raise SpaceError(
            f"search space file {str(path)!r} cannot be loaded: {type(err).__name__}: {err}"
        ) from None
    return module


def load_space(name_or_path: str) -> Space:
    """A registered space by name, or a ``.py`` file (its code is run)."""
    module = _module(name_or_path)
    fn = getattr(module, "space", None)
    if not callable(fn):
        raise SpaceError(f"{name_or_path} must define `def space(trial) -> dict`")
    grid = _grid(name_or_path, getattr(module, "GRID", None))
    points = math.prod(len(values) for values in (grid or {}).values())
    num_samples = getattr(module, "NUM_SAMPLES", points if grid else DEFAULT_SAMPLES)
    try:
        check_number(f"{name_or_path}: NUM_SAMPLES =", num_samples, 1, MAX_TRIALS, whole=True)
    except BoundsError as err:
        raise SpaceError(str(err)) from None
    source = name_or_path if name_or_path in SPACES else str(Path(name_or_path).resolve())
    return Space(source, fn, grid, num_samples)


def _grid(where: str, grid: Any) -> dict[str, list[Any]] | None:
    """A module's ``GRID`` checked: ``None``, or Config field names each with a non-empty list
    (or tuple) of values."""
    if grid is None:
        return None
    if not isinstance(grid, Mapping) or not grid:
        raise SpaceError(f"{where}: GRID = {grid!r} must be a non-empty dict of parameter -> list of values")
    for name, values in grid.items():
        if name not in field_names():
            raise SpaceError(f"{where}: GRID names {name!r}, not a Config field; use Config field names")
        if not isinstance(values, (list, tuple)) or not values:
            raise SpaceError(f"{where}: GRID[{name!r}] = {values!r} must be a non-empty list of values")
    return {k: list(v) for k, v in grid.items()}


def probe(
    space: Space, fixed: Mapping[str, Any], user_set: set[str]
) -> tuple[list[str], list[Config], list[str]]:
    """Draw ``PROBE_TRIALS`` random trials (and every grid point) from a throwaway study: every
    name must be a ``Config`` field, every trial with ``fixed`` must make a valid ``Config``,
    and ``user_set`` (the ``--set`` keys) may not name a searched parameter. The first draw must
    make a valid ``Config`` (else ``ConfigError``); a later invalid draw only adds a line to
    ``problems`` (such trials fail as ERROR rows, the search goes on). Returns the searched
    parameter names, the valid Configs drawn and the problems."""
    import optuna

    from ucc_tune.search.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(space.grid, 1, seed=0) if space.grid else optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    searched: set[str] = set()
    configs: list[Config] = []
    problems: list[str] = []
    for _ in range(min(space.num_samples, PROBE_TRIALS) if space.grid else PROBE_TRIALS):
        trial = study.ask()
        try:
            constants = space.fn(trial)
        except Exception as err:  # the user's space function failed on a draw
            raise SpaceError(f"space() of {space.source} raised {type(err).__name__}: {err}") from None
        if constants is None:
            constants = {}
        if not isinstance(constants, dict):
            raise SpaceError(
                f"space() of {space.source} returned {type(constants).__name__}; it must return a dict"
            )
        if both := sorted(set(constants) & set(trial.params)):
            raise SpaceError(
                f"space() of {space.source} both searches and returns {', '.join(both)}; "
                "a returned constant would replace every drawn value: do one or the other"
            )
        clash = sorted(user_set & set(trial.params))
        if clash:
            raise SpaceError(
                f"--set {', '.join(clash)}: the space searches it; drop the --set or use another space"
            )
        values = {**constants, **fixed, **trial.params}
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise SpaceError(f"the space sets unknown key(s) {', '.join(unknown)}; use Config field names")
        try:
            configs.append(Config.from_dict(values))
        except ConfigError as err:
            if not configs and not problems:
                raise
            problems.append(str(err))
        searched |= set(trial.params)
        study.tell(trial, 0.0)
    return sorted(searched), configs, problems


class SpaceWithConstants:
    """A space plus the fixed ``--set`` values as constants of every trial: what the Optuna
    searcher calls for each trial. ``fixed`` overrides the constants a space returns (its
    default budget, say); ``probe`` has made sure it names no searched parameter.

    It pickles (Tune saves the searcher) as the space's source, which a restored search loads
    again (``Space.__reduce__``).
    """

    def __init__(self, space: Space, fixed: Mapping[str, Any]):
        self.space, self.fixed = space, dict(fixed)

    def __call__(self, trial: Any) -> dict[str, Any]:
        return {**(self.space.fn(trial) or {}), **self.fixed}
