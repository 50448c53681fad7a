"""The numpy domain of the PTX semantics: every value is an array with one entry per thread,
holding the operand's bits (uint8 ... uint64; bool for predicates).

Float arithmetic is IEEE round-to-nearest-even with one rounding, as the PTX ISA says: f32 +, -,
*, /, sqrt in float32; f16 and bf16 computed in float32 and then rounded to their format (the
same as one rounding for these operations, as float32 has more than twice their precision plus
two bits); f64 in float64. fma is fused: for f32, f16 and bf16 the product is exact in float64
and the sum is rounded to odd there (an error-free sum says whether it was exact), then rounded
to the narrower format, which is correct because rounding to odd keeps a sticky last bit; f64
fma is computed exactly, element by element. Conversions to a narrower float go the same way, so
each rounds once.

Directed rounding (.rz, .rm, .rp) of add, sub, mul, fma, div, rcp, sqrt and of conversions to f32,
f16 and bf16 goes the same way: the exact result rounded to odd in float64 (sums by an error-free
sum; quotients and square roots by an error-free product that gives the remainder's sign), rounded
to nearest in the format, then moved one step where that passed the value on the wrong side.
Rounding to odd keeps a sticky last bit, and no value of the narrower format lies strictly
between the exact result and its odd rounding, so the step is taken exactly where one directed
rounding of the exact result would differ. Directed rounding of f64 results is not modelled.

A NaN result of an arithmetic operation or conversion is the canonical NaN (0x7FFF..., PTX's for
f16, bf16 and f32; the same pattern for f64), as in the z3 domain; sign operations (abs, neg,
copysign) and min/max act on the bits, so NaN payloads pass through and min/max order -0.0 below
+0.0. Approximate instructions (ex2, lg2, rsqrt, tanh, sin, cos .approx, and the .approx and
.full forms of rcp, div and sqrt) are computed accurately: the hardware's error bounds (2 ulp or
so) are the tolerance the emulator's results are compared with, not something emulated bit for
bit."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from verify.semantics import FLOAT_TYPES, FORMATS, INT_TYPES, NotModelled, is_signed, width

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


# Bit fields of a float format.

def _sign_bit(type_: str) -> int:
    return 1 << (width(type_) - 1)


def _exponent_field(type_: str) -> int:
    exponent, significand = FORMATS[type_]
    return ((1 << exponent) - 1) << (significand - 1)


def _fraction_field(type_: str) -> int:
    return (1 << (FORMATS[type_][1] - 1)) - 1


def canonical_nan(type_: str) -> int:
    return _sign_bit(type_) - 1


def _rounded(values: Array, type_: str) -> Array:
    """An operation's result: rounded to nearest even in `type_`, a NaN as the canonical NaN."""
    return np.where(np.isnan(values), storage(type_).type(canonical_nan(type_)), from_float(values, type_))


def flush(bits: Array, type_: str) -> Array:
    """Subnormals of the type's own format to zero of the same sign (.ftz)."""
    return np.where(bits & _exponent_field(type_) == 0, bits & storage(type_).type(_sign_bit(type_)), bits)


def saturate(bits: Array, type_: str) -> Array:
    """Clamped to [+0.0, 1.0] after rounding; NaN and every negative value (-0.0 too) to +0.0."""
    value, one = to_float(bits, type_), from_float(np.ones(1), type_)[0]
    below = np.isnan(value) | (bits & storage(type_).type(_sign_bit(type_)) != 0)
    return np.where(below, bits.dtype.type(0), np.where(value > 1, one, bits))


# Rounding to odd: an inexact result takes the neighbour whose last significand bit is 1. Rounded
# again to a format at least two bits narrower, it gives what one rounding of the exact value gives.

