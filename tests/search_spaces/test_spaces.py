"""Every named space gives trials that make a valid Config; every space file is registered; the
loader reads names and users' files and refuses what it cannot use."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest

import search_spaces
from ucc_tune.config import Config, field_names
from ucc_tune.search.samplers import trial_outcome
from ucc_tune.search.spaces import SPACES, SpaceError, SpaceWithConstants, load_space, probe

optuna.logging.set_verbosity(optuna.logging.WARNING)
State = optuna.trial.TrialState


@pytest.mark.parametrize("name", sorted(SPACES))
def test_space_trials_build_valid_configs(name: str) -> None:
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        constants = space.fn(trial)
        values = {**trial.params, **constants}
        assert set(values) <= set(field_names()), "parameter names must be Config fields"
        config = Config.from_dict(values)
        for key, value in values.items():
            assert getattr(config, key) == value
        study.tell(trial, 0.0)


def test_every_space_file_is_registered() -> None:
    folder = Path(search_spaces.__file__).parent
    files = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    assert files == set(SPACES)


def test_spaces_have_a_docstring_question() -> None:
    for name in SPACES:
        module = __import__(SPACES[name], fromlist=["space"])
        assert module.__doc__ and module.__doc__.strip(), name


def test_alpha_sweep_grid_holds_alpha_one_and_is_its_budget() -> None:
    space = load_space("alpha_sweep")
    assert space.grid is not None and 1.0 in space.grid["alpha"] and 0.0 in space.grid["alpha"]
    assert space.num_samples == len(space.grid["alpha"])  # one trial per grid point
    searched, _, _ = probe(space, {}, set())
    assert searched == ["alpha"]


def test_probe_finds_conditional_parameters_and_refuses_clashes() -> None:
    searched, configs, problems = probe(load_space("full"), {"epochs": 3}, set())
    assert "consistency_temperature" in searched and "recon_loss" in searched  # suggested only sometimes
    assert configs[0].epochs == 3 and len(configs) == 32 and problems == []
    with pytest.raises(SpaceError, match="--set alpha: the space searches it"):
        probe(load_space("smoke"), {"alpha": 0.5}, {"alpha"})


def test_user_space_file_and_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        "NUM_SAMPLES = 5\n\ndef space(trial):\n    trial.suggest_int('num_features', 4, 8)\n    return {}\n"
    )
    space = load_space(str(path))
    assert space.num_samples == 5 and space.grid is None and space.label == "mine"
    study = optuna.create_study()
    trial = study.ask()
    space.fn(trial)
    assert 4 <= trial.params["num_features"] <= 8
    with pytest.raises(SpaceError, match="unknown search space 'nope'; choose one of alpha_sweep"):
        load_space("nope")
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(str(tmp_path / "missing.py"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(SpaceError, match="must define"):
        load_space(str(tmp_path / "empty.py"))
    (tmp_path / "typo.py").write_text(
        "def space(trial):\n    trial.suggest_float('alhpa', 0, 1)\n    return {}\n"
    )
    with pytest.raises(SpaceError, match="unknown key"):
        probe(load_space(str(tmp_path / "typo.py")), {}, set())


@pytest.mark.parametrize(
    ("values", "error", "epochs_run", "state", "told"),
    [
        ([0.9], False, 4, State.COMPLETE, 0.9),
        ([0.9, 0.2], False, 4, State.COMPLETE, [0.9, 0.2]),
        ([0.9], False, 2, State.PRUNED, None),  # stopped by a scheduler: its early value misleads TPE
        ([math.nan], False, 4, State.FAIL, None),
        ([None], False, 1, State.PRUNED, None),
        ([0.9], True, 1, State.FAIL, None),
    ],
)
def test_trial_outcome(values: list, error: bool, epochs_run: int, state: State, told: object) -> None:
    assert trial_outcome(values, error, epochs_run, planned_epochs=4) == (state, told)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def space(trial):\n    return {\n", "cannot be loaded: SyntaxError"),
        ("import no_such_module_here\n", "cannot be loaded: ModuleNotFoundError"),
        ("def space(trial):\n    raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
        ("def space(trial):\n    return [1, 2]\n", "returned list; it must return a dict"),
    ],
)
def test_broken_space_files_are_named(tmp_path: Path, source: str, message: str) -> None:
    path = tmp_path / "broken.py"
    path.write_text(source)
    with pytest.raises(SpaceError, match=message):
        probe(load_space(str(path)), {}, set())


def test_a_partly_valid_space_is_probed_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.py"
    path.write_text("def space(trial):\n    trial.suggest_float('alpha', 0.0, 1.5)\n    return {}\n")
    space = load_space(str(path))
    _, configs, problems = probe(space, {}, set())
    assert configs and all(c.alpha <= 1 for c in configs)
    assert problems and all("must be in [0, 1]" in p for p in problems)
    assert len(configs) + len(problems) == 32


@pytest.mark.parametrize("objectives", [1, 2])
def test_every_sampler_survives_pickle_and_samples_the_same_after(objectives: int) -> None:
    """Ray Tune pickles the searcher with its sampler when it saves an experiment; a copy must
    go on sampling exactly as the original (same seed, same study)."""
    import pickle

    from ucc_tune.search.samplers import make_sampler

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        return x if objectives == 1 else (x, (x - 0.3) ** 2)

    directions: list[Any] = ["maximize"] * objectives
    original = make_sampler(load_space("smoke").grid, objectives, seed=5)
    copy = pickle.loads(pickle.dumps(original))
    runs = []
    for sampler in (original, copy):
        study = optuna.create_study(directions=directions, sampler=sampler)
        study.optimize(objective, n_trials=4)
        runs.append([t.params["x"] for t in study.trials])
    assert runs[0] == runs[1]


def test_a_user_space_runs_once_per_search_and_pickles_by_its_source(tmp_path: Path) -> None:
    """The plan holds the loaded space: suggestions call its function without running the user's
    file again, and a pickled searcher space loads the file again (once) on the other side."""
    runs = tmp_path / "runs.txt"
    file = tmp_path / "mine.py"
    file.write_text(
        f"from pathlib import Path\n"
        f"with Path({str(runs)!r}).open('a') as f:\n    f.write('x')\n"
        "def space(trial):\n    return {'alpha': trial.suggest_float('alpha', 0.0, 1.0)}\n"
    )
    space = load_space(str(file))
    wrapped = SpaceWithConstants(space, {"epochs": 2})
    study = optuna.create_study()
    configs = [wrapped(study.ask()) for _ in range(3)]
    assert runs.read_text() == "x"  # loaded once, asked three times
    assert all(c["epochs"] == 2 and 0 <= c["alpha"] <= 1 for c in configs)
    copy = pickle.loads(pickle.dumps(wrapped))
    assert runs.read_text() == "xx" and copy.space.source == str(file.resolve())
    trial = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1)).ask()
    assert copy(trial) == {"alpha": trial.params["alpha"], "epochs": 2}
