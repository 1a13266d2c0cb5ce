"""KDE layer: forward+backward time and peak extra memory against a plain broadcast reference.

Run: ``.venv/bin/python -m benchmarks.kde``. Writes ``benchmarks/results/kde.json``.
Sizes: the paper's (20 bags x 32 instances x J=10 x 11 bins) and a large one (64 x 64 x 64 x
21 bins, sigma 0.0167 as in the authors' follow-up). Memory is the peak of the CUDA allocator
on a GPU; on the CPU the growth of a fresh process's peak resident set size (``VmHWM``, reset
through ``/proc/self/clear_refs``) over the inputs alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_results
from ucc_tune.models.kde import kde

SIZES = {"paper": (20, 32, 10, 11, 0.1), "large": (64, 64, 64, 21, 0.0167)}


def reference(features: torch.Tensor, num_bins: int, sigma: float) -> torch.Tensor:
    """The paper's KDE formula as one broadcast, nothing else."""
    bins = torch.linspace(0, 1, num_bins, device=features.device, dtype=features.dtype)
    density = torch.exp(-((bins - features.unsqueeze(-1)) ** 2) / (2 * sigma**2)).sum(1)  # (B, J, bins)
    return density / density.sum(-1, keepdim=True)


IMPLEMENTATIONS = {"ucc_tune.kde": kde, "broadcast_reference": reference}


def time_case(impl: str, size: str, device: str, repeats: int) -> dict[str, float]:
    b, n, j, bins, sigma = SIZES[size]
    fn = IMPLEMENTATIONS[impl]
    features = torch.rand(b, n, j, device=device, requires_grad=True)
    weights = torch.randn(b, j, bins, device=device)

    def step() -> None:
        (fn(features, bins, sigma) * weights).sum().backward()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / repeats
    out = {"ms_per_fwd_bwd": round(1000 * elapsed, 4)}
    if device == "cuda":
        out["peak_extra_mb"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 2)
    return out


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def cpu_peak_mb(impl: str, size: str) -> float:
    """Peak resident memory growth of one forward+backward (Linux: the peak is reset first)."""
    b, n, j, bins, sigma = SIZES[size]
    features = torch.rand(b, n, j, requires_grad=True)
    weights = torch.randn(b, j, bins)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    base = _status_kb("VmRSS")
    (IMPLEMENTATIONS[impl](features, bins, sigma) * weights).sum().backward()
    return round((_status_kb("VmHWM") - base) / 1024, 2)


def fresh_process_peak_mb(impl: str, size: str) -> float:
    """``cpu_peak_mb`` in a new interpreter, where no freed heap can hide the growth."""
    code = f"from benchmarks.kde import cpu_peak_mb; print(cpu_peak_mb({impl!r}, {size!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = {k: {"B": v[0], "n": v[1], "J": v[2], "bins": v[3], "sigma": v[4]} for k, v in SIZES.items()}
    figures: dict[str, Any] = {"device": device, "sizes": sizes, "cases": {}}
    for size in SIZES:
        for impl in IMPLEMENTATIONS:
            case = time_case(impl, size, device, args.repeats)
            if device == "cpu":
                case["peak_extra_mb"] = fresh_process_peak_mb(impl, size)
            figures["cases"][f"{size}/{impl}"] = case
            print(size, impl, json.dumps(case), flush=True)
        ours, ref = figures["cases"][f"{size}/ucc_tune.kde"], figures["cases"][f"{size}/broadcast_reference"]
        figures[f"{size}_time_ratio_ours_over_reference"] = round(
            ours["ms_per_fwd_bwd"] / ref["ms_per_fwd_bwd"], 3
        )
    figures["note"] = f"peak memory: {'the CUDA allocator' if device == 'cuda' else 'VmHWM growth (Linux)'}"
    write_results("kde", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
