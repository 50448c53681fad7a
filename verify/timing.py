"""Timing on the GPU: CUDA events around each run, L2 flushed before it, warm-up first, median
and quartiles; and the device-to-device copy bandwidth that memory-bound kernels are held to.
On the CPU (dry runs) the host clock stands in for events."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

L2_FLUSH_BYTES = 512 * 2**20
WARMUP = 3


def flush_buffer(device: str) -> torch.Tensor:
    """A buffer larger than any L2; writing it evicts what a previous run left there."""
    return torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device=device)


def time_ms(fn: Callable[[], Any], device: str, reps: int, flush: torch.Tensor) -> list[float]:
    """Per-run times in milliseconds."""
    for _ in range(WARMUP):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        flush.zero_()
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin) * 1e3)
    return times


def summary(times: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_ms": statistics.median(times), "q1_ms": quartiles[0], "q3_ms": quartiles[2],
            "min_ms": min(times), "reps": len(times)}


def copy_bandwidth(device: str, reps: int, flush: torch.Tensor, nbytes: int) -> dict[str, float]:
    """Device-to-device copy of `nbytes`, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    stats = summary(time_ms(lambda: dst.copy_(src), device, reps, flush))
    stats["gb_per_s"] = 2 * nbytes / (stats["median_ms"] * 1e-3) / 1e9
    stats["bytes"] = 2 * nbytes
    return stats
