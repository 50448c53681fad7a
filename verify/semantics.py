"""What each PTX data instruction computes, written once over an abstract domain.

A domain supplies bit-level primitives (integer and float arithmetic on values of a PTX type,
comparisons, conversions, select, packing); the table below says which primitives an instruction
is, and which PTX type each of its operands has. `verify.emulate` evaluates the table with numpy
(values are arrays with one entry per thread); a symbolic domain evaluates the same table with z3.
Memory, control flow, barriers and shuffles are not here: they are the executor's.

Definedness sits beside the meaning, as a second table: an integer division by zero has no
defined result, so the executor refuses it instead of computing something."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

V = Any  # a domain value: the bits of one operand (an array of lanes, or a z3 term)


class NotModelled(Exception):
    """An instruction, modifier or operand form outside what the semantics model; the message
    names it, and callers report it as inconclusive."""


INT_TYPES = {"b8": (8, False), "u8": (8, False), "s8": (8, True), "b16": (16, False), "u16": (16, False),
             "s16": (16, True), "b32": (32, False), "u32": (32, False), "s32": (32, True), "b64": (64, False),
             "u64": (64, False), "s64": (64, True)}
FLOAT_TYPES = {"f16": 16, "bf16": 16, "f32": 32, "f64": 64}
FORMATS = {"f16": (5, 11), "bf16": (8, 8), "f32": (8, 24), "f64": (11, 53)}  # exponent bits, significand bits
TYPE_NAMES = frozenset(INT_TYPES) | frozenset(FLOAT_TYPES) | {"pred"}
WIDE = {"u16": "u32", "s16": "s32", "u32": "u64", "s32": "s64", "b32": "b64"}


def width(type_: str) -> int:
    return 1 if type_ == "pred" else FLOAT_TYPES.get(type_) or INT_TYPES[type_][0]


def is_float(type_: str) -> bool:
    return type_ in FLOAT_TYPES


def is_signed(type_: str) -> bool:
    return INT_TYPES.get(type_, (0, False))[1]


@dataclass(frozen=True)
class Op:
    """An opcode split into its base, its modifiers and its types, in the order written."""

    opcode: str
    base: str
    mods: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def type(self) -> str:
        if not self.types:
            raise NotModelled(f"{self.opcode}: no operand type")
        return self.types[-1]

    def has(self, *mods: str) -> bool:
        return any(m in self.mods for m in mods)


def decode(opcode: str) -> Op:
    base, *rest = opcode.split(".")
    return Op(opcode, base, tuple(p for p in rest if p not in TYPE_NAMES), tuple(p for p in rest if p in TYPE_NAMES))


class Domain(Protocol):
    """The primitives the table is written in. Types are PTX type names ("u32", "f32", "pred").

    Float operations round once to their type, to nearest even unless `rounding` names a directed
    mode (rz, rm, rp; IEEE operations only); `flush` turns the subnormals of a
    type's own format into zeros of the same sign (.ftz) and `saturate` clamps to [+0.0, 1.0] with
    NaN and -0.0 becoming +0.0 (.sat). Which operands and results .ftz and .sat touch is the table's
    business, not the domain's."""

    def constant(self, value: int | float, type_: str) -> V: ...
    def int_op(self, name: str, type_: str, *args: V) -> V: ...
    def int_compare(self, cmp: str, type_: str, a: V, b: V) -> V: ...
    def int_convert(self, a: V, source: str, dest: str) -> V: ...
    def float_op(self, name: str, type_: str, *args: V, rounding: str = "rn") -> V: ...
    def flush(self, a: V, type_: str) -> V: ...
    def saturate(self, a: V, type_: str) -> V: ...
    def float_compare(self, cmp: str, type_: str, a: V, b: V) -> V: ...
    def float_test(self, test: str, type_: str, a: V) -> V: ...
    def float_convert(self, a: V, source: str, dest: str, rounding: str) -> V: ...
    def float_to_int(self, a: V, source: str, dest: str, rounding: str) -> V: ...
    def int_to_float(self, a: V, source: str, dest: str, rounding: str) -> V: ...
    def select(self, pred: V, a: V, b: V) -> V: ...
    def pred_op(self, name: str, *args: V) -> V: ...
    def is_zero(self, a: V, type_: str) -> V: ...


Fn = Callable[[Domain, Op, list[V]], V]


@dataclass(frozen=True)
class Spec:
    """An instruction's operand types (destination first) and its meaning."""

    operands: Callable[[Op], tuple[str, ...]]
    meaning: Fn


def _same(count: int) -> Callable[[Op], tuple[str, ...]]:
    return lambda op: (op.type,) * count


def _wide_or_same(count: int) -> Callable[[Op], tuple[str, ...]]:
    """mul.wide/mad.wide: a double-width destination (and addend)."""

    def types(op: Op) -> tuple[str, ...]:
        if not op.has("wide"):
            return (op.type,) * count
        wide = WIDE.get(op.type)
        if wide is None:
            raise NotModelled(f"{op.opcode}: .wide of {op.type}")
        return (wide, op.type, op.type) + ((wide,) if count == 4 else ())
    return types


