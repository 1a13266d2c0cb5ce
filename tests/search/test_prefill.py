"""Enqueued configurations and warm starts (``ucc_tune.search.prefill``): checked against the space before
Ray starts, run first, copied into the new study without becoming this search's trials."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from ucc_tune.search import command as search
from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.prefill import (
    WARM_ATTR,
    WarmStartError,
    add_warm_trials,
    check_enqueue,
    enqueue,
    prefilled_plan,
)
from ucc_tune.search.spaces import Space, load_space
from ucc_tune.search.trackers import TrackerError, check_trackers

States = optuna.trial.TrialState
ENQUEUED = [{"alpha": 0.75, "lr": 0.005}, {"alpha": 0.6, "lr": 0.002}]


def study(exp: Path) -> optuna.Study:
    return optuna.load_study(study_name=exp.name, storage=f"sqlite:///{exp / 'optuna.db'}")


def earlier_experiments(root: Path, specs: dict[str, tuple[Any, ...]]) -> None:
    """Experiment folders as a search leaves them (``search.json``, ``optuna.db``), one per
    ``name: (distributions, metrics, modes)``, each with one COMPLETE and one PRUNED trial at the
    middle of every distribution (one SQLite file made once and copied: creating one is slow)."""
    db = root / "studies.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    for name, (searched, _, modes) in specs.items():
        directions = [
            optuna.study.StudyDirection.MAXIMIZE if m == "max" else optuna.study.StudyDirection.MINIMIZE
            for m in modes
        ]
        s = optuna.create_study(study_name=name, storage=storage, directions=directions)
        params = {k: d.to_external_repr((d.low + d.high) / 2) for k, d in searched.items()}
        s.add_trial(
            optuna.trial.create_trial(params=params, distributions=searched, values=[0.5] * len(modes))
        )
        s.add_trial(
            optuna.trial.create_trial(
                state=States.PRUNED,
                params=params,
                distributions=searched,
                intermediate_values={0: 0.25, 1: 0.3},
            )
        )
    storage.engine.dispose()
    for name, (searched, metrics, modes) in specs.items():
        (root / name).mkdir()
        record = {"name": name, "searched": sorted(searched), "metrics": list(metrics), "modes": list(modes)}
        (root / name / "search.json").write_text(json.dumps(record))
        shutil.copy(db, root / name / "optuna.db")


SMOKE = {
    "alpha": optuna.distributions.FloatDistribution(0.5, 1.0),
    "lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True),
}
MAX = (("cluster_acc",), ("max",))
EARLIER = {
    "same": (SMOKE, *MAX),
    "wrong_space": ({"alpha": SMOKE["alpha"]}, *MAX),
    "wider": ({**SMOKE, "alpha": optuna.distributions.FloatDistribution(0.0, 1.0)}, *MAX),
    "other_metric": (SMOKE, ("val_loss",), ("min",)),
}


@pytest.fixture(scope="module")
def smoke_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[SearchPlan, Space, Path]:
    """The resolved plan of a smoke search and, beside it, the earlier experiments of EARLIER."""
    root = tmp_path_factory.mktemp("plans")
    earlier_experiments(root, EARLIER)
    args = search.build_parser().parse_args(["--storage-path", str(root), "--space", "smoke"])
    return search.resolve_plan(args), load_space("smoke"), root


@pytest.mark.parametrize(
    ("enqueued", "warm", "message"),
    [
        (["beta=1"], None, "--enqueue beta=1: beta is not searched by the space smoke; its searched "),
        (["alpha=0.4"], None, "--enqueue alpha=0.4: outside the space's FloatDistribution(high=1.0"),
        (["alpha=2"], None, "--enqueue alpha=2: alpha=2.0 must be in [0, 1]"),
        (["lr=fast"], None, "--enqueue lr=fast: lr='fast' is not a number"),
        (["alpha=0.6,alpha=0.7"], None, "each key once"),
        (["alpha=0.6", "lr"], None, "--enqueue 'lr': give key=value pairs"),
        ([], "nowhere", "--warm-start nowhere: no experiment folder nowhere or "),
        ([], "wrong_space", "it searched alpha, this search searches alpha, lr; only the same space"),
        ([], "wider", "its trial 0 has alpha from FloatDistribution(high=1.0, log=False, low=0.0"),
        ([], "other_metric", "its objectives were val_loss (min), this search's are cluster_acc (max)"),
    ],
)
def test_bad_enqueue_or_warm_start_is_refused(
    enqueued: list[str], warm: str | None, message: str, smoke_plan: tuple[SearchPlan, Space, Path]
) -> None:
    plan, _, _ = smoke_plan
    with pytest.raises(WarmStartError) as err:
        prefilled_plan(plan, enqueued, warm)
    assert message in str(err.value)


def test_enqueue_and_warm_start_are_resolved_into_the_plan(
    smoke_plan: tuple[SearchPlan, Space, Path],
) -> None:
    plan, _, root = smoke_plan
    seeded = prefilled_plan(plan, ["alpha=0.75,lr=0.005", "alpha=0.6,lr=0.002"], "same")
    assert seeded.enqueue == tuple(ENQUEUED)  # typed values, in order
    assert seeded.warm_start == {
        "experiment": str(root / "same"),
        "study": "same",
        "complete": 1,
        "pruned": 1,
    }
    with pytest.raises(WarmStartError, match="--warm-start with --resume"):
        prefilled_plan(replace(plan, resume=True), [], "same")
    # a grid space: every grid parameter, on the grid's steps
    grid = load_space("alpha_sweep")
    assert check_enqueue([{"alpha": "0.25"}], grid, ["alpha"], {}) == ({"alpha": 0.25},)
    with pytest.raises(WarmStartError, match=r"outside the space's FloatDistribution.*step=0.25"):
        check_enqueue([{"alpha": "0.3"}], grid, ["alpha"], {})


def test_bad_enqueue_exits_2_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import ucc_tune.ray_adapter as tune

    def no_ray(*_: object, **__: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(tune, "start_ray", no_ray)
    assert search.main(["--storage-path", str(tmp_path), "--space", "smoke", "--enqueue", "beta=1"]) == 2
    assert capsys.readouterr().err.startswith("error: --enqueue beta=1: beta is not searched")


def test_enqueue_skips_what_the_study_already_holds() -> None:
    s = optuna.create_study()
    assert enqueue(s, ENQUEUED) == 2
    trial = s.ask()
    trial.suggest_float("alpha", 0.5, 1.0)
    trial.suggest_float("lr", 1e-3, 1e-2, log=True)
    s.tell(trial, 0.1)
    assert trial.params == ENQUEUED[0]
    # a resumed search enqueues the same configurations again: the run one and the waiting one stay single
    assert enqueue(s, ENQUEUED) == 0 and enqueue(s, [{"alpha": 0.9, "lr": 0.005}]) == 1
    assert [t.state for t in s.trials] == [States.COMPLETE, States.WAITING, States.WAITING]


def test_warm_trials_keep_values_and_intermediate_values(smoke_plan: tuple[SearchPlan, Space, Path]) -> None:
    _, _, root = smoke_plan
    s = optuna.create_study(direction="maximize")
    assert add_warm_trials(s, {"experiment": str(root / "same"), "study": "same"}) == 2
    complete, pruned = s.trials
    assert complete.state == States.COMPLETE and complete.value == 0.5 and complete.params["alpha"] == 0.75
    assert pruned.state == States.PRUNED and pruned.intermediate_values == {0: 0.25, 1: 0.3}
    assert complete.user_attrs[WARM_ATTR] == str(root / "same") and pruned.distributions == SMOKE
    # TPE counts them: the next suggestion is no longer a startup draw of an empty study
    assert len(s.get_trials(states=(States.COMPLETE, States.PRUNED))) == 2


WANDB_KEY = "planted0wandb0key0" + "7" * 22  # 40 characters, as W&B's keys


@pytest.fixture(scope="module")
def seeded_search(smoke_experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A smoke search of 2 trials warm-started from the shared smoke experiment, the first
    configuration enqueued, logged to W&B and MLflow."""
    root = tmp_path_factory.mktemp("seeded")
    args = ["--storage-path", str(root), "--name", "seeded", "--space", "smoke", "--num-samples", "2"]
    args += ["--scheduler", "fifo", "--set", "num_threads=1", "--set", "keep_checkpoints=1", "--seed", "1"]
    args += ["--warm-start", str(smoke_experiment), "--log-to", "wandb", "--log-to", "mlflow"]
    args += ["--enqueue", ",".join(f"{k}={v}" for k, v in ENQUEUED[0].items())]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as env:
        for name in ("WANDB_MODE", "MLFLOW_TRACKING_URI"):
            env.delenv(name, raising=False)  # the defaults: W&B offline, MLflow in the experiment
        env.setattr(
            "ucc_tune.ray_adapter.callbacks.wandb_configured", lambda: False
        )  # a key, no account: offline
        env.setenv("WANDB_API_KEY", WANDB_KEY)  # Ray's own callback would log it in clear text
        assert search.main(args) == 0
    return root / "seeded", printed.getvalue()


