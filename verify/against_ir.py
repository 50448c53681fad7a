"""A lowered kernel run on the CPU emulator and compared with the IR interpreter in float64: the
check `ptxgen emulate` and the tests make of every kernel.

Tensors travel as the GPU holds them (bf16 and f16 as 16-bit patterns, bool as bytes); outputs
start poisoned (NaN, or -7777 for integers), so an element the kernel never writes cannot pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir import parse
from ir.dtypes import DType, round_to_bf16
from ir.interp import Precision, run
from ir.kernel import Kernel, Param
from ir.ops import REDUCTIONS
from verify.emulate import Emulation, EmulationError, Launch, emulate
from verify.numeric import bf16_bits
from verify.ptxparse import PtxSyntaxError
from verify.semantics import NotModelled

TOLERANCE = {DType.F32: 2e-5, DType.BF16: 2e-2, DType.F16: 2e-3}  # relative, per element and to the largest value
POISON_INT = -7777
DEVICE_DTYPE = {DType.F32: np.float32, DType.F16: np.float16, DType.I32: np.int32, DType.I64: np.int64,
                DType.BOOL: np.uint8, DType.BF16: np.uint16}


def to_device(values: np.ndarray, dtype: DType) -> np.ndarray:
    """Values as the GPU stores them."""
    if dtype == DType.BF16:
        return bf16_bits(np.asarray(values, np.float32))
    return np.ascontiguousarray(values, dtype=DEVICE_DTYPE[dtype])


def from_device(raw: np.ndarray, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Stored bytes -> values (bf16 widened to float32, bool to bool)."""
    words = raw.view(DEVICE_DTYPE[dtype])
    if dtype == DType.BF16:
        words = (words.astype(np.uint32) << np.uint32(16)).view(np.float32)
    elif dtype == DType.BOOL:
        words = words != 0
    return words.reshape(shape)


EXTREMES = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e4, -1e4, 88.0, -104.0, 1e-30], np.float32)


# With extremes, whole slices of one value: a row of -inf is where an argmax finds no element
# better than its start, a row of NaN where a max or a softmax must give NaN throughout.
CONSTANT_SLICES = (-np.inf, np.inf, np.nan)


def _constant_axis(kernel: Kernel) -> int:
    """The axis whose leading slices are made constant: the first, unless a reduction takes it
    (then the last), so that a slice holds whole rows of each reduction that leaves that axis."""
    takes_first = any(0 in dict(instr.attrs).get("axes", ()) for instr in kernel.body if instr.op in REDUCTIONS)
    return -1 if takes_first else 0


def _with_constant_slices(values: np.ndarray, axis: int) -> None:
    """Slices 0, 1, 2 along `axis` set to -inf, +inf, NaN, where the tensor has other slices left."""
    if values.ndim < 2 or values.shape[axis] <= len(CONSTANT_SLICES):
        return
    moved = np.moveaxis(values, axis, 0)
    for k, constant in enumerate(CONSTANT_SLICES):
        moved[k] = constant


def random_inputs(kernel: Kernel, seed: int, extremes: bool = False) -> list[np.ndarray]:
    """Normal floats times 3 (rounded to the input's dtype); with `extremes`, one float in eight
    is an infinity, NaN, a signed zero, a huge or tiny value, or an edge of exp's range, and the
    first three slices along one axis are all -inf, all +inf and all NaN (`CONSTANT_SLICES`).
    Integers are small, with -100 (PyTorch's ignore index) among them."""
    rng = np.random.default_rng(seed)
    inputs = []
    for param in kernel.inputs:
        shape, dtype = param.type.shape, param.type.dtype
        if dtype.is_float:
            values = (rng.standard_normal(shape) * 3).astype(np.float32)
            if extremes:
                chosen = rng.random(shape) < 0.125
                values[chosen] = rng.choice(EXTREMES, int(chosen.sum()))
                _with_constant_slices(values, _constant_axis(kernel))
            inputs.append(round_to_bf16(values) if dtype == DType.BF16 else values.astype(dtype.numpy))
        elif dtype == DType.BOOL:
            inputs.append(rng.random(shape) < 0.5)
        else:
            inputs.append(np.maximum(rng.integers(-101, 4, shape), -100).astype(dtype.numpy))
    return inputs


def poisoned(kernel: Kernel) -> list[np.ndarray]:
    out = []
    for param in kernel.outputs:
        dtype = param.type.dtype
        fill = np.nan if dtype.is_float else POISON_INT if dtype.is_int else 0
        out.append(to_device(np.full(param.type.shape, fill), dtype))
    return out


def run_on_emulator(kernel: Kernel, ptx: str, launch: Launch, inputs: list[np.ndarray]) -> tuple[list[np.ndarray],
                                                                                                   Emulation]:
    """The kernel's outputs as values, and what the emulator saw."""
    arguments = [to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)] + poisoned(kernel)
    outputs = set(range(len(kernel.inputs), len(arguments)))
    emulation = emulate(ptx, launch, arguments, outputs)
    values = [from_device(emulation.arguments[len(kernel.inputs) + i], p.type.dtype, p.type.shape)
              for i, p in enumerate(kernel.outputs)]
    return values, emulation


