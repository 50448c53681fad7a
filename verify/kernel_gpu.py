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

from ir.dtypes import DType
from ir.interp import Precision, run
from ir.kernel import Kernel, Param
from ptxgen.lower import LoweredKernel
from verify.against_ir import TOLERANCE, poisoned, random_inputs, to_device
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


def _on_device(values: list[np.ndarray], device: str) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in values]


def _values(raw: torch.Tensor, dtype: DType) -> torch.Tensor:
    """Stored bytes on the GPU -> values (bf16 widened, bool as bool), compared there."""
    if dtype == DType.BF16:
        return (raw.view(torch.int16).to(torch.int32) << 16).view(torch.float32)
    if dtype == DType.BOOL:
        return raw != 0
    return raw


def _mismatch(param: Param, got: torch.Tensor, want: torch.Tensor) -> str | None:
    """As `verify.against_ir.mismatches` says it, computed on the GPU (outputs of a billion elements)."""
    dtype = param.type.dtype
    if dtype.is_float:
        tolerance = TOLERANCE[dtype]
        finite = want[torch.isfinite(want)]
        scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
        close = torch.isclose(got.double(), want, rtol=tolerance, atol=tolerance * scale * 0.1, equal_nan=True)
    else:
        close = got.to(want.dtype) == want
    bad = int((~close).sum())
    if not bad:
        return None
    flat = int(torch.argmin(close.reshape(-1).to(torch.uint8)))
    index = np.unravel_index(flat, tuple(close.shape)) if close.dim() else ()
    return (f"{param.name}[{', '.join(map(str, index))}] = {got.reshape(-1)[flat].item()}, expected "
            f"{want.reshape(-1)[flat].item()} ({bad} of {close.numel()} elements differ)")


class KernelBench:
    """Inputs and references of one kernel, drawn once, for every schedule tried on it; the
    references (the IR interpreter in float64, on the CPU) are kept on the GPU for comparing."""

    def __init__(self, kernel: Kernel, device: str = "cuda") -> None:
        self.kernel, self.device = kernel, device
        self.cases = []
        for seed, extremes in zip(SEEDS, (False, True)):
            inputs = random_inputs(kernel, seed, extremes)
            want = run(kernel, [v.astype(np.float64) if p.type.dtype.is_float else v
                                for v, p in zip(inputs, kernel.inputs)], Precision.FLOAT64)
            device_inputs = _on_device([to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)], device)
            self.cases.append((device_inputs, _on_device(list(want), device)))
        self.flush = flush_buffer(device)

    def outputs(self) -> list[torch.Tensor]:
        return _on_device(poisoned(self.kernel), self.device)

    def check(self, launch: Any) -> list[str]:
        """The reasons the kernel's outputs are wrong (none: right on every case, both launches)."""
        reasons = []
        for k, (inputs, want) in enumerate(self.cases):
            for name in ("first launch", "second launch"):
                outputs = self.outputs()
                launch(inputs + outputs)
                if self.device == "cuda":
                    torch.cuda.synchronize()
                for param, got, expected in zip(self.kernel.outputs, outputs, want):
                    found = _mismatch(param, _values(got, param.type.dtype), expected)
                    if found:
                        reasons.append(f"inputs {k}, {name}: {found}")
        return reasons

    def time(self, launch: Any, reps: int = REPS) -> dict[str, float]:
        inputs, _ = self.cases[0]
        arguments = inputs + self.outputs()
        return summary(time_ms(lambda: launch(arguments), self.device, reps, self.flush))


def check_and_time(bench: KernelBench, lowered: LoweredKernel, runtime: Any, reps: int = REPS) -> KernelRun:
    """The kernel checked on the bench's cases, then timed if it passed."""

    def launch(tensors: list[torch.Tensor]) -> None:
        runtime.launch(lowered, tensors)

    reasons = bench.check(launch)
    if reasons:
        return KernelRun("failed", reasons[:4], moved_bytes=moved_bytes(bench.kernel))
    return KernelRun("passed", [], bench.time(launch, reps), moved_bytes(bench.kernel))
