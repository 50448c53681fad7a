"""The IR's values over whole tensors at once, in numpy, after the meaning `verify.ir_symbolic`
gives them: float32 arithmetic rounded once per op, half types rounded to their type after each op
(or kept in float32 where the schedule does so), `maximum`/`minimum` propagating NaN with -0.0
below +0.0, mathlib's formulas for the ops that have no exact meaning, run in the numpy domain of
the PTX semantics (approximate instructions as the emulator computes them), and each reduction's
result the one every order of accumulation gives (`verify.witness`), or unknown where orders differ.

It is fast where `verify.witness.ConcreteIr` (the prover's own terms, evaluated) is exact: the
witness search takes the elements where a kernel's stored bits differ from these as candidates and
confirms each on those terms before it calls it a witness, so nothing here decides a verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ir.dtypes import DType, round_to_bf16
from ir.kernel import NON_FINITE, Instr, Kernel
from ir.ops import INDEX_REDUCTIONS, VALUE_REDUCTIONS, Op
from verify import recipes
from verify.ir_symbolic import APPROXIMATED, COMPARISONS, EXACT_COMPARISONS, INT_BITS, IrTerms
from verify.numeric import NumpyDomain


class Unavailable(Exception):
    """An op these arrays do not compute: the search compares element by element instead."""


@dataclass(frozen=True)
class Values:
    """A tensor's values (float32 for every float type, the integer type's own, bool) and which of
    them are known (a reduction whose orders differ is not)."""

    data: np.ndarray
    known: np.ndarray


def _ordered(pick_larger: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def choose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        first = (a > b if pick_larger else a < b) | ((a == 0) & (b == 0) & (np.signbit(a) != pick_larger))
        return np.where(np.isnan(a) | np.isnan(b), np.float32(np.nan), np.where(first, a, b)).astype(np.float32)
    return choose


FLOAT_OPS: dict[Op, Callable[..., np.ndarray]] = {
    Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide, Op.SQRT: np.sqrt,
    Op.RECIP: lambda a: np.float32(1) / a, Op.NEG: np.negative, Op.ABS: np.abs,
    Op.MAXIMUM: _ordered(True), Op.MINIMUM: _ordered(False),
}
INTEGER_OPS: dict[Op, Callable[..., np.ndarray]] = {
    Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.NEG: np.negative, Op.ABS: np.abs,
    Op.MAXIMUM: np.maximum, Op.MINIMUM: np.minimum,
}
ORDERED_COMPARISONS: dict[Op, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    Op.EQ: np.equal, Op.NE: np.not_equal, Op.LT: np.less, Op.LE: np.less_equal, Op.GT: np.greater,
    Op.GE: np.greater_equal,
}
LOGIC: dict[Op, Callable[..., np.ndarray]] = {Op.AND: np.logical_and, Op.OR: np.logical_or, Op.NOT: np.logical_not}
INTEGERS = {DType.I32: np.int32, DType.I64: np.int64}


def broadcast(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A value read at every element of a tensor of `shape` as `ir_symbolic.At.of` reads it:
    aligned on the right, a dimension of size 1 at coordinate 0."""
    if values.shape == shape:
        return values
    coords = np.unravel_index(np.arange(int(np.prod(shape))), shape) if shape else ()
    tail = coords[len(coords) - len(values.shape):] if values.shape else ()
    source = np.zeros(int(np.prod(shape)), np.int64)
    for coordinate, n in zip(tail, values.shape):
        source = source * n + (0 if n == 1 else coordinate)
    return values.ravel()[source].reshape(shape)


def _round(values: np.ndarray, dtype: DType) -> np.ndarray:
    """float32 values rounded to `dtype` (to nearest even) and held in float32 again."""
    if dtype == DType.BF16:
        return round_to_bf16(values).astype(np.float32)
    if dtype == DType.F16:
        return values.astype(np.float16).astype(np.float32)
    return values


def run_program(formula: recipes.Program, arguments: list[np.ndarray]) -> np.ndarray:
    """A mathlib formula on float32 arrays, instruction by instruction in the numpy domain."""
    registers = {r: np.ascontiguousarray(a, np.float32).view(np.uint32) for r, a in zip(formula.arguments, arguments)}
    with np.errstate(all="ignore"):
        result = recipes.run(formula, NumpyDomain(arguments[0].size), registers)
    return result.astype(np.uint32).view(np.float32)


