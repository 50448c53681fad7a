"""One lowered kernel on the GPU, alone: checked against the IR interpreter in float64 on fresh
inputs (outputs poisoned first, the kernel launched twice, both results compared), then timed with
CUDA events, L2 flushed before each run. This is what search ranks schedules by; the drop-in
module as a whole is judged by `verify.check`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ir.interp import Precision, run
from ir.kernel import Kernel
from ptxgen.lower import LoweredKernel
from verify.against_ir import from_device, mismatches, poisoned, random_inputs, to_device
from verify.timing import flush_buffer, summary, time_ms

SEEDS = (0, 1)  # normal inputs, then inputs with infinities, NaN and huge values
REPS = 30


@dataclass
class KernelRun:
    """`passed` or `failed` (the reasons say which output, where and by how much), with the times."""

    status: str
    reasons: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    moved_bytes: int = 0  # the kernel's inputs read once plus its outputs written once

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "timing": self.timing, "moved_bytes": self.moved_bytes}


def moved_bytes(kernel: Kernel) -> int:
    return sum(math.prod(p.type.shape) * p.type.dtype.itemsize for p in list(kernel.inputs) + list(kernel.outputs))


def _on_device(values: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(v)).cuda() for v in values]


class KernelBench:
    """Inputs and references of one kernel, drawn once, for every schedule tried on it."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.cases = []
        for seed, extremes in zip(SEEDS, (False, True)):
            inputs = random_inputs(kernel, seed, extremes)
            want = run(kernel, [v.astype(np.float64) if p.type.dtype.is_float else v
                                for v, p in zip(inputs, kernel.inputs)], Precision.FLOAT64)
            self.cases.append((_on_device([to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)]), want))
        self.flush = flush_buffer("cuda")

    def outputs(self) -> list[torch.Tensor]:
        return _on_device(poisoned(self.kernel))

    def values(self, tensors: list[torch.Tensor]) -> list[np.ndarray]:
        return [from_device(t.cpu().numpy(), p.type.dtype, p.type.shape) for t, p in zip(tensors, self.kernel.outputs)]

    def check(self, launch: Any) -> list[str]:
        """The reasons the kernel's outputs are wrong (none: right on every case, both launches)."""
        reasons = []
        for k, (inputs, want) in enumerate(self.cases):
            first = self.outputs()
            launch(inputs + first)
            torch.cuda.synchronize()
            second = self.outputs()
            launch(inputs + second)
            torch.cuda.synchronize()
            for name, got in (("first launch", first), ("second launch", second)):
                reasons += [f"inputs {k}, {name}: {r}" for r in mismatches(self.kernel, self.values(got), want)]
        return reasons

    def time(self, launch: Any, reps: int = REPS) -> dict[str, float]:
        inputs, _ = self.cases[0]
        arguments = inputs + self.outputs()
        return summary(time_ms(lambda: launch(arguments), "cuda", reps, self.flush))


def check_and_time(bench: KernelBench, lowered: LoweredKernel, runtime: Any, reps: int = REPS) -> KernelRun:
    """The kernel checked on the bench's cases, then timed if it passed."""

    def launch(tensors: list[torch.Tensor]) -> None:
        runtime.launch(lowered, tensors)

    reasons = bench.check(launch)
    if reasons:
        return KernelRun("failed", reasons[:4], moved_bytes=moved_bytes(bench.kernel))
    return KernelRun("passed", [], bench.time(launch, reps), moved_bytes(bench.kernel))
