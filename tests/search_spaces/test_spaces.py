"""Every named space gives trials that make a valid Config; every space file is registered."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import search_spaces
from search_spaces import SPACES, get_space
from ucc_tune.config import Config, field_names

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_space_trials_build_valid_configs(name: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        constants = SPACES[name](trial)
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
        module = __import__(f"search_spaces.{name}", fromlist=["space"])
        assert module.__doc__ and module.__doc__.strip(), name


def test_alpha_sweep_includes_alpha_one() -> None:
    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"alpha": [1.0]}))
    trial = study.ask()
    SPACES["alpha_sweep"](trial)
    assert Config.from_dict(trial.params).use_decoder is False


def test_user_space_file_and_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text("def space(trial):\n    trial.suggest_int('num_features', 4, 8)\n    return {}\n")
    fn = get_space(str(path))
    study = optuna.create_study()
    trial = study.ask()
    fn(trial)
    assert 4 <= trial.params["num_features"] <= 8
    with pytest.raises(ValueError, match="unknown search space 'nope'; choose one of alpha_sweep"):
        get_space("nope")
    with pytest.raises(ValueError, match="does not exist"):
        get_space(str(tmp_path / "missing.py"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="must define"):
        get_space(str(tmp_path / "empty.py"))
