"""An IR kernel's output element as a z3 term, for proving a kernel's stored values equal to the
IR's. Inputs are byte arrays (one z3 Array per input, indexed by byte), the element by a symbolic
flat index. Numerics follow the interpreter's native precision: float32 arithmetic with one
rounding per op, half types (bf16, f16) computed in float32 and rounded to their type after each
op (or, for a schedule that keeps float32 between ops, only where stored); `maximum`/`minimum`
propagate NaN and order -0.0 below +0.0. Integer ops and casts wrap as numpy's do on int32/int64.

A sum, mean, amax or amin is a term of its accumulated value (`accumulated`, which
`verify.reductions` proves a kernel's tree equal to); an argmax or argmin, of its accumulated
best position and whether its row is all the worst value (`arg_result`, which
`verify.arg_reductions` proves a kernel's pairs reach); matmul has none. An op with no exact
IEEE meaning (exp, tanh, erf, x**y) is, when the caller names the schedule's form (`approx`), the
formula of ptxgen.mathlib that form computes it by (`verify.recipes`): its approximate
instructions uninterpreted, its accuracy tested numerically, not proved. Without a form, asking
for such an op raises `Inexact`, and the value obligation is inconclusive."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import z3

from ir.dtypes import DType
from ir.kernel import NON_FINITE, Instr, Kernel, TensorType, constant_value
from ir.ops import REDUCTIONS, Op
from verify import recipes

Value = z3.ExprRef  # FP (Float32) for floats, BitVec for integers, Bool for bools
F32 = z3.Float32()
RNE = z3.RNE()
HALF_SORTS = {DType.BF16: z3.FPSort(8, 8), DType.F16: z3.Float16()}
INT_BITS = {DType.I32: 32, DType.I64: 64}


class Inexact(Exception):
    """The IR op has no exact z3 meaning (its lowering is checked numerically, not proved)."""


def accumulated(instr: Instr) -> z3.FuncDeclRef:
    """A reduction's accumulated value for each result element (by its flat index), in whatever
    order of accumulation: what a kernel's reduction tree over the same elements is proved to equal
    (`verify.reductions`). A float32 value; for an integer reduction, its bits (integer adds wrap
    alike in any order, so that value is the exact one)."""
    dtype = instr.type.dtype  # type: ignore[union-attr]
    value = z3.BitVecSort(INT_BITS[dtype]) if dtype in INT_BITS else F32
    return z3.Function(f"accumulated {instr.op.value} {instr.result}", z3.BitVecSort(64), value)


# A reduction's float32 value from its accumulated value: mean multiplies by 1/n (in float32, as
# PyTorch's mean does); the result is then rounded to its dtype like any op's.
ACCUMULATED: dict[Op, Callable[[Value, int], Value]] = {
    Op.SUM: lambda total, n: total,
    Op.MEAN: lambda total, n: z3.fpMul(RNE, total, z3.FPVal(float(struct.unpack("<f", struct.pack("<f", 1.0 / n))[0]),
                                                             F32)),
    Op.AMAX: lambda total, n: total,
    Op.AMIN: lambda total, n: total,
    Op.ARGMAX: lambda best, n: arg_result(best, n),
    Op.ARGMIN: lambda best, n: arg_result(best, n),
}


def arg_position(best: z3.BitVecRef, n: int) -> z3.BitVecRef:
    """An argmax's (argmin's) accumulated value read as its best position: 32 bits, below n."""
    return z3.URem(z3.Extract(31, 0, best), n)


def arg_all_worst(best: z3.BitVecRef) -> z3.BoolRef:
    """An argmax's (argmin's) accumulated value read as whether every element of the row is the
    worst value (-inf for argmax, +inf for argmin): no element is better than another, and the
    answer is the first position, 0."""
    return z3.Extract(32, 32, best) == 1


def arg_result(best: z3.BitVecRef, n: int) -> z3.BitVecRef:
    """The IR's argmax (argmin) of a row from its accumulated value: 0 where every element is the
    worst value, else the best element's position (the first NaN, else the first of the best
    values), as an i64."""
    return z3.SignExt(32, z3.If(arg_all_worst(best), z3.BitVecVal(0, 32), arg_position(best, n)))


def _round(value: Value, dtype: DType) -> Value:
    """A float32 value rounded to `dtype` and widened back (half types); others unchanged."""
    if dtype in HALF_SORTS:
        return z3.fpFPToFP(RNE, z3.fpFPToFP(RNE, value, HALF_SORTS[dtype]), F32)
    return value


def _unrounded(value: Value, dtype: DType) -> Value:
    """A float32 value kept as it is, whatever `dtype` (half values kept in float32)."""
    return value


Rounding = Callable[[Value, DType], Value]


def _ordered(pick_larger: bool) -> Callable[[Value, Value], Value]:
    def choose(a: Value, b: Value) -> Value:
        either_nan = z3.Or(z3.fpIsNaN(a), z3.fpIsNaN(b))
        a_first = z3.Or(z3.fpGT(a, b) if pick_larger else z3.fpLT(a, b),
                        z3.And(z3.fpIsZero(a), z3.fpIsZero(b), z3.fpIsPositive(a) == pick_larger))
        return z3.If(either_nan, z3.fpNaN(F32), z3.If(a_first, a, b))
    return choose


FLOAT_OPS: dict[Op, Callable[..., Value]] = {
    Op.ADD: lambda a, b: z3.fpAdd(RNE, a, b),
    Op.SUB: lambda a, b: z3.fpSub(RNE, a, b),
    Op.MUL: lambda a, b: z3.fpMul(RNE, a, b),
    Op.DIV: lambda a, b: z3.fpDiv(RNE, a, b),
    Op.SQRT: lambda a: z3.fpSqrt(RNE, a),
    Op.RECIP: lambda a: z3.fpDiv(RNE, z3.FPVal(1.0, F32), a),
    Op.NEG: z3.fpNeg,
    Op.ABS: z3.fpAbs,
    Op.MAXIMUM: _ordered(True),
    Op.MINIMUM: _ordered(False),
}
# Integer ops as numpy computes them on int32/int64 arrays: two's complement, wrapping.
INTEGER_OPS: dict[Op, Callable[..., Value]] = {
    Op.ADD: lambda a, b: a + b, Op.SUB: lambda a, b: a - b, Op.MUL: lambda a, b: a * b, Op.NEG: lambda a: -a,
    Op.ABS: lambda a: z3.If(a < 0, -a, a), Op.MAXIMUM: lambda a, b: z3.If(a < b, b, a),
    Op.MINIMUM: lambda a, b: z3.If(b < a, b, a),
}
COMPARISONS: dict[Op, Callable[[Value, Value], Value]] = {
    Op.EQ: z3.fpEQ, Op.NE: lambda a, b: z3.Not(z3.fpEQ(a, b)), Op.LT: z3.fpLT, Op.LE: z3.fpLEQ,
    Op.GT: z3.fpGT, Op.GE: z3.fpGEQ,
}
LOGIC: dict[Op, Callable[..., Value]] = {Op.AND: z3.And, Op.OR: z3.Or, Op.NOT: z3.Not}
# Comparisons of bools (z3 Bools: equality only) and of signed integers (bit-vectors).
EXACT_COMPARISONS: dict[Op, Callable[[Value, Value], Value]] = {
    Op.EQ: lambda a, b: a == b, Op.NE: lambda a, b: a != b, Op.LT: lambda a, b: a < b,
    Op.LE: lambda a, b: a <= b, Op.GT: lambda a, b: a > b, Op.GE: lambda a, b: a >= b,
}
# Ops whose definition above is proved (once, by `recipes.instruction_form`) to equal one PTX
# instruction: their terms are then built as that instruction's, the same terms a kernel has.
INSTRUCTIONS = {Op.MAXIMUM: "max.NaN.f32", Op.MINIMUM: "min.NaN.f32", Op.NEG: "neg.f32", Op.ABS: "abs.f32"}
# Ops with an exact IEEE meaning that approximate schedules compute by a formula instead.
APPROXIMATED = frozenset({Op.DIV})


def _float_op(op: Op, arity: int) -> Callable[..., Value]:
    """An exact op's definition, as its PTX instruction's term where the two are proved equal."""
    if op in INSTRUCTIONS:
        return recipes.instruction_form(INSTRUCTIONS[op], arity, FLOAT_OPS[op]) or FLOAT_OPS[op]
    return FLOAT_OPS[op]


def _decode(bits: z3.BitVecRef, dtype: DType) -> Value:
    if dtype == DType.F32:
        return z3.fpBVToFP(bits, F32)
    if dtype in HALF_SORTS:
        return z3.fpFPToFP(RNE, z3.fpBVToFP(bits, HALF_SORTS[dtype]), F32)
    if dtype == DType.BOOL:
        return bits != 0
    return bits


def encode(value: Value, dtype: DType) -> z3.BitVecRef:
    """A value as the bits stored for `dtype` (every NaN as the canonical one)."""
    if dtype == DType.BOOL:
        return z3.If(value, z3.BitVecVal(1, 8), z3.BitVecVal(0, 8))
    if dtype in INT_BITS:
        return value
    sort = HALF_SORTS.get(dtype, F32)
    narrow = z3.fpFPToFP(RNE, value, sort) if dtype in HALF_SORTS else value
    nan = z3.BitVecVal((1 << (sort.ebits() + sort.sbits() - 1)) - 1, sort.ebits() + sort.sbits())
    return z3.If(z3.fpIsNaN(narrow), nan, z3.fpToIEEEBV(narrow))


def is_nan(bits: z3.BitVecRef, dtype: DType) -> z3.BoolRef:
    """Whether stored bits of a float `dtype` are a NaN (any payload)."""
    return z3.fpIsNaN(z3.fpBVToFP(bits, HALF_SORTS.get(dtype, F32)))


def describe(bits: int, dtype: DType) -> str:
    """Stored bits in the user's terms."""
    if dtype == DType.F32:
        return f"{struct.unpack('<f', bits.to_bytes(4, 'little'))[0]!r} ({bits:#010x})"
    if dtype == DType.BF16:
        return f"{struct.unpack('<f', (bits << 16).to_bytes(4, 'little'))[0]!r} (bf16 {bits:#06x})"
    return f"{bits:#x}"


