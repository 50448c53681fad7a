"""One lowered kernel on the GPU, alone: checked against the IR interpreter in float64 on fresh
inputs (outputs poisoned first, the kernel launched twice, both results compared; at smaller
shapes where the problem's are too large to interpret), then timed at the problem's shapes with
CUDA events, L2 flushed before each run. This is what search ranks schedules by; the drop-in
module as a whole is judged by `verify.check`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ir.dtypes import DType
from ir.frontend.builder import IR_TO_TORCH
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


def largest_elements(kernel: Kernel) -> int:
    """The element count of the kernel's largest input or output."""
    return max(math.prod(p.type.shape) for p in list(kernel.inputs) + list(kernel.outputs))


def _on_device(values: list[np.ndarray], device: str) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in values]


def _values(raw: torch.Tensor, dtype: DType) -> torch.Tensor:
    """Stored bytes on the GPU -> values (bf16 widened, bool as bool), compared there."""
    if dtype == DType.BF16:
        return (raw.view(torch.int16).to(torch.int32) << 16).view(torch.float32)
    if dtype == DType.BOOL:
        return raw != 0
    return raw


def _close(param: Param, got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    dtype = param.type.dtype
    if not dtype.is_float:
        return got.to(want.dtype) == want
    tolerance = TOLERANCE[dtype]
    finite = want[torch.isfinite(want)]
    scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
    return torch.isclose(got.double(), want.double(), rtol=tolerance, atol=tolerance * scale * 0.1, equal_nan=True)


def _mismatch(param: Param, got: torch.Tensor, want: torch.Tensor, native: torch.Tensor | None = None) -> str | None:
    """As `verify.against_ir.mismatches` says it, computed on the device (outputs of a billion
    elements); with `native`, an element that matches the interpreter in the kernel's own precision
    is not a mismatch either (see there)."""
    close = _close(param, got, want)
    if native is not None and not bool(close.all()):
        close |= _close(param, got, native)
    bad = int((~close).sum())
    if not bad:
        return None
    flat = int(torch.argmin(close.reshape(-1).to(torch.uint8)))
    index = np.unravel_index(flat, tuple(close.shape)) if close.dim() else ()
    return (f"{param.name}[{', '.join(map(str, index))}] = {got.reshape(-1)[flat].item()}, expected "
            f"{want.reshape(-1)[flat].item()} ({bad} of {close.numel()} elements differ)")


class KernelBench:
    """Inputs and references of one kernel, drawn once, for every schedule checked on it; the
    references (the IR interpreter in float64, on the CPU) are kept on the device for comparing.
    Outputs are poisoned on the device before each launch (one poisoned copy, cloned)."""

    def __init__(self, kernel: Kernel, device: str = "cuda") -> None:
        self.kernel, self.device = kernel, device
        self.cases = []
        for seed, extremes in zip(SEEDS, (False, True)):
            inputs = random_inputs(kernel, seed, extremes)
            want = run(kernel, [v.astype(np.float64) if p.type.dtype.is_float else v
                                for v, p in zip(inputs, kernel.inputs)], Precision.FLOAT64)
            device_inputs = _on_device([to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)], device)
            native = None
            if extremes:  # as eager PyTorch computes, in the kernel's own precision
                values = run(kernel, inputs, Precision.NATIVE)
                native = _on_device([np.asarray(v, np.float64) if p.type.dtype.is_float else np.asarray(v)
                                     for v, p in zip(values, kernel.outputs)], device)
            self.cases.append((device_inputs, _on_device(list(want), device), native))
        self.poison = _on_device(poisoned(kernel), device)

    def outputs(self) -> list[torch.Tensor]:
        return [t.clone() for t in self.poison]

    def check(self, launch: Any) -> list[str]:
        """The reasons the kernel's outputs are wrong (none: right on every case, both launches)."""
        reasons = []
        for k, (inputs, want, native) in enumerate(self.cases):
            for name in ("first launch", "second launch"):
                outputs = self.outputs()
                launch(inputs + outputs)
                if self.device == "cuda":
                    torch.cuda.synchronize()
                for j, (param, got, expected) in enumerate(zip(self.kernel.outputs, outputs, want)):
                    found = _mismatch(param, _values(got, param.type.dtype), expected,
                                      None if native is None else native[j])
                    if found:
                        reasons.append(f"inputs {k}, {name}: {found}")
        return reasons


def _drawn(param: Param, device: str, generator: torch.Generator) -> torch.Tensor:
    """Inputs for timing, drawn on the device (normal floats times 3, small integers, even bools)."""
    shape, dtype = param.type.shape, param.type.dtype
    if dtype.is_float:
        values = torch.randn(shape, device=device, generator=generator) * 3
        return values.to(IR_TO_TORCH[dtype])
    if dtype == DType.BOOL:
        return torch.rand(shape, device=device, generator=generator) < 0.5
    return torch.randint(-100, 4, shape, device=device, generator=generator, dtype=IR_TO_TORCH[dtype])


class KernelTimer:
    """One kernel's launch timed at its shapes, on inputs drawn on the device once."""

    def __init__(self, kernel: Kernel, device: str = "cuda") -> None:
        generator = torch.Generator(device=device).manual_seed(0)
        self.kernel, self.device = kernel, device
        self.arguments = [_drawn(p, device, generator) for p in kernel.inputs] + \
            [torch.empty(p.type.shape, dtype=IR_TO_TORCH[p.type.dtype], device=device) for p in kernel.outputs]
        self.flush = flush_buffer(device)

    def time(self, launch: Any, reps: int = REPS) -> dict[str, float]:
        return summary(time_ms(lambda: launch(self.arguments), self.device, reps, self.flush))


def check_and_time(bench: KernelBench, checked: LoweredKernel, timer: KernelTimer, timed: LoweredKernel,
                   runtime: Any, reps: int = REPS) -> KernelRun:
    """`checked` (the schedule lowered for the bench's kernel: the problem's shapes, or smaller ones
    where those are too large to interpret) checked on the bench's cases; then, if it passed,
    `timed` (the same schedule at the problem's shapes) timed."""
    reasons = bench.check(lambda tensors: runtime.launch(checked, tensors))
    if reasons:
        return KernelRun("failed", reasons[:4], moved_bytes=moved_bytes(timer.kernel))
    return KernelRun("passed", [], timer.time(lambda tensors: runtime.launch(timed, tensors), reps),
                     moved_bytes(timer.kernel))
