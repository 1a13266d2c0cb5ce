"""The report on experiments built by hand as files: the best checkpoint, what varies, stopped
trials drawn apart, parallel coordinates, feature maps and the confusion of a known clustering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

import analysis
from analysis import plots
from analysis.__main__ import main
from analysis.checkpoints import best_checkpoint_line
from ucc_tune.config import field_names

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


def markdown_headers(md: str) -> dict[str, list[str]]:
    """Section heading -> the column names of the table under it."""
    found, heading = {}, ""
    for line in md.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and heading not in found:
            found[heading] = [c.strip() for c in line.strip("|").split("|")]
    return found


ASHA = [  # two finished trials, two stopped after 1 of 3 epochs
    {"trial_id": "f1", "alpha": 0.25, "lr": 3e-4, "accs": [0.2, 0.4, 0.6]},
    {"trial_id": "f2", "alpha": 0.5, "lr": 1e-3, "accs": [0.3, 0.4, 0.5]},
    {"trial_id": "s1", "alpha": 0.0, "lr": 3e-4, "accs": [0.1]},
    {"trial_id": "s2", "alpha": 1.0, "lr": 3e-3, "accs": [0.15]},
]


def test_report_tables_show_only_the_searched_parameters(tmp_path: Path) -> None:
    exp_dir = experiment(tmp_path, ASHA)
    out = tmp_path / "out"
    assert main([str(exp_dir), "--out", str(out)]) == 0
    tables = markdown_headers((out / "report.md").read_text())
    ranking = next(v for k, v in tables.items() if k.startswith("Ranking"))
    assert ranking[:4] == ["rank", "alpha", "lr", "last_cluster_acc"]
    assert tables["Not ranked (stopped early, failed or never ran)"][4:6] == ["alpha", "lr"]
    assert tables["Across seeds"][:2] == ["alpha", "lr"]
    fields = set(field_names())
    # epochs and seed were set in every trial's config, and every other field has its default
    assert {c for columns in tables.values() for c in columns} & fields == {"alpha", "lr"}
    assert (out / "parallel_coordinates.png").read_bytes()[:4] == b"\x89PNG"


def test_learning_curves_are_labelled_by_values_and_stopped_trials_drawn_apart(tmp_path: Path) -> None:
    exp = analysis.load(experiment(tmp_path, ASHA))
    fig = plots.learning_curves_figure(exp.history, exp.trials, ["alpha", "lr"], "cluster_acc", top=5)
    assert fig is not None
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "#1 alpha=0.25, lr=0.0003",
        "#2 alpha=0.5, lr=0.001",
        "stopped early (2 trials, not ranked)",
        "_nolegend_",
    ]
    assert [np.asarray(line.get_ydata()).tolist() for line in lines] == [
        [0.2, 0.4, 0.6],
        [0.3, 0.4, 0.5],
        [0.1],
        [0.15],
    ]
    finished, stopped = lines[:2], lines[2:]
    assert {line.get_linestyle() for line in finished} == {"-"}
    assert {line.get_linestyle() for line in stopped} == {"--"}
    assert {line.get_color() for line in stopped}.isdisjoint(line.get_color() for line in finished)
    legend_box = fig.axes[0].get_legend()
    assert legend_box is not None
    legend = [text.get_text() for text in legend_box.get_texts()]
    assert legend == [line.get_label() for line in lines[:3]]
    plt.close(fig)


def test_parallel_coordinates_place_each_trial_on_every_axis(tmp_path: Path) -> None:
    exp = analysis.load(experiment(tmp_path, ASHA))
    frame, ticks = plots.parallel_data(exp.trials, ["alpha", "lr"], "cluster_acc")
    frame = frame.set_index("trial_id")
    # alpha linear over 0..1; lr 3e-4..3e-3 spans a factor of 10: log scale, 1e-3 at
    # log10(1e-3 / 3e-4) = 0.523 of the way; cluster_acc linear over 0.1..0.6 (last values)
    assert frame["alpha"].to_dict() == pytest.approx({"f1": 0.25, "f2": 0.5, "s1": 0.0, "s2": 1.0})
    assert frame["lr"].to_dict() == pytest.approx({"f1": 0.0, "f2": 0.5229, "s1": 0.0, "s2": 1.0}, abs=1e-4)
    assert frame["last_cluster_acc"].to_dict() == pytest.approx({"f1": 1.0, "f2": 0.8, "s1": 0.0, "s2": 0.1})
    assert list(frame["stopped"]) == [False, False, True, True]
    assert ticks == [("0", "1"), ("0.0003", "0.003"), ("0.1", "0.6")]
