"""The numpy domain of the PTX semantics: every value is an array with one entry per thread,
holding the operand's bits (uint8 ... uint64; bool for predicates).

Float arithmetic is IEEE round-to-nearest-even as the hardware does it: f32 +, -, *, /, sqrt in
float32; f16 and bf16 computed in float32 and rounded once (exact for these operations, as
float32 has more than twice their precision plus two bits); fma through float64, where the
product is exact and only a sum that lands on a float32 tie after rounding to float64 can differ
from the hardware by one unit in the last place. Approximate instructions (ex2, lg2, rsqrt, tanh,
sin, cos .approx) are computed accurately: the hardware's error bounds (2 ulp or so) are the
tolerance the emulator's results are compared with, not something emulated bit for bit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from verify.semantics import FLOAT_TYPES, INT_TYPES, NotModelled, is_signed, width

UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
SINT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
Array = np.ndarray


def storage(type_: str) -> np.dtype:
    return np.dtype(np.bool_) if type_ == "pred" else np.dtype(UINT[width(type_)])


def bf16_bits(values: Array) -> Array:
    """float32 values -> bf16 bits, rounded to nearest even (NaN kept quiet)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)
    return np.where(np.isnan(values), (bits >> np.uint32(16)) | np.uint32(0x40), rounded).astype(np.uint16)


def to_float(bits: Array, type_: str) -> Array:
    """Bits of `type_` -> float32 (f16, bf16, f32) or float64 values."""
    if type_ == "bf16":
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if type_ == "f16":
        return bits.astype(np.uint16).view(np.float16).astype(np.float32)
    return bits.view(np.float32 if type_ == "f32" else np.float64)


def from_float(values: Array, type_: str) -> Array:
    """Values -> bits of `type_`, rounded to nearest even."""
    if type_ == "bf16":
        return bf16_bits(values.astype(np.float32))
    target = {"f16": np.float16, "f32": np.float32, "f64": np.float64}[type_]
    return np.ascontiguousarray(values.astype(target)).view(UINT[FLOAT_TYPES[type_]])


def _flush(values: Array) -> Array:
    """Subnormal float32 values to zero of the same sign (.ftz)."""
    tiny = np.abs(values) < np.float32(np.finfo(np.float32).tiny)
    return np.where(tiny & (values != 0), np.copysign(np.float32(0), values), values)


