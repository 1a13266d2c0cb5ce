"""How much memory a training run of a ``Config`` will need, worked out before anything is allocated.

The model is built on torch's ``meta`` device (shapes without storage) and one training batch is
sent through it there, so every layer's size comes from the code that will run, not from a
formula kept beside it. The estimate counts, in bytes of float32:

- parameters four times over (weights, gradients and Adam's two moments);
- every leaf module's output for one batch of ``bags_per_batch x bag_size`` images, twice (kept
  for the backward pass and its gradient);
- the KDE's per-instance kernel values, ``(bags, instances, features, bins)``, three times
  (differences, kernels, gradient) but at most ``kde_max_elements`` at once;
- one evaluation batch of ``eval_batch_size`` images through the encoder.

``check_fits`` compares the estimate with the memory the device has free and raises
``FootprintError`` naming the sizes that dominate. It is a guard against sizes off by orders of
magnitude (``num_bins=1e6``), not a profiler: allocator overhead and the data itself come on top.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ucc_tune.config import Config

FLOAT = 4  # bytes of a float32
HEADROOM = 0.8  # share of the free memory a run may plan to use


class FootprintError(ValueError):
    """A run whose estimated memory exceeds what the device has free."""


@dataclass(frozen=True)
class Footprint:
    """Estimated bytes of one training run, by part."""

    parameters: int
    activations: int
    kde: int
    evaluation: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.kde + self.evaluation


def estimate(config: Config, image_shape: tuple[int, int, int], num_classes: int) -> Footprint:
    """The ``Footprint`` of training ``config`` on images of ``image_shape`` (C, H, W)."""
    from ucc_tune.models import build

    with torch.device("meta"):
        model = build(config, image_shape, num_classes)
    weights = sum(p.numel() for p in model.parameters()) * FLOAT * 4
    instances = config.bags_per_batch * config.bag_size
    batch = torch.empty((config.bags_per_batch, config.bag_size, *image_shape), device="meta")
    activations = 2 * _output_bytes(model, batch)
    kernel_values = instances * config.num_features * config.num_bins
    kde = 3 * FLOAT * min(kernel_values, config.kde_max_elements)
    one_eval = torch.empty((min(config.eval_batch_size, 1 << 20), *image_shape), device="meta")
    evaluation = _output_bytes(model.encoder, one_eval)
    return Footprint(weights, activations, kde, evaluation)


def _output_bytes(module: nn.Module, batch: torch.Tensor) -> int:
    """Bytes of every leaf module's tensor outputs for ``batch`` (computed on the meta device);
    containers are skipped, their outputs are their children's."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, (tuple, list)) else [output]  # a leaf gives tensors
        total += sum(t.numel() * FLOAT for t in outputs if isinstance(t, torch.Tensor))

    leaves = [m for m in module.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            module(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def available_bytes(device: str) -> int:
    """Memory free now on ``device`` ("cuda..." or anything else for the host)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(
    config: Config, image_shape: tuple[int, int, int], num_classes: int, free: int | None = None
) -> Footprint:
    """The run's ``Footprint``; ``FootprintError`` if it needs more than ``HEADROOM`` of ``free``
    bytes (default: what the config's device has free now)."""
    instances = config.bags_per_batch * config.bag_size
    widest = max(
        math.prod(image_shape),
        config.num_features * config.num_bins,
        config.head_hidden1,
        config.head_hidden2,
        config.eval_batch_size,
    )
    if instances * widest * FLOAT > 2**50:  # a petabyte: not worth laying out to refuse
        raise FootprintError(f"these sizes ask for more than a petabyte; {_sizes(config)}")
    try:
        need = estimate(config, image_shape, num_classes)
    except (RuntimeError, OverflowError, ValueError) as err:  # sizes torch cannot even lay out
        problem = f"these sizes make tensors torch cannot lay out ({err})"
        raise FootprintError(f"{problem}; {_sizes(config)}") from None
    device = "cuda" if config.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    free = available_bytes(device) if free is None else free
    if need.total > HEADROOM * free:
        parts = {"parameters": need.parameters, "activations": need.activations, "KDE": need.kde}
        largest = max(parts, key=lambda k: parts[k])
        raise FootprintError(
            f"this run needs about {_gib(need.total)} ({largest} {_gib(parts[largest])}) but the "
            f"{device} has {_gib(free)} free; {_sizes(config)}"
        )
    return need


def _sizes(config: Config) -> str:
    names = ("num_bins", "num_features", "bag_size", "bags_per_label", "head_hidden1", "head_hidden2")
    return "reduce the sizes (" + ", ".join(f"{n}={getattr(config, n)}" for n in names) + ")"


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"
