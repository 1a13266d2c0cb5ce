"""The search command on a real local Ray cluster: smoke, multi-objective, ASHA, failures, resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from ucc_tune.config import field_names
from ucc_tune.search import command as search

REPO = Path(__file__).resolve().parents[2]
FAST = ["--set", "num_threads=1"]


def run_main(tmp_path: Path, name: str, *args: str) -> int:
    return search.main(["--storage-path", str(tmp_path), "--name", name, *FAST, *args])


def study(exp: Path) -> optuna.Study:
    return optuna.load_study(study_name=exp.name, storage=f"sqlite:///{exp / 'optuna.db'}")


def test_smoke_search_end_to_end(smoke_search: tuple[Path, str]) -> None:
    exp, out = smoke_search
    assert "ranked by the mean cluster_acc over seeds at the last epoch" in out
    assert "- best: alpha=" in out and f"python -m analysis {exp}" in out
    table = pd.read_parquet(exp / "trials.parquet")
    assert len(table) == 3 and table["trial_id"].is_unique
    assert list(table["rank"]) == [1, 2, 3] and table["last_cluster_acc"].is_monotonic_decreasing
    assert (table["n_seeds"] == 2).all() and (table["seeds"] == 2).all()
    assert set(field_names()) <= set(table.columns)
    for col in ("trial_id", "status", "error", "last_cluster_acc", "best_cluster_acc", "best_val_loss"):
        assert col in table.columns
    assert (table["status"] == "TERMINATED").all()
    s = study(exp)
    assert [t.state for t in s.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert sorted(table["alpha"]) == sorted(t.params["alpha"] for t in s.trials)
    record = json.loads((exp / "search.json").read_text())
    assert record["space"] == "smoke" and record["versions"]["ray"] and "git_commit" in record
    assert record["searched"] == ["alpha", "lr"] and record["ray"]["concurrency"] == 2  # 2 CPUs
    assert record["keep_checkpoints"] == 1 and record["ray"]["trial"] == {"cpu": 1.0, "gpu": 0.0}
    # every trial's own files: run.json, metrics.jsonl (the table's last/best come from them)
    for _, row in table.iterrows():
        folder = Path(row["trial_dir"])
        info = json.loads((folder / "run.json").read_text())
        assert info["trial_id"] == row["trial_id"] and info["config"]["alpha"] == row["alpha"]
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [0, 1]
        assert row["best_cluster_acc"] == max(r["cluster_acc"] for r in rows)
        assert row["last_val_loss"] == rows[-1]["val_loss"]
        # each seed's own curve; the trial reported their mean, and the table has their range
        lasts = [
            json.loads((folder / "seeds" / f"seed_{k}" / "metrics.jsonl").read_text().splitlines()[-1])
            for k in range(2)
        ]
        assert rows[-1]["seeds"] == 2
        assert row["last_cluster_acc"] == pytest.approx(sum(r["cluster_acc"] for r in lasts) / 2)
        assert row["last_cluster_acc_seed_min"] == min(r["cluster_acc"] for r in lasts)
        assert row["test_kmeans_acc_seed_max"] == max(r["test_kmeans_acc"] for r in lasts)
        checkpoints = list(folder.glob("checkpoint_*"))
        assert len(checkpoints) == 1  # keep_checkpoints reaches Tune
        assert sorted(p.name for p in checkpoints[0].glob("seed_*")) == ["seed_0", "seed_1"]
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(exp), default_metric="cluster_acc", default_mode="max")
    assert len(analysis.trials) == 3
    frame = analysis.dataframe()
    assert set(frame["trial_id"]) == set(table["trial_id"])


def test_multi_objective_uses_fifo_and_two_directions(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [
        "--space",
        "smoke",
        "--num-samples",
        "3",
        "--metric",
        "val_ucc_acc,cluster_acc",
        "--mode",
        "max,min",
    ]
    assert run_main(tmp_path, "mo", *args) == 0
    out = capsys.readouterr().out
    assert "FIFO runs" in out and "Pareto front of val_ucc_acc (max), cluster_acc (min):" in out
    s = study(tmp_path / "mo")
    assert len(s.directions) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE and len(t.values) == 2 for t in s.trials)
    # the front written with the table is the front Optuna keeps of the same values
    table = pd.read_parquet(tmp_path / "mo" / "trials.parquet").set_index("trial_id")
    by_values = {(round(t.values[0], 9), round(t.values[1], 9)) for t in s.best_trials}
    written = table[table["pareto"]]
    assert len(written) >= 1
    assert {
        (round(a, 9), round(c, 9)) for a, c in written[["last_val_ucc_acc", "last_cluster_acc"]].to_numpy()
    } == (by_values)
    for _, row in table[~table["pareto"]].iterrows():  # each trial off the front is beaten by one on it
        assert any(
            f["last_val_ucc_acc"] >= row["last_val_ucc_acc"]
            and f["last_cluster_acc"] <= row["last_cluster_acc"]
            for _, f in written.iterrows()
        )


def test_asha_stops_poor_trials_and_they_are_pruned_in_the_study(ray_cluster: None, tmp_path: Path) -> None:
    args = ["--space", "smoke", "--num-samples", "5", "--max-concurrent", "1", "--grace-period", "1"]
    assert run_main(tmp_path, "asha", *args, "--set", "epochs=5", "--seed", "3") == 0
    table = pd.read_parquet(tmp_path / "asha" / "trials.parquet")
    stopped = table[table["status"] == "STOPPED"]
    assert len(stopped) >= 1 and (stopped["epochs_run"] < 5).all()
    # grace period 1, reduction factor 3: the rungs are after 1 and 3 epochs, nowhere else
    assert set(stopped["epochs_run"]) <= {1, 3}
    s = study(tmp_path / "asha")
    pruned = [t for t in s.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) == len(stopped)
    assert all(t.intermediate_values for t in pruned)  # the epochs they did run are recorded
    # the value that got a trial stopped is its last intermediate value, at its last epoch
    last = {round(v, 9): n for v, n in zip(stopped["last_cluster_acc"], stopped["epochs_run"], strict=True)}
    for t in pruned:
        step = max(t.intermediate_values)
        assert last[round(t.intermediate_values[step], 9)] == step + 1
    # python -m analysis reads the same statuses from the folder
    import analysis

    read = analysis.load(tmp_path / "asha").trials.set_index("trial_id")["status"]
    assert read.to_dict() == table.set_index("trial_id")["status"].to_dict()


def test_a_failing_trial_does_not_stop_the_search(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    space = tmp_path / "half_broken.py"
    # trial 0 asks for bags larger than digits' validation classes (30 images): it must error;
    # trial 2 draws an invalid config (a space only partly valid): an ERROR row, no crash
    space.write_text(
        "def space(trial):\n"
        "    trial.suggest_float('alpha', 0.5, 1.0)\n"
        "    return {'bag_size': 64 if trial.number == 0 else 8, 'bags_per_label': 2,\n"
        "            'rcc_weight': -1.0 if trial.number == 2 else 0.0,\n"
        "            'eval_bags_per_label': 3, 'epochs': 2, 'steps_per_epoch': 2}\n"
    )
    # --max-failures 1: each failure would repeat, so the retry stops at once, saying why
    args = ["--space", str(space), "--num-samples", "3", "--max-concurrent", "1", "--max-failures", "1"]
    assert run_main(tmp_path, "fail", *args) == 0
    out = capsys.readouterr().out
    assert "2 ERROR" in out and "such trials will be ERROR rows" in out
    table = pd.read_parquet(tmp_path / "fail" / "trials.parquet")
    by_size = table[table["rcc_weight"] == 0].set_index("bag_size")
    assert by_size.loc[64, "status"] == "ERROR" and "bag_size=64" in by_size.loc[64, "error"]
    assert by_size.loc[64, "error"].startswith("NotRetried: BagSizeError: ")
    assert by_size.loc[64, "error"].endswith("(it would fail the same way again: not retried)")
    assert by_size.loc[8, "status"] == "TERMINATED"
    (invalid,) = table[table["rcc_weight"] == -1.0].itertuples()
    assert invalid.status == "ERROR" and "rcc_weight=-1.0 must be >= 0" in invalid.error
    assert invalid.error.startswith("NotRetried: ConfigError: ")
    states = sorted(t.state.name for t in study(tmp_path / "fail").trials)
    assert states == ["COMPLETE", "FAIL", "FAIL"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nope"], "unknown search space 'nope'; choose one of alpha_sweep"),
        (["--metric", "accuracy"], "unknown accuracy; choose from cluster_acc"),
        (["--metric", "cluster_acc,js_min", "--mode", "max"], "give max or min for each of the 2 metric(s)"),
        (["--set", "alpha=3"], "alpha=3.0 must be in [0, 1]"),
        (["--set", "colour=red"], "unknown config key(s) 'colour'"),
        (["--resume"], "--resume needs --name"),
        (["--storage-path", "nosuch://x/y"], "--storage-path: storage 'nosuch://x/y' cannot be opened"),
        (["--name", "a/b"], "--name 'a/b': give a plain folder name"),
        (["--workers-per-trial", "2", "--gpus-per-trial", "0.5"], "a DDP rank needs whole GPUs"),
        (["--gpus-per-trial", "1", "--set", "device=cpu"], "with device=cpu: the GPUs would sit idle"),
        (["--num-samples", "0"], "--num-samples 0: must be a whole number from 1 to 100000"),
        (["--reduction-factor", "1"], "--reduction-factor 1: must be a whole number >= 2"),
        (["--set", "model=paper", "--set", "encoder_dropout=0.3"], "has no dropout layers"),
        (["--max-concurrent", "0"], "--max-concurrent 0: must be a whole number >= 1"),
        (["--num-samples", "-1"], "--num-samples -1: must be a whole number from 1 to 100000"),
        (["--cpus-per-trial", "-1"], "--cpus-per-trial -1.0: must be a number from 0.05 to 1024"),
        (["--space", "smoke", "--grace-period", "3"], "--grace-period 3: must be <= the trials' 2 epochs"),
        (["--set", "dataset=mnist", "--set", "data_dir=/nonexistent"], "dataset='mnist': "),
        (["--time-budget", "2 hours"], "--time-budget '2 hours': give a duration such as 2h, 90m, 3600s"),
        (["--name", "x", "--resume", "--time-budget", "1h"], "--time-budget 1h with --resume: a resumed"),
    ],
)
def test_bad_input_exits_2_before_ray_starts(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    import ucc_tune.ray_adapter as tune

    def no_ray(*_: object, **__: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(tune, "start_ray", no_ray)
    assert search.main(["--storage-path", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


# --- subprocess tests: a driver of its own, cleaned up by PID afterwards ---------------------------


def start_search(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "ucc_tune.search", "--num-cpus", "2", *FAST, *args]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


SECRET = "planted-secret-4f1c0de"  # a fake credential the search must not write anywhere


def _first_line_written(exp: Path) -> bool:
    return any(p.stat().st_size > 0 for p in exp.glob("ucc_trial_*/metrics.jsonl"))


def _one_trial_finished(exp: Path) -> bool:
    return any(len(p.read_text().splitlines()) >= 3 for p in exp.glob("ucc_trial_*/metrics.jsonl"))


def _trial_files(exp: Path) -> dict[str, list[str]]:
    """Every trial's and every seed's metrics lines, by file."""
    return {
        str(p.relative_to(exp)): p.read_text().splitlines() for p in exp.glob("ucc_trial_*/**/metrics.jsonl")
    }


@pytest.mark.parametrize("moment", [_first_line_written, _one_trial_finished])
def test_resume_after_sigkill_ends_with_exactly_the_requested_trials_and_seeds(
    tmp_path: Path, marked_env: dict[str, str], moment: Any
) -> None:
    """Killed before any trial finished, or after one finished: after --resume, exactly the 4
    trials of 2 seeds in Ray's results, the table and the study (each told once), every epoch of
    every seed once, and what had finished before the kill untouched."""
    exp = tmp_path / "resume"
    ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # Ray's session files, kept short
    marked_env = {**marked_env, "AWS_SECRET_ACCESS_KEY": SECRET, "RAY_TMPDIR": str(ray_tmp)}
    space = tmp_path / "steady.py"  # smoke's budget, without its learning rates that may collapse
    space.write_text(
        "def space(trial):\n    trial.suggest_float('alpha', 0.3, 0.7)\n"
        "    return {'epochs': 3, 'steps_per_epoch': 3, 'bag_size': 8, 'bags_per_label': 2,"
        " 'eval_bags_per_label': 3}\n"
    )
    args = ["--space", str(space), "--num-samples", "4", "--max-concurrent", "1", "--scheduler", "fifo"]
    args += ["--storage-path", str(tmp_path), "--name", "resume", "--seeds", "2"]
    driver = start_search(marked_env, tmp_path / "first.log", *args)
    wait_for(lambda: moment(exp), 180, moment.__name__)
    time.sleep(1.0)  # let the experiment state be saved (TUNE_GLOBAL_CHECKPOINT_S is short in tests)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(30)
    before = _trial_files(exp)
    finished = {k: v for k, v in before.items() if len(v) == 3}
    second = start_search(marked_env, tmp_path / "second.log", *args, "--resume")
    assert second.wait(300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    # no traceback of the driver's (Ray's workers may print one when the cluster shuts them down)
    assert not any(
        line.startswith("Traceback") for line in (tmp_path / "second.log").read_text().splitlines()
    )
    table = pd.read_parquet(exp / "trials.parquet")
    assert len(table) == 4 and table["trial_id"].is_unique
    assert (table["status"] == "TERMINATED").all() and (table["epochs_run"] == 3).all()
    assert (table["n_seeds"] == 2).all()
    s = study(exp)
    assert [t.state for t in s.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert sorted(t.params["alpha"] for t in s.trials) == sorted(table["alpha"])
    after = _trial_files(exp)
    assert len(after) == 4 * 3  # each trial's file and its two seeds'
    for name, lines in after.items():
        assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2], name
    for name, lines in finished.items():
        assert after[name] == lines, f"{name} changed after the resume"
    # a credential in the driver's environment reaches no file: ours, Ray's logs and session files
    leaks = [
        p
        for root in (tmp_path, ray_tmp)
        for p in root.rglob("*")
        if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    # Ray's sessions (world-writable, as Ray makes them) lie in a folder only this user may enter
    private = ray_tmp / f"ucc-tune-{os.getuid()}"
    sessions = [p for p in ray_tmp.rglob("session_2*") if p.is_dir() and not p.is_symlink()]
    mode = oct(private.stat().st_mode & 0o777)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert leaks == []
    assert len(sessions) == 2 and all(private in p.parents for p in sessions) and mode == "0o700"


def _one_trial_stopped(exp: Path) -> bool:
    """ASHA ended a trial before its last epoch and the driver marked it ended."""
    for info in exp.glob("ucc_trial_*/run.json"):
        lines = info.parent / "metrics.jsonl"
        try:
            ended = json.loads(info.read_text()).get("ended")
        except ValueError:  # being written
            continue
        if ended and lines.exists() and 0 < len(lines.read_text().splitlines()) < 3:
            return True
    return False


def test_resume_after_sigkill_while_asha_stops_a_trial(tmp_path: Path, marked_env: dict[str, str]) -> None:
    """Killed just as ASHA stopped a trial: after --resume the stopped trial keeps its lines and is
    PRUNED once in the study, the finished one COMPLETE once, and the study and the table agree."""
    space = tmp_path / "uneven.py"  # one feature clusters far worse than ten: ASHA stops it at rung 1
    space.write_text(
        "def space(trial):\n    trial.suggest_categorical('num_features', [10, 1])\n"
        "    return {'model': 'pca', 'epochs': 3, 'steps_per_epoch': 3, 'bag_size': 8, 'bags_per_label': 2,"
        " 'eval_bags_per_label': 3}\n"
    )
    exp = tmp_path / "asha"
    args = ["--space", str(space), "--num-samples", "2", "--max-concurrent", "1", "--scheduler", "asha"]
    args += ["--grace-period", "1", "--reduction-factor", "2", "--storage-path", str(tmp_path)]
    args += ["--name", "asha"]
    args += ["--enqueue", "num_features=10", "--enqueue", "num_features=1"]  # the good one first
    driver = start_search(marked_env, tmp_path / "first.log", *args)
    wait_for(lambda: _one_trial_stopped(exp), 180, "a trial stopped by ASHA")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(30)
    before = _trial_files(exp)
    ended = {
        str(p.parent.relative_to(exp) / "metrics.jsonl")
        for p in exp.glob("ucc_trial_*/run.json")
        if json.loads(p.read_text()).get("ended")
    }
    second = start_search(marked_env, tmp_path / "second.log", *args, "--resume")
    assert second.wait(300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    table = pd.read_parquet(exp / "trials.parquet")
    assert len(table) == 2 and table["trial_id"].is_unique
    states = {t.params["num_features"]: t.state.name for t in study(exp).trials}
    assert len(study(exp).trials) == 2 and states == {10: "COMPLETE", 1: "PRUNED"}  # told once, none RUNNING
    assert dict(zip(table["num_features"], table["status"], strict=True)) == {10: "TERMINATED", 1: "STOPPED"}
    after = _trial_files(exp)
    for name, lines in after.items():
        assert [json.loads(line)["epoch"] for line in lines] == list(range(len(lines))), name
    for name in ended:
        assert after[name] == before[name], f"{name} of a trial that had ended changed after the resume"


def test_dashboard_answers_with_the_token_and_refuses_without(
    tmp_path: Path, marked_env: dict[str, str]
) -> None:
    log = tmp_path / "dash.log"
    args = ["--space", "smoke", "--num-samples", "1", "--dashboard", "--storage-path", str(tmp_path)]
    driver = start_search(marked_env, log, *args, "--set", "epochs=200")
    try:
        wait_for(lambda: "Ray dashboard: http://" in log.read_text(), 120, "the dashboard URL")
        url = re.search(r"Ray dashboard: (http://\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        token_path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        token = token_path.read_text().strip()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/version", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200 and "ray_version" in json.loads(answer.read())
    finally:
        driver.kill()
        driver.wait(30)


def test_set_may_not_fix_a_searched_parameter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert search.main(["--storage-path", str(tmp_path), "--space", "smoke", "--set", "alpha=0.5"]) == 2
    assert "--set alpha: the space searches it" in capsys.readouterr().err


def test_a_grid_space_runs_every_point_once(ray_cluster: None, tmp_path: Path) -> None:
    """One trial at a time: the second runs in the first one's process (reuse_actors), and still
    every trial's artifacts reach its folder."""
    space = tmp_path / "grid.py"
    space.write_text(
        "GRID = {'alpha': [0.5, 1.0]}\n\n"
        "def space(trial):\n"
        "    trial.suggest_categorical('alpha', [0.5, 1.0])\n"
        "    return {'epochs': 2, 'steps_per_epoch': 2, 'bag_size': 8, 'bags_per_label': 2,\n"
        "            'eval_bags_per_label': 3}\n"
    )
    args = ["--space", str(space), "--num-samples", "2", "--scheduler", "fifo", "--max-concurrent", "1"]
    assert run_main(tmp_path, "grid", *args) == 0
    exp = tmp_path / "grid"
    table = pd.read_parquet(exp / "trials.parquet")
    assert sorted(table["alpha"]) == [0.5, 1.0] and (table["status"] == "TERMINATED").all()
    assert [t.state.name for t in study(exp).trials] == ["COMPLETE", "COMPLETE"]
    trial_dirs = [p for p in exp.iterdir() if (p / "run.json").is_file()]
    pids = {
        json.loads(line)["pid"] for d in trial_dirs for line in (d / "result.json").read_text().splitlines()
    }
    assert len(trial_dirs) == 2 and len(pids) == 1  # one process ran both trials
    for trial_dir in trial_dirs:
        assert (trial_dir / "artifacts" / "js.npz").is_file() and (
            trial_dir / "artifacts" / "config.json"
        ).is_file()


