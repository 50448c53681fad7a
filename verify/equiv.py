"""Two IR kernels proved equal, element for element, with the engine that proves PTX equal to its
IR (`verify.ir_symbolic`): both kernels read the same symbolic input bytes (inputs matched by
position), and for a symbolic element of each output the bits they store are compared (any NaN
equal to any NaN). An algebraic rewrite proposed for a kernel is admitted only if this proves it.

The verdict is three-valued, as for PTX: proved (no input and no element tell them apart),
refuted (a counterexample: the element, both values and the inputs the solver chose, checked
concretely with the IR interpreter at the kernels' native precision), inconclusive (an op without
an exact IEEE meaning, a reduction, or the solver's time spent)."""

from __future__ import annotations

import math
import time

import numpy as np
import z3

from ir.dtypes import DType
from ir.interp import Precision, run
from ir.kernel import Kernel
from verify.against_ir import from_device
from verify.ir_symbolic import Inexact, IrTerms, describe, is_nan
from verify.prove import Obligation
from verify.replay import chosen_bytes, filled

ATTEMPTS = ((0, 8_000), (1, 6_000), (2, 6_000))  # (random seed, time limit in ms) of each try
EQUAL = "kernels equal"
REPLAY_ELEMENTS = 2**26  # inputs larger than this are not rebuilt to check a counterexample concretely


def signature_mismatch(first: Kernel, second: Kernel) -> str | None:
    """Why the two cannot be compared position by position, or None."""
    for what, a, b in (("inputs", first.inputs, second.inputs), ("outputs", first.outputs, second.outputs)):
        types_a, types_b = [p.type for p in a], [p.type for p in b]
        if types_a != types_b:
            return f"their {what} differ: {', '.join(map(str, types_a))} against {', '.join(map(str, types_b))}"
    return None


def prove_equal(first: Kernel, second: Kernel) -> Obligation:
    """Whether `second` computes what `first` computes, for every input and every element."""
    started = time.perf_counter()
    mismatch = signature_mismatch(first, second)
    if mismatch:
        return Obligation(EQUAL, "refuted", mismatch, time.perf_counter() - started)
    try:
        status, detail = compare(first, second, opaque=False)
    except Inexact as exact_failed:
        try:
            status, detail = compare(first, second, opaque=True)
        except Inexact:
            return Obligation(EQUAL, "inconclusive", str(exact_failed), time.perf_counter() - started)
    return Obligation(EQUAL, status, detail, time.perf_counter() - started)


def compare(first: Kernel, second: Kernel, opaque: bool) -> tuple[str, str]:
    """Tiers: IEEE arithmetic throughout; else (`opaque`) ops without an exact meaning as
    uninterpreted functions. A difference found with uninterpreted functions is believed only if
    the interpreter shows it too on the same inputs."""
    memory = [z3.Array(f"input {i}", z3.BitVecSort(64), z3.BitVecSort(8)) for i in range(len(first.inputs))]
    terms = [IrTerms(k, {p.name: m for p, m in zip(k.inputs, memory)}, opaque) for k in (first, second)]
    opaque_ops: list[str] = []
    for index in range(len(first.outputs)):
        status, detail, shown = compare_output(first, second, terms, memory, index)
        opaque_ops = sorted(terms[0].opaque_ops | terms[1].opaque_ops)
        if status == "refuted" and opaque_ops and not shown:
            return "inconclusive", (f"{detail}; they differ only if {', '.join(opaque_ops)} could compute "
                                    "anything (uninterpreted), and the interpreter does not show it")
        if status != "proved":
            return status, detail
    how = f", whatever {', '.join(opaque_ops)} compute (uninterpreted)" if opaque_ops else ""
    return "proved", (f"every element of {len(first.outputs)} output(s) is bit for bit the same (NaN for NaN) for "
                      f"all inputs{how}")


def compare_output(first: Kernel, second: Kernel, terms: list[IrTerms], memory: list[z3.ArrayRef],
                   index: int) -> tuple[str, str, bool]:
    """(status, detail, whether the interpreter shows a refutation's difference too)."""
    output = first.outputs[index]
    dtype, shape = output.type.dtype, output.type.shape
    flat = z3.BitVec("element", 64)
    a, b = (t.output_bits(index, flat) for t in terms)
    same = z3.Or(a == b, z3.And(is_nan(a, dtype), is_nan(b, dtype))) if dtype.is_float else a == b
    solver, result = _solved([z3.ULT(flat, max(math.prod(shape), 1)), z3.Not(same)])
    if result == z3.unsat:
        return "proved", "", False
    if result == z3.unknown:
        return "inconclusive", f"output {index}: the solver gave up ({solver.reason_unknown()})", False
    model = solver.model()
    element = model.eval(flat, model_completion=True).as_long()
    where = list(np.unravel_index(element, shape)) if shape else []
    at = f"output {index} ({output.name}) at {[int(i) for i in where]}"
    shown, said = concretely(first, second, model, memory, index, element)
    if terms[0].opaque_ops or terms[1].opaque_ops:  # the solver's values of uninterpreted ops mean nothing
        return "refuted", f"{at}, on inputs the solver chose{said}", shown
    got = [model.eval(t, model_completion=True).as_long() for t in (a, b)]
    detail = f"{at}: {first.name} gives {describe(got[0], dtype)}, {second.name} gives {describe(got[1], dtype)}"
    return "refuted", f"{detail}; on those inputs{said}", shown


def _solved(constraints: list[z3.BoolRef]) -> tuple[z3.Solver, z3.CheckSatResult]:
    """One query, tried with each of ATTEMPTS' (random seed, time limit) until one decides it: how
    long z3 takes on a floating-point query varies by orders of magnitude with its seed (and with
    the terms the process made before), so a few short tries decide more than one long one."""
    for seed, timeout_ms in ATTEMPTS:
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.set("random_seed", seed)
        solver.add(*constraints)
        result = solver.check()
        if result != z3.unknown:
            break
    return solver, result


def chosen_inputs(kernel: Kernel, model: z3.ModelRef, memory: list[z3.ArrayRef]) -> list[np.ndarray] | None:
    """The inputs the solver chose, as arrays of the kernel's input types (None if too large)."""
    arrays = []
    for param, array in zip(kernel.inputs, memory):
        size = math.prod(param.type.shape) * param.type.dtype.itemsize
        if size > REPLAY_ELEMENTS:
            return None
        data = filled(size, chosen_bytes(model, array))
        arrays.append(np.array(from_device(data, param.type.dtype, param.type.shape)))
    return arrays


def concretely(first: Kernel, second: Kernel, model: z3.ModelRef, memory: list[z3.ArrayRef], index: int,
               element: int) -> tuple[bool, str]:
    """The counterexample run through the IR interpreter (native precision): whether the values
    differ there too, and both values."""
    inputs = chosen_inputs(first, model, memory)
    if inputs is None:
        return False, ""
    values = [run(k, [v.astype(k.inputs[i].type.dtype.numpy) if k.inputs[i].type.dtype != DType.BF16 else v
                      for i, v in enumerate(inputs)], Precision.NATIVE)[index].reshape(-1)[element]
              for k in (first, second)]
    differ = not _same(*values)
    agree = "the interpreter tells them apart too" if differ else "the interpreter does NOT tell them apart"
    return differ, f", {agree}: {first.name} {float(values[0])!r}, {second.name} {float(values[1])!r}"


def _same(a: object, b: object) -> bool:
    x, y = float(a), float(b)  # type: ignore[arg-type]
    return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))
