"""Concrete witnesses for output values a proof leaves open.

Where the value obligation is inconclusive (a tree of another form than the IR's sum, a solver
that gave up, a term that differs only where another reduction's result is free), a kernel can
still be shown wrong by one input on which it stores another value than the IR's. Such inputs are
searched for here: the kernel runs on the CPU emulator (the semantics the prover executes
symbolically, over numpy) on input sets of several families, and elements it stores are compared
bit for bit (NaN for any NaN) with the IR's value there, computed from the prover's own terms
(`verify.ir_symbolic`) with the inputs put in: the same formulas, evaluated.

A reduction's value is the IR's only up to the order of accumulation, so an element is compared
only where every order gives one value: a max or min always (NaN first, -0.0 below +0.0); an
integer sum always; a float32 sum where every term is +-0.0 but at most `NONZERO_TERMS`, every
tree over those giving one result (enumerated) and any zero term changing nothing (adding +-0.0 to
a nonzero value is exact; a sum of zeros is +0.0 where one of them is). The families are made so
that this happens: sparse inputs over a background of 0 or of a large negative value (whose
exponential is 0) with values of full mantissas or wide exponents, and rows holding a few values:
one or two, three that sum to zero in every order (so that a mean is 0 and a variance has three
terms), short ones with one far below them, or a tie of bfloat16 with one far below it. Where
the IR's value uses an argmax's position, the element is not compared.

The approximate instructions (ex2.approx, tanh.approx, div.full, ...) are uninterpreted in the
proof: the kernel must equal the IR whatever function each of them is, applied to the arguments
the IR's formula gives it. Here each is the one function the emulator computes for it (the
accurate value, rounded to float32: `verify.numeric`), in the kernel and in the IR alike; a
witness that needed one names it. At those inputs the kernel then applies an approximate
instruction to another argument than the IR's formula does, or computes something else around it:
the equality the proof asks for fails for that function. Whether the hardware's approximation
also tells the two apart at those inputs is for the replay on a GPU to show.

A witness so found is a refutation: at those inputs the kernel stores a value that no order of
the IR's accumulation gives. Only launches small enough to emulate whole are searched."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import z3

from ir.dtypes import DType, round_to_bf16
from ir.kernel import Instr, Kernel
from ir.ops import REDUCTIONS, Op
from verify import recipes
from verify.against_ir import DEVICE_DTYPE, from_device, random_inputs, to_device
from verify.emulate import EmulationError, Launch, emulate
from verify.ir_arrays import IrArrays, Unavailable, run_program
from verify.ir_symbolic import F32, At, Inexact, IrTerms, Value, _decode, describe
from verify.ptxparse import PtxSyntaxError, parse_ptx
from verify.semantics import NotModelled

WITNESS_SECONDS = 15.0  # the most a search takes (within the kernel's own time left)
WITNESS_LANES = 2**16  # launches of more threads are not searched
WITNESS_BYTES = 2**24  # nor launches whose buffers hold more bytes
WITNESS_REDUCED = 4096  # nor kernels reducing more elements into one result
ELEMENTS_PER_SET = 256  # stored elements compared one by one per input set (a sample where more were stored)
CONFIRMED = 64  # elements where the IR's arrays and the kernel differ checked on the prover's terms, per input set
FOUND = "found on the emulator (verify.witness)"  # a refutation's replay where a witness made it
NONZERO_TERMS = 4  # a sum of at most this many nonzero terms has its trees enumerated
Family = Callable[[Kernel, np.random.Generator, int], list[np.ndarray]]


class NotDetermined(Exception):
    """The IR's value at these inputs is not one value: a sum whose order matters, or an op the
    prover's terms do not give one for."""


def _number(term: z3.ExprRef) -> int:
    simple = z3.simplify(term)
    if not z3.is_bv_value(simple):
        raise NotDetermined(f"not a constant: {str(simple)[:80]}")
    return simple.as_long()


