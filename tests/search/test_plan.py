"""The search plan: resources from the flags, how many trials fit, and the plan a command resolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucc_tune.resources import TRIAL_DRIVER_CPU, Resources
from ucc_tune.search import command as search


def test_in_process_trials_hold_their_own_resources() -> None:
    r = Resources(cpus=0.25, gpus=0.25)
    assert r.trial == {"CPU": 0.25, "GPU": 0.25} and r.worker == {} and r.threads == 1
    # 2 GPUs at a quarter each: 8 at once, though 6 CPUs would fit 24
    assert r.concurrency({"CPU": 6.0, "GPU": 2.0}) == 8
    assert Resources(cpus=1.0).concurrency({"CPU": 6.0, "GPU": 2.0}) == 6  # no GPU asked: CPUs decide
    assert Resources(cpus=2.5).threads == 2


def test_ddp_trials_put_their_resources_on_the_ranks() -> None:
    r = Resources(cpus=2.0, gpus=1.0, workers=2)
    assert r.trial == {"CPU": TRIAL_DRIVER_CPU, "GPU": 0.0} and r.worker == {"CPU": 2.0, "GPU": 1.0}
    assert r.per_trial == {"CPU": TRIAL_DRIVER_CPU + 4.0, "GPU": 2.0}
    assert r.concurrency({"CPU": 16.0, "GPU": 4.0}) == 2
    assert r.concurrency({"CPU": 16.0, "GPU": 1.0}) == 1  # never less than one


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": 0.5, "workers": 2}, "a DDP rank needs whole GPUs"),
        ({"cpus": 0.0}, "--cpus-per-trial 0.0: must be a number from 0.05 to 1024"),
        ({"gpus": -1.0}, "--gpus-per-trial -1.0: must be a number from 0 to 1024"),
        ({"workers": -1}, "--workers-per-trial -1: must be a whole number from 0 to 1024"),
        ({"gpus": float("nan")}, "--gpus-per-trial nan: must be a number from 0 to 1024"),
    ],
)
def test_bad_resources_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Resources(**kwargs)


def test_resolved_plan_fixes_what_the_flags_imply(tmp_path: Path) -> None:
    args = search.build_parser().parse_args(
        ["--storage-path", str(tmp_path), "--name", "p", "--space", "smoke", "--cpus-per-trial", "2",
         "--set", "epochs=5", "--metric", "cluster_acc,val_loss"]
    )  # fmt: skip
    plan = search.resolve_plan(args)
    assert plan.fixed == {"epochs": 5, "num_workers": 0, "num_threads": 2}
    assert plan.epochs == 5 and plan.searched == ("alpha", "lr") and plan.num_samples == 2
    assert plan.modes == ("max", "min") and plan.scheduler == "fifo"  # two objectives: no ASHA
    assert plan.experiment_dir == tmp_path / "p" and plan.max_concurrent is None
    with pytest.raises(AttributeError):
        plan.epochs = 3  # type: ignore[misc]  # frozen


def test_a_dataset_default_reaches_the_plan_unless_the_space_searches_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def plan(space: str) -> search.SearchPlan:
        args = [
            "--storage-path",
            str(tmp_path),
            "--name",
            "d",
            "--space",
            space,
            "--set",
            "dataset=mnist_sample",
        ]
        return search.resolve_plan(search.build_parser().parse_args(args))

    assert plan("kde_bandwidth").fixed["lr"] == 1e-4
    assert "defaults of dataset mnist_sample: {'lr': 0.0001}" in capsys.readouterr().out
    assert "lr" not in plan("smoke").fixed  # smoke searches lr itself


def test_the_train_command_says_which_defaults_came_from_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ucc_tune.train import __main__ as cli

    ran: list = []

    def record(config: object, *_: object) -> dict:
        ran.append(config)
        return {}

    monkeypatch.setattr(cli, "run_training", record)
    assert cli.main(["--set", "dataset=mnist_sample", "--out", str(tmp_path / "a")]) == 0
    assert ran[-1].lr == 1e-4
    assert "defaults of dataset mnist_sample: lr=0.0001 (set them to override)" in capsys.readouterr().out
    assert cli.main(["--set", "dataset=mnist_sample", "--set", "lr=0.003", "--out", str(tmp_path / "b")]) == 0
    assert ran[-1].lr == 0.003 and "defaults of dataset" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("space", "flags", "scheduler"),
    [("alpha_sweep", [], "fifo"), ("smoke", [], "asha"), ("alpha_sweep", ["--scheduler", "asha"], "asha")],
)
def test_a_grid_runs_every_point_to_the_end_unless_asked(
    tmp_path: Path, space: str, flags: list[str], scheduler: str
) -> None:
    args = search.build_parser().parse_args(
        ["--storage-path", str(tmp_path), "--name", "g", "--space", space, *flags]
    )
    assert search.resolve_plan(args).scheduler == scheduler