def _odd_sum(p: Array, c: Array) -> Array:
    """p + c (float64) rounded to odd; the error-free sum (TwoSum) says whether it was exact."""
    total = p + c
    p_part = total - c
    error = (p - p_part) + (c - (total - p_part))
    inexact = (error != 0) & np.isfinite(total)
    even = (total.view(np.uint64) & np.uint64(1)) == 0
    return np.where(inexact & even, np.nextafter(total, np.copysign(np.inf, error)), total)


def _odd_float32(values: Array) -> Array:
    """float64 values rounded to odd in float32 (infinity only for infinite values)."""
    nearest = values.astype(np.float32)
    inexact = (nearest.astype(np.float64) != values) & ~np.isnan(values)
    even = (nearest.view(np.uint32) & np.uint32(1)) == 0
    toward = np.where(values > nearest, np.float32(np.inf), np.float32(-np.inf))
    return np.where(inexact & even, np.nextafter(nearest, toward), nearest)


def _round_once(values: Array, type_: str) -> Array:
    """float64 values, exact or rounded to odd (f64: exact only), rounded once to `type_`."""
    return _rounded(values if type_ in ("f32", "f64") else _odd_float32(values), type_)


DIRECTED = ("rz", "rm", "rp")
# Where nearest rounding passed the value on the side the mode forbids.
PASSED: dict[str, Callable[[Array, Array], Array]] = {
    "rz": lambda rounded, value: np.abs(rounded) > np.abs(value),
    "rm": lambda rounded, value: rounded > value,
    "rp": lambda rounded, value: rounded < value,
}


def _directed(values: Array, type_: str, rounding: str) -> Array:
    """float64 values, exact or rounded to odd, rounded once toward zero (rz), -inf (rm) or +inf
    (rp) in `type_` (f32, f16 or bf16): nearest rounding, then one step back where it passed the
    value. A step toward zero lowers the magnitude, one away raises it (the largest finite number
    becomes infinity, infinity the largest finite number); from a zero it lands on the smallest
    subnormal of the sign asked."""
    nearest = _round_once(values, type_)
    passed = PASSED[rounding](to_float(nearest, type_).astype(np.float64), values)
    one, sign = storage(type_).type(1), storage(type_).type(_sign_bit(type_))
    negative = (nearest & sign) != 0
    away = {"rz": np.zeros_like(negative), "rm": negative, "rp": ~negative}[rounding]
    stepped = np.where(away, nearest + one, nearest - one)
    from_zero = (sign if rounding == "rm" else storage(type_).type(0)) | one
    stepped = np.where((nearest & ~sign) == 0, from_zero, stepped)
    return np.where(passed, stepped, nearest).astype(storage(type_))


def _split(a: Array) -> tuple[Array, Array]:
    """Veltkamp's split of float64 values into two halves of 26 bits each, summing exactly to a."""
    c = 134217729.0 * a  # 2**27 + 1
    high = c - (c - a)
    return high, a - high


def _product_error(a: Array, b: Array, product: Array) -> Array:
    """a * b - product exactly, where product is a * b rounded (Dekker's error-free product)."""
    (ah, al), (bh, bl) = _split(a), _split(b)
    return ((ah * bh - product) + ah * bl + al * bh) + al * bl


def _to_odd(result: Array, remainder_sign: Array) -> Array:
    """A float64 result rounded to nearest, moved to odd where the exact value lies to the side
    `remainder_sign` says (0: exact)."""
    even = (result.view(np.uint64) & np.uint64(1)) == 0
    move = (remainder_sign != 0) & even & np.isfinite(result)
    return np.where(move, np.nextafter(result, np.copysign(np.inf, remainder_sign)), result)


def _odd_quotient(x: Array, y: Array) -> Array:
    """x / y rounded to odd in float64, for values of f32 or narrower (no underflow or overflow
    in float64): x - q * y, exact by Sterbenz's lemma and the error-free product, gives the side."""
    q = x / y
    product = q * y
    remainder = (x - product) - _product_error(q, y, product)
    side = np.where(np.isfinite(q) & (q != 0) & np.isfinite(y), np.sign(remainder) * np.sign(y), 0.0)
    return _to_odd(q, side)


