"""The searcher after a killed driver: restored from a pickle older than its study, it tells every
Optuna trial once, reuses a trial asked for just before the kill, and the study ends with exactly
the trials Tune ran. Driven by hand with the calls Tune makes, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from ucc_tune.ray_adapter.searcher import PruningOptunaSearch

EPOCHS = 3
States = optuna.trial.TrialState


def space(trial: Any) -> dict[str, Any]:
    trial.suggest_float("alpha", 0.0, 1.0)
    return {"epochs": EPOCHS}


def searcher(tmp_path: Path) -> PruningOptunaSearch:
    return PruningOptunaSearch(
        space=space, metric="cluster_acc", mode="max", sampler=optuna.samplers.TPESampler(seed=0),
        storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"), study_name="s",
        epochs=EPOCHS,
    )  # fmt: skip


def result(config: dict[str, Any], epoch: int, value: float) -> dict[str, Any]:
    return {"cluster_acc": value, "epoch": epoch, "epochs_done": epoch + 1, "config": config}


def run_to_end(s: PruningOptunaSearch, trial_id: str, config: dict[str, Any], first: int = 0) -> None:
    for epoch in range(first, EPOCHS):
        s.on_trial_result(trial_id, result(config, epoch, 0.5 + 0.1 * epoch))
    s.on_trial_complete(trial_id, result(config, EPOCHS - 1, 0.7))


def study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def test_a_restored_searcher_tells_once_and_reuses_the_orphan(tmp_path: Path) -> None:
    first = searcher(tmp_path)
    a = first.suggest("a")
    assert a is not None
    first.on_trial_result("a", result(a, 0, 0.5))
    first.save(str(tmp_path / "searcher.pkl"))  # Tune's last save before the kill
    run_to_end(first, "a", a, first=1)  # "a" finishes and is told COMPLETE
    b = first.suggest("b")  # asked for, then the driver is killed
    assert b is not None and study(tmp_path).trials[1].state == States.RUNNING

    restored = searcher(tmp_path)
    restored.restore(str(tmp_path / "searcher.pkl"))  # thinks "a" runs, knows nothing of "b"
    run_to_end(restored, "a", a, first=2)  # Tune resumes "a" from an older checkpoint
    c = restored.suggest("c")  # the next trial Tune asks for takes over b's Optuna trial
    assert c == b
    run_to_end(restored, "c", c)
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [States.COMPLETE, States.COMPLETE]
    assert trials[0].intermediate_values == pytest.approx({0: 0.5, 1: 0.6, 2: 0.7})
    assert trials[0].value == pytest.approx(0.7)


def test_a_fresh_searcher_adopts_a_resumed_trial_by_its_parameters(tmp_path: Path) -> None:
    first = searcher(tmp_path)
    a = first.suggest("a")
    assert a is not None
    first.on_trial_result("a", result(a, 0, 0.5))  # killed before Tune ever saved the searcher

    fresh = searcher(tmp_path)  # the same study, loaded; no pickle to restore
    run_to_end(fresh, "a", a, first=1)  # Tune resumes "a": its results reach a's Optuna trial
    trials = study(tmp_path).trials
    assert len(trials) == 1 and trials[0].state == States.COMPLETE
    assert set(trials[0].intermediate_values) == {0, 1, 2}


def test_a_trial_stopped_early_is_pruned_once(tmp_path: Path) -> None:
    first = searcher(tmp_path)
    a = first.suggest("a")
    assert a is not None
    first.on_trial_result("a", result(a, 0, 0.3))
    first.save(str(tmp_path / "searcher.pkl"))
    first.on_trial_complete("a", result(a, 0, 0.3))  # ASHA stopped it after one epoch
    assert study(tmp_path).trials[0].state == States.PRUNED

    restored = searcher(tmp_path)
    restored.restore(str(tmp_path / "searcher.pkl"))
    run_to_end(restored, "a", a, first=1)  # an older snapshot let Tune run it on: nothing is told
    trials = study(tmp_path).trials
    assert len(trials) == 1 and trials[0].state == States.PRUNED and set(trials[0].intermediate_values) == {0}


def test_a_restored_trial_continues_from_its_newest_complete_checkpoint(tmp_path: Path) -> None:
    from ucc_tune.checkpoints import newest_complete, tune_checkpoints

    def newest_complete_checkpoint(trial_dir: Path) -> Path | None:  # what TuneSession resumes from
        return newest_complete(tune_checkpoints(trial_dir)).folder

    def checkpoint(name: str, *parts: str, data: bytes | None = None) -> None:
        folder = tmp_path / name / Path(*parts) if parts else tmp_path / name
        folder.mkdir(parents=True)
        if data is None:  # a whole (empty) zip archive, as torch.save writes one
            import zipfile

            with zipfile.ZipFile(folder / "state.pt", "w"):
                pass
        else:
            (folder / "state.pt").write_bytes(data)

    assert newest_complete_checkpoint(tmp_path) is None
    checkpoint("checkpoint_000000", "seed_0")
    checkpoint("checkpoint_000000", "seed_1")  # one folder per seed
    checkpoint("checkpoint_000001", data=b"PK\x03\x04 truncated")  # killed mid-write
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint_000000"
    checkpoint("checkpoint_000002")
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint_000002"
