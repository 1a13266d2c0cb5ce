"""Checkpoint folders on disk: where a run or a trial keeps them, their state files, whether those
read back, and the newest complete one. No torch, no Ray: ``analysis`` uses it too.

A checkpoint folder holds ``state.pt``, or one ``seed_<k>/state.pt`` per seed of a run of several
seeds. The places to look are ``ucc_tune.schema.checkpoint_places``: a train run's
``checkpoints/epoch_NNNN/``, a ``--workers`` run's ``ray_train/checkpoint_*/``, a DDP trial's
``<experiment>/train_runs/train-<trial id>/checkpoint_*/`` and a Tune trial's own
``checkpoint_NNNNNN/``. Their names sort oldest first (by epoch, index or time). A state file is
damaged when it is not the whole zip archive that ``torch.save`` writes (a run killed mid-write,
a full disk); the newest complete checkpoint is the newest one whose state files are all whole.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ucc_tune.schema import (
    CHECKPOINT_STATE_FILE,
    CHECKPOINTS_DIR,
    EPOCH_CHECKPOINTS,
    RAY_CHECKPOINTS,
    checkpoint_places,
)

# the state files of a checkpoint of several seeds: ucc_tune.schema.seed_name(k)/state.pt
SEED_STATE_FILES = f"seed_*/{CHECKPOINT_STATE_FILE}"


@dataclass(frozen=True)
class Newest:
    """The newest complete checkpoint folder (None: none is) and the newer ones skipped as
    damaged, newest first, each as ``<state file> is damaged (<why>)``."""

    folder: Path | None
    skipped: tuple[str, ...] = ()


def seed_folders(checkpoint: Path) -> list[Path]:
    """The ``seed_<k>/`` folders holding a state file of a checkpoint of several seeds, sorted by
    name; none for a checkpoint of one seed."""
    return sorted(state.parent for state in checkpoint.glob(SEED_STATE_FILES))


def state_files(checkpoint: Path) -> list[Path]:
    """The state files of a checkpoint folder: its ``state.pt``, or one per seed of a run of several
    seeds (``seed_<k>/state.pt``); none when the folder holds no checkpoint."""
    single = checkpoint / CHECKPOINT_STATE_FILE
    if single.is_file():
        return [single]
    return [seed / CHECKPOINT_STATE_FILE for seed in seed_folders(checkpoint)]


def state_file_damage(path: Path) -> str | None:
    """Why a state file does not read back (unreadable, not a zip archive, a member failing its
    CRC check), or None when it is whole."""
    try:
        with zipfile.ZipFile(path) as archive:  # torch.save writes a zip archive
            return archive.testzip()  # the name of the first damaged member, or None
    except (OSError, zipfile.BadZipFile) as err:
        return str(err)


def checkpoint_damage(checkpoint: Path) -> str | None:
    """Why a checkpoint folder is not complete, naming its first damaged state file, or None."""
    states = state_files(checkpoint)
    if not states:
        return f"{checkpoint} holds no {CHECKPOINT_STATE_FILE}"
    for state in states:
        why = state_file_damage(state)
        if why is not None:
            return f"{state} is damaged ({why})"
    return None


def checkpoints_in(base: Path, pattern: str) -> list[Path]:
    """The folders of ``base`` named as ``pattern`` that hold a state file, oldest first."""
    return sorted(folder for folder in base.glob(pattern) if state_files(folder))


def run_checkpoints(run_dir: Path) -> list[Path]:
    """A ``python -m ucc_tune.train`` run's ``checkpoints/epoch_NNNN/`` (not ``best/``), oldest first."""
    return checkpoints_in(run_dir / CHECKPOINTS_DIR, EPOCH_CHECKPOINTS)


def tune_checkpoints(trial_dir: Path) -> list[Path]:
    """A Tune trial's own ``checkpoint_NNNNNN/`` folders, oldest first."""
    return checkpoints_in(trial_dir, RAY_CHECKPOINTS)


def find_checkpoints(folder: Path, trial_id: str | None = None) -> list[Path]:
    """The checkpoint folders of a run or trial folder (``trial_id``: a trial's, which finds a DDP
    trial's Ray Train run), oldest first: those of the first of ``checkpoint_places`` that has any."""
    for base, pattern in checkpoint_places(folder, trial_id):
        found = checkpoints_in(Path(base), pattern)
        if found:
            return found
    return []


def newest_complete(checkpoints: list[Path]) -> Newest:
    """The newest of ``checkpoints`` (oldest first) whose state files all read back, and why each
    newer one was skipped; the caller names those (a warning, a message)."""
    skipped: list[str] = []
    for folder in reversed(checkpoints):
        damage = checkpoint_damage(folder)
        if damage is None:
            return Newest(folder, tuple(skipped))
        skipped.append(damage)
    return Newest(None, tuple(skipped))
