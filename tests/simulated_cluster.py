"""Searches on a simulated multi-node cluster (run as a script by ``test_cluster.py``).

``ray.cluster_utils.Cluster`` starts a head node with CPUs only and two worker nodes that
declare one logical GPU each (no CUDA behind them), all on this machine. Three searches run on
it, each into ``OUT/<name>``: ``fractional`` (eight in-process trials at 0.25 GPU), ``ddp``
(one trial of two Ray Train ranks at one GPU each) and ``cuda`` (one in-process trial that asks
for ``device=cuda`` on a logical GPU).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

SPACE = """
def space(trial):
    trial.suggest_float("alpha", 0.5, 1.0)
    return {"epochs": 2, "steps_per_epoch": 30, "bag_size": 8, "bags_per_label": 2,
            "eval_bags_per_label": 3}
"""


def free_port() -> int:
    """A port nothing listens on now (another cluster's dashboard may hold Ray's default 8265)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(out: Path) -> int:
    import ray
    from ray.cluster_utils import Cluster

    from ucc_tune.search import command as search

    # a dashboard of its own: Train V2 cleans placement groups through its State API
    head = {"num_cpus": 2, "num_gpus": 0, "include_dashboard": True, "dashboard_port": free_port()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(2):
        cluster.add_node(num_cpus=2, num_gpus=1)
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    (out / "space.py").write_text(SPACE)
    common = ["--storage-path", str(out), "--space", str(out / "space.py"), "--scheduler", "fifo"]
    common += ["--set", "num_threads=1"]
    short = ["--set", "steps_per_epoch=5"]  # the fractional trials run longer, so that they overlap
    searches = {
        "fractional": ["--num-samples", "8", "--gpus-per-trial", "0.25", "--cpus-per-trial", "0.25"],
        "ddp": ["--num-samples", "1", "--workers-per-trial", "2", "--gpus-per-trial", "1", *short],
        "cuda": [
            "--num-samples",
            "1",
            "--gpus-per-trial",
            "0.5",
            "--max-failures",
            "0",
            *short,
            "--set",
            "device=cuda",
        ],
    }
    codes = [search.main([*common, "--name", name, *args]) for name, args in searches.items()]
    ray.shutdown()
    cluster.shutdown()
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