ROUNDING = ("rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi")
COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs", "equ", "neu", "ltu", "leu",
                         "gtu", "geu", "num", "nan"})
COMBINE = ("and", "or", "xor")


def _rounding(op: Op, default: str) -> str:
    found = [m for m in op.mods if m in ROUNDING]
    return found[0] if found else default


# rcp, div and sqrt in these forms are approximations, not IEEE operations: each domain decides what they
# are, under a name of their own (rcp.approx -> "rcp_approx", div.full -> "div_full").
APPROXIMATE_FORMS = ("approx", "full")
HAS_APPROXIMATE_FORMS = frozenset({"rcp", "div", "sqrt"})
DIRECTED_ROUNDING = frozenset({"add", "sub", "mul", "fma", "div", "rcp", "sqrt"})  # .rz, .rm, .rp of these
MIN_MAX_NOT_MODELLED = ("xorsign", "abs", "relu")


def _operation(name: str, op: Op) -> str:
    form = next((m for m in op.mods if m in APPROXIMATE_FORMS), None)
    return f"{name}_{form}" if form is not None and name in HAS_APPROXIMATE_FORMS else name


def _flushed(d: Domain, op: Op, type_: str, values: list[V]) -> list[V]:
    return [d.flush(v, type_) for v in values] if op.has("ftz") else values


def _float_result(d: Domain, op: Op, name: str, a: list[V], rounding: str = "rn") -> V:
    """A float operation with its modifiers: .ftz flushes the operands and the result, .sat clamps the
    rounded result."""
    result = d.float_op(name, op.type, *_flushed(d, op, op.type, a), rounding=rounding)
    if op.has("ftz"):
        result = d.flush(result, op.type)
    return d.saturate(result, op.type) if op.has("sat") else result


def _float(name: str) -> Fn:
    """A float instruction. IEEE forms round to nearest even, or toward zero, -inf or +inf as their
    modifier says (directed rounding of f32, f16 and bf16 only)."""

    def meaning(d: Domain, op: Op, a: list[V]) -> V:
        rounding, operation = _rounding(op, "rn"), _operation(name, op)
        if rounding != "rn" and (operation not in DIRECTED_ROUNDING or op.type == "f64"):
            raise NotModelled(f"{op.opcode}: rounding mode .{rounding}")
        return _float_result(d, op, operation, a, rounding)
    return meaning


def _arith(int_name: str, float_name: str) -> Fn:
    float_meaning = _float(float_name)

    def meaning(d: Domain, op: Op, a: list[V]) -> V:
        if is_float(op.type):
            return float_meaning(d, op, a)
        if op.has("sat", "cc"):
            raise NotModelled(f"{op.opcode}: integer .sat/.cc")
        return d.int_op(int_name, op.type, *a)
    return meaning


def _mul(d: Domain, op: Op, a: list[V]) -> V:
    if is_float(op.type):
        return _float("mul")(d, op, a)
    if op.has("wide"):
        wide = WIDE[op.type]
        return d.int_op("mul", wide, d.int_convert(a[0], op.type, wide), d.int_convert(a[1], op.type, wide))
    return d.int_op("mul_hi" if op.has("hi") else "mul", op.type, *a)


def _mad(d: Domain, op: Op, a: list[V]) -> V:
    if is_float(op.type):
        return _float("fma")(d, op, a)
    product = _mul(d, op, a[:2])
    return d.int_op("add", WIDE[op.type] if op.has("wide") else op.type, product, a[2])


def _min_max(name: str) -> Fn:
    def meaning(d: Domain, op: Op, a: list[V]) -> V:
        unmodelled = [m for m in op.mods if m in MIN_MAX_NOT_MODELLED]
        if unmodelled:
            raise NotModelled(f"{op.opcode}: modifier .{unmodelled[0]}")
        if is_float(op.type):
            return _float_result(d, op, name + ("_nan" if op.has("NaN") else ""), a)
        return d.int_op(name, op.type, *a)
    return meaning


def _logic(name: str) -> Fn:
    def meaning(d: Domain, op: Op, a: list[V]) -> V:
        return d.pred_op(name, *a) if op.type == "pred" else d.int_op(name, op.type, *a)
    return meaning


def _compare(d: Domain, op: Op, a: list[V]) -> V:
    cmp = next((m for m in op.mods if m in COMPARISONS), None)
    if cmp is None:
        raise NotModelled(f"{op.opcode}: no comparison")
    if is_float(op.type):
        result = d.float_compare(cmp, op.type, *_flushed(d, op, op.type, a[:2]))
    else:
        result = d.int_compare(cmp, op.type, a[0], a[1])
    combine = next((m for m in op.mods if m in COMBINE), None)
    return result if combine is None else d.pred_op(combine, result, a[2])