def _odd_sqrt(x: Array) -> Array:
    """sqrt(x) rounded to odd in float64, for values of f32 or narrower."""
    s = np.sqrt(x)
    square = s * s
    remainder = (x - square) - _product_error(s, s, square)
    return _to_odd(s, np.where(np.isfinite(s) & (s > 0), np.sign(remainder), 0.0))


# The exact result of an IEEE operation on float64 values of f32 or narrower, rounded to odd.
ODD_RESULTS: dict[str, Callable[..., Array]] = {
    "add": lambda a, b: _odd_sum(a, b),
    "sub": lambda a, b: _odd_sum(a, -b),
    "mul": lambda a, b: a * b,  # exact: 48 significand bits at most, and no underflow in float64
    "fma": lambda a, b, c: _odd_sum(a * b, c),
    "div": _odd_quotient,
    "rcp": lambda a: _odd_quotient(np.ones_like(a), a),
    "sqrt": _odd_sqrt,
}


# The two addends of a sum-like operation, for the sign of an exact zero.
ADDENDS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "add": lambda a, b: (a, b),
    "sub": lambda a, b: (a, -b),
    "fma": lambda a, b, c: (a * b, c),
}


def _signed_zero_sum(name: str, rounding: str, values: list[Array], result: Array) -> Array:
    """IEEE 754's sign of an exact zero sum: -0.0 toward -inf, +0.0 otherwise, unless both addends
    are zeros of one sign (float64's nearest rounding gives the rest)."""
    if rounding != "rm" or name not in ADDENDS:
        return result
    p, q = ADDENDS[name](*values)
    alike_zeros = (p == 0) & (q == 0) & (np.signbit(p) == np.signbit(q))
    return np.where((result == 0) & ~alike_zeros, -0.0, result)


def directed_op(name: str, type_: str, rounding: str, *bits: Array) -> Array:
    """An IEEE operation of f32, f16 or bf16 rounded once toward zero, -inf or +inf."""
    if type_ == "f64" or name not in ODD_RESULTS:
        raise NotModelled(f"{name}.{rounding}.{type_}: directed rounding of this operation")
    values = [to_float(b, type_).astype(np.float64) for b in bits]
    exact = _signed_zero_sum(name, rounding, values, ODD_RESULTS[name](*values))
    return _directed(exact, type_, rounding)  # a NaN as the canonical one, as nearest rounding gives it


def _halves(integers: Array) -> tuple[Array, Array]:
    """64-bit integers as two float64 values whose exact sum they are."""
    return (integers >> 32).astype(np.float64) * 2.0**32, (integers & 0xFFFFFFFF).astype(np.float64)