class IrArrays:
    """Every value of an IR kernel for one set of inputs."""

    def __init__(self, kernel: Kernel, inputs: list[np.ndarray], approx: bool | None, keep_f32: bool,
                 reduce: Callable[[Instr, np.ndarray], int | None]) -> None:
        """`reduce(instr, terms)`: the bits of a float reduction's accumulated value over its row's
        float32 terms where every order gives them, else None."""
        self.kernel, self.approx, self.keep_f32, self.reduce = kernel, approx, keep_f32, reduce
        self.terms = IrTerms(kernel, {}, approx=approx, reductions=True, keep_f32=keep_f32)
        self.values: dict[str, Values] = {}
        for param, given in zip(kernel.inputs, inputs):
            data = np.asarray(given)
            data = data.astype(np.float32) if param.type.dtype.is_float else data
            self.values[param.name] = Values(data, np.ones(data.shape, bool))
        for instr in kernel.body:
            self.values[instr.result] = self._value(instr)

    def output(self, index: int) -> Values:
        found = self.values[self.kernel.returns[index]]
        param = self.kernel.outputs[index]
        data = _round(found.data, param.type.dtype) if param.type.dtype.is_float else found.data
        return Values(broadcast(data, param.type.shape), broadcast(found.known, param.type.shape))

    def _rounded(self, values: np.ndarray, dtype: DType) -> np.ndarray:
        return values if self.keep_f32 else _round(values, dtype)

    def _value(self, instr: Instr) -> Values:
        args = [self.values[a] for a in instr.args]
        shape = instr.type.shape  # type: ignore[union-attr]
        if instr.op in VALUE_REDUCTIONS:
            return self._reduced(instr, args[0])
        if instr.op in INDEX_REDUCTIONS:  # a position: not compared
            return Values(np.zeros(shape, np.int64), np.zeros(shape, bool))
        if instr.op == Op.RESHAPE:  # the same flat index in the source's shape
            return Values(np.reshape(args[0].data, shape), np.reshape(args[0].known, shape))
        args = [Values(broadcast(a.data, shape), broadcast(a.known, shape)) for a in args]
        known = np.logical_and.reduce([a.known for a in args]) if args else np.ones(shape, bool)
        with np.errstate(all="ignore"):
            data = self._elementwise(instr, [a.data for a in args])
        return Values(broadcast(data, shape), known)

    def _elementwise(self, instr: Instr, args: list[np.ndarray]) -> np.ndarray:
        dtype = instr.type.dtype  # type: ignore[union-attr]
        source = self.terms.types[instr.args[0]].dtype if instr.args else dtype
        if instr.op == Op.CONST:
            return self._const(instr)
        if instr.op == Op.EXPAND:
            return args[0]
        if instr.op == Op.WHERE:
            return np.where(args[0], args[1], args[2])
        if instr.op == Op.CAST:
            return self._cast(args[0], source, instr.attr("to"))  # type: ignore[arg-type]
        if instr.op in COMPARISONS and source.is_float or instr.op in EXACT_COMPARISONS and not source.is_float:
            return ORDERED_COMPARISONS[instr.op](*args)
        if instr.op in LOGIC:
            return LOGIC[instr.op](*args)
        formula = self.terms.formula_for(instr) if dtype.is_float else None
        if formula is not None:
            return self._rounded(run_program(formula, [a.ravel() for a in args]).reshape(args[0].shape), dtype)
        if instr.op in INTEGER_OPS and dtype in INT_BITS:
            return INTEGER_OPS[instr.op](*args).astype(INTEGERS[dtype])
        if instr.op in FLOAT_OPS and dtype.is_float and not (self.approx and instr.op in APPROXIMATED):
            return self._rounded(FLOAT_OPS[instr.op](*args).astype(np.float32), dtype)
        raise Unavailable(f"{instr.op.value} on {dtype.value}")

    def _const(self, instr: Instr) -> np.ndarray:
        value = instr.attr("value")
        number = NON_FINITE[value] if isinstance(value, str) else value
        dtype = instr.type.dtype  # type: ignore[union-attr]
        if dtype in INTEGERS:
            return np.array(int(number), INTEGERS[dtype])
        if dtype == DType.BOOL:
            return np.array(bool(number))
        return self._rounded(np.array(number, np.float32), dtype)

    def _cast(self, value: np.ndarray, source: DType, target: DType) -> np.ndarray:
        if source == target:
            return value
        if target.is_float:
            return self._rounded(value.astype(np.float32), target)
        if target in INTEGERS and (source == DType.BOOL or source in INTEGERS):
            return value.astype(INTEGERS[target])
        raise Unavailable(f"cast from {source.value} to {target.value}")

    def _reduced(self, instr: Instr, source: Values) -> Values:
        shape = instr.type.shape  # type: ignore[union-attr]
        dtype = instr.type.dtype  # type: ignore[union-attr]
        count = int(np.prod(shape))
        data = np.zeros(count, np.float32 if dtype.is_float else INTEGERS.get(dtype, np.int64))
        known = np.zeros(count, bool)
        values, held = source.data.ravel(), source.known.ravel()
        for flat in range(count):
            row = self.terms.reduced_elements(instr, flat)
            if held[row].all():
                found = self._accumulated(instr, values[row])
                if found is not None:
                    data[flat], known[flat] = found, True
        return Values(data.reshape(shape), known.reshape(shape))

    def _accumulated(self, instr: Instr, terms: np.ndarray) -> np.generic | None:
        dtype = instr.type.dtype  # type: ignore[union-attr]
        if dtype == DType.I64 and instr.op == Op.SUM:
            return np.int64(terms.astype(np.int64).sum())
        if not dtype.is_float:
            return None
        bits = self.reduce(instr, terms.astype(np.float32))
        if bits is None:
            return None
        total = np.array([bits], np.uint32).view(np.float32)
        if instr.op == Op.MEAN:
            total = total * np.float32(1.0 / terms.size)
        return self._rounded(total.astype(np.float32), dtype)[0]