def _setp_types(op: Op) -> tuple[str, ...]:
    return ("pred", op.type, op.type) + (("pred",) if op.has(*COMBINE) else ())


def _single_flushed(d: Domain, op: Op, value: V, type_: str) -> V:
    """cvt's .ftz flushes single-precision (f32) sources and results only."""
    return d.flush(value, type_) if op.has("ftz") and type_ == "f32" else value


# cvt by kind, keyed by (a float source, a float destination).
CONVERSIONS: dict[tuple[bool, bool], Callable[[Domain, Op, V, str, str], V]] = {
    (True, True): lambda d, op, a, s, t: _single_flushed(d, op, d.float_convert(a, s, t, _rounding(op, "rn")), t),
    (True, False): lambda d, op, a, s, t: d.float_to_int(a, s, t, _rounding(op, "rzi")),
    (False, True): lambda d, op, a, s, t: d.int_to_float(a, s, t, _rounding(op, "rn")),
    (False, False): lambda d, op, a, s, t: d.int_convert(a, s, t),
}


def _convert(d: Domain, op: Op, a: list[V]) -> V:
    """.sat on a float destination clamps the converted value to [+0.0, 1.0]."""
    if len(op.types) != 2:
        raise NotModelled(f"{op.opcode}: cvt needs a destination and a source type")
    dest, source = op.types
    if op.has("sat") and not is_float(dest):
        raise NotModelled(f"{op.opcode}: integer .sat")
    value = _single_flushed(d, op, a[0], source)
    result = CONVERSIONS[is_float(source), is_float(dest)](d, op, value, source, dest)
    return d.saturate(result, dest) if op.has("sat") else result


def _shift(name: str) -> Fn:
    return lambda d, op, a: d.int_op(name, op.type, *a)


def _test(d: Domain, op: Op, a: list[V]) -> V:
    tests = [m for m in op.mods if m in ("notanumber", "number", "finite", "infinite", "normal", "subnormal")]
    if not tests:
        raise NotModelled(f"{op.opcode}: no test")
    return d.float_test(tests[0], op.type, a[0])


def _unary_float(name: str) -> Fn:
    def meaning(d: Domain, op: Op, a: list[V]) -> V:
        if not is_float(op.type):
            return d.int_op(name, op.type, *a)
        if name in ("abs", "neg"):
            return _float_result(d, op, name, a)
        return _float(name)(d, op, a)
    return meaning


SEMANTICS: dict[str, Spec] = {
    "add": Spec(_same(3), _arith("add", "add")),
    "sub": Spec(_same(3), _arith("sub", "sub")),
    "mul": Spec(_wide_or_same(3), _mul),
    "mad": Spec(_wide_or_same(4), _mad),
    "fma": Spec(_same(4), _float("fma")),
    "div": Spec(_same(3), _arith("div", "div")),
    "rem": Spec(_same(3), lambda d, op, a: d.int_op("rem", op.type, *a)),
    "min": Spec(_same(3), _min_max("min")),
    "max": Spec(_same(3), _min_max("max")),
    "abs": Spec(_same(2), _unary_float("abs")),
    "neg": Spec(_same(2), _unary_float("neg")),
    "copysign": Spec(_same(3), _float("copysign")),
    "rcp": Spec(_same(2), _float("rcp")),
    "sqrt": Spec(_same(2), _float("sqrt")),
    "rsqrt": Spec(_same(2), _float("rsqrt")),
    "ex2": Spec(_same(2), _float("ex2")),
    "lg2": Spec(_same(2), _float("lg2")),
    "tanh": Spec(_same(2), _float("tanh")),
    "sin": Spec(_same(2), _float("sin")),
    "cos": Spec(_same(2), _float("cos")),
    "and": Spec(_same(3), _logic("and")),
    "or": Spec(_same(3), _logic("or")),
    "xor": Spec(_same(3), _logic("xor")),
    "not": Spec(_same(2), _logic("not")),
    "shl": Spec(lambda op: (op.type, op.type, "u32"), _shift("shl")),
    "shr": Spec(lambda op: (op.type, op.type, "u32"), _shift("shr")),
    "setp": Spec(_setp_types, _compare),
    "selp": Spec(lambda op: (op.type, op.type, op.type, "pred"), lambda d, op, a: d.select(a[2], a[0], a[1])),
    "testp": Spec(lambda op: ("pred", op.type), _test),
    "cvt": Spec(lambda op: op.types[:2], _convert),
    "mov": Spec(_same(2), lambda d, op, a: a[0]),
}

# Definedness: when an instruction has no defined result (the executor refuses these).
UNDEFINED: dict[str, Callable[[Domain, Op, list[V]], V | None]] = {
    "div": lambda d, op, a: None if is_float(op.type) else d.is_zero(a[1], op.type),
    "rem": lambda d, op, a: d.is_zero(a[1], op.type),
}
UNDEFINED_MESSAGE = {"div": "integer division by zero", "rem": "integer remainder by zero"}
