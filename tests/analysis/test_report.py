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
from analysis import embedding, plots
from analysis.__main__ import main
from analysis.checkpoints import best_checkpoint_line
from ucc_tune.config import field_names
from ucc_tune.metrics import cluster_accuracy

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


# 3 classes of 10 points, 4 clusters; by hand: Hungarian matches cluster 2 -> a (8 points),
# cluster 0 -> b (9), cluster 1 -> c (7); cluster 3 matches nothing. 30 - 24 = 6 misassigned.
CLUSTERS = [2] * 8 + [0] * 2 + [0] * 9 + [1] + [1] * 7 + [2] * 2 + [3]
CONFUSION = {
    "class": ["a", "b", "c"],
    "cluster 2 (a)": [8, 0, 2],
    "cluster 0 (b)": [2, 9, 0],
    "cluster 1 (c)": [0, 1, 7],
    "cluster 3 (-)": [0, 0, 1],
}


def write_features(trial_dir: Path) -> np.ndarray:
    """``artifacts/test_features.npz`` of three separated blobs in 5-D, with ``CLUSTERS`` as the
    k-means assignment and a spectral one that is right everywhere; returns the features."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    features = rng.normal(size=(30, 5)) * 0.05 + np.eye(5)[labels] * 0.8
    (trial_dir / "artifacts").mkdir()
    np.savez(trial_dir / "artifacts" / "test_features.npz", features=features.astype(np.float32),
             labels=labels, class_names=np.array(["a", "b", "c"]), clusters_kmeans=np.array(CLUSTERS),
             clusters_spectral=labels + 5)  # fmt: skip
    return features


def test_confusion_table_and_feature_map_of_a_known_clustering(tmp_path: Path) -> None:
    features = write_features(tmp_path)
    data = embedding.read_features(tmp_path)
    assert data is not None and set(data.clusters) == {"kmeans", "spectral"}
    table = embedding.confusion_table(data.labels, data.clusters["kmeans"], data.class_names)
    assert list(table.columns) == list(CONFUSION) and table.to_dict("list") == CONFUSION
    assert pytest.approx(cluster_accuracy(data.labels, data.clusters["kmeans"])) == 1 - 6 / 30
    fmap = embedding.feature_map(data, "kmeans")
    assert list(fmap.matched) == [{2: 0, 0: 1, 1: 2, 3: -1}[k] for k in CLUSTERS]
    assert int(fmap.wrong.sum()) == 6 and list(np.flatnonzero(fmap.wrong)) == [8, 9, 19, 27, 28, 29]
    # PCA: the projection on the two leading right singular vectors, up to their signs
    centred = features - features.mean(axis=0)
    reference = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    assert np.abs(fmap.coords["PCA"]) == pytest.approx(np.abs(reference), abs=1e-4)
    assert fmap.coords["t-SNE"].shape == (30, 2) and np.isfinite(fmap.coords["t-SNE"]).all()
    fig = embedding.map_figure(fmap, data.class_names)
    crosses = [c for ax in fig.axes for c in ax.collections if str(c.get_label()).startswith("misassigned")]
    assert [len(np.asarray(c.get_offsets())) for c in crosses] == [6, 6]  # PCA and t-SNE panels
    plt.close(fig)
    # a subsample is drawn with a fixed seed: the same rows every time
    assert list(embedding.subsample(30, 12)) == list(embedding.subsample(30, 12))
    assert len(set(embedding.subsample(30, 12))) == 12 and list(embedding.subsample(5, 12)) == [0, 1, 2, 3, 4]


def test_report_shows_the_searched_parameters_and_the_best_trials_features(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    exp_dir = experiment(tmp_path, ASHA)
    write_features(exp_dir / "ucc_trial_f1")  # the first-ranked trial
    out = tmp_path / "out"
    assert main([str(exp_dir), "--out", str(out)]) == 0
    assert "the best trial has no artifacts/test_features.npz" not in capsys.readouterr().out
    md = (out / "report.md").read_text()
    tables = markdown_headers(md)
    ranking = next(v for k, v in tables.items() if k.startswith("Ranking"))
    assert ranking[:4] == ["rank", "alpha", "lr", "last_cluster_acc"]
    assert tables["Not ranked (stopped early, failed or never ran)"][4:6] == ["alpha", "lr"]
    assert "Across seeds" not in tables  # one trial per configuration: its seeds' range is in the ranking
    # the answer first: the verdict, then the ranking, then the search's settings as a short table
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "Verdict" and headings[1].startswith("Ranking") and headings[2] == "Search"
    assert tables["Search"] == [
        "experiment",
        "space",
        "searched",
        "objectives",
        "trials",
        "fixed",
        "git_commit",
    ]
    assert "| hand | hand | alpha, lr | cluster_acc (max) |" in md
    # epochs and seed were set in every trial's config, and every other field has its default
    assert {c for columns in tables.values() for c in columns} & set(field_names()) == {"alpha", "lr"}
    assert (out / "parallel_coordinates.png").read_bytes()[:4] == b"\x89PNG"
    heading = next(line for line in md.splitlines() if line.startswith("## Best trial: test split"))
    rows = md.split(heading, 1)[1].strip().splitlines()
    assert rows[0] == "| " + " | ".join(CONFUSION) + " |"
    assert rows[2:5] == ["| a | 8 | 2 | 0 | 0 |", "| b | 0 | 9 | 1 | 0 |", "| c | 2 | 0 | 7 | 1 |"]
    assert "(feature_maps.png)" in md and "(confusion.png)" in md
    assert (out / "feature_maps.png").read_bytes()[:4] == b"\x89PNG"


def test_objective_vs_parameters_draws_only_finished_trials_as_comparable(tmp_path: Path) -> None:
    """Two trials finished at epoch 3, two stopped after epoch 1 of 3: the stopped ones' values
    are of another budget, so they are drawn apart from the finished ones, never among them."""
    exp = analysis.load(experiment(tmp_path, ASHA))
    fig = plots.objective_vs_parameters_figure(exp.trials, ["alpha", "lr"], "cluster_acc")
    assert fig is not None
    alpha_panel = fig.axes[0]
    drawn = {str(c.get_label()): np.asarray(c.get_offsets()).tolist() for c in alpha_panel.collections}
    assert drawn == {
        "finished: value at its last epoch (2)": [[0.25, 0.6], [0.5, 0.5]],
        "stopped early: value at its last epoch run (not comparable) (2)": [[0.0, 0.1], [1.0, 0.15]],
    }
    legend_box = alpha_panel.get_legend()
    assert legend_box is not None and [t.get_text() for t in legend_box.get_texts()] == list(drawn)
    plt.close(fig)


def test_a_failed_trial_is_drawn_along_the_bottom_whatever_it_reported() -> None:
    import pandas as pd

    trials = pd.DataFrame(
        {
            "trial_id": ["f", "s", "e"],
            "status": ["TERMINATED", "STOPPED", "ERROR"],
            "alpha": [0.5, 1.0, 0.0],
            "last_cluster_acc": [0.9, 0.4, 0.95],  # e collapsed after an epoch that scored 0.95
        }
    )
    fig = plots.objective_vs_parameters_figure(trials, ["alpha"], "cluster_acc")
    assert fig is not None
    drawn = {
        str(c.get_label()).split(":")[0]: np.asarray(c.get_offsets()).tolist()
        for c in fig.axes[0].collections
    }
    assert drawn == {"finished": [[0.5, 0.9]], "stopped early": [[1.0, 0.4]], "failed": [[0.0, 0.4]]}
    plt.close(fig)