def test_enqueued_configurations_run_first(seeded_search: tuple[Path, str]) -> None:
    exp, printed = seeded_search
    assert "enqueued 1 configuration(s) to run first" in printed
    own = [t for t in study(exp).trials if WARM_ATTR not in t.user_attrs]
    assert own[0].params == ENQUEUED[0] and own[1].params != ENQUEUED[0]
    assert all(t.state == States.COMPLETE for t in own)
    # Tune numbers its trials in its folder names (ucc_trial_<id>_<n>_...)
    table = pd.read_parquet(exp / "trials.parquet")
    table["n"] = [int(re.match(r"ucc_trial_\w+?_(\d+)_", Path(d).name)[1]) for d in table["trial_dir"]]  # type: ignore[index]
    ran = [tuple(p) for p in table.sort_values("n")[["alpha", "lr"]].values]
    assert ran[0] == tuple(ENQUEUED[0].values()) and ran[1] != ran[0]


def test_warm_start_adds_the_earlier_trials_but_runs_num_samples_new_ones(
    seeded_search: tuple[Path, str], smoke_experiment: Path
) -> None:
    exp, printed = seeded_search
    earlier = {t.number: t for t in study(smoke_experiment).trials}
    warm = [t for t in study(exp).trials if WARM_ATTR in t.user_attrs]
    assert (
        len(earlier) == 3
        and len(warm) == 3
        and f"warm start: 3 finished trial(s) of {smoke_experiment}" in printed
    )
    for copy, original in zip(warm, earlier.values(), strict=True):
        assert (copy.params, copy.values, copy.state) == (original.params, original.values, original.state)
        assert copy.intermediate_values == original.intermediate_values
        assert copy.user_attrs[WARM_ATTR] == str(smoke_experiment)
    table = pd.read_parquet(exp / "trials.parquet")
    own = [t for t in study(exp).trials if WARM_ATTR not in t.user_attrs]
    assert sorted(table["alpha"]) == sorted(t.params["alpha"] for t in own)
    record = json.loads((exp / "search.json").read_text())
    assert record["warm_start"] == {
        "experiment": str(smoke_experiment),
        "study": "smoke",
        "complete": 3,
        "pruned": 0,
    }
    assert record["enqueue"] == ENQUEUED[:1]


