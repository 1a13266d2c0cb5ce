"""The learning-rate schedule: warm-up and decay values at chosen steps, and the loop applies it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ucc_test_support import tiny

from ucc_tune.config import Config, ConfigError
from ucc_tune.train import LocalSession, setup
from ucc_tune.train.loop import train_epoch
from ucc_tune.train.schedule import learning_rate


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 3e-4 / 100), (49, 3e-4 * 50 / 100), (99, 3e-4), (100, 3e-4), (5_000, 3e-4)],
)
def test_linear_warm_up_then_constant(step: int, expected: float) -> None:
    config = Config(lr=3e-4, warmup_steps=100, lr_schedule="constant")
    assert learning_rate(config, step) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (9, 1e-3),  # the warm-up's last step reaches lr
        (10, 1e-3),  # the cosine starts at lr
        (10 + 500, 0.5e-3),  # half-way through the 1,000 steps after the warm-up: lr / 2
        (10 + 750, 1e-3 * (1 + math.cos(math.pi * 0.75)) / 2),
        (1_010, 0.0),  # after the last step
    ],
)
def test_cosine_after_the_warm_up(step: int, expected: float) -> None:
    config = Config(lr=1e-3, warmup_steps=10, lr_schedule="cosine", epochs=10, steps_per_epoch=101)
    assert learning_rate(config, step) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_the_paper_recipe_is_one_set_away() -> None:
    config = Config(warmup_steps=0)
    assert all(learning_rate(config, s) == config.lr for s in (0, 1, 10_000))
    with pytest.raises(ConfigError, match="warmup_steps=-1 must be >= 0"):
        Config(warmup_steps=-1)
    with pytest.raises(
        ConfigError, match="lr_schedule='linear' is not allowed; choose one of constant, cosine"
    ):
        Config.from_dict({"lr_schedule": "linear"})


def test_the_loop_sets_the_rate_of_each_step_counted_over_the_run(tmp_path: Path) -> None:
    config = tiny(warmup_steps=100, lr=1e-3, epochs=3, steps_per_epoch=4)
    run = setup(config, LocalSession(tmp_path))
    for epoch in range(2):
        train_epoch(run, epoch)
        # the last step of epoch e is step 4e + 3 of the run: rate (4e + 4) / 100 * lr
        assert run.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (4 * epoch + 4) / 100)