def _close(param: Param, value: np.ndarray, expected: np.ndarray) -> np.ndarray:
    if not param.type.dtype.is_float:
        return np.asarray(value == expected)
    tolerance = TOLERANCE[param.type.dtype]
    scale = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0)))
    return np.isclose(value, expected, rtol=tolerance, atol=tolerance * scale * 0.1, equal_nan=True)


def mismatches(kernel: Kernel, got: list[np.ndarray], want: tuple[np.ndarray, ...],
               native: tuple[np.ndarray, ...] | None = None) -> list[str]:
    """Each output that differs from the reference beyond its dtype's tolerance, said in the
    user's terms (the first bad index, both values, how many elements differ). With `native` (the
    interpreter in the kernel's own precision, as eager PyTorch computes), an element that matches
    it is not a mismatch either: rounding to the dtype can turn a tiny value into 0, and 0 times an
    infinity is NaN where float64 has an infinity."""
    problems = []
    for k, (param, value, expected) in enumerate(zip(kernel.outputs, got, want)):
        value = np.asarray(value, np.float64) if param.type.dtype.is_float else np.asarray(value)
        close = _close(param, value, expected)
        if native is not None and not close.all():
            close = close | _close(param, value, np.asarray(native[k], np.float64) if param.type.dtype.is_float
                                   else np.asarray(native[k]))
        if not close.all():
            index = np.unravel_index(int(np.argmin(close)), close.shape) if close.ndim else ()
            problems.append(f"{param.name}[{', '.join(map(str, index))}] = {value[index]}, expected "
                            f"{expected[index]} ({int((~close).sum())} of {close.size} elements differ)")
    return problems


@dataclass
class Verdict:
    """`match`, `mismatch`, `error` (the kernel did something undefined) or `inconclusive`
    (the PTX uses something the emulator does not model), with the reasons."""

    kernel: str
    status: str
    reasons: list[str] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "status": self.status, "reasons": self.reasons, "steps": self.steps,
                "seconds": round(self.seconds, 3)}


def check_on_emulator(kernel: Kernel, ptx: str, launch: Launch, seed: int = 0, extremes: bool = False) -> Verdict:
    """Run the PTX on fresh inputs and compare every output with the interpreter in float64;
    an output byte never written or written twice is a mismatch too."""
    started = time.perf_counter()
    inputs = random_inputs(kernel, seed, extremes)
    try:
        got, emulation = run_on_emulator(kernel, ptx, launch, inputs)
    except (NotModelled, PtxSyntaxError) as err:
        return Verdict(kernel.name, "inconclusive", [str(err)], seconds=time.perf_counter() - started)
    except EmulationError as err:
        return Verdict(kernel.name, "error", [f"{err.kind}: {err}"], seconds=time.perf_counter() - started)
    want = run(kernel, [v.astype(np.float64) if p.type.dtype.is_float else v for v, p in zip(inputs, kernel.inputs)],
               Precision.FLOAT64)
    reasons = mismatches(kernel, got, want, run(kernel, inputs, Precision.NATIVE) if extremes else None)
    for index, param in enumerate(kernel.outputs):
        argument = len(kernel.inputs) + index
        if emulation.rewritten.get(argument):
            reasons.append(f"{param.name}: {emulation.rewritten[argument]} bytes written more than once")
        if emulation.unwritten.get(argument):
            reasons.append(f"{param.name}: {emulation.unwritten[argument]} bytes never written")
    return Verdict(kernel.name, "mismatch" if reasons else "match", reasons, emulation.steps,
                   time.perf_counter() - started)


class ManifestError(ValueError):
    """A manifest that cannot be read, or that has no kernel of the name asked for."""


def manifest_kernels(manifest_path: Path) -> list[dict[str, Any]]:
    """The kernel entries of a `ptxgen lower` manifest."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise ManifestError(f"{manifest_path}: not JSON ({err})") from None
    if not isinstance(manifest, dict) or "steps" not in manifest:
        raise ManifestError(f"{manifest_path}: not a ptxgen manifest (no 'steps')")
    return [step["kernel"] for step in manifest["steps"] if "kernel" in step]


def chosen_kernels(manifest_path: Path, kernel: str | None) -> list[dict[str, Any]]:
    """The manifest's kernel entries, or the one named (ManifestError if it has none of that name)."""
    entries = manifest_kernels(manifest_path)
    chosen = [e for e in entries if kernel is None or e["name"] == kernel]
    if not chosen:
        raise ManifestError(f"{manifest_path}: no kernel named {kernel!r} (it has {[e['name'] for e in entries]})")
    return chosen


def lowered_files(manifest_path: Path, entry: dict[str, Any]) -> tuple[Kernel, str, Launch]:
    """A lowered entry's IR kernel, PTX text and launch."""
    folder = manifest_path.parent
    return (parse((folder / entry["ir"]).read_text()), (folder / entry["ptx"]).read_text(),
            Launch.from_manifest(entry["launch"]))


def check_manifest(manifest_path: Path, kernel: str | None = None, seed: int = 0) -> Iterator[Verdict]:
    """Each lowered kernel of the manifest (or the one named) checked on the emulator."""
    for entry in chosen_kernels(manifest_path, kernel):
        if not entry.get("lowered"):
            yield Verdict(entry["name"], "inconclusive", [f"not lowered: {entry.get('reason', '')}"])
            continue
        yield check_on_emulator(*lowered_files(manifest_path, entry), seed=seed)
