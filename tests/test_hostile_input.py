"""Hostile and careless input, drawn by hypothesis: every refusal names the value and happens before
anything starts; damaged experiment files become notes, never tracebacks or guessed values.

None of these tests starts Ray: the search's checks run through ``resolve_plan``, which decides
the plan and starts nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ucc_tune.config import Config, ConfigError, field_names
from ucc_tune.search.spaces import SpaceError, load_space

# no shrinking: a failing draw is reported as drawn, in seconds rather than minutes
QUICK = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "inf", "-inf", "1e-9", "1e6", "1e300", "99999999999999999999", "lots", ""]),
)
VALUES = st.one_of(
    NUMBERS, st.booleans(), st.none(), st.text(max_size=8), st.lists(st.integers(), max_size=2)
)


@QUICK
@given(name=st.sampled_from(field_names()), value=VALUES)
def test_a_config_value_makes_a_config_or_an_error_naming_it(name: str, value: Any) -> None:
    try:
        config = Config.from_dict({name: value})
    except ConfigError as err:
        assert name in str(err), str(err)
        return
    for field, got in config.to_dict().items():  # what it accepted is finite and of its type
        assert not (isinstance(got, float) and not math.isfinite(got)), (field, got)
    assert config.seed + config.seeds - 1 < 2**32


FLAGS = ["--cpus-per-trial", "--gpus-per-trial", "--num-samples", "--seed", "--seeds", "--top",
         "--max-concurrent", "--grace-period", "--workers-per-trial", "--max-failures"]  # fmt: skip
SETS = ["seed", "num_bins", "num_features", "bag_size", "bags_per_label", "head_hidden1", "lr", "epochs"]


def _refused_or_planned(argv: list[str], storage: Path) -> tuple[int, str]:
    """What the search command decides for ``argv`` before Ray: (0, "") for a plan it would run,
    (2, message) for a refusal."""
    from ucc_tune.search import command as search

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = search.build_parser().parse_args(["--storage-path", str(storage), *argv])
            plan = search.resolve_plan(args)
    except SystemExit as stop:  # argparse: a value of the wrong type
        return int(stop.code or 0), err.getvalue()
    except (search.UsageError, ConfigError) as refusal:
        return 2, str(refusal)
    assert math.isfinite(plan.resources.cpus) and math.isfinite(plan.resources.gpus)
    return 0, ""


@QUICK
@given(
    flag=st.sampled_from(FLAGS + [f"--set {k}" for k in SETS] + ["--metric"]),
    value=NUMBERS.map(str) | st.sampled_from(["cluster_acc,cluster_acc", "val_loss,nope"]),
)
def test_a_flag_value_is_refused_in_one_line_before_anything_starts(flag: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        storage = Path(root) / "experiments"
        argv = ["--space", "smoke", "--set", "epochs=1"] if flag != "--set epochs" else ["--space", "smoke"]
        argv += ["--set", f"{flag.split()[1]}={value}"] if flag.startswith("--set") else [flag, value]
        code, message = _refused_or_planned(argv, storage)
        assert not storage.exists(), "a refused or planned search left a folder"
    assert code in (0, 2)
    if code == 2:
        assert "Traceback" not in message and message.strip(), message
        named = flag.split()[-1]
        assert named in message or value in message or "usage:" in message, message


def test_the_issues_worst_numbers_are_refused_with_what_is_allowed(tmp_path: Path) -> None:
    cases = {
        ("--set", "seed=99999999999999999999"): "below 4294967296",
        ("--set", "seed=1099511627776"): "below 4294967296",
        ("--gpus-per-trial", "nan"): "--gpus-per-trial nan: must be a number from 0 to 1024",
        ("--gpus-per-trial", "inf"): "--gpus-per-trial inf: must be a number from 0 to 1024",
        ("--cpus-per-trial", "inf"): "--cpus-per-trial inf: must be a number from 0.05 to 1024",
        ("--cpus-per-trial", "1e-9"): "--cpus-per-trial 1e-09: must be a number from 0.05 to 1024",
        ("--set", "num_bins=1e6"): "GiB",
        ("--metric", "cluster_acc,cluster_acc"): "names a metric twice",
    }
    for argv, expected in cases.items():
        code, message = _refused_or_planned(["--space", "smoke", *argv], tmp_path / "x")
        assert code == 2 and expected in message, (argv, message)


def _space_file(folder: Path, grid: Any, num_samples: Any) -> Path:
    path = folder / "space.py"
    lines = ["def space(trial):", "    trial.suggest_float('lr', 1e-4, 1e-3)", "    return {'epochs': 1}"]
    if grid is not None:
        lines.append(f"GRID = {grid!r}")
    if num_samples is not None:
        literal = f"float('{num_samples}')" if isinstance(num_samples, float) else repr(num_samples)
        lines.append(f"NUM_SAMPLES = {literal}")
    path.write_text("\n".join(lines) + "\n")
    return path


GRID_VALUES = st.one_of(
    st.lists(st.floats(0, 1), max_size=3), st.floats(0, 1), st.text(max_size=3), st.just(())
)
GRIDS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.sampled_from(["alpha", "lr", "nope"]), GRID_VALUES, max_size=2),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=4),
)


@QUICK
@given(grid=GRIDS, num_samples=st.one_of(st.none(), NUMBERS))
def test_space_file_constants_make_a_space_or_a_space_error(grid: Any, num_samples: Any) -> None:
    with tempfile.TemporaryDirectory() as root:
        try:
            space = load_space(str(_space_file(Path(root), grid, num_samples)))
        except SpaceError as err:
            assert "GRID" in str(err) or "NUM_SAMPLES" in str(err), str(err)
            return
    assert isinstance(space.num_samples, int) and 1 <= space.num_samples <= 100_000
    for name, values in (space.grid or {}).items():
        assert name in field_names() and isinstance(values, list) and values


def test_a_space_that_exits_or_searches_what_it_returns_is_refused(tmp_path: Path) -> None:
    from ucc_tune.search.spaces import probe

    leaving = tmp_path / "leaving.py"
    leaving.write_text("import sys\nsys.exit(0)\ndef space(trial):\n    return {}\n")
    with pytest.raises(SpaceError, match="SystemExit"):
        load_space(str(leaving))
    both = tmp_path / "both.py"
    both.write_text("def space(trial):\n    trial.suggest_float('alpha', 0, 1)\n    return {'alpha': 5.0}\n")
    with pytest.raises(SpaceError, match="both searches and returns alpha"):
        probe(load_space(str(both)), {}, set())


# --- damaged experiment files --------------------------------------------------------------------

DAMAGES = ("truncate", "empty", "garbage", "latin1", "wrong_types", "nan", "delete")
FILES = ("run.json", "metrics.jsonl", "artifacts/test_features.npz", "artifacts/js.npz")


def _damage(path: Path, how: str, noise: bytes) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(noise)
    elif how == "latin1":
        path.write_bytes(data.replace(b"}", "\u00e9}".encode("latin-1"), 1))
    elif how == "wrong_types" and path.suffix in (".json", ".jsonl"):
        text = json.dumps({"trial_id": 3, "config": "alpha=0.5", "epoch": "one", "cluster_acc": "high"})
        path.write_text(text + "\n")
    elif how == "wrong_types":
        np.savez(path, js_matrix=np.ones(3), class_names=np.array([1]), features=np.ones(2), labels=[9.5])
    elif how == "nan" and path.suffix == ".json":
        info = json.loads(data)
        path.write_text(json.dumps({**info, "config": {**info["config"], "alpha": math.nan}}))
    elif how == "nan" and path.suffix == ".jsonl":
        rows = [json.loads(line) for line in data.decode().splitlines()]
        rows[-1] = {**rows[-1], "cluster_acc": math.nan, "val_loss": math.inf}
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif how == "nan":
        np.savez(path, js_matrix=np.full((2, 2), np.nan), class_names=np.array(["a", "b"]),
                 features=np.full((2, 2), np.nan), labels=np.array([0, 1]))  # fmt: skip
    else:
        path.unlink()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(file=st.sampled_from(FILES), how=st.sampled_from(DAMAGES), noise=st.binary(max_size=64))
def test_a_damaged_trial_file_is_a_note_not_a_traceback_or_a_guess(
    smoke_experiment: Path, file: str, how: str, noise: bytes
) -> None:
    import analysis
    from analysis.embedding import read_features
    from analysis.plots import js_heatmap

    with tempfile.TemporaryDirectory() as root:
        exp = Path(shutil.copytree(smoke_experiment, Path(root) / "smoke",
                                   ignore=shutil.ignore_patterns("checkpoint_*", "analysis")))  # fmt: skip
        trial = sorted(p for p in exp.iterdir() if (p / "run.json").is_file())[0]
        _damage(trial / file, how, noise)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            loaded = analysis.load(exp)
        features = read_features(trial)
        js_heatmap(trial, Path(root))
    row = loaded.trials.set_index("trial_dir").loc[str(trial)]
    if file == "run.json" and how != "latin1":  # without its config the trial is not ranked
        assert row["status"] == "ERROR" and any("run.json" in n for n in loaded.warnings)
    if file == "metrics.jsonl" and how == "nan":
        assert math.isnan(row["last_cluster_acc"]) and any(
            "not a finite number" in n for n in loaded.warnings
        )
    if file == "metrics.jsonl" and how in ("garbage", "empty", "delete", "wrong_types"):
        assert row["status"] != "TERMINATED" or row["epochs_run"] < 2
    if file.endswith("test_features.npz") and how != "latin1":
        assert features is None or np.isfinite(features.features).all()


# --- the experiment lock, secrets, predict ----------------------------------------------------


def test_a_second_holder_of_an_experiment_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from ucc_tune.search.lock import ExperimentLock, ExperimentLocked

    with ExperimentLock(tmp_path), pytest.raises(ExperimentLocked, match=f"PID {os.getpid()} on "):
        ExperimentLock(tmp_path).acquire()
    with ExperimentLock(tmp_path):  # released on exit: the next one gets it
        pass
    holder = "from ucc_tune.search.lock import ExperimentLock; import time; "
    holder += (
        f"lock = ExperimentLock({str(tmp_path)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(ExperimentLocked, match=f"PID {child.pid} on "):
            ExperimentLock(tmp_path).acquire()
    finally:
        child.kill()  # a crash: the operating system drops the lock, none is left stale
        child.wait()
    with ExperimentLock(tmp_path):
        pass


def test_secret_names_and_uris_in_messages_are_told_apart() -> None:
    from ucc_tune.storage import is_secret, redact_text

    assert all(map(is_secret, ["WANDB_API_KEY", "AWS_SESSION_TOKEN", "db_password", "MY_SECRET", "HF_TOKEN"]))
    assert not any(map(is_secret, ["RAY_TRAIN_V2_ENABLED", "WANDB_MODE", "PATH", "OMP_NUM_THREADS"]))
    text = "cannot open 'http://u:pw@host/x' nor s3://b/p?secret_key=abc&region=eu; s3://b/q stays"
    assert redact_text(text) == (
        "cannot open 'http://***@host/x' nor s3://b/p?secret_key=***&region=eu; s3://b/q stays"
    )


def test_predict_refuses_images_with_nan_pixels_naming_them(tmp_path: Path) -> None:
    from ucc_tune.trained.predict import PredictionError, read_raw_images

    images = np.zeros((5, 8, 8), dtype=np.float32)
    images[3, 2, 2] = np.nan
    images[4, 0, 0] = np.inf
    np.save(tmp_path / "x.npy", images)
    with pytest.raises(PredictionError, match=r"2 image\(s\) hold NaN or infinite pixels \(index 3, 4\)"):
        read_raw_images(tmp_path / "x.npy")


def test_a_resume_is_refused_while_held_or_when_it_asks_for_another_search(
    smoke_experiment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ucc_tune import ray_adapter as tune
    from ucc_tune.search import command as search
    from ucc_tune.search.lock import ExperimentLock

    monkeypatch.setattr(tune, "start_ray", lambda *a, **k: pytest.fail("Ray started for a refused resume"))
    shutil.copytree(smoke_experiment, tmp_path / "smoke")
    same = ["--storage-path", str(tmp_path), "--name", "smoke", "--space", "smoke", "--num-samples", "3"]
    same += ["--scheduler", "fifo", "--set", "num_threads=1", "--set", "keep_checkpoints=1", "--seeds", "2"]
    same += ["--resume"]
    with ExperimentLock(tmp_path / "smoke"):
        assert search.main(same) == 2
    assert "is in use by PID" in capsys.readouterr().err
    other = [*same, "--num-samples", "5", "--metric", "val_loss"]
    assert search.main(other) == 2
    err = capsys.readouterr().err
    assert "--metric cluster_acc -> val_loss" in err and "--num-samples 3 -> 5" in err, err


def test_analysis_that_cannot_write_exits_2_and_says_where(
    smoke_experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from analysis.__main__ import main

    (tmp_path / "a_file").write_text("")  # a folder under a file cannot be made, even by root
    assert main([str(smoke_experiment), "--out", str(tmp_path / "a_file" / "analysis")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the analysis to" in err and "pass --out DIR" in err and err.count("\n") == 1
