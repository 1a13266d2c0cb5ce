"""The report on experiments built by hand as files: the best checkpoint, what varies, stopped
trials drawn apart, parallel coordinates, feature maps and the confusion of a known clustering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import analysis
from analysis.checkpoints import best_checkpoint_line

SEARCH = {"space": "hand", "searched": ["alpha", "lr"], "metrics": ["cluster_acc"], "modes": ["max"]}


def write_trial(exp: Path, trial_id: str, alpha: float, lr: float, accs: list[float], epochs: int = 3,
                checkpoints: tuple[int, ...] = (), ddp: bool = False) -> Path:  # fmt: skip
    """A trial folder as a search writes it: ``run.json``, ``metrics.jsonl`` (``accs`` per epoch)
    and checkpoint folders of two seeds (``seed_<k>/state.pt``), or a DDP trial's Ray Train run."""
    folder = exp / f"ucc_trial_{trial_id}"
    folder.mkdir(parents=True)
    config = {"alpha": alpha, "lr": lr, "epochs": epochs, "seed": 0}
    (folder / "run.json").write_text(json.dumps({"trial_id": trial_id, "config": config}))
    rows = [
        {"epoch": e, "cluster_acc": a, "cluster_eval_epoch": e, "val_ucc_acc": 0.5}
        for e, a in enumerate(accs)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = exp / "train_runs" / f"train-{trial_id}" if ddp else folder
    for index in checkpoints:
        for seed in (0, 1):
            state = base / f"checkpoint_{index:06d}" / f"seed_{seed}" / "state.pt"
            state.parent.mkdir(parents=True)
            state.write_bytes(b"weights")
    return folder


def experiment(tmp_path: Path, trials: list[dict[str, Any]], search: dict[str, Any] = SEARCH) -> Path:
    exp = tmp_path / "hand"
    exp.mkdir()
    (exp / "search.json").write_text(json.dumps(search))
    for trial in trials:
        write_trial(exp, **trial)
    return exp


def test_best_checkpoint_is_the_newest_of_the_first_ranked_finished_trial(tmp_path: Path) -> None:
    exp_dir = experiment(tmp_path, [
        # best epoch 0.9, but ranked by its last value 0.5
        {"trial_id": "a", "alpha": 0.25, "lr": 1e-3, "accs": [0.2, 0.9, 0.5], "checkpoints": (1, 2)},
        {"trial_id": "b", "alpha": 0.5, "lr": 3e-4, "accs": [0.3, 0.6, 0.7], "checkpoints": (0, 1, 2)},
        # stopped after 1 of 3 epochs: never ranked, however high
        {"trial_id": "c", "alpha": 0.75, "lr": 1e-3, "accs": [0.99], "checkpoints": (0,)},
    ])  # fmt: skip
    empty = exp_dir / "ucc_trial_b" / "checkpoint_000003"
    empty.mkdir()  # a checkpoint folder without a state file (Ray still writing it) is passed over
    exp = analysis.load(exp_dir)
    assert analysis.best_checkpoint(exp) == exp_dir / "ucc_trial_b" / "checkpoint_000002"
    line = best_checkpoint_line(exp, ["alpha", "lr"])
    assert line.startswith(f"best checkpoint: {exp_dir / 'ucc_trial_b' / 'checkpoint_000002'} (trial b (")
    assert "alpha=0.5, lr=0.0003" in line and "seed_0, seed_1" in line
    # ranked by val_ucc_acc (all equal): ties go by trial id, and a's newest checkpoint is 2
    assert analysis.best_checkpoint(exp, "val_ucc_acc") == exp_dir / "ucc_trial_a" / "checkpoint_000002"
    # minimising cluster_acc ranks a first
    assert (
        analysis.best_checkpoint(exp, "cluster_acc", "min") == exp_dir / "ucc_trial_a" / "checkpoint_000002"
    )


def test_best_checkpoint_of_a_ddp_trial_and_when_there_is_none(tmp_path: Path) -> None:
    exp_dir = experiment(tmp_path, [
        {"trial_id": "d", "alpha": 0.5, "lr": 1e-3, "accs": [0.1, 0.2, 0.4], "checkpoints": (0, 1),
         "ddp": True},
        {"trial_id": "e", "alpha": 0.25, "lr": 1e-3, "accs": [0.1, 0.2, 0.3]},
        {"trial_id": "s", "alpha": 0.0, "lr": 1e-3, "accs": [0.8]},
    ])  # fmt: skip
    exp = analysis.load(exp_dir)
    assert analysis.best_checkpoint(exp) == exp_dir / "train_runs" / "train-d" / "checkpoint_000001"
    # e is ranked first when minimising, and it has no checkpoint
    assert analysis.best_checkpoint(exp, "cluster_acc", "min") is None
    line = best_checkpoint_line(exp, ["alpha"], "cluster_acc", "min")
    assert line == f"best checkpoint: none found for trial e (alpha=0.25) in {exp_dir / 'ucc_trial_e'}"
    stopped = analysis.load(exp_dir)
    stopped.trials = stopped.trials[stopped.trials["trial_id"] == "s"]
    assert analysis.best_trial(stopped) is None and analysis.best_checkpoint(stopped) is None
    assert best_checkpoint_line(stopped, ["alpha"]).startswith(
        "best checkpoint: none (no trial ran its whole"
    )