def _fraction_fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once, for finite operands (exact rationals); OverflowError beyond float64."""
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:  # the sign of an exact zero: IEEE's rule for a sum of zeros, else +0.0
        return a * b + c if a == 0 or b == 0 else 0.0
    return float(exact)


FUSED = getattr(math, "fma", _fraction_fma)  # Python 3.13 has a correctly rounded math.fma


def _fma64(a: float, b: float, c: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or math.isnan(c):
        return a * b + c  # an infinite or NaN product: its rounding cannot matter
    if math.isinf(c):
        return c
    try:
        return FUSED(a, b, c)
    except OverflowError:
        return math.copysign(math.inf, a * b + c)


def _fma(type_: str, a: Array, b: Array, c: Array) -> Array:
    """a * b + c rounded once: exact products of f32, f16 and bf16 in float64, summed to odd."""
    if type_ == "f64":
        values = [_fma64(*x) for x in zip(*(to_float(v, type_).tolist() for v in (a, b, c)))]
        return _rounded(np.array(values, np.float64), type_)
    x, y, z = (to_float(v, type_).astype(np.float64) for v in (a, b, c))
    return _round_once(_odd_sum(x * y, z), type_)


def _negative(bits: Array, type_: str) -> Array:
    return bits & storage(type_).type(_sign_bit(type_)) != 0


def _choose(smaller: bool, propagate_nan: bool) -> Callable[[str, Array, Array], Array]:
    """min/max on bits: a NaN operand yields the other (or NaN with .NaN), both NaN yields the
    canonical NaN, and on equal values -0.0 counts as smaller than +0.0."""

    def choose(type_: str, a: Array, b: Array) -> Array:
        x, y = to_float(a, type_), to_float(b, type_)
        first_wins, second_wins = (x < y, y < x) if smaller else (x > y, y > x)
        zero_tie = np.where(_negative(a, type_) == smaller, a, b)
        ordered = np.where(first_wins, a, np.where(second_wins, b, zero_tie))
        nan = storage(type_).type(canonical_nan(type_))
        if propagate_nan:
            return np.where(np.isnan(x) | np.isnan(y), nan, ordered)
        lone_nan = np.where(np.isnan(x), b, a)
        return np.where(np.isnan(x) & np.isnan(y), nan, np.where(np.isnan(x) | np.isnan(y), lone_nan, ordered))
    return choose


def _ieee(fn: Callable[..., Array]) -> Callable[..., Array]:
    """An operation on values (float32 for f16, bf16 and f32; float64 for f64), rounded once to the type."""
    return lambda t, *bits: _rounded(fn(*(to_float(b, t) for b in bits)), t)


def _wide(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Computed in float64, rounded to the operand type."""
    return _ieee(lambda *a: fn(*(x.astype(np.float64) for x in a)))


def _reciprocal(a: Array) -> Array:
    return a.dtype.type(1) / a


FLOAT_OPS: dict[str, Callable[..., Array]] = {
    "add": _ieee(lambda a, b: a + b),
    "sub": _ieee(lambda a, b: a - b),
    "mul": _ieee(lambda a, b: a * b),
    "div": _ieee(lambda a, b: a / b),
    "fma": _fma,
    "rcp": _ieee(_reciprocal),
    "sqrt": _ieee(np.sqrt),
    "rcp_approx": _ieee(_reciprocal),
    "sqrt_approx": _ieee(np.sqrt),
    "div_approx": _ieee(lambda a, b: a / b),
    "div_full": _ieee(lambda a, b: a / b),
    "rsqrt": _wide(lambda a: 1 / np.sqrt(a)),
    "ex2": _wide(np.exp2),
    "lg2": _wide(np.log2),
    "tanh": _wide(np.tanh),
    "sin": _wide(np.sin),
    "cos": _wide(np.cos),
    "min": _choose(smaller=True, propagate_nan=False),
    "max": _choose(smaller=False, propagate_nan=False),
    "min_nan": _choose(smaller=True, propagate_nan=True),
    "max_nan": _choose(smaller=False, propagate_nan=True),
    "abs": lambda t, a: a & ~storage(t).type(_sign_bit(t)),
    "neg": lambda t, a: a ^ storage(t).type(_sign_bit(t)),
    "copysign": lambda t, a, b: (a & _sign_bit(t)) | (b & ~storage(t).type(_sign_bit(t))),  # sign of a on b
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


def _exponent(bits: Array, type_: str) -> Array:
    return bits & _exponent_field(type_)


def _fraction(bits: Array, type_: str) -> Array:
    return bits & _fraction_field(type_)


def _normal(bits: Array, type_: str) -> Array:
    """PTX counts zeros as normal."""
    exponent = _exponent(bits, type_)
    return ((exponent != 0) & (exponent != _exponent_field(type_))) | (bits & (_sign_bit(type_) - 1) == 0)


# On the bits, in the operand's own format.
FLOAT_TESTS: dict[str, Callable[[Array, str], Array]] = {
    "notanumber": lambda a, t: (_exponent(a, t) == _exponent_field(t)) & (_fraction(a, t) != 0),
    "number": lambda a, t: (_exponent(a, t) != _exponent_field(t)) | (_fraction(a, t) == 0),
    "finite": lambda a, t: _exponent(a, t) != _exponent_field(t),
    "infinite": lambda a, t: (_exponent(a, t) == _exponent_field(t)) & (_fraction(a, t) == 0),
    "normal": _normal,
    "subnormal": lambda a, t: (_exponent(a, t) == 0) & (_fraction(a, t) != 0),
}

ROUND_TO_INTEGER: dict[str, Callable[[Array], Array]] = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor,
                                                          "rpi": np.ceil}