def test_trials_can_be_ray_train_runs(ray_cluster: None, tmp_path: Path) -> None:
    """--workers-per-trial: each trial drives a TorchTrainer named after it, metrics reach Tune."""
    args = ["--space", "smoke", "--num-samples", "1", "--scheduler", "fifo", "--workers-per-trial", "1"]
    assert run_main(tmp_path, "ddp", *args) == 0
    exp = tmp_path / "ddp"
    table = pd.read_parquet(exp / "trials.parquet")
    assert len(table) == 1 and table["status"].iloc[0] == "TERMINATED" and table["epochs_run"].iloc[0] == 2
    assert table["num_workers"].iloc[0] == 1 and np.isfinite(table["best_cluster_acc"].iloc[0])
    runs = list((exp / "train_runs").glob("train-*"))
    assert len(runs) == 1 and runs[0].name == f"train-{table['trial_id'].iloc[0]}"
    trial_dir = Path(table["trial_dir"].iloc[0])  # the run's files are in the trial's own folder
    assert len((trial_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert len((trial_dir / "result.json").read_text().splitlines()) == 2  # Tune got each epoch once
    assert (trial_dir / "artifacts" / "js.npz").is_file()
    (rank,) = json.loads((trial_dir / "run.json").read_text())["placement"]
    assert rank["world_size"] == 1 and rank["resources"] == {"CPU": 1.0} and rank["gpu_ids"] == []


def test_resources_the_cluster_never_has_exit_2(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Ray would keep such trials pending for ever: the command says so instead (2 CPUs, no GPU)."""
    assert run_main(tmp_path, "gpu", "--space", "smoke", "--gpus-per-trial", "1") == 2
    err = capsys.readouterr().err
    assert "a trial needs 1 GPU in all (its process and its ranks), but the cluster has 0" in err
    assert run_main(tmp_path, "wide", "--space", "smoke", "--workers-per-trial", "3") == 2
    assert "a trial needs 3.05 CPU in all" in capsys.readouterr().err
    assert not (tmp_path / "gpu").exists() and not (tmp_path / "wide").exists()


def test_unusable_storage_and_spaces_exit_2_and_leave_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import ucc_tune.ray_adapter as tune

    def no_ray(*_: object, **__: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(tune, "start_ray", no_ray)
    afile = tmp_path / "afile"
    afile.write_text("")
    assert search.main(["--storage-path", str(afile / "exps"), "--name", "x"]) == 2
    assert f"{afile} is a file, not a folder" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("def space(trial):\n    return {\n")
    assert search.main(["--storage-path", str(tmp_path / "exps"), "--space", str(broken), "--name", "b"]) == 2
    assert "cannot be loaded: SyntaxError" in capsys.readouterr().err
    assert not (tmp_path / "exps").exists()  # a corrected command may use the same --name


def test_a_search_started_under_other_defaults_is_not_resumed_under_new_ones(tmp_path: Path) -> None:
    """search.json records the Config every trial shared; resuming after a version changed a
    default those trials relied on would mix two recipes in one ranking: it is refused."""
    from ucc_tune.config import Config
    from ucc_tune.search.plan import changed_defaults

    fixed = {"num_threads": 1, "seeds": 2}
    then = Config.from_dict(fixed).to_dict() | {"lr": 1e-3, "warmup_steps": 0}
    (tmp_path / "search.json").write_text(json.dumps({"fixed": fixed, "resolved_fixed_config": then}))
    assert changed_defaults(tmp_path) == "lr=0.001 -> 0.0003, warmup_steps=0 -> 100"
    same = Config.from_dict(fixed).to_dict()
    (tmp_path / "search.json").write_text(json.dumps({"fixed": fixed, "resolved_fixed_config": same}))
    assert changed_defaults(tmp_path) == ""
    for damaged in ("{not json", "[1, 2]"):  # a damaged record is not a reason to refuse, nor a traceback
        (tmp_path / "search.json").write_text(damaged)
        assert changed_defaults(tmp_path) == ""
