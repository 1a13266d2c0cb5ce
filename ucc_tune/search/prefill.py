"""What a search's Optuna study holds before its first suggestion: enqueued configurations and
the finished trials of an earlier experiment (optuna, no Ray, no torch).

``--enqueue key=value,...`` names configurations to run first: each is checked against the space
(its keys must be searched parameters, its values valid ``Config`` values inside the space's
distributions) and put into the study with ``Study.enqueue_trial``, so the searcher's next asks
return them. ``--warm-start EXPERIMENT`` copies the COMPLETE and PRUNED trials (values and
intermediate values: TPE ranks pruned trials by how far they got) of an earlier experiment with
the same searched parameters, distributions and objectives into the new study with
``Study.add_trials``; they carry the user attribute ``WARM_ATTR`` and never become Tune trials.

The space is checked by replaying configurations through it in a throwaway in-memory study: the
parameters it suggests for those values and their distributions are exactly what the search's
study will see, conditional parameters included.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from ucc_tune.config import Config, ConfigError
from ucc_tune.schema import SEARCH_FILE, STUDY_FILE
from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.spaces import Space
from ucc_tune.storage import is_uri

WARM_ATTR = "warm_start_from"  # user attribute of a trial copied from an earlier experiment
WARM_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class WarmStartError(ValueError):
    """An ``--enqueue`` or ``--warm-start`` the space or the objectives do not allow."""


def parse_enqueue(items: Sequence[str]) -> list[dict[str, str]]:
    """``["alpha=0.5,lr=0.001", ...]`` (one string per ``--enqueue``) as one dict each."""
    configs = []
    for item in items:
        config: dict[str, str] = {}
        for pair in item.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip() or key.strip() in config:
                raise WarmStartError(
                    f"--enqueue {item!r}: give key=value pairs, each key once, comma-separated"
                )
            config[key.strip()] = value.strip()
        configs.append(config)
    return configs


def replay(space: Space, configs: Sequence[Mapping[str, Any]]) -> list[optuna.trial.Trial]:
    """Each configuration run through the space as a trial of a throwaway study (parameters the
    configuration does not name are drawn at random); the trials hold the parameters and
    distributions the space suggested. A value the space cannot take raises WarmStartError."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trials = []
    for config in configs:
        study.enqueue_trial(dict(config))
        trial = study.ask()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # out-of-range values are reported by the callers
                space.fn(trial)
        except Exception as err:  # a categorical value that is not a choice, or the space's own check
            raise WarmStartError(
                f"the space {space.source} cannot take {dict(config)}: {type(err).__name__}: {err}"
            ) from None
        study.tell(trial, 0.0)
        trials.append(trial)
    return trials


def check_enqueue(
    raw: Sequence[Mapping[str, str]], space: Space, searched: Sequence[str], fixed: Mapping[str, Any]
) -> tuple[dict[str, Any], ...]:
    """The ``--enqueue`` configurations as typed parameter values, each checked: its keys are
    searched parameters (all of the grid's for a grid space), its values make a valid ``Config``
    with the fixed values and lie inside the distributions the space gives them."""
    typed = []
    for config in raw:
        text = ",".join(f"{k}={v}" for k, v in config.items())
        unknown = sorted(set(config) - set(searched))
        if unknown:
            raise WarmStartError(
                f"--enqueue {text}: {', '.join(unknown)} is not searched by the space {space.source}; "
                f"its searched parameters are {', '.join(searched)}"
            )
        missing = sorted(set(space.grid or {}) - set(config))
        if missing:
            raise WarmStartError(
                f"--enqueue {text}: a grid space needs every grid parameter; add {', '.join(missing)}"
            )
        try:
            values = Config.from_dict({**fixed, **config})
        except ConfigError as err:
            raise WarmStartError(f"--enqueue {text}: {err}") from None
        typed.append({k: getattr(values, k) for k in config})
    for config, trial in zip(typed, replay(space, typed), strict=True):
        for key, value in config.items():
            _check_in_space(key, value, trial)
    return tuple(typed)


def _check_in_space(key: str, value: Any, trial: optuna.trial.Trial) -> None:
    """``value`` lies inside the distribution the space gave ``key`` in ``trial``."""
    if key not in trial.distributions:
        raise WarmStartError(
            f"--enqueue {key}={value}: the space does not search {key} together with "
            f"{', '.join(f'{k}={v}' for k, v in trial.params.items())}"
        )
    distribution = trial.distributions[key]
    try:
        inside = distribution._contains(distribution.to_internal_repr(value))
    except ValueError:
        inside = False
    if not inside:
        raise WarmStartError(f"--enqueue {key}={value}: outside the space's {distribution}")


def enqueue(study: optuna.Study, configs: Sequence[Mapping[str, Any]]) -> int:
    """Put the configurations into ``study`` to be asked for first, skipping any the study
    already holds (a resumed search enqueues nothing twice); returns how many were added."""
    before = len(study.get_trials(deepcopy=False))
    for config in configs:
        study.enqueue_trial(dict(config), skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) - before