def test_the_trackers_key_reaches_no_ray_log(seeded_search: tuple[Path, str]) -> None:
    import ray

    node = ray._private.worker._global_node
    assert node is not None
    session = Path(node.get_session_dir_path())
    exp, _ = seeded_search
    leaks = [
        p
        for root in (session, exp)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and WANDB_KEY.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_trackers_write_every_trial_offline(seeded_search: tuple[Path, str]) -> None:
    exp, _ = seeded_search
    table = pd.read_parquet(exp / "trials.parquet")
    for folder in table["trial_dir"]:
        runs = list((Path(folder) / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1 and runs[0].stat().st_size > 0, folder
    with sqlite3.connect(exp / "mlruns" / "mlflow.db") as db:
        (experiment,) = db.execute("select experiment_id from experiments where name = 'seeded'").fetchall()
        ids = {r for (r,) in db.execute("select run_uuid from runs where experiment_id = ?", experiment)}
        last = db.execute(
            "select run_uuid, value from metrics m where key = 'cluster_acc' and step = "
            "(select max(step) from metrics where run_uuid = m.run_uuid and key = 'cluster_acc')"
        ).fetchall()
    assert len(ids) == 2 and {r for r, _ in last} == ids
    assert sorted(v for _, v in last) == pytest.approx(sorted(table["last_cluster_acc"]))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["tensorboard"], "--log-to tensorboard: unknown tracker; choose from wandb, mlflow"),
        (["mlflow"], "--log-to mlflow: mlflow is not installed; pip install 'ucc-tune[mlflow]'"),
    ],
)
def test_unknown_or_missing_tracker_is_refused(
    names: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TrackerError) as err:
        check_trackers(names)
    assert str(err.value) == message
