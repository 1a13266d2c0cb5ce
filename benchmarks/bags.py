"""Bag sampler throughput: instances per second on ``digits`` and on an MNIST-shaped array.

Run: ``.venv/bin/python -m benchmarks.bags``. Writes ``benchmarks/results/bags.json``.
Target: at least 500,000 instances/s for the MNIST shape (20 bags of 32, 28x28) on
the 2-core development machine, images gathered into the batch tensor included.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import write_results
from ucc_tune.config import Config
from ucc_tune.data.bags import BagSampler, gather
from ucc_tune.data.loading import load_data

TARGET_MNIST = 500_000


def measure(images: torch.Tensor, labels: np.ndarray, num_classes: int, seconds: float) -> dict[str, float]:
    """Instances/s of index sampling alone and of sampling plus gathering the images."""
    sampler = BagSampler(labels, num_classes, bag_size=32, ucc_min=1, ucc_max=4, bags_per_label=5, seed=0)
    per_batch = sampler.bags_per_batch * 32
    out: dict[str, float] = {}
    for name, step in {
        "indices_only": sampler.sample,
        "with_images": lambda: gather(images, sampler.sample()),
    }.items():
        for _ in range(20):  # warm-up
            step()
        batches, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            batches += 1
        elapsed = time.perf_counter() - start
        out[f"{name}_instances_per_s"] = round(batches * per_batch / elapsed)
        out[f"{name}_ms_per_batch"] = round(1000 * elapsed / batches, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per measurement")
    args = parser.parse_args(argv)

    digits = load_data(Config())
    rng = np.random.default_rng(0)
    mnist_labels = rng.integers(0, 10, size=50_000)
    mnist_images = torch.from_numpy(rng.standard_normal((50_000, 1, 28, 28), dtype=np.float32))
    figures: dict[str, Any] = {
        "shape": "20 bags (5 per ucc label 1..4) x 32 instances",
        "digits": measure(digits.images["train"], digits.labels["train"], 10, args.seconds),
        "mnist_shape_28x28": measure(mnist_images, mnist_labels, 10, args.seconds),
        "target_mnist_instances_per_s": TARGET_MNIST,
    }
    figures["meets_target"] = figures["mnist_shape_28x28"]["with_images_instances_per_s"] >= TARGET_MNIST
    write_results("bags", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