def _float_bits(value: z3.ExprRef) -> int:
    """A float32 constant's bits (any NaN as 0x7fffffff)."""
    if not isinstance(value, z3.FPNumRef):
        raise NotDetermined(f"not a constant: {str(value)[:80]}")
    if value.isNaN():
        return 0x7FFFFFFF
    sign = int(value.sign()) << 31
    if value.isInf():
        return sign | 0x7F800000
    return sign | value.exponent_as_long(True) << 23 | value.significand_as_long()


def _floats(bits: list[int]) -> np.ndarray:
    return np.array(bits, np.uint32).view(np.float32)


def _bits(value: np.float32) -> int:
    return int(np.float32(value).view(np.uint32))


def _tree_results(terms: list[np.float32]) -> set[int]:
    """The bits of every float32 tree of round-to-nearest adds over `terms` (each once)."""
    if len(terms) == 1:
        return {_bits(terms[0])}
    found: set[int] = set()
    for i, j in itertools.combinations(range(len(terms)), 2):
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        found |= _tree_results(rest + [np.float32(terms[i] + terms[j])])
    return found


def _exact_sum(terms: list[np.float32]) -> int | None:
    """The bits of the terms' exact sum where every partial sum of them is a float32 (all are
    whole multiples of their smallest unit, their magnitudes add up to less than 2**24 of it, and
    to no more than the largest float32): then every order gives that sum. None otherwise."""
    parts = []
    for term in terms:
        fraction, exponent = np.frexp(np.float64(term))
        mantissa = int(fraction * 2**24)
        low = (mantissa & -mantissa).bit_length() - 1
        parts.append((mantissa >> low, int(exponent) - 24 + low))
    unit = min(exponent for _, exponent in parts)
    whole = [mantissa << (exponent - unit) for mantissa, exponent in parts]
    magnitude = sum(abs(w) for w in whole)
    if magnitude >= 2**24 or math.ldexp(magnitude, unit) > float(np.finfo(np.float32).max):
        return None
    return _bits(np.float32(np.ldexp(np.float64(sum(whole)), unit)))


def sum_in_every_order(terms: np.ndarray) -> int:
    """The bits every order of accumulating these float32 terms gives (with +-0.0 leaves anywhere);
    NotDetermined where orders differ or too many terms are nonzero to tell."""
    if np.isnan(terms).any():
        return 0x7FFFFFFF
    if not np.isfinite(terms).all():
        raise NotDetermined("a sum with an infinite term")
    nonzero = list(terms[terms != 0])
    if not nonzero:
        if (~np.signbit(terms)).any():
            return 0
        raise NotDetermined("a sum of -0.0 terms only (a +0.0 leaf would change it)")
    exact = _exact_sum(nonzero)
    if exact is not None:
        return exact
    if len(nonzero) > NONZERO_TERMS:
        raise NotDetermined(f"a sum of {len(nonzero)} nonzero terms, not exact in every order")
    with np.errstate(over="ignore", invalid="ignore"):
        results = _tree_results(nonzero)
    if len(results) > 1:
        raise NotDetermined("a sum whose value depends on the order")
    return results.pop()


def extremum(terms: np.ndarray, larger: bool) -> int:
    """max.NaN / min.NaN over the terms, -0.0 below +0.0: the same in every order."""
    if np.isnan(terms).any():
        return 0x7FFFFFFF
    best = terms.max() if larger else terms.min()
    if best == 0:
        signed = np.signbit(terms[terms == 0])
        negative = signed.all() if larger else signed.any()
        return 0x80000000 if negative else 0
    return _bits(best)


FLOAT_REDUCTIONS: dict[Op, Callable[[np.ndarray], int]] = {
    Op.SUM: sum_in_every_order, Op.MEAN: sum_in_every_order,
    Op.AMAX: lambda t: extremum(t, True), Op.AMIN: lambda t: extremum(t, False),
}


