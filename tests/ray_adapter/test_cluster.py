"""Resources on a multi-node cluster come from the flags: every DDP rank on a GPU node with a GPU
of its own, four 0.25-GPU trials at a time per GPU, CPU fallback on GPUs that are only logical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ucc_tune.schema import RUN_FILE, SEARCH_FILE, TRIALS_FILE

REPO = Path(__file__).resolve().parents[2]
# three searches on a three-node cluster of this machine: minutes on 2 busy cores
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory, module_marked_env: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("cluster")
    script = [sys.executable, str(REPO / "tests" / "simulated_cluster.py"), str(out)]
    done = subprocess.run(
        script, cwd=REPO, env=module_marked_env, capture_output=True, text=True, timeout=560
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def ranks(exp: Path) -> list[list[dict[str, Any]]]:
    """Per trial folder, the placement of each rank recorded in its ``run.json``."""
    found = [json.loads(p.read_text())["placement"] for p in sorted(exp.glob(f"*/{RUN_FILE}"))]
    assert found, f"no {RUN_FILE} in {exp}"
    return found


def gpu_nodes(exp: Path) -> set[str]:
    return {p["node_id"] for trial in ranks(exp) for p in trial}


def test_ddp_ranks_each_hold_a_gpu_of_a_gpu_node(searches: Path) -> None:
    exp = searches / "ddp"
    (trial,) = ranks(exp)
    assert sorted(p["rank"] for p in trial) == [0, 1] and {p["world_size"] for p in trial} == {2}
    slots = [(p["node_id"], tuple(p["gpu_ids"])) for p in trial]
    assert all(len(gpus) == 1 for _, gpus in slots) and len(set(slots)) == 2  # a GPU of its own
    assert all(p["resources"].get("GPU") == 1.0 for p in trial)
    assert all(p["device"] == "cpu" for p in trial)  # logical GPUs: device=auto falls back to CPU
    record = json.loads((exp / SEARCH_FILE).read_text())
    assert record["ray"]["worker"] == {"CPU": 1.0, "GPU": 1.0} and record["ray"]["backend"] == "gloo"
    assert record["ray"]["trial"]["gpu"] == 0.0  # the trial's own process only drives the ranks
    table = pd.read_parquet(exp / TRIALS_FILE)
    assert list(table["status"]) == ["TERMINATED"] and table["epochs_run"].iloc[0] == 2


def test_quarter_gpu_trials_run_four_at_a_time_per_gpu(searches: Path) -> None:
    exp = searches / "fractional"
    trials = [trial[0] for trial in ranks(exp)]
    assert len(trials) == 8
    assert all(t["resources"] == {"CPU": 0.25, "GPU": 0.25} and len(t["gpu_ids"]) == 1 for t in trials)
    assert all(t["device"] == "cpu" for t in trials)
    head_has_no_gpu = len({t["node_id"] for t in trials}) == 2
    assert head_has_no_gpu
    # when each trial ran: from its start (run.json) to Ray's timestamp of its last result
    ends = {}
    for folder in exp.glob("*/result.json"):
        last = json.loads(folder.read_text().splitlines()[-1])
        started = json.loads((folder.parent / RUN_FILE).read_text())["placement"][0]
        ends[folder.parent.name] = (
            started["started"],
            last["timestamp"],
            started["node_id"],
            started["gpu_ids"][0],
        )
    by_gpu: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for start, end, node, gpu in ends.values():
        by_gpu.setdefault((node, gpu), []).append((start, end))
    assert sorted(len(v) for v in by_gpu.values()) == [4, 4]
    for spans in by_gpu.values():  # all four of a GPU were running at one moment
        assert max(s for s, _ in spans) < min(e for _, e in spans)
    record = json.loads((exp / SEARCH_FILE).read_text())
    assert record["ray"]["concurrency"] == 8  # 2 GPUs / 0.25, though the CPUs would fit 24
    assert (pd.read_parquet(exp / TRIALS_FILE)["status"] == "TERMINATED").all()


def test_device_cuda_on_a_logical_gpu_is_a_clear_trial_error(searches: Path) -> None:
    table = pd.read_parquet(searches / "cuda" / TRIALS_FILE)
    assert list(table["status"]) == ["ERROR"]
    assert "device='cuda' was asked for but torch sees no usable CUDA device" in table["error"].iloc[0]
