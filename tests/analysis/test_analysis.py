"""Analysis on a real small search and on hand-damaged copies of it."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import analysis
from analysis.__main__ import main
from analysis.views import best_trials, pareto_front, seed_statistics, signal_correlation

TABLES = ("trials", "history", "js_divergence", "js_summary")


def copy_of(exp: Path, tmp_path: Path) -> Path:
    target = tmp_path / exp.name
    shutil.copytree(exp, target, ignore=shutil.ignore_patterns("analysis"))
    return target


def trial_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if (p / "run.json").is_file())


def test_load_matches_ray_experiment_analysis(smoke_experiment: Path) -> None:
    from ray.tune import ExperimentAnalysis

    exp = analysis.load(smoke_experiment)
    assert len(exp.trials) == 3 and set(exp.trials["status"]) == {"TERMINATED"}
    ray_view = ExperimentAnalysis(str(smoke_experiment), default_metric="cluster_acc", default_mode="max")
    configs = {t.trial_id: t.config for t in ray_view.trials}
    assert len(ray_view.trial_dataframes) == 3
    for frame in ray_view.trial_dataframes.values():
        trial_id = frame["trial_id"].iloc[0]
        row = exp.trials.set_index("trial_id").loc[trial_id]
        assert row["last_cluster_acc"] == pytest.approx(frame["cluster_acc"].iloc[-1])
        assert row["best_cluster_acc"] == pytest.approx(frame["cluster_acc"].max())
        assert row["best_val_loss"] == pytest.approx(frame["val_loss"].min())
        assert row["alpha"] == pytest.approx(configs[trial_id]["alpha"])
        assert row["epochs_run"] == len(frame)
    assert len(exp.history) == 3 * 2
    assert exp.trials["alpha"].dtype == "float64" and exp.trials["bag_size"].dtype == "Int64"
    assert exp.trials["model"].dtype == "string" and exp.trials["amp"].dtype == "boolean"
    # the search's own table and this one: one row builder, the same columns and types
    searched = pd.read_parquet(smoke_experiment / "trials.parquet")
    assert list(searched.columns) == list(exp.trials.columns)
    assert (searched.dtypes == exp.trials.dtypes).all()
    pd.testing.assert_frame_equal(
        searched.sort_values("trial_id").reset_index(drop=True),
        exp.trials.sort_values("trial_id").reset_index(drop=True),
    )


def test_js_summary_agrees_with_the_saved_matrix(smoke_experiment: Path) -> None:
    exp = analysis.load(smoke_experiment)
    for _, row in exp.trials.iterrows():
        with np.load(Path(row["trial_dir"]) / "artifacts" / "js.npz") as data:
            matrix, names = data["js_matrix"], list(data["class_names"])
        summary = exp.js_summary.set_index("trial_id").loc[row["trial_id"]]
        upper = matrix[np.triu_indices(len(names), 1)]
        assert summary["js_min"] == pytest.approx(upper.min())
        assert summary["js_mean"] == pytest.approx(upper.mean())
        a, b = np.unravel_index(np.argmin(matrix + np.eye(len(names)) * 9), matrix.shape)
        assert {summary["closest_a"], summary["closest_b"]} == {names[a], names[b]}
    assert len(exp.js) == 3 * 45  # 10 classes: 45 pairs per trial


def test_cli_writes_round_tripping_parquet_plots_and_a_valid_report(
    smoke_experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert main([str(smoke_experiment), "--out", str(out), "--top", "2"]) == 0
    printed = capsys.readouterr().out
    assert "ranked by the mean cluster_acc over seeds at the last epoch" in printed
    assert "- best: alpha=" in printed and "mean of 2 seed(s)" in printed
    assert (
        f"- best checkpoint: {analysis.best_checkpoint(analysis.load(smoke_experiment))} (trial " in printed
    )
    exp = analysis.load(smoke_experiment)
    frames = {
        "trials": exp.trials,
        "history": exp.history,
        "js_divergence": exp.js,
        "js_summary": exp.js_summary,
    }
    for name in TABLES:
        read = pd.read_parquet(out / f"{name}.parquet")
        pd.testing.assert_frame_equal(read, frames[name].reset_index(drop=True))
        other = pq.read_table(out / f"{name}.parquet").to_pandas()
        assert list(other.columns) == list(read.columns) and len(other) == len(read)
    plots = ["objective_vs_parameters", "parallel_coordinates", "learning_curves", "ucc_vs_cluster"]
    plots += ["js_heatmap", "reconstructions", "feature_maps", "confusion"]
    for name in plots:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text()
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [] and len(checker.images) == len(plots)
    import matplotlib.image

    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert image.ndim == 3 and image.shape[0] > 10
    md = (out / "report.md").read_text()
    assert all(f"({name}.png)" in md for name in plots) and "| rank" in md
    assert "## Verdict\n\n- best: alpha=" in md and "last_cluster_acc_seed_min" in md


class TagChecker(html.parser.HTMLParser):
    """Checks that tags nest and close; collects image sources."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.VOID, f"<{tag}/> is not a void element"
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def test_damaged_folders_are_read_with_warnings(smoke_experiment: Path, tmp_path: Path) -> None:
    exp_dir = copy_of(smoke_experiment, tmp_path)
    first, second, third = trial_dirs(exp_dir)
    # a truncated last line in a metrics file
    result = first / "metrics.jsonl"
    result.write_text(result.read_text().rstrip("\n")[:-40])
    # missing artifacts
    shutil.rmtree(second / "artifacts")
    # an errored trial with no results yet
    (third / "metrics.jsonl").write_text("")
    (third / "error.txt").write_text("Traceback ...\nValueError: something broke\n")
    # a trial folder that is still starting (params only)
    starting = exp_dir / "ucc_trial_newtrial_4_starting"
    starting.mkdir()
    (starting / "params.json").write_text(json.dumps({"alpha": 0.7}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = analysis.load(exp_dir)
    messages = " ".join(str(w.message) for w in caught)
    assert "is not a metrics row (truncated?)" in messages and "no results yet" in messages
    assert len(exp.trials) == 4
    by_dir = exp.trials.set_index("trial_dir")
    assert by_dir.loc[str(first), "epochs_run"] == 1  # the damaged second line is skipped
    assert by_dir.loc[str(third), "error"] == "ValueError: something broke"
    assert pd.isna(by_dir.loc[str(third), "last_cluster_acc"])
    assert by_dir.loc[str(starting), "status"] == "PENDING"  # started, nothing reported yet
    assert by_dir.loc[str(third), "status"] == "ERROR" and by_dir.loc[str(first), "status"] == "STOPPED"
    with_js = set(exp.js_summary["trial_id"])
    assert (
        by_dir.loc[str(first), "trial_id"] in with_js and by_dir.loc[str(second), "trial_id"] not in with_js
    )
    assert main([str(exp_dir), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_study_and_settings_are_warned_about_and_the_report_still_written(
    smoke_experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    exp_dir = copy_of(smoke_experiment, tmp_path)
    db = exp_dir / "optuna.db"
    db.write_bytes(b"not a database at all" * 50 if damage == "garbage" else db.read_bytes()[:3000])
    (exp_dir / "search.json").write_text('{"space": "smoke", "metr')
    for folder in trial_dirs(exp_dir):  # the best trial, whichever it is, has no artifacts left
        shutil.rmtree(folder / "artifacts")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([str(exp_dir), "--out", str(tmp_path / "out")]) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert f"no importance from {db}" in messages
    assert f"{exp_dir / 'search.json'}: not valid JSON" in messages
    printed = capsys.readouterr().out
    assert "the best trial has no artifacts/js.npz" in printed
    assert "the best trial has no artifacts/reconstructions.png" in printed
    assert "the best trial has no artifacts/test_features.npz" in printed
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "trials.parquet").is_file()


def test_bad_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "is not an experiment folder" in capsys.readouterr().err


def test_several_experiments_at_once_and_statistics_across_seeds(
    smoke_experiment: Path, tmp_path: Path
) -> None:
    """A copy of the experiment whose trials ran with seed 1 and reached half the cluster
    accuracy: each configuration then has two seeds with a hand-computable spread."""
    other = copy_of(smoke_experiment, tmp_path).rename(tmp_path / "smoke-seed1")
    for folder in trial_dirs(other):
        info = json.loads((folder / "run.json").read_text())
        info["config"]["seed"] = 1
        (folder / "run.json").write_text(json.dumps(info))
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        lines = [json.dumps({**r, "cluster_acc": r["cluster_acc"] / 2}) for r in rows]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    exp = analysis.load([smoke_experiment, other])
    assert len(exp.trials) == 6 and set(exp.trials["experiment"]) == {"smoke", "smoke-seed1"}
    assert sorted(exp.trials["seed"]) == [0, 0, 0, 1, 1, 1]
    stats = seed_statistics(exp.trials, ["cluster_acc"]).set_index("alpha")
    original = exp.trials[exp.trials["seed"] == 0].set_index("alpha")["last_cluster_acc"]
    assert len(stats) == 3 and (stats["last_cluster_acc_count"] == 2).all()
    for alpha, last in original.items():
        assert stats.loc[alpha, "last_cluster_acc_min"] == pytest.approx(last / 2)
        assert stats.loc[alpha, "last_cluster_acc_max"] == pytest.approx(last)
        assert stats.loc[alpha, "last_cluster_acc_median"] == pytest.approx(0.75 * last)


def test_views_on_hand_made_tables() -> None:
    trials = pd.DataFrame(
        {
            "trial_id": list("abcd"),
            "status": ["TERMINATED"] * 4,
            "best_cluster_acc": [0.9, 0.5, np.nan, 0.7],
            "best_val_ucc_acc": [0.8, 0.95, 0.1, 0.7],
            "last_cluster_acc": [0.9, 0.5, 0.2, 0.7],
            "last_val_ucc_acc": [0.8, 0.6, 0.1, 0.7],
            "last_js_min": [0.3, 0.1, 0.0, 0.2],
        }
    )
    # ranked by the last values (b's best epoch of 0.95 does not count), a dominates on both
    assert list(best_trials(trials, "cluster_acc", "max", 2)["trial_id"]) == ["a", "d"]
    assert list(pareto_front(trials, ["val_ucc_acc", "cluster_acc"], ["max", "max"])["trial_id"]) == ["a"]
    corr = signal_correlation(trials).set_index("target")
    assert corr.loc["cluster_acc", "spearman"] == pytest.approx(1.0)  # same ranking
    assert corr.loc["cluster_acc", "note"].startswith("only 4 finished trial(s): too few")
    stopped = trials.assign(status=["TERMINATED", "TERMINATED", "STOPPED", "TERMINATED"])
    assert signal_correlation(stopped).set_index("target").loc["cluster_acc", "trials"] == 3
    with pytest.raises(KeyError, match="no column 'last_nmi'"):
        best_trials(trials, "nmi")
    trials.loc[1, "last_val_ucc_acc"] = 0.85  # now b beats a on val_ucc_acc
    assert list(pareto_front(trials, ["val_ucc_acc", "cluster_acc"], ["max", "max"])["trial_id"]) == [
        "a",
        "b",
    ]


def test_importance_comes_from_the_stored_study(smoke_experiment: Path) -> None:
    from analysis.views import importance

    table = importance(smoke_experiment)
    assert set(table["parameter"]) == {"alpha", "lr"}  # the smoke space's two parameters
    assert table["importance"].sum() == pytest.approx(1.0) and (table["importance"] >= 0).all()
    assert importance(smoke_experiment.parent / "nowhere").empty
