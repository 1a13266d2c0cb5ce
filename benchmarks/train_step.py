"""Training-step throughput, and where a step's time goes (bag sampling, KDE, decoder).

Run: ``.venv/bin/python -m benchmarks.train_step``. Writes ``benchmarks/results/train_step.json``.
Shapes: the paper's MNIST step (20 bags x 32 instances of random 28x28 images, ``paper`` model,
alpha 0.5) and the ``digits`` default. Float32 everywhere; on CUDA also bf16 AMP and bf16 AMP
with channels-last. The fractions time each part alone at the step's size (sampling + gathering
a batch; KDE forward+backward; decoder forward+backward) and divide by the full step's time.

Before/after, float32, both shapes: the same step with the ``paper`` networks computed plainly
(nearest upsampling then 3x3 conv, the shortcut of the upsampled input, the default memory
format) against the fused upsampling + channels-last on the CPU, two runs with the same
parameters stepped in turn, pair by pair; the median of the per-pair ratios.
Target: >= 30 steps/s at the MNIST shape with AMP on one H100; sampling and KDE each
below 5% of the step.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import write_results
from ucc_tune.config import Config
from ucc_tune.data.bags import gather
from ucc_tune.data.loading import Data
from ucc_tune.models import decoders, encoders
from ucc_tune.models.kde import kde
from ucc_tune.train import LocalSession, setup
from ucc_tune.train.loop import train_step
from ucc_tune.train.run import unwrap


def mnist_shaped(n: int = 12_000) -> Data:
    rng = np.random.default_rng(0)
    images = {
        s: torch.from_numpy(rng.standard_normal((n, 1, 28, 28), dtype=np.float32))
        for s in ("train", "val", "test")
    }
    labels = {s: rng.integers(0, 10, size=n) for s in images}
    return Data("mnist_random", tuple(str(i) for i in range(10)), images, labels)


def timed(fn: Callable[[], Any], device: torch.device, seconds: float) -> float:
    """Seconds per call, after a warm-up, with the device synchronised at the ends only."""
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    sync()
    return (time.perf_counter() - start) / calls


def measure(config: Config, data: Data | None, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        run = setup(config, LocalSession(Path(folder)), data=data)
    device, model = run.device, unwrap(run.model)
    stream = iter(run.stream)
    step_s = timed(lambda: train_step(run, next(stream)), device, seconds)
    sampler = run.stream.sampler
    sample_s = timed(lambda: gather(run.stream.images, sampler.sample()), device, seconds / 3)
    b, n, j = config.bags_per_batch, config.bag_size, config.num_features
    features = torch.rand(b, n, j, device=device, requires_grad=True)
    kde_s = timed(
        lambda: kde(features, config.num_bins, config.kde_sigma).sum().backward(), device, seconds / 3
    )
    out: dict[str, Any] = {
        "steps_per_s": round(1 / step_s, 2),
        "instances_per_s": round(b * n / step_s),
        "ms_per_step": round(1000 * step_s, 3),
        "fraction_sampling": round(sample_s / step_s, 4),
        "fraction_kde": round(kde_s / step_s, 4),
    }
    if model.decoder is not None:
        flat = torch.rand(b * n, j, device=device)
        target = run.data.images["train"][: b * n]
        decoder = model.decoder

        def decode() -> None:
            with torch.autocast(
                device.type, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None
            ):
                loss = (decoder(flat).float() - target).square().mean()
            loss.backward()

        out["fraction_decoder"] = round(timed(decode, device, seconds / 3) / step_s, 4)
    return out


def plain_up_block(self: decoders.UpBlock, h: torch.Tensor) -> torch.Tensor:
    """``UpBlock.forward`` before the fusion: upsample ``a``, then both convs and the shortcut."""
    a = F.relu(h)
    if self.size is not None:
        a = decoders.upsample_nearest(a, self.size)
    return self.conv2(F.relu(self.conv1(a))) + self.shortcut(a)


@contextlib.contextmanager
def plain_paper_networks() -> Iterator[None]:
    """Run the ``paper`` networks as computed before: ``plain_up_block``, default memory format."""
    forward, channels_last = decoders.UpBlock.forward, encoders.cpu_channels_last
    decoders.UpBlock.forward = plain_up_block  # type: ignore[method-assign]
    decoders.cpu_channels_last = encoders.cpu_channels_last = lambda x: x
    try:
        yield
    finally:
        decoders.UpBlock.forward = forward  # type: ignore[method-assign]
        decoders.cpu_channels_last = encoders.cpu_channels_last = channels_last


def before_after(config: Config, data: Data | None, pairs: int) -> dict[str, Any]:
    """Median seconds per step of the plain and the fused networks, stepped in turn (the order
    alternating), and the median of the per-pair ratios fused / plain."""
    runs = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(setup(config, LocalSession(Path(folder)), data=data))
    unwrap(runs[1].model).load_state_dict(unwrap(runs[0].model).state_dict())
    streams = [iter(run.stream) for run in runs]

    def step(which: int) -> float:
        batch = next(streams[which])
        with plain_paper_networks() if which == 0 else contextlib.nullcontext():
            start = time.perf_counter()
            train_step(runs[which], batch)
            return time.perf_counter() - start

    for which in (0, 1, 0, 1):  # warm-up
        step(which)
    plain, fused = [], []
    for i in range(pairs):
        times = {which: step(which) for which in ((0, 1) if i % 2 == 0 else (1, 0))}
        plain.append(times[0])
        fused.append(times[1])
    ratios = [f / p for f, p in zip(fused, plain, strict=True)]
    return {
        "pairs": pairs,
        "plain_s_per_step": round(float(np.median(plain)), 4),
        "fused_s_per_step": round(float(np.median(fused)), 4),
        "median_ratio_fused_over_plain": round(float(np.median(ratios)), 3),
        "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    parser.add_argument("--pairs", type=int, default=8, help="before/after pairs at the MNIST shape")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    paper = Config(dataset="mnist", bag_size=32, bags_per_label=5, lr=1e-4, alpha=0.5, model="paper", seed=0)
    variants: dict[str, dict[str, Any]] = {"float32": {}}
    if cuda:
        variants |= {
            "bf16_amp": {"amp": True},
            "bf16_amp_channels_last": {"amp": True, "channels_last": True},
        }
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "results": {}}
    for shape, (config, data) in {
        "mnist_paper_shape": (paper, mnist_shaped()),
        "digits_default": (Config(), None),
    }.items():
        for name, changes in variants.items():
            result = measure(dataclasses.replace(config, **changes), data, args.seconds)
            figures["results"][f"{shape}/{name}"] = result
            print(shape, name, result, flush=True)
    if not cuda:
        figures["before_after"] = {}
        for shape, (config, data, pairs) in {
            "mnist_paper_shape": (paper, mnist_shaped(), args.pairs),
            "digits_default": (Config(), None, 5 * args.pairs),
        }.items():
            figures["before_after"][shape] = before_after(config, data, pairs)
            print(shape, "before/after", figures["before_after"][shape], flush=True)
    best = max(v["steps_per_s"] for k, v in figures["results"].items() if k.startswith("mnist"))
    figures["mnist_best_steps_per_s"] = best
    figures["target_steps_per_s_on_h100_with_amp"] = 30
    write_results("train_step", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
