"""``ucc_tune.checkpoints`` on hand-built folders: the newest complete checkpoint of each
layout (a train run, a run of several seeds, a Tune trial, a DDP trial, a ``--workers`` run), the
damaged ones skipped and named, nothing found, and an import that brings neither torch nor Ray."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from ucc_tune.checkpoints import (
    Newest,
    find_checkpoints,
    newest_complete,
    run_checkpoints,
    seed_folders,
    state_file_damage,
    state_files,
    tune_checkpoints,
)

PAYLOAD = b"weights " * 64


def whole(path: Path) -> Path:
    """A whole zip archive at ``path``, as ``torch.save`` writes one (stored, so bytes can be flipped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", PAYLOAD)
    return path


def truncated(path: Path) -> Path:
    """A state file cut short, as by a run killed mid-write."""
    whole(path).write_bytes(path.read_bytes()[:40])
    return path


def checkpoint(folder: Path, *seeds: int) -> Path:
    """A checkpoint folder: one ``state.pt``, or one ``seed_<k>/state.pt`` per seed."""
    for state in [folder / f"seed_{k}" / "state.pt" for k in seeds] or [folder / "state.pt"]:
        whole(state)
    return folder


def test_state_file_damage_says_why_and_none_for_a_whole_file(tmp_path: Path) -> None:
    assert state_file_damage(whole(tmp_path / "a" / "state.pt")) is None
    assert state_file_damage(truncated(tmp_path / "b" / "state.pt")) is not None
    assert "No such file" in str(state_file_damage(tmp_path / "missing.pt"))
    flipped = whole(tmp_path / "c" / "state.pt")
    data = flipped.read_bytes()
    at = data.index(PAYLOAD)
    flipped.write_bytes(data[:at] + b"W" + data[at + 1 :])  # the archive reads, a member fails its CRC
    assert state_file_damage(flipped) == "archive/data.pkl"


def test_the_newest_epoch_of_a_run_is_chosen(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    first, second = checkpoint(root / "epoch_0001"), checkpoint(root / "epoch_0002")
    checkpoint(root / "best")  # the best epoch's copy is no epoch checkpoint
    checkpoint(root / ".tmp-epoch_0003")  # being installed
    (root / "epoch_0004").mkdir()  # no state file: no checkpoint
    assert run_checkpoints(tmp_path) == [first, second]
    assert newest_complete(run_checkpoints(tmp_path)) == Newest(second, ())
    assert find_checkpoints(tmp_path) == [first, second]


def test_damaged_checkpoints_are_skipped_and_named_newest_first(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    first = checkpoint(root / "epoch_0001")
    bad_two = truncated(root / "epoch_0002" / "state.pt")
    bad_three = truncated(root / "epoch_0003" / "state.pt")
    newest = newest_complete(run_checkpoints(tmp_path))
    assert newest.folder == first
    assert [s.split(" is damaged (")[0] for s in newest.skipped] == [str(bad_three), str(bad_two)]
    assert all(s.endswith(")") for s in newest.skipped)
    truncated(first / "state.pt")
    everything = newest_complete(run_checkpoints(tmp_path))
    assert everything.folder is None and len(everything.skipped) == 3


def test_a_checkpoint_of_several_seeds_is_complete_only_with_every_seed_whole(tmp_path: Path) -> None:
    older = checkpoint(tmp_path / "checkpoint_000000", 0, 1)
    newer = checkpoint(tmp_path / "checkpoint_000001", 0, 1, 2)
    assert state_files(older) == [older / "seed_0" / "state.pt", older / "seed_1" / "state.pt"]
    assert seed_folders(newer) == [newer / "seed_0", newer / "seed_1", newer / "seed_2"]
    assert seed_folders(checkpoint(tmp_path / "single")) == []
    assert newest_complete(tune_checkpoints(tmp_path)) == Newest(newer, ())
    damaged = truncated(newer / "seed_1" / "state.pt")
    newest = newest_complete(tune_checkpoints(tmp_path))
    assert newest.folder == older and newest.skipped[0].startswith(f"{damaged} is damaged (")


def test_a_ddp_trial_finds_its_ray_train_run_beside_the_trial_folders(tmp_path: Path) -> None:
    trial = tmp_path / "experiment" / "trial_b"
    trial.mkdir(parents=True)
    runs = tmp_path / "experiment" / "train_runs" / "train-b2"
    early = checkpoint(runs / "checkpoint_2026-01-01_10-00-00.000001")
    late = checkpoint(runs / "checkpoint_2026-01-01_10-00-09.000002")
    checkpoint(tmp_path / "experiment" / "train_runs" / "train-c3" / "checkpoint_2026-01-02_00-00-00.000001")
    assert find_checkpoints(trial, "b2") == [early, late]
    assert newest_complete(find_checkpoints(trial, "b2")).folder == late
    assert find_checkpoints(trial) == [] and find_checkpoints(trial, "x9") == []


def test_each_place_is_looked_at_in_order(tmp_path: Path) -> None:
    run = tmp_path / "run"
    workers = checkpoint(run / "ray_train" / "checkpoint_2026-01-01_10-00-09.000002")
    own = checkpoint(run / "checkpoint_000007")
    assert find_checkpoints(run) == [workers]  # a --workers run's Ray Train folder before the Tune ones
    assert tune_checkpoints(run) == [own] and run_checkpoints(run) == []
    epoch = checkpoint(run / "checkpoints" / "epoch_0001")
    assert find_checkpoints(run) == [epoch]


def test_nothing_found(tmp_path: Path) -> None:
    assert find_checkpoints(tmp_path / "missing", "a1") == [] and run_checkpoints(tmp_path) == []
    (tmp_path / "checkpoint_000000").mkdir()  # Ray still writing it
    assert tune_checkpoints(tmp_path) == [] and state_files(tmp_path / "checkpoint_000000") == []
    assert newest_complete([]) == Newest(None, ())
    gone = newest_complete([tmp_path / "checkpoint_000000"])  # emptied since it was listed
    assert gone.folder is None and gone.skipped == (f"{tmp_path / 'checkpoint_000000'} holds no state.pt",)


def test_importing_it_brings_neither_torch_nor_ray() -> None:
    code = "import sys, ucc_tune.checkpoints; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    root = Path(__file__).parents[1]  # this checkout's ucc_tune
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    out = done.stdout
    assert out.strip() == "[]"
