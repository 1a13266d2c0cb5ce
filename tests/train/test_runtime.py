"""Runtime switches that matter on GPUs, checked where they can be on a CPU-only machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from ucc_tune.config import Config
from ucc_tune.models import UCCModel, build_model
from ucc_tune.train import LocalSession, resolve_device, setup
from ucc_tune.train.loop import autocast_dtype, cpu_threads, try_compile


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        RuntimeError, match=r"device='cuda' was asked for but torch sees no (usable )?CUDA device"
    ):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_amp_picks_bf16_where_supported_and_is_off_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    assert autocast_dtype(Config(amp=True), torch.device("cpu")) is None
    assert autocast_dtype(Config(amp=False), cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert autocast_dtype(Config(amp=True), cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype(Config(amp=True), cuda) == torch.float16


def test_threads_follow_the_config_then_the_cpus_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cpu_threads(Config(num_threads=3)) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray sets for a 1-CPU trial
    assert cpu_threads(Config()) == 1


def test_channels_last_reaches_every_encoder_conv_and_gives_the_same_outputs() -> None:
    """The switch ``setup`` turns on for CUDA, run on the CPU, whose channels-last convolutions
    are other kernels too: every encoder convolution must see channels-last inputs and weights
    (checked inside the forward), and every output must match the default layout's."""
    torch.manual_seed(0)
    shape = (3, 8, 8)  # more than one channel: with one, both layouts have the same strides
    model = build_model(Config(), shape, 10).eval()
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    layouts: list[tuple[bool, bool]] = []  # per conv call: (input, weight) channels-last?

    def record(conv: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        cl, weight = torch.channels_last, conv.get_parameter("weight")
        layouts.append((inputs[0].is_contiguous(memory_format=cl), weight.is_contiguous(memory_format=cl)))

    for conv in convs:
        conv.register_forward_pre_hook(record)
    x = torch.randn(2, 4, *shape)
    with torch.no_grad():
        plain = model(x)
        assert layouts[0] == (False, False)  # the stem, in the default layout
        layouts.clear()
        model.to(memory_format=torch.channels_last)
        model.channels_last = True
        fast = model(x)
    assert len(layouts) == len(convs) and all(inp and weight for inp, weight in layouts)
    for name, want in plain._asdict().items():
        torch.testing.assert_close(getattr(fast, name), want, rtol=1e-5, atol=1e-5, msg=name)


def test_compile_failure_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken_compile(model: torch.nn.Module) -> object:
        def fails_on_first_call(*_: object) -> None:
            raise RuntimeError("no compiler here")

        return fails_on_first_call

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = build_model(Config(), (1, 8, 8), 10)
    with pytest.warns(UserWarning, match="torch.compile failed .*no compiler here.*running eagerly"):
        assert try_compile(model, torch.randn(1, 4, 1, 8, 8)) is model
    with pytest.warns(UserWarning, match="running eagerly"):
        run = setup(dataclasses.replace(Config(), compile=True, bag_size=8), LocalSession(tmp_path))
    assert isinstance(run.model, UCCModel)