def find_experiment(given: str, storage_path: str) -> Path:
    """The earlier experiment of ``--warm-start``: a local folder, or a name under a local
    ``--storage-path``; it must hold ``search.json`` and ``optuna.db``."""
    candidates = [Path(given).expanduser()]
    if not is_uri(storage_path) and "/" not in given:
        candidates.append(Path(storage_path).expanduser() / given)
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise WarmStartError(
            f"--warm-start {given}: no experiment folder {' or '.join(str(c) for c in candidates)}"
        )
    for name in (SEARCH_FILE, STUDY_FILE):
        if not (folder / name).is_file():
            raise WarmStartError(
                f"--warm-start {given}: {folder} has no {name}, so it is no search experiment"
            )
    return folder.resolve()


def check_warm_start(folder: Path, space: Space, plan: SearchPlan) -> dict[str, Any]:
    """What ``--warm-start`` copies, once the earlier experiment is known to share the plan's
    searched parameters, their distributions (every earlier trial replayed through the space)
    and the objectives with their directions: ``experiment``, ``study`` and the counts."""
    record = json.loads((folder / SEARCH_FILE).read_text())
    where = f"--warm-start {folder}"
    if list(record.get("searched", [])) != list(plan.searched):
        raise WarmStartError(
            f"{where}: it searched {', '.join(record.get('searched', [])) or 'nothing'}, this search "
            f"searches {', '.join(plan.searched)}; only the same space can warm-start"
        )
    theirs = (record.get("metrics", []), record.get("modes", []))
    if theirs != (list(plan.metrics), list(plan.modes)):
        raise WarmStartError(
            f"{where}: its objectives were {_objectives(*theirs)}, this search's are "
            f"{_objectives(plan.metrics, plan.modes)}; only the same objectives can warm-start"
        )
    trials = finished_trials(folder, record["name"])
    if not trials:
        raise WarmStartError(f"{where}: its study has no COMPLETE or PRUNED trial to start from")
    replayed = replay(space, [{**t.params} for t in trials])
    for earlier, now in zip(trials, replayed, strict=True):
        for key in sorted(set(earlier.distributions) | set(now.distributions)):
            there, here = earlier.distributions.get(key), now.distributions.get(key)
            if there != here:
                raise WarmStartError(
                    f"{where}: its trial {earlier.number} has {key} from {there}, this space gives {here} "
                    "for the same values; only the same space can warm-start"
                )
    states = [t.state for t in trials]
    return {
        "experiment": str(folder),
        "study": record["name"],
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
    }


def _objectives(metrics: Sequence[str], modes: Sequence[str]) -> str:
    return ", ".join(f"{metric} ({mode})" for metric, mode in zip(metrics, modes, strict=False)) or "none"


def finished_trials(folder: Path, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The COMPLETE and PRUNED trials of the experiment's study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{folder / STUDY_FILE}")
    return study.get_trials(states=WARM_STATES)


def add_warm_trials(study: optuna.Study, source: Mapping[str, Any]) -> int:
    """Copy the earlier experiment's finished trials into ``study``: their parameters,
    distributions, values and intermediate values, marked with ``WARM_ATTR`` (a trial that
    was itself copied keeps its first source). Returns how many were added."""
    folder = Path(source["experiment"])
    copies = [
        optuna.trial.create_trial(
            state=t.state,
            values=t.values if t.state == optuna.trial.TrialState.COMPLETE else None,
            params=t.params,
            distributions=t.distributions,
            intermediate_values=t.intermediate_values,
            user_attrs={WARM_ATTR: str(folder), **t.user_attrs},
        )
        for t in finished_trials(folder, source["study"])
    ]
    study.add_trials(copies)
    return len(copies)


def prefilled_plan(plan: SearchPlan, enqueued: Sequence[str], warm_start: str | None) -> SearchPlan:
    """``plan`` with the checked ``--enqueue`` configurations and ``--warm-start`` source."""
    configs = check_enqueue(parse_enqueue(enqueued), plan.space, plan.searched, plan.fixed)
    source = None
    if warm_start is not None:
        if plan.resume:
            raise WarmStartError(
                "--warm-start with --resume: the earlier trials were added when the search started"
            )
        source = check_warm_start(find_experiment(warm_start, plan.storage), plan.space, plan)
    return replace(plan, enqueue=configs, warm_start=source)


def prefill_study(study: optuna.Study, plan: SearchPlan) -> None:
    """Before the first suggestion: the plan's enqueued configurations, then (a new search
    only) the warm-start trials, into the study the searcher asks."""
    if added := enqueue(study, plan.enqueue):
        print(f"enqueued {added} configuration(s) to run first")
    if plan.warm_start is not None and not plan.resume:
        copied = add_warm_trials(study, plan.warm_start)
        print(f"warm start: {copied} finished trial(s) of {plan.warm_start['experiment']}")


def add_prefill_arguments(parser: Any) -> None:
    """``--enqueue`` (repeatable) and ``--warm-start`` of the search command."""
    parser.add_argument(
        "--enqueue",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="a configuration of searched parameters to run first, e.g. alpha=0.5,lr=0.001 (repeatable; "
        "parameters left out are suggested as usual)",
    )
    parser.add_argument(
        "--warm-start",
        metavar="EXPERIMENT",
        help="an earlier experiment (folder, or name under --storage-path) of the same space and "
        "objectives: its COMPLETE and PRUNED trials inform the sampler from the start",
    )