def _wide(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Computed in float64, rounded once to the operand type."""
    return lambda *a: fn(*(x.astype(np.float64) for x in a))


FLOAT_OPS: dict[str, Callable[..., Array]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "fma": _wide(lambda a, b, c: a * b + c),
    "rcp": lambda a: a.dtype.type(1) / a,
    "sqrt": np.sqrt,
    "rsqrt": _wide(lambda a: 1 / np.sqrt(a)),
    "ex2": _wide(np.exp2),
    "lg2": _wide(np.log2),
    "tanh": _wide(np.tanh),
    "sin": _wide(np.sin),
    "cos": _wide(np.cos),
    "min": np.fmin,
    "max": np.fmax,
    "min_nan": np.minimum,
    "max_nan": np.maximum,
    "abs": np.abs,
    "neg": np.negative,
    "copysign": lambda a, b: np.copysign(b, a),  # PTX: the sign of a on the magnitude of b
}

FLOAT_COMPARE: dict[str, Callable[[Array, Array], Array]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: (a != b) & ~np.isnan(a) & ~np.isnan(b),
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "equ": lambda a, b: ~(a != b) | np.isnan(a) | np.isnan(b),
    "neu": lambda a, b: a != b,
    "ltu": lambda a, b: ~(a >= b),
    "leu": lambda a, b: ~(a > b),
    "gtu": lambda a, b: ~(a <= b),
    "geu": lambda a, b: ~(a < b),
    "num": lambda a, b: ~np.isnan(a) & ~np.isnan(b),
    "nan": lambda a, b: np.isnan(a) | np.isnan(b),
}

FLOAT_TESTS: dict[str, Callable[[Array], Array]] = {
    "notanumber": np.isnan,
    "number": lambda a: ~np.isnan(a),
    "finite": np.isfinite,
    "infinite": np.isinf,
    "normal": lambda a: np.isfinite(a) & (np.abs(a) >= np.finfo(a.dtype).tiny),
    "subnormal": lambda a: (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny),
}

ROUND_TO_INTEGER: dict[str, Callable[[Array], Array]] = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor,
                                                          "rpi": np.ceil}

INT_COMPARE: dict[str, Callable[[Array, Array], Array]] = {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "lo": np.less, "ls": np.less_equal, "hi": np.greater, "hs": np.greater_equal,
}
UNSIGNED_COMPARE = frozenset({"lo", "ls", "hi", "hs"})


def _signed(bits: Array, type_: str) -> Array:
    return bits.view(SINT[width(type_)])


def _shift_left(a: Array, b: Array, type_: str) -> Array:
    bits = width(type_)
    amount = np.minimum(b.astype(np.uint64), bits).astype(a.dtype)
    return np.where(amount >= bits, a.dtype.type(0), a << np.minimum(amount, bits - 1).astype(a.dtype))


def _shift_right(a: Array, b: Array, type_: str) -> Array:
    bits = width(type_)
    amount = np.minimum(b.astype(np.uint64), bits - 1).astype(a.dtype)
    if is_signed(type_):  # arithmetic; a shift of the whole width or more fills with the sign
        return (_signed(a, type_) >> amount.view(_signed(a, type_).dtype)).view(a.dtype)
    return np.where(b.astype(np.uint64) >= bits, a.dtype.type(0), a >> amount)


def _divide(a: Array, b: Array, type_: str, remainder: bool) -> Array:
    """Integer division truncating toward zero (C and PTX), remainder with the dividend's sign."""
    safe = np.where(b == 0, b.dtype.type(1), b)
    if not is_signed(type_):
        return a % safe if remainder else a // safe
    x, y = _signed(a, type_).astype(np.int64), _signed(safe, type_).astype(np.int64)
    quotient = np.abs(x) // np.abs(y) * np.where((x < 0) ^ (y < 0), -1, 1)
    result = x - quotient * y if remainder else quotient
    return result.astype(SINT[width(type_)]).view(a.dtype)


def _mul_hi(a: Array, b: Array, type_: str) -> Array:
    if width(type_) == 64:
        raise NotModelled("mul.hi of 64-bit integers")
    wide = np.int64 if is_signed(type_) else np.uint64
    view = _signed if is_signed(type_) else (lambda x, _: x)
    product = view(a, type_).astype(wide) * view(b, type_).astype(wide)
    return (product >> width(type_)).astype(SINT[width(type_)] if is_signed(type_) else a.dtype).view(a.dtype)


def _signed_op(fn: Callable[..., Array]) -> Callable[..., Array]:
    """An operation whose result depends on signedness: computed on the signed view for s types."""

    def run(type_: str, *args: Array) -> Array:
        if not is_signed(type_):
            return fn(*args)
        return fn(*(_signed(x, type_) for x in args)).view(args[0].dtype)
    return run


INT_OPS: dict[str, Callable[..., Array]] = {
    "add": lambda t, a, b: a + b,
    "sub": lambda t, a, b: a - b,
    "mul": lambda t, a, b: a * b,
    "mul_hi": lambda t, a, b: _mul_hi(a, b, t),
    "div": lambda t, a, b: _divide(a, b, t, remainder=False),
    "rem": lambda t, a, b: _divide(a, b, t, remainder=True),
    "min": _signed_op(np.minimum),
    "max": _signed_op(np.maximum),
    "abs": _signed_op(np.abs),
    "neg": lambda t, a: (~a) + a.dtype.type(1),
    "and": lambda t, a, b: a & b,
    "or": lambda t, a, b: a | b,
    "xor": lambda t, a, b: a ^ b,
    "not": lambda t, a: ~a,
    "shl": lambda t, a, b: _shift_left(a, b, t),
    "shr": lambda t, a, b: _shift_right(a, b, t),
}

PRED_OPS: dict[str, Callable[..., Array]] = {"and": np.logical_and, "or": np.logical_or,
                                              "xor": np.logical_xor, "not": np.logical_not}


class NumpyDomain:
    """The semantics evaluated on arrays of `lanes` threads."""

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes

    def constant(self, bits: int, type_: str) -> Array:
        if type_ == "pred":
            return np.full(self.lanes, bool(bits))
        return np.full(self.lanes, bits & ((1 << width(type_)) - 1), dtype=storage(type_))

    def int_op(self, name: str, type_: str, *args: Array) -> Array:
        if type_ not in INT_TYPES:
            raise NotModelled(f"integer {name} on .{type_}")
        with np.errstate(all="ignore"):
            return INT_OPS[name](type_, *(a.astype(storage(type_), copy=False) for a in args))

    def int_compare(self, cmp: str, type_: str, a: Array, b: Array) -> Array:
        if is_signed(type_) and cmp not in UNSIGNED_COMPARE:
            a, b = _signed(a, type_), _signed(b, type_)
        if cmp not in INT_COMPARE:
            raise NotModelled(f"integer comparison .{cmp}")
        return INT_COMPARE[cmp](a, b)

    def int_convert(self, a: Array, source: str, dest: str) -> Array:
        value = _signed(a, source).astype(np.int64) if is_signed(source) else a.astype(np.uint64)
        return value.astype(storage(dest))

    def float_op(self, name: str, type_: str, *args: Array, ftz: bool = False, sat: bool = False) -> Array:
        values = [to_float(a, type_) for a in args]
        if ftz:
            values = [_flush(v) for v in values]
        with np.errstate(all="ignore"):
            result = FLOAT_OPS[name](*values).astype(values[0].dtype)
        if ftz:
            result = _flush(result)
        if sat:
            result = np.where(np.isnan(result), 0, np.clip(result, 0, 1)).astype(result.dtype)
        return from_float(result, type_)

    def float_compare(self, cmp: str, type_: str, a: Array, b: Array) -> Array:
        if cmp not in FLOAT_COMPARE:
            raise NotModelled(f"float comparison .{cmp}")
        with np.errstate(all="ignore"):
            return FLOAT_COMPARE[cmp](to_float(a, type_), to_float(b, type_))

    def float_test(self, test: str, type_: str, a: Array) -> Array:
        return FLOAT_TESTS[test](to_float(a, type_))

    def float_convert(self, a: Array, source: str, dest: str, rounding: str, ftz: bool = False) -> Array:
        values = to_float(a, source)
        if ftz:
            values = _flush(values)
        if rounding in ROUND_TO_INTEGER:
            if source != dest:
                raise NotModelled(f"cvt.{rounding} between different float types")
            return from_float(ROUND_TO_INTEGER[rounding](values), dest)
        narrowing = FLOAT_TYPES[dest] < FLOAT_TYPES[source] or (source, dest) == ("f16", "bf16")
        if rounding != "rn" and narrowing:
            raise NotModelled(f"cvt.{rounding} narrowing a float")
        return from_float(values, dest)

    def float_to_int(self, a: Array, source: str, dest: str, rounding: str) -> Array:
        """Rounded as asked, saturated to the destination's range; NaN gives 0 (as PTX's cvt)."""
        if rounding not in ROUND_TO_INTEGER:
            raise NotModelled(f"cvt.{rounding} from float to integer")
        values = ROUND_TO_INTEGER[rounding](to_float(a, source).astype(np.float64))
        bits, signed = INT_TYPES[dest]
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        clipped = np.clip(np.nan_to_num(values, nan=0.0), low, high)
        as_int = np.where(clipped >= 2.0**63, np.uint64(2**64 - 1), clipped.astype(np.int64).view(np.uint64)) \
            if bits == 64 and not signed else clipped.astype(np.int64)
        return as_int.astype(storage(dest))

    def int_to_float(self, a: Array, source: str, dest: str, rounding: str) -> Array:
        if rounding != "rn":
            raise NotModelled(f"cvt.{rounding} from integer to float")
        values = _signed(a, source) if is_signed(source) else a
        return from_float(values.astype(np.float64 if dest == "f64" else np.float32), dest)

    def select(self, pred: Array, a: Array, b: Array) -> Array:
        return np.where(pred, a, b)

    def pred_op(self, name: str, *args: Array) -> Array:
        return PRED_OPS[name](*args)

    def is_zero(self, a: Array, type_: str) -> Array:
        return a == 0
