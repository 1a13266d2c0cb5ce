"""Ray Train (DDP) path: a 2-worker CPU run on digits finishes, reports every metric and resumes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from ucc_test_support import tiny

from ucc_tune.ray_adapter import train_distributed
from ucc_tune.schema import DDP_RUN_NAME, METRIC_NAMES


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def latest_state(run_dir: Path) -> dict:
    newest = sorted(p for p in run_dir.glob("checkpoint_*") if p.is_dir())[-1]
    return torch.load(newest / "state.pt", weights_only=True)


def test_two_worker_run_reports_checkpoints_and_resumes(ray_cluster: None, tmp_path: Path) -> None:
    config = tiny(num_workers=2, epochs=2)
    final = train_distributed(config, tmp_path)
    run_dir = tmp_path / DDP_RUN_NAME  # the Train run: checkpoints
    first = rows(tmp_path)  # the run's files: the same layout as a run in this process
    assert [r["epoch"] for r in first] == [0, 1]
    for row in first:
        assert set(METRIC_NAMES) <= set(row)
    assert "test_kmeans_acc" in final and "test_spectral_acc" in final
    assert (tmp_path / "artifacts" / "js.npz").exists()
    placement = json.loads((tmp_path / "run.json").read_text())["placement"]
    assert [p["rank"] for p in placement] == [0, 1] and {p["world_size"] for p in placement} == {2}
    assert len({p["pid"] for p in placement}) == 2 and all(p["device"] == "cpu" for p in placement)
    state = latest_state(run_dir)
    assert state["epoch"] == 1
    assert len(state["samplers"]) == 2
    assert state["samplers"][0]["rng"] != state["samplers"][1]["rng"]  # each rank draws its own bags

    with pytest.raises(FileExistsError, match="--resume"):
        train_distributed(config, tmp_path)
    train_distributed(dataclasses.replace(config, epochs=3), tmp_path, resume=True)
    assert [r["epoch"] for r in rows(tmp_path)] == [0, 1, 2]
    assert latest_state(run_dir)["epoch"] == 2