def _broadcast(flat: int, shape: tuple[int, ...], target: tuple[int, ...]) -> int:
    """`At.of` on a constant: the element of a tensor of `target` that broadcasting reads for
    element `flat` of one of `shape`."""
    if shape == target:
        return flat
    coords = [flat // math.prod(shape[d + 1:]) % n for d, n in enumerate(shape)]
    tail = coords[len(coords) - len(target):] if target else []
    found = 0
    for coordinate, n in zip(tail, target):
        found = found * n + (0 if n == 1 else coordinate)
    return found


class ConcreteIr(IrTerms):
    """The prover's terms of an IR kernel with every input a constant: each value simplified to
    a constant as it is built (approximate instructions taken as the emulator computes them, their
    names kept in `used` for the value last asked), and each reduction's accumulated value the one
    every order gives."""

    def __init__(self, kernel: Kernel, inputs: list[np.ndarray], approx: bool | None, keep_f32: bool) -> None:
        super().__init__(kernel, {}, approx=approx, reductions=True, keep_f32=keep_f32)
        self.raw = {p.name: to_device(v, p.type.dtype).view(np.uint8).ravel() for p, v in zip(kernel.inputs, inputs)}
        self.memo: dict[tuple[str, int], tuple[Value, frozenset[str]] | NotDetermined] = {}
        self.used: set[str] = set()

    def value(self, name: str, at: At) -> Value:
        shape = self.types[name].shape
        key = (name, _broadcast(_number(at.flat), at.shape, shape))
        if key not in self.memo:
            outer, self.used = self.used, set()
            try:
                term = z3.simplify(super().value(name, At(z3.BitVecVal(key[1], 64), shape)))
                self.memo[key] = (term, frozenset(self.used))
            except NotDetermined as err:
                self.memo[key] = err
            except Inexact as err:  # an op with no exact meaning in the form asked
                self.memo[key] = NotDetermined(str(err))
            finally:
                self.used = outer
        found = self.memo[key]
        if isinstance(found, NotDetermined):
            raise found
        self.used |= found[1]
        return found[0]

    def run_formula(self, formula: recipes.Program, args: list[Value]) -> Value:
        """On constants, the formula run in the numpy domain of the same semantics, its approximate
        instructions as the emulator computes them (in z3 they would stay free functions)."""
        if not all(isinstance(a, z3.FPNumRef) for a in args):
            return super().run_formula(formula, args)
        result = run_program(formula, [_floats([_float_bits(a)]) for a in args])
        self.used |= recipes.approximations(formula)
        return z3.fpBVToFP(z3.BitVecVal(_bits(result[0]), 32), F32)

    def _load(self, name: str, type_, at: At) -> Value:  # type: ignore[no-untyped-def]
        size = type_.dtype.itemsize
        start = _number(at.flat) * size
        bits = int.from_bytes(self.raw[name][start:start + size].tobytes(), "little")
        return z3.simplify(_decode(z3.BitVecVal(bits, 8 * size), type_.dtype))

    def accumulated_value(self, instr: Instr, at: At) -> Value:
        source = self.types[instr.args[0]]
        terms = [self.value(instr.args[0], At(z3.BitVecVal(e, 64), source.shape))
                 for e in self.reduced_elements(instr, _number(at.flat))]
        dtype = instr.type.dtype  # type: ignore[union-attr]
        if dtype == DType.I64 and instr.op == Op.SUM:
            return z3.BitVecVal(sum(_number(t) for t in terms) % 2**64, 64)
        if not dtype.is_float or instr.op not in FLOAT_REDUCTIONS:
            raise NotDetermined(f"{instr.op.value} on {dtype.value}: not evaluated")
        bits = FLOAT_REDUCTIONS[instr.op](_floats([_float_bits(t) for t in terms]))
        return z3.simplify(z3.fpBVToFP(z3.BitVecVal(bits, 32), F32))

    def stored(self, index: int, flat: int) -> int:
        """The bits the IR stores for element `flat` of output `index` (`used` then names the
        approximate instructions that value took as the emulator computes them)."""
        self.used = set()
        return _number(self.output_bits(index, z3.BitVecVal(flat, 64)))


def _shapes(kernel: Kernel) -> IrTerms:
    """The kernel's value types, for counting and listing what its reductions take."""
    return IrTerms(kernel, {}, opaque=True, reductions=True)


def _reductions(kernel: Kernel) -> list[Instr]:
    return [i for i in kernel.body if i.op in REDUCTIONS]


def _largest_reduction(kernel: Kernel) -> int:
    """The most elements one result of the kernel's reductions takes (0: none; no matmul, which
    `searchable` turns away)."""
    shapes = _shapes(kernel)
    return max((shapes.reduced_count(i) for i in _reductions(kernel)), default=0)


def _as_input(values: np.ndarray, dtype: DType) -> np.ndarray:
    return round_to_bf16(values) if dtype == DType.BF16 else values.astype(dtype.numpy)


def _normal(rng: np.random.Generator, count: int) -> np.ndarray:
    return (rng.standard_normal(count) * 3).astype(np.float32)


def _wide(rng: np.random.Generator, count: int) -> np.ndarray:
    return (rng.choice([-1.0, 1.0], count) * 2.0 ** rng.uniform(-24, 24, count)).astype(np.float32)


def _sparse(background: float, values: Callable[[np.random.Generator, int], np.ndarray]) -> Family:
    """Every float input `background` but about two elements of each reduced row (one in four
    elements where nothing is reduced), those drawn from `values`."""
    def make(kernel: Kernel, rng: np.random.Generator, seed: int) -> list[np.ndarray]:
        inputs = random_inputs(kernel, seed)
        density = min(1.0, 2.0 / max(_largest_reduction(kernel), 8))
        for k, param in enumerate(kernel.inputs):
            if param.type.dtype.is_float:
                filled = np.full(param.type.shape, background, np.float32)
                chosen = rng.random(param.type.shape) < density
                filled[chosen] = values(rng, int(chosen.sum()))
                inputs[k] = _as_input(filled, param.type.dtype)
        return inputs
    return make


def _zero_sum_triple(rng: np.random.Generator, dtype: DType) -> np.ndarray:
    """a, b, -(a + b) with a + b exact in `dtype`: every order of their sum is 0."""
    while True:
        a, b = _as_input(_normal(rng, 2), dtype).astype(np.float64)
        if _as_input(np.array([a + b], np.float32), dtype)[0] == a + b:
            return np.array([a, b, -(a + b)], np.float32)


def _short_and_tiny(rng: np.random.Generator, dtype: DType) -> np.ndarray:
    """One to three values of at most four significant bits and one exponent (their sums and
    squares exact, or near a tie of a narrower type), and one far below them of either sign: the
    add that meets it rounds, and to nearest it vanishes."""
    count = int(rng.integers(1, 4))
    short = rng.choice([-1.0, 1.0], count) * rng.integers(1, 16, count) * 2.0 ** rng.integers(-8, 4)
    tiny = rng.choice([-1.0, 1.0]) * np.abs(short).max() * 2.0 ** -rng.integers(32, 48)
    return _as_input(np.append(short, tiny).astype(np.float32), dtype)


def _tie_and_tiny(rng: np.random.Generator, dtype: DType) -> np.ndarray:
    """A bfloat16 value of odd last bit and half its last bit's weight (their sum a tie of
    bfloat16, which rounds away from the value), and one far below them of the other sign: to
    nearest the sum stays the tie, rounded toward zero it falls below it, and a bfloat16 output
    rounds the two apart."""
    sign = rng.choice([-1.0, 1.0])
    unit = 2.0 ** int(rng.integers(-15, 1))
    value = sign * (int(rng.integers(128, 256)) | 1) * unit
    tiny = -sign * 256 * unit * 2.0 ** -rng.integers(32, 48)
    return _as_input(np.array([value, sign * unit / 2, tiny], np.float32), dtype)


ROW_PATTERNS: tuple[Callable[[np.random.Generator, DType], np.ndarray], ...] = (
    lambda rng, dtype: _as_input(_normal(rng, 1), dtype),
    lambda rng, dtype: _as_input(_normal(rng, 2), dtype),
    _zero_sum_triple,
    _short_and_tiny,
    _tie_and_tiny,
)


def _rows_of_few(kernel: Kernel, rng: np.random.Generator, seed: int) -> list[np.ndarray]:
    """Each row of the first reduction of an input's shape zero but for a few elements (one of
    `ROW_PATTERNS`, next to each other in the row or at random places)."""
    inputs = random_inputs(kernel, seed)
    reduction = next(iter(_reductions(kernel)), None)
    if reduction is None:
        return inputs
    terms = _shapes(kernel)
    shape = terms.types[reduction.args[0]].shape
    results = int(np.prod(reduction.type.shape))  # type: ignore[union-attr]
    rows = [terms.reduced_elements(reduction, r) for r in range(results)]
    for k, param in enumerate(kernel.inputs):
        if not param.type.dtype.is_float or param.type.shape != shape:
            continue
        flat = np.zeros(int(np.prod(shape)), np.float32)
        for row in rows:
            chosen = rng.permutation(ROW_PATTERNS[int(rng.integers(len(ROW_PATTERNS)))](rng, param.type.dtype))
            count = min(len(chosen), len(row))
            start = int(rng.integers(len(row) - count + 1))
            places = row[start:start + count] if rng.random() < 0.5 else rng.choice(row, count, replace=False)
            flat[places] = chosen[:count]
        inputs[k] = _as_input(flat.reshape(shape), param.type.dtype)
    return inputs


HALF_BITS = 2**16  # bit patterns of a half type


def _every_half_value(kernel: Kernel, rng: np.random.Generator, seed: int) -> list[np.ndarray]:
    """Every input of a half type holding consecutive bit patterns, the seed's share of all 2**16
    of them (each input offset from the others'; NaN among them): an elementwise kernel of one
    such input meets every value it can be given over as many seeds as its size divides 2**16 into."""
    inputs = random_inputs(kernel, seed)
    for k, param in enumerate(kernel.inputs):
        if param.type.dtype in (DType.BF16, DType.F16):
            count = int(np.prod(param.type.shape))
            patterns = ((seed * count + np.arange(count) + k * 0x5555) % HALF_BITS).astype(np.uint16)
            wide = patterns.astype(np.uint32) << np.uint32(16) if param.type.dtype == DType.BF16 else None
            values = wide.view(np.float32) if wide is not None else patterns.view(np.float16).astype(np.float32)
            inputs[k] = values.reshape(param.type.shape)
    return inputs


FAMILIES: dict[str, Family] = {
    "random": lambda kernel, rng, seed: random_inputs(kernel, seed),
    "extremes": lambda kernel, rng, seed: random_inputs(kernel, seed, extremes=True),
    "sparse over 0": _sparse(0.0, _normal),
    "sparse over 0, wide exponents": _sparse(0.0, _wide),
    "sparse over -1e4": _sparse(-1e4, _normal),
    "sparse over -1e4, wide exponents": _sparse(-1e4, _wide),
    "rows of a few elements": _rows_of_few,
    "every half-type value in turn": _every_half_value,
}


@dataclass(frozen=True)
class Witness:
    family: str
    seed: int
    output: str
    element: tuple[int, ...]
    got: int
    want: int
    dtype: DType
    compared: int  # elements compared on that input set
    models: tuple[str, ...] = ()  # approximate instructions the IR's value took as the emulator computes them

    def describe(self) -> str:
        where = ", ".join(map(str, self.element))
        taken = (f", with {', '.join(self.models)} taken as the emulator computes "
                 f"{'it' if len(self.models) == 1 else 'them'} (accurately, rounded to float32) in the kernel and "
                 "in the IR alike" if self.models else "")
        return (f"on inputs of the family \"{self.family}\" (seed {self.seed}, `verify.witness`), the emulator "
                f"stores {describe(self.got, self.dtype)} as {self.output}[{where}]; the IR gives "
                f"{describe(self.want, self.dtype)} there, in every order of its accumulation{taken}")


def _same(got: int, want: int, dtype: DType) -> bool:
    if got == want:
        return True
    if dtype == DType.F32:
        return bool(np.isnan(_floats([got, want])).all())
    if dtype == DType.BF16:
        return bool(np.isnan(_floats([got << 16, want << 16])).all())
    if dtype == DType.F16:
        return bool(np.isnan(np.array([got, want], np.uint16).view(np.float16)).all())
    return False


def has_online_pair(kernel: Kernel) -> bool:
    """The IR reduces a max and a sum of exp(x - ...) over the same values: a kernel may compute
    the two in one pass (online softmax), rescaling partial sums, equal to the IR's over the reals
    but not bit for bit."""
    defs = {i.result: i for i in kernel.body}
    maxima = {i.args[0] for i in kernel.body if i.op == Op.AMAX}
    for total in (i for i in kernel.body if i.op == Op.SUM):
        exp = defs.get(total.args[0])
        sub = defs.get(exp.args[0]) if exp is not None and exp.op == Op.EXP else None
        if sub is not None and sub.op == Op.SUB and sub.args[0] in maxima:
            return True
    return False


def searchable(launch: Launch, kernel: Kernel) -> str | None:
    """Why a kernel's launch is not searched (None: it is)."""
    lanes = launch.ctas * launch.threads
    held = sum(int(np.prod(p.type.shape)) * p.type.dtype.itemsize for p in list(kernel.inputs) + list(kernel.outputs))
    if lanes > WITNESS_LANES:
        return f"its launch of {lanes} threads is more than the {WITNESS_LANES} emulated whole"
    if held > WITNESS_BYTES:
        return f"its buffers hold {held} bytes"
    if any(i.op == Op.MATMUL for i in kernel.body):
        return "a matmul, whose values are not modelled"
    reduced = _largest_reduction(kernel)
    if reduced > WITNESS_REDUCED:
        return f"a result reduces {reduced} elements"
    return None


@dataclass(frozen=True)
class Difference:
    """The first element compared on one input set that the kernel stored otherwise than the IR
    (output -1: none), and how many elements were compared."""
    output: int
    flat: int
    got: int
    want: int
    compared: int
    models: tuple[str, ...] = ()


def _every_order(instr: Instr, terms: np.ndarray) -> int | None:
    """The bits every order of a float reduction over these terms gives (None: orders differ)."""
    try:
        return FLOAT_REDUCTIONS[instr.op](terms) if instr.op in FLOAT_REDUCTIONS else None
    except NotDetermined:
        return None


def _stored_bits(values: np.ndarray, dtype: DType) -> np.ndarray:
    """The IR's values (float types held in float32, already rounded to their type) as stored."""
    if dtype == DType.BF16:
        return (np.ascontiguousarray(values, np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    if dtype == DType.F16:
        return np.ascontiguousarray(values, np.float32).astype(np.float16).view(np.uint16)
    return np.ascontiguousarray(values, DEVICE_DTYPE[dtype]).view(f"u{dtype.itemsize}")


def _compare_arrays(kernel: Kernel, ir: ConcreteIr, values: IrArrays, written: list[tuple[np.ndarray, np.ndarray]],
                    deadline: float) -> Difference:
    """Every element the IR's arrays know compared at once; each that differs confirmed (or not) on
    the prover's terms, `CONFIRMED` at most."""
    compared, confirmed = 0, 0
    for index, (param, (raw, once)) in enumerate(zip(kernel.outputs, written)):
        dtype = param.type.dtype
        ir_values = values.output(index)
        want = _stored_bits(ir_values.data, dtype).ravel()
        got = raw.view(want.dtype)
        known = once & ir_values.known.ravel()
        compared += int(known.sum())
        differ = got != want
        if dtype.is_float:
            differ &= ~(_is_nan_bits(got, dtype) & _is_nan_bits(want, dtype))
        for flat in np.flatnonzero(known & differ).tolist():
            if confirmed == CONFIRMED or time.perf_counter() > deadline:
                return Difference(-1, 0, 0, 0, compared)
            confirmed += 1
            try:
                exact = ir.stored(index, flat)
            except NotDetermined:
                continue
            if not _same(int(got[flat]), exact, dtype):
                return Difference(index, flat, int(got[flat]), exact, compared, tuple(sorted(ir.used)))
    return Difference(-1, 0, 0, 0, compared)


def _is_nan_bits(bits: np.ndarray, dtype: DType) -> np.ndarray:
    if dtype == DType.BF16:
        return np.isnan((bits.astype(np.uint32) << np.uint32(16)).view(np.float32))
    return np.isnan(bits.view(DEVICE_DTYPE[dtype]))


def _compare(kernel: Kernel, ir: ConcreteIr, written: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator,
             deadline: float) -> Difference:
    """Element by element on the prover's terms (a sample of `ELEMENTS_PER_SET`)."""
    compared = 0
    for index, (param, (raw, once)) in enumerate(zip(kernel.outputs, written)):
        elements = np.flatnonzero(once)
        if elements.size > ELEMENTS_PER_SET:
            elements = np.sort(rng.choice(elements, ELEMENTS_PER_SET, replace=False))
        size = param.type.dtype.itemsize
        for flat in elements.tolist():
            if time.perf_counter() > deadline:
                return Difference(-1, 0, 0, 0, compared)
            try:
                want = ir.stored(index, flat)
            except NotDetermined:
                continue
            got = int.from_bytes(raw[flat * size:(flat + 1) * size].tobytes(), "little")
            compared += 1
            if not _same(got, want, param.type.dtype):
                return Difference(index, flat, got, want, compared, tuple(sorted(ir.used)))
    return Difference(-1, 0, 0, 0, compared)


def _written_once(kernel: Kernel, arguments: list[np.ndarray], writes: dict[int, np.ndarray]) -> list[tuple[np.ndarray,
                                                                                                             np.ndarray]]:
    """Each output's bytes and, per element, whether every byte of it was written exactly once."""
    out = []
    for k, param in enumerate(kernel.outputs):
        argument = len(kernel.inputs) + k
        counts = writes[argument].reshape(-1, param.type.dtype.itemsize)
        out.append((arguments[argument], (counts == 1).all(axis=1)))
    return out


def _values(kernel: Kernel, arguments: list[np.ndarray]) -> list[np.ndarray]:
    """The inputs' values as the kernel reads them (float types widened to float32)."""
    values = []
    for param, stored in zip(kernel.inputs, arguments):
        found = from_device(stored.view(np.uint8), param.type.dtype, param.type.shape)
        values.append(found.astype(np.float32) if param.type.dtype.is_float else found)
    return values


def search(ptx: str, launch: Launch, kernel: Kernel, approx: bool | None = None, keep_f32: bool = False,
           entry: str | None = None, seconds: float = WITNESS_SECONDS) -> Witness | None:
    """Inputs on which the kernel stores a value the IR never gives, searched for `seconds`."""
    if searchable(launch, kernel) is not None:
        return None
    deadline = time.perf_counter() + seconds
    try:
        module = parse_ptx(ptx)
    except PtxSyntaxError:
        return None
    outputs = set(range(len(kernel.inputs), len(kernel.inputs) + len(kernel.outputs)))
    compared_in_all = 0
    for seed in itertools.count():
        if seed == 1 and compared_in_all == 0:
            return None  # no input of any family made one IR value: sums of many terms, or an argmax
        for number, (name, family) in enumerate(FAMILIES.items()):
            if time.perf_counter() > deadline:
                return None
            rng = np.random.default_rng([seed, number])
            inputs = family(kernel, rng, seed)
            arguments = [to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)] + \
                [np.zeros(int(np.prod(p.type.shape)) * p.type.dtype.itemsize, np.uint8) for p in kernel.outputs]
            try:
                emulation = emulate(module, launch, arguments, outputs, entry)
            except (NotModelled, EmulationError, PtxSyntaxError):
                return None  # what the emulator cannot run or the kernel must not do is other obligations' business
            raw = [a.view(np.uint8).ravel() for a in emulation.arguments]
            written = _written_once(kernel, raw, emulation.writes)
            ir = ConcreteIr(kernel, inputs, approx, keep_f32)
            try:
                values = IrArrays(kernel, _values(kernel, arguments), approx, keep_f32, _every_order)
                found = _compare_arrays(kernel, ir, values, written, deadline)
            except (Unavailable, NotModelled):
                found = _compare(kernel, ir, written, rng, deadline)
            compared_in_all += found.compared
            if found.output >= 0:
                param = kernel.outputs[found.output]
                element = tuple(int(c) for c in np.unravel_index(found.flat, param.type.shape))
                return Witness(name, seed, param.name, element, found.got, found.want, param.type.dtype,
                               found.compared, found.models)
    return None