def _const(instr: Instr, round_to: Rounding) -> Value:
    value = instr.attr("value")
    number = NON_FINITE[value] if isinstance(value, str) else value
    dtype = instr.type.dtype  # type: ignore[union-attr]
    if dtype in INT_BITS:
        return z3.BitVecVal(int(number), INT_BITS[dtype])
    if dtype == DType.BOOL:
        return z3.BoolVal(bool(number))
    literal = z3.fpNaN(F32) if math.isnan(number) else z3.FPVal(float(number), F32)
    return round_to(literal, dtype)


def _cast(value: Value, source: DType, target: DType, round_to: Rounding) -> Value:
    """A cast as the interpreter makes it: an integer to float32 rounded once to nearest (numpy's
    astype), then to a half type; a bool to 1.0 or 0.0, or to 1 or 0; an integer to a wider one
    sign-extended, to a narrower one wrapped."""
    if source == target:
        return value
    if source.is_float and target.is_float:
        return round_to(value, target)
    if source in INT_BITS and target.is_float:
        return round_to(z3.fpSignedToFP(RNE, value, F32), target)
    if source == DType.BOOL and target.is_float:
        return z3.If(value, z3.FPVal(1.0, F32), z3.FPVal(0.0, F32))
    if source == DType.BOOL and target in INT_BITS:
        return z3.If(value, z3.BitVecVal(1, INT_BITS[target]), z3.BitVecVal(0, INT_BITS[target]))
    if source in INT_BITS and target in INT_BITS:  # wider: sign-extended; narrower: the low bits (wraps)
        grow = INT_BITS[target] - INT_BITS[source]
        return z3.SignExt(grow, value) if grow > 0 else z3.Extract(INT_BITS[target] - 1, 0, value)
    raise Inexact(f"cast from {source} to {target}: not modelled yet")


