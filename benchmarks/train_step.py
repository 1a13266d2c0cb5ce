"""Training-step throughput, and where a step's time goes (bag sampling, KDE, decoder).

Run: ``.venv/bin/python -m benchmarks.train_step``. Writes ``benchmarks/results/train_step.json``.
Shapes: the paper's MNIST step (20 bags x 32 instances of random 28x28 images, ``paper`` model,
alpha 0.5) and the ``digits`` default. Float32 everywhere; on CUDA also bf16 AMP and bf16 AMP
with channels-last; on any device also the float32 MNIST step with ``F.interpolate`` in the
decoder (the kernel before ``upsample_nearest``) for a before/after ratio. The fractions time
each part alone at the step's size (sampling + gathering a batch; KDE forward+backward; decoder
forward+backward) and divide by the full step's time.
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
from ucc_tune.models import decoders
from ucc_tune.models.kde import kde
from ucc_tune.train import LocalSession, setup
from ucc_tune.train.loop import train_step, unwrap


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


@contextlib.contextmanager
def interpolate_upsampling() -> Iterator[None]:
    """Run the decoders with ``F.interpolate`` instead of ``upsample_nearest``."""
    original = decoders.upsample_nearest
    decoders.upsample_nearest = lambda x, size: F.interpolate(x, size=size, mode="nearest")
    try:
        yield
    finally:
        decoders.upsample_nearest = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
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
    # the same step with F.interpolate for the decoder's upsampling (the kernel used before the
    # broadcast copy in decoders.upsample_nearest), for a before/after ratio from this run
    with interpolate_upsampling():
        result = measure(paper, mnist_shaped(), args.seconds)
    figures["results"]["mnist_paper_shape/float32_F.interpolate_upsampling"] = result
    print("mnist_paper_shape float32_F.interpolate_upsampling", result, flush=True)
    figures["upsampling_speedup_of_the_mnist_step"] = round(
        figures["results"]["mnist_paper_shape/float32"]["steps_per_s"] / result["steps_per_s"], 3
    )
    best = max(
        v["steps_per_s"]
        for k, v in figures["results"].items()
        if k.startswith("mnist") and "interpolate" not in k
    )
    figures["mnist_best_steps_per_s"] = best
    figures["target_steps_per_s_on_h100_with_amp"] = 30
    write_results("train_step", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
