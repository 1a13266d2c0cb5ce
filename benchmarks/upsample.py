"""Nearest-neighbour upsampling in the ``paper`` decoder: ``F.interpolate`` against the
broadcast copy that ``ucc_tune.models.decoders.upsample_nearest`` uses on the CPU.

Run: ``.venv/bin/python -m benchmarks.upsample``. Writes ``benchmarks/results/upsample.json``.
Shapes: the decoder's two upsamplings at the paper's MNIST step (640 instances: 128 channels,
7x7 -> 14x14 and 14x14 -> 28x28), forward and forward+backward, same inputs, one process.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import write_results
from benchmarks.train_step import timed
from ucc_tune.models.decoders import upsample_nearest


def compare(shape: tuple[int, int, int, int], size: tuple[int, int], seconds: float) -> dict[str, float]:
    device = torch.device("cpu")
    x = torch.randn(*shape, requires_grad=True)

    def interpolate() -> torch.Tensor:
        return F.interpolate(x, size=size, mode="nearest")

    def broadcast() -> torch.Tensor:
        return upsample_nearest(x, size)

    assert torch.equal(interpolate(), broadcast())
    row: dict[str, float] = {}
    for name, fn in (("interpolate", interpolate), ("broadcast", broadcast)):
        with torch.no_grad():
            row[f"{name}_forward_ms"] = round(1000 * timed(fn, device, seconds), 2)
        row[f"{name}_forward_backward_ms"] = round(
            1000 * timed(lambda fn=fn: fn().sum().backward(), device, seconds),  # type: ignore[misc]
            2,
        )
    for part in ("forward", "forward_backward"):
        row[f"speedup_{part}"] = round(row[f"interpolate_{part}_ms"] / row[f"broadcast_{part}_ms"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per measurement")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"device": "cpu", "results": {}}
    for shape, size in (((640, 128, 7, 7), (14, 14)), ((640, 128, 14, 14), (28, 28))):
        key = f"{shape[0]}x{shape[1]}x{shape[2]}x{shape[3]}->{size[0]}x{size[1]}"
        figures["results"][key] = compare(shape, size, args.seconds)
        print(key, figures["results"][key], flush=True)
    write_results("upsample", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