INT_COMPARE: dict[str, Callable[[Array, Array], Array]] = {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "lo": np.less, "ls": np.less_equal, "hi": np.greater, "hs": np.greater_equal,
}
UNSIGNED_COMPARE = frozenset({"lo", "ls", "hi", "hs"})
SHIFTS = frozenset({"shl", "shr"})  # their amount stays a u32, clamped to the width before any narrowing


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


def _negated(bits: Array) -> Array:
    return ~bits + bits.dtype.type(1)


def _magnitude(values: Array) -> Array:
    """|x| of int64 values as uint64 (|INT64_MIN| = 2**63 fits)."""
    return np.where(values < 0, _negated(values.view(np.uint64)), values.view(np.uint64))


def _divide(a: Array, b: Array, type_: str, remainder: bool) -> Array:
    """Integer division truncating toward zero (C and PTX), remainder with the dividend's sign."""
    safe = np.where(b == 0, b.dtype.type(1), b)
    if not is_signed(type_):
        return a % safe if remainder else a // safe
    x, y = _signed(a, type_).astype(np.int64), _signed(safe, type_).astype(np.int64)
    magnitude = _magnitude(x) % _magnitude(y) if remainder else _magnitude(x) // _magnitude(y)
    negative = (x < 0) if remainder else (x < 0) ^ (y < 0)
    return np.where(negative, _negated(magnitude), magnitude).astype(a.dtype)


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
    "neg": lambda t, a: _negated(a),
    "and": lambda t, a, b: a & b,
    "or": lambda t, a, b: a | b,
    "xor": lambda t, a, b: a ^ b,
    "not": lambda t, a: ~a,
    "shl": lambda t, a, b: _shift_left(a, b, t),
    "shr": lambda t, a, b: _shift_right(a, b, t),
}

PRED_OPS: dict[str, Callable[..., Array]] = {"and": np.logical_and, "or": np.logical_or,
                                              "xor": np.logical_xor, "not": np.logical_not}


def _nan_as_integer(source: str, dest: str) -> int:
    """PTX: NaN converts to 0, or to 1 << (width - 1) from an f64 source or to a 64-bit integer."""
    bits = INT_TYPES[dest][0]
    return 1 << (bits - 1) if source == "f64" or bits == 64 else 0


def _as_uint64(whole: Array) -> Array:
    """Integral float64 values in [-2**63, 2**64) -> their 64-bit two's complement bits."""
    high = whole >= 2.0**63
    low_part = np.where(high, whole - 2.0**63, whole).astype(np.int64).view(np.uint64)
    return low_part + np.where(high, np.uint64(1 << 63), np.uint64(0))