@dataclass(frozen=True)
class At:
    """An element of a tensor of `shape`, by its row-major flat index."""

    flat: z3.BitVecRef
    shape: tuple[int, ...]
    scaled: tuple[int, z3.BitVecRef] | None = None  # (k, flat * k) as the caller computed it, if known

    def times(self, k: int) -> z3.BitVecRef:
        """flat * k, in the caller's own terms where it gave them (so that the solver sees the same
        address the kernel computed, not an equal one it must prove equal)."""
        return self.scaled[1] if self.scaled is not None and self.scaled[0] == k else self.flat * k

    def of(self, shape: tuple[int, ...]) -> At:
        """The element of a tensor of `shape` that broadcasting (aligned on the right, size-1 dims
        at coordinate 0) reads for this one."""
        if shape == self.shape:
            return self
        coords = [z3.URem(z3.UDiv(self.flat, math.prod(self.shape[d + 1:])), n) for d, n in enumerate(self.shape)]
        tail = coords[len(coords) - len(shape):] if shape else []
        flat = z3.BitVecVal(0, 64)
        for coordinate, n in zip(tail, shape):
            flat = flat * n + (z3.BitVecVal(0, 64) if n == 1 else coordinate)
        return At(flat, shape)


class IrTerms:
    """Terms of a kernel's values at given coordinates, memoised per (value, coordinates)."""

    def __init__(self, kernel: Kernel, inputs: dict[str, z3.ArrayRef], opaque: bool = False,
                 approx: bool | None = None, reductions: bool = False, keep_f32: bool = False) -> None:
        """`opaque`: ops without an exact IEEE meaning become uninterpreted functions (one per op
        and dtype) instead of raising Inexact: equal arguments give equal results, nothing more is
        known of them (`opaque_ops` lists those used). `approx`: the form (approximate or not) of
        the schedule the kernel was lowered with; such ops are then mathlib's formulas for that
        form (`formulas` lists those used). `reductions`: a sum, mean, amax or amin is the
        uninterpreted float32 function `accumulated` gives (of the reduced element's flat index):
        its value modulo the order of accumulation, followed by the op's own last steps (mean's
        product with 1/n, the rounding to the result's dtype); an argmax or argmin, the function of
        its accumulated i64 value `arg_result` gives; `uses` lists each such element asked for.
        `keep_f32`: the schedule keeps bf16/f16 values in float32 between ops (its
        `fp32_intermediates`): they are rounded to their type only where stored, not after each op
        or cast."""
        unmodelled = [i.op for i in kernel.body if i.op == Op.MATMUL or
                      (i.op in REDUCTIONS and not (reductions and i.op in ACCUMULATED))]
        if unmodelled:
            raise Inexact(f"a reduction ({unmodelled[0].value}): its values are not modelled yet")
        self.uses: list[tuple[Instr, z3.BitVecRef]] = []
        self.kernel, self.inputs, self.opaque = kernel, inputs, opaque
        self.opaque_ops: set[str] = set()
        self.approx = approx
        self.round_to: Rounding = _unrounded if keep_f32 else _round
        self.formulas: set[str] = set()
        self.defs = {i.result: i for i in kernel.body}
        self.types: dict[str, TensorType] = {p.name: p.type for p in kernel.inputs}
        self.types.update({i.result: i.type for i in kernel.body})  # type: ignore[misc]

    def output_bits(self, index: int, flat: z3.BitVecRef, byte: z3.BitVecRef | None = None) -> z3.BitVecRef:
        """The bits the IR stores for element `flat` of output `index` (`byte`: flat times the
        output's itemsize, as the caller has it)."""
        param = self.kernel.outputs[index]
        scaled = None if byte is None else (param.type.dtype.itemsize, byte)
        value = self.value(self.kernel.returns[index], At(flat, param.type.shape, scaled))
        return encode(value, param.type.dtype)

    def value(self, name: str, at: At) -> Value:
        type_ = self.types[name]
        own = at.of(type_.shape)
        if name not in self.defs:
            return self._load(name, type_, own)
        instr = self.defs[name]
        if instr.op == Op.CONST:
            return _const(instr, self.round_to)
        if instr.op in ACCUMULATED:
            total = ACCUMULATED[instr.op](self.accumulated_value(instr, own), self.reduced_count(instr))
            return self.round_to(total, instr.type.dtype)  # type: ignore[union-attr]
        if instr.op == Op.RESHAPE:  # the same flat index in the source's shape
            return self.value(instr.args[0], At(own.flat, self.types[instr.args[0]].shape, own.scaled))
        return self._apply(instr, [self.value(a, own) for a in instr.args])

    def accumulated_value(self, instr: Instr, at: At) -> Value:
        """A reduction's accumulated value at `at` (of its result's shape): the uninterpreted one
        a kernel's tree is proved equal to (recorded in `uses`)."""
        self.uses.append((instr, at.flat))
        return accumulated(instr)(at.flat)

    def reduced_count(self, instr: Instr) -> int:
        """How many elements each result of a reduction accumulates."""
        shape = self.types[instr.args[0]].shape
        return math.prod(shape[a] for a in instr.attr("axes"))  # type: ignore[union-attr]

    def reduced_elements(self, instr: Instr, flat: int) -> list[int]:
        """The flat indices (in the reduction's input) of the elements result `flat` accumulates."""
        shape = self.types[instr.args[0]].shape
        axes = set(instr.attr("axes"))  # type: ignore[arg-type]
        kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
        coords = [flat // math.prod(kept[d + 1:]) % n for d, n in enumerate(kept)]
        strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
        elements = [sum(c * st for c, st in zip(coords, strides))]
        for axis in sorted(axes):
            elements = [e + k * strides[axis] for e in elements for k in range(shape[axis])]
        return sorted(elements)

    def _apply(self, instr: Instr, args: list[Value]) -> Value:
        dtype = instr.type.dtype  # type: ignore[union-attr]
        source = self.types[instr.args[0]].dtype if instr.args else dtype
        if instr.op == Op.EXPAND:
            return args[0]
        if instr.op == Op.WHERE:
            return z3.If(args[0], args[1], args[2])
        if instr.op == Op.CAST:
            return _cast(args[0], source, instr.attr("to"), self.round_to)  # type: ignore[arg-type]
        if instr.op in COMPARISONS and source.is_float:
            return COMPARISONS[instr.op](*args)
        if instr.op in EXACT_COMPARISONS and (source == DType.BOOL or source in INT_BITS):
            return EXACT_COMPARISONS[instr.op](*args)
        if instr.op in LOGIC:
            return LOGIC[instr.op](*args)
        formula = self.formula_for(instr) if dtype.is_float else None
        if formula is not None:
            self.formulas.add(instr.op.value)
            return self.round_to(self.run_formula(formula, list(args)), dtype)
        if instr.op in INTEGER_OPS and dtype in INT_BITS:
            return INTEGER_OPS[instr.op](*args)
        if instr.op in FLOAT_OPS and dtype.is_float:
            return self.round_to(_float_op(instr.op, len(args))(*args), dtype)
        if self.opaque and dtype.is_float and all(z3.is_fp(a) for a in args):
            name = f"{instr.op.value} {dtype.value}"
            self.opaque_ops.add(name)
            return self.round_to(z3.Function(name, *[F32] * len(args), F32)(*args), dtype)
        raise Inexact(f"{instr.op} on {dtype}: no exact IEEE meaning; its lowering is tested numerically, not proved")

    def run_formula(self, formula: recipes.Program, args: list[Value]) -> Value:
        """A formula's float32 result for these arguments."""
        return recipes.evaluate(formula, args)

    def formula_for(self, instr: Instr) -> recipes.Program | None:
        """mathlib's formula for an op with no exact meaning (or one approximate schedules replace)."""
        exact = instr.op in FLOAT_OPS and not (self.approx and instr.op in APPROXIMATED)
        if self.approx is None or exact:
            return None
        if instr.op == Op.POW:
            return recipes.program("pow", self.approx, 2, constant_value(self.defs, instr.args[1]))
        try:
            return recipes.program(instr.op.value, self.approx, len(instr.args))
        except recipes.NoRecipe:
            return None

    def _load(self, name: str, type_: TensorType, at: At) -> Value:
        size = type_.dtype.itemsize
        start = at.times(size)
        memory = self.inputs[name]
        data = [z3.Select(memory, start + k) for k in range(size)]
        bits = z3.Concat(*reversed(data)) if size > 1 else data[0]
        return _decode(bits, type_.dtype)
