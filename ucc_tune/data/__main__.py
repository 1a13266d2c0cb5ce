"""``python -m ucc_tune.data``: inspect a dataset's splits and one batch of its bags.

Prints the split sizes and class counts, the ucc label and per-class counts (rcc) of every bag
in one training batch, and the sampler's speed, so a user can check a dataset and a bag
setting before training. ``--set key=value`` takes any ``Config`` field, ``--config FILE`` a JSON
file of them.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ucc_tune.config import ConfigError
from ucc_tune.config.flags import add_config_arguments, config_from_args
from ucc_tune.data.bags import BagSampler, gather
from ucc_tune.data.loading import SPLITS, load_data
from ucc_tune.data.sources import DatasetNotFoundError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ucc_tune.data", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--batches", type=int, default=200, help="batches to time the sampler on")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        data = load_data(config)
    except (ConfigError, DatasetNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"dataset {data.dataset}: {data.num_classes} classes, images {data.image_shape} (C, H, W)")
    for split in SPLITS:
        counts = np.bincount(data.labels[split], minlength=data.num_classes)
        print(f"  {split:5s} {len(data.labels[split]):6d} instances, per class {counts.tolist()}")
    sampler = BagSampler(
        data.labels["train"],
        data.num_classes,
        config.bag_size,
        config.ucc_min,
        config.ucc_max,
        config.bags_per_label,
        seed=config.seed,
    )
    batch = gather(data.images["train"], sampler.sample())
    print(f"one training batch: x {tuple(batch.x.shape)} (bags, instances, C, H, W)")
    for ucc, rcc in zip(batch.ucc.tolist(), batch.rcc.tolist(), strict=True):
        present = {data.class_names[c]: n for c, n in enumerate(rcc) if n}
        print(f"  ucc {ucc + config.ucc_min}: {present}")
    start = time.perf_counter()
    for _ in range(args.batches):
        gather(data.images["train"], sampler.sample())
    rate = args.batches * sampler.bags_per_batch * config.bag_size / (time.perf_counter() - start)
    print(f"sampler: {rate:,.0f} instances/s ({args.batches} batches, images gathered)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