def _saturated_integer(whole: Array, source: str, dest: str) -> Array:
    """Integral float64 values clamped to the destination's range; NaN as PTX converts it."""
    bits, signed = INT_TYPES[dest]
    top = 1 << (bits - 1 if signed else bits)
    low = -top if signed else 0
    too_high, too_low, nan = whole >= float(top), whole < float(low), np.isnan(whole)
    in_range = _as_uint64(np.where(too_high | too_low | nan, 0.0, whole))
    constants = [np.uint64(v % 2**64) for v in (_nan_as_integer(source, dest), top - 1, low)]
    return np.select([nan, too_high, too_low], constants, in_range).astype(storage(dest))


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
        types = [type_, "u32"] if name in SHIFTS else [type_] * len(args)
        with np.errstate(all="ignore"):
            return INT_OPS[name](type_, *(a.astype(storage(t), copy=False) for a, t in zip(args, types)))

    def int_compare(self, cmp: str, type_: str, a: Array, b: Array) -> Array:
        if is_signed(type_) and cmp not in UNSIGNED_COMPARE:
            a, b = _signed(a, type_), _signed(b, type_)
        if cmp not in INT_COMPARE:
            raise NotModelled(f"integer comparison .{cmp}")
        return INT_COMPARE[cmp](a, b)

    def int_convert(self, a: Array, source: str, dest: str) -> Array:
        value = _signed(a, source).astype(np.int64) if is_signed(source) else a.astype(np.uint64)
        return value.astype(storage(dest))

    def float_op(self, name: str, type_: str, *args: Array, rounding: str = "rn") -> Array:
        with np.errstate(all="ignore"):
            return FLOAT_OPS[name](type_, *args) if rounding == "rn" else directed_op(name, type_, rounding, *args)

    def flush(self, a: Array, type_: str) -> Array:
        return flush(a, type_)

    def saturate(self, a: Array, type_: str) -> Array:
        return saturate(a, type_)

    def float_compare(self, cmp: str, type_: str, a: Array, b: Array) -> Array:
        if cmp not in FLOAT_COMPARE:
            raise NotModelled(f"float comparison .{cmp}")
        with np.errstate(all="ignore"):
            return FLOAT_COMPARE[cmp](to_float(a, type_), to_float(b, type_))

    def float_test(self, test: str, type_: str, a: Array) -> Array:
        return FLOAT_TESTS[test](a, type_)

    def float_convert(self, a: Array, source: str, dest: str, rounding: str) -> Array:
        if rounding in ROUND_TO_INTEGER:
            if source != dest:
                raise NotModelled(f"cvt.{rounding} between different float types")
            return _rounded(ROUND_TO_INTEGER[rounding](to_float(a, source)), dest)
        narrowing = FLOAT_TYPES[dest] < FLOAT_TYPES[source] or (source, dest) == ("f16", "bf16")
        if rounding != "rn" and narrowing and dest == "f64":
            raise NotModelled(f"cvt.{rounding} narrowing a float to f64")
        with np.errstate(all="ignore"):
            value = to_float(a, source).astype(np.float64)  # exact
            return _directed(value, dest, rounding) if rounding != "rn" and narrowing else _round_once(value, dest)

    def float_to_int(self, a: Array, source: str, dest: str, rounding: str) -> Array:
        """Rounded as asked, saturated to the destination's range (PTX's cvt)."""
        if rounding not in ROUND_TO_INTEGER:
            raise NotModelled(f"cvt.{rounding} from float to integer")
        whole = ROUND_TO_INTEGER[rounding](to_float(a, source).astype(np.float64))
        with np.errstate(all="ignore"):
            return _saturated_integer(whole, source, dest)

    def int_to_float(self, a: Array, source: str, dest: str, rounding: str) -> Array:
        if rounding not in ("rn",) + DIRECTED or (rounding != "rn" and dest == "f64"):
            raise NotModelled(f"cvt.{rounding} from integer to {dest}")
        values = (_signed(a, source) if is_signed(source) else a).astype(np.int64 if is_signed(source) else np.uint64)
        high, low = _halves(values)
        if dest == "f64":
            return _rounded(high + low, dest)  # one rounding of the exact sum
        with np.errstate(all="ignore"):
            odd = _odd_sum(high, low)
            return _round_once(odd, dest) if rounding == "rn" else _directed(odd, dest, rounding)

    def select(self, pred: Array, a: Array, b: Array) -> Array:
        return np.where(pred, a, b)

    def pred_op(self, name: str, *args: Array) -> Array:
        return PRED_OPS[name](*args)

    def is_zero(self, a: Array, type_: str) -> Array:
        return a == 0
