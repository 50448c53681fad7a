"""The z3 domain of the PTX semantics: every value is a z3 term holding the operand's bits (a
bit-vector of the type's width; a Bool for predicates), so the table in `verify.semantics`
evaluated here is a symbolic executor.

Integers are two's-complement bit-vector arithmetic. Floats are decoded from their bits into
z3's IEEE floating-point theory (f16, bf16 = 8 exponent and 8 significand bits, f32, f64),
computed with one rounding (to nearest even, or toward zero, -inf or +inf where the
instruction says so), and encoded back; a NaN result is encoded as the canonical NaN
(0x7FFF..., PTX's for f16, bf16 and f32; the same pattern for f64) because z3 leaves the bits
of a NaN unspecified, and a proof must not depend on bits nobody fixed. Sign
operations (abs, neg, copysign) and min/max act on the bits, so NaN payloads pass through and
min/max order -0.0 below +0.0 as the PTX ISA says. Approximate instructions (ex2, lg2, rsqrt,
tanh, sin, cos, and the .approx and .full forms of rcp, div and sqrt) are uninterpreted
functions, one per name and type, so a proof can match them with the IR's counterparts but
never relies on their values.

As the PTX ISA says (and the numpy domain does the same): conversions round once (integer or
f64 to bf16), float-to-integer conversions clamp at 64 bits and give 1 << (width - 1) for NaN
when the source is f64 or the destination 64 bits wide, .ftz flushes the subnormals of the
operand's own format, testp.normal holds for zeros, and .sat clamps to [+0.0, 1.0] after
rounding (the range SASS documents for saturation), so -0.0 becomes +0.0."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import z3

from verify.semantics import FLOAT_TYPES, FORMATS, INT_TYPES, NotModelled, is_signed, width

Bits = z3.BitVecRef
Float = z3.FPRef

ROUNDING_MODES: dict[str, Callable[[], z3.FPRMRef]] = {
    "rn": z3.RNE, "rz": z3.RTZ, "rm": z3.RTN, "rp": z3.RTP,
    "rni": z3.RNE, "rzi": z3.RTZ, "rmi": z3.RTN, "rpi": z3.RTP,
}
INTEGER_ROUNDING = frozenset({"rni", "rzi", "rmi", "rpi"})
# Approximate operations: (their PTX spelling, operand count).
APPROXIMATE: dict[str, tuple[str, int]] = {
    "ex2": ("ex2.approx", 1), "lg2": ("lg2.approx", 1), "rsqrt": ("rsqrt.approx", 1), "tanh": ("tanh.approx", 1),
    "sin": ("sin.approx", 1), "cos": ("cos.approx", 1), "rcp_approx": ("rcp.approx", 1),
    "sqrt_approx": ("sqrt.approx", 1), "div_approx": ("div.approx", 2), "div_full": ("div.full", 2),
}


def float_sort(type_: str) -> z3.FPSortRef:
    return z3.FPSort(*FORMATS[type_])


def to_float(bits: Bits, type_: str) -> Float:
    """The float whose bits these are. Bits that `to_bits` made from a float of this type give that
    float back itself (the same value: a NaN's bits decode to NaN), so that terms computed along
    two routes from the same floats stay the same term for the solver."""
    encoded = _encoded_float(bits, type_)
    return encoded if encoded is not None else z3.fpBVToFP(bits, float_sort(type_))


def _encoded_float(bits: Bits, type_: str) -> Float | None:
    """x, where `bits` is to_bits(x, type_)."""
    if not (z3.is_app_of(bits, z3.Z3_OP_ITE) and z3.is_app_of(bits.arg(0), z3.Z3_OP_FPA_IS_NAN)):
        return None
    value, encoded = bits.arg(0).arg(0), bits.arg(2)
    if value.sort() != float_sort(type_) or not z3.is_app_of(encoded, z3.Z3_OP_FPA_TO_IEEE_BV):
        return None
    nan = bits.arg(1)
    canonical = z3.is_bv_value(nan) and nan.as_long() == canonical_nan(type_).as_long()
    return value if canonical and encoded.arg(0).eq(value) else None


def nodes(*terms: z3.ExprRef) -> Iterator[z3.ExprRef]:
    """Each distinct node of `terms` once (a term is a DAG: shared subterms are not walked twice)."""
    seen: set[int] = set()
    pending = list(terms)
    while pending:
        node = pending.pop()
        if node.get_id() in seen:
            continue
        seen.add(node.get_id())
        yield node
        pending.extend(node.children())


def decoded(term: z3.ExprRef) -> z3.ExprRef:
    """`term` with each float decoded from the bits `to_bits` encoded it in written as that float
    (the same value: z3's floats have one NaN), a decoding of a choice between such bits (or
    constants) pushed into the choice, so that the solver meets the IR's float itself."""
    for _ in range(8):
        pairs = [(n, found) for n in nodes(term) if (found := _decoding(n)) is not None]
        if not pairs:
            return term
        term = z3.simplify(z3.substitute(term, *pairs))
    return term


def _decoding(node: z3.ExprRef) -> z3.ExprRef | None:
    """A float32 decoded from bits, written without the decoding where it can be."""
    if not (z3.is_app_of(node, z3.Z3_OP_FPA_TO_FP) and node.num_args() == 1 and z3.is_bv(node.arg(0))
            and node.arg(0).size() == 32):
        return None
    bits = node.arg(0)
    found = _encoded_float(bits, "f32")
    if found is not None:
        return found
    if z3.is_app_of(bits, z3.Z3_OP_ITE) and any(z3.is_bv_value(b) or _encoded_float(b, "f32") is not None
                                                 for b in (bits.arg(1), bits.arg(2))):
        return z3.If(bits.arg(0), to_float(bits.arg(1), "f32"), to_float(bits.arg(2), "f32"))
    return None


def canonical_nan(type_: str) -> Bits:
    return z3.BitVecVal((1 << (width(type_) - 1)) - 1, width(type_))


def to_bits(value: Float, type_: str) -> Bits:
    """A float's bits; every NaN becomes the canonical NaN (z3 leaves a NaN's bits open)."""
    return z3.If(z3.fpIsNaN(value), canonical_nan(type_), z3.fpToIEEEBV(value))


def _sign_bit(type_: str) -> int:
    return 1 << (width(type_) - 1)


def _exponent_field(type_: str) -> int:
    exponent, significand = FORMATS[type_]
    return ((1 << exponent) - 1) << (significand - 1)


def _flush(bits: Bits, type_: str) -> Bits:
    """Subnormals of the type's own format to zero of the same sign (.ftz)."""
    return z3.If(bits & _exponent_field(type_) == 0, bits & _sign_bit(type_), bits)


def _negative(bits: Bits, type_: str) -> z3.BoolRef:
    return bits & _sign_bit(type_) != 0


def _choose(smaller: bool, propagate_nan: bool) -> Callable[[str, Bits, Bits], Bits]:
    """min/max on bits: a NaN operand yields the other (or NaN with .NaN), both NaN yields the
    canonical NaN, and on equal values -0.0 counts as smaller than +0.0."""

    def choose(type_: str, a: Bits, b: Bits) -> Bits:
        x, y = to_float(a, type_), to_float(b, type_)
        first_wins = z3.fpLT(x, y) if smaller else z3.fpGT(x, y)
        second_wins = z3.fpLT(y, x) if smaller else z3.fpGT(y, x)
        zero_tie = z3.If(_negative(a, type_) == smaller, a, b)
        ordered = z3.If(first_wins, a, z3.If(second_wins, b, zero_tie))
        either_nan = z3.Or(z3.fpIsNaN(x), z3.fpIsNaN(y))
        if propagate_nan:
            return z3.If(either_nan, canonical_nan(type_), ordered)
        lone_nan = z3.If(z3.fpIsNaN(x), b, a)
        return z3.If(z3.And(z3.fpIsNaN(x), z3.fpIsNaN(y)), canonical_nan(type_), z3.If(either_nan, lone_nan, ordered))
    return choose


def _one(sort: z3.FPSortRef) -> Float:
    return z3.FPVal(1.0, sort)


# Float operations on the bits themselves.
SIGN_OPS: dict[str, Callable[..., Bits]] = {
    "abs": lambda t, a: a & ~_sign_bit(t),
    "neg": lambda t, a: a ^ _sign_bit(t),
    "copysign": lambda t, a, b: (a & _sign_bit(t)) | (b & ~_sign_bit(t)),  # PTX: sign of a, magnitude of b
    "min": _choose(smaller=True, propagate_nan=False),
    "max": _choose(smaller=False, propagate_nan=False),
    "min_nan": _choose(smaller=True, propagate_nan=True),
    "max_nan": _choose(smaller=False, propagate_nan=True),
}

# IEEE operations, rounded once in the operand's own format, each given its rounding mode first
# (nearest even, or .rz, .rm, .rp).
IEEE_OPS: dict[str, Callable[..., Float]] = {
    "add": z3.fpAdd,
    "sub": z3.fpSub,
    "mul": z3.fpMul,
    "div": z3.fpDiv,
    "fma": z3.fpFMA,
    "sqrt": z3.fpSqrt,
    "rcp": lambda mode, a: z3.fpDiv(mode, _one(a.sort()), a),
}

FLOAT_COMPARE: dict[str, Callable[[Float, Float], z3.BoolRef]] = {
    "eq": z3.fpEQ,
    "ne": lambda a, b: z3.And(z3.Not(z3.fpEQ(a, b)), z3.Not(z3.fpIsNaN(a)), z3.Not(z3.fpIsNaN(b))),
    "lt": z3.fpLT,
    "le": z3.fpLEQ,
    "gt": z3.fpGT,
    "ge": z3.fpGEQ,
    "equ": lambda a, b: z3.Or(z3.fpEQ(a, b), z3.fpIsNaN(a), z3.fpIsNaN(b)),
    "neu": lambda a, b: z3.Not(z3.fpEQ(a, b)),
    "ltu": lambda a, b: z3.Not(z3.fpGEQ(a, b)),
    "leu": lambda a, b: z3.Not(z3.fpGT(a, b)),
    "gtu": lambda a, b: z3.Not(z3.fpLEQ(a, b)),
    "geu": lambda a, b: z3.Not(z3.fpLT(a, b)),
    "num": lambda a, b: z3.And(z3.Not(z3.fpIsNaN(a)), z3.Not(z3.fpIsNaN(b))),
    "nan": lambda a, b: z3.Or(z3.fpIsNaN(a), z3.fpIsNaN(b)),
}

FLOAT_TESTS: dict[str, Callable[[Float], z3.BoolRef]] = {
    "notanumber": z3.fpIsNaN,
    "number": lambda a: z3.Not(z3.fpIsNaN(a)),
    "finite": lambda a: z3.Not(z3.Or(z3.fpIsNaN(a), z3.fpIsInf(a))),
    "infinite": z3.fpIsInf,
    "normal": lambda a: z3.Or(z3.fpIsNormal(a), z3.fpIsZero(a)),  # PTX: zeros count as normal
    "subnormal": z3.fpIsSubnormal,
}

UNSIGNED_ONLY = frozenset({"lo", "ls", "hi", "hs"})
SIGNED_COMPARE: dict[str, Callable[[Bits, Bits], z3.BoolRef]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}
UNSIGNED_COMPARE: dict[str, Callable[[Bits, Bits], z3.BoolRef]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": z3.ULT, "le": z3.ULE, "gt": z3.UGT,
    "ge": z3.UGE, "lo": z3.ULT, "ls": z3.ULE, "hi": z3.UGT, "hs": z3.UGE,
}


def _resize(bits: Bits, size: int, signed: bool) -> Bits:
    """Truncate, or extend by sign or by zeros, to `size` bits."""
    have = bits.size()
    if size < have:
        return z3.Extract(size - 1, 0, bits)
    if size == have:
        return bits
    return z3.SignExt(size - have, bits) if signed else z3.ZeroExt(size - have, bits)


def _shift_amount(amount: Bits, type_: str) -> Bits:
    """The shift amount clamped to the type's width (PTX) and sized like the shifted value."""
    bits = width(type_)
    clamped = z3.If(z3.ULT(amount, bits), amount, z3.BitVecVal(bits, amount.size()))
    return _resize(clamped, bits, signed=False)


def _shift_right(type_: str, a: Bits, amount: Bits) -> Bits:
    shift = _shift_amount(amount, type_)
    return a >> shift if is_signed(type_) else z3.LShR(a, shift)  # z3's >> is arithmetic


def _mul_hi(type_: str, a: Bits, b: Bits) -> Bits:
    bits = width(type_)
    if bits == 64:
        raise NotModelled("mul.hi of 64-bit integers")
    product = _resize(a, 2 * bits, is_signed(type_)) * _resize(b, 2 * bits, is_signed(type_))
    return z3.Extract(2 * bits - 1, bits, product)


def _by_signedness(signed: Callable[..., Bits], unsigned: Callable[..., Bits]) -> Callable[..., Bits]:
    return lambda t, *args: (signed if is_signed(t) else unsigned)(*args)


# Division by zero is left to z3's total definition: `UNDEFINED` refuses it before it matters.
INT_OPS: dict[str, Callable[..., Bits]] = {
    "add": lambda t, a, b: a + b,
    "sub": lambda t, a, b: a - b,
    "mul": lambda t, a, b: a * b,
    "mul_hi": _mul_hi,
    "div": _by_signedness(lambda a, b: a / b, z3.UDiv),  # z3's / on bit-vectors is signed, toward zero
    "rem": _by_signedness(z3.SRem, z3.URem),  # SRem takes the dividend's sign, as PTX does
    "min": _by_signedness(lambda a, b: z3.If(a < b, a, b), lambda a, b: z3.If(z3.ULT(a, b), a, b)),
    "max": _by_signedness(lambda a, b: z3.If(a > b, a, b), lambda a, b: z3.If(z3.UGT(a, b), a, b)),
    "abs": _by_signedness(lambda a: z3.If(a < 0, -a, a), lambda a: a),
    "neg": lambda t, a: -a,
    "and": lambda t, a, b: a & b,
    "or": lambda t, a, b: a | b,
    "xor": lambda t, a, b: a ^ b,
    "not": lambda t, a: ~a,
    "shl": lambda t, a, b: a << _shift_amount(b, t),
    "shr": _shift_right,
}

PRED_OPS: dict[str, Callable[..., z3.BoolRef]] = {"and": z3.And, "or": z3.Or, "xor": z3.Xor, "not": z3.Not}


def _power_of_two(exponent: int, sort: z3.FPSortRef, negative: bool = False) -> Float:
    """±2**exponent in `sort`, exactly (infinity where it does not fit)."""
    return z3.FPVal(-1.0 if negative else 1.0, exponent, sort)


def _nan_as_integer(source: str, dest: str) -> int:
    """PTX: NaN converts to 0, or to 1 << (width - 1) from an f64 source or to a 64-bit integer."""
    bits = INT_TYPES[dest][0]
    return 1 << (bits - 1) if source == "f64" or bits == 64 else 0


class Z3Domain:
    """The semantics evaluated on z3 terms; one instance holds the uninterpreted functions that
    stand for approximate instructions, so the same name and type always give the same one."""

    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], z3.FuncDeclRef] = {}

    def approximation(self, name: str, type_: str) -> z3.FuncDeclRef:
        key = (name, type_)
        if key not in self.functions:
            spelling, arity = APPROXIMATE[name]
            self.functions[key] = z3.Function(f"{spelling}.{type_}", *[float_sort(type_)] * (arity + 1))
        return self.functions[key]

    def constant(self, bits: int, type_: str) -> z3.ExprRef:
        if type_ == "pred":
            return z3.BoolVal(bool(bits))
        return z3.BitVecVal(bits & ((1 << width(type_)) - 1), width(type_))

    def int_op(self, name: str, type_: str, *args: Bits) -> Bits:
        if type_ not in INT_TYPES:
            raise NotModelled(f"integer {name} on .{type_}")
        return INT_OPS[name](type_, *args)

    def int_compare(self, cmp: str, type_: str, a: Bits, b: Bits) -> z3.BoolRef:
        table = SIGNED_COMPARE if is_signed(type_) and cmp not in UNSIGNED_ONLY else UNSIGNED_COMPARE
        if cmp not in table:
            raise NotModelled(f"integer comparison .{cmp}")
        return table[cmp](a, b)

    def int_convert(self, a: Bits, source: str, dest: str) -> Bits:
        return _resize(a, width(dest), is_signed(source))

    def float_op(self, name: str, type_: str, *args: Bits, rounding: str = "rn") -> Bits:
        if rounding != "rn" and name not in IEEE_OPS:
            raise NotModelled(f"{name}.{rounding}.{type_}: directed rounding of this operation")
        if name in SIGN_OPS:
            return SIGN_OPS[name](type_, *args)
        values = [to_float(a, type_) for a in args]
        if name in APPROXIMATE:
            return to_bits(self.approximation(name, type_)(*values), type_)
        return to_bits(IEEE_OPS[name](ROUNDING_MODES[rounding](), *values), type_)

    def flush(self, bits: Bits, type_: str) -> Bits:
        return _flush(bits, type_)

    def saturate(self, bits: Bits, type_: str) -> Bits:
        """Clamped to [+0.0, 1.0], NaN to +0.0; -0.0 counts as below +0.0, as in min/max."""
        value, sort = to_float(bits, type_), float_sort(type_)
        zero, one = z3.BitVecVal(0, width(type_)), z3.fpToIEEEBV(_one(sort))
        below = z3.Or(z3.fpIsNaN(value), _negative(bits, type_))
        return z3.If(below, zero, z3.If(z3.fpGT(value, _one(sort)), one, bits))

    def float_compare(self, cmp: str, type_: str, a: Bits, b: Bits) -> z3.BoolRef:
        if cmp not in FLOAT_COMPARE:
            raise NotModelled(f"float comparison .{cmp}")
        return FLOAT_COMPARE[cmp](to_float(a, type_), to_float(b, type_))

    def float_test(self, test: str, type_: str, a: Bits) -> z3.BoolRef:
        return FLOAT_TESTS[test](to_float(a, type_))

    def float_convert(self, a: Bits, source: str, dest: str, rounding: str) -> Bits:
        if rounding in INTEGER_ROUNDING and source != dest:
            raise NotModelled(f"cvt.{rounding} between different float types")
        narrowing = FLOAT_TYPES[dest] < FLOAT_TYPES[source] or (source, dest) == ("f16", "bf16")
        if rounding not in INTEGER_ROUNDING and rounding != "rn" and narrowing and dest == "f64":
            raise NotModelled(f"cvt.{rounding} narrowing a float to f64")
        value, mode = to_float(a, source), ROUNDING_MODES[rounding]()
        converted = z3.fpRoundToIntegral(mode, value) if rounding in INTEGER_ROUNDING \
            else z3.fpFPToFP(mode, value, float_sort(dest))
        return to_bits(converted, dest)

    def float_to_int(self, a: Bits, source: str, dest: str, rounding: str) -> Bits:
        """Rounded as asked and clamped to the destination's range (PTX's cvt)."""
        if rounding not in INTEGER_ROUNDING:
            raise NotModelled(f"cvt.{rounding} from float to integer")
        bits, signed = INT_TYPES[dest]
        sort, value = float_sort(source), to_float(a, source)
        whole = z3.fpRoundToIntegral(ROUNDING_MODES[rounding](), value)
        top = bits - 1 if signed else bits
        high, low = ((1 << top) - 1, -(1 << top) if signed else 0)
        too_low = z3.fpLEQ(whole, _power_of_two(top, sort, negative=True)) if signed \
            else z3.fpLT(whole, z3.FPVal(0.0, sort))
        convert = z3.fpToSBV if signed else z3.fpToUBV
        in_range = convert(z3.RTZ(), whole, z3.BitVecSort(bits))
        clamped = z3.If(z3.fpGEQ(whole, _power_of_two(top, sort)), self.constant(high, dest),
                        z3.If(too_low, self.constant(low, dest), in_range))
        return z3.If(z3.fpIsNaN(value), self.constant(_nan_as_integer(source, dest), dest), clamped)

    def int_to_float(self, a: Bits, source: str, dest: str, rounding: str) -> Bits:
        if rounding not in ("rn", "rz", "rm", "rp") or (rounding != "rn" and dest == "f64"):
            raise NotModelled(f"cvt.{rounding} from integer to {dest}")
        convert = z3.fpSignedToFP if is_signed(source) else z3.fpUnsignedToFP
        return to_bits(convert(ROUNDING_MODES[rounding](), a, float_sort(dest)), dest)

    def select(self, pred: z3.BoolRef, a: z3.ExprRef, b: z3.ExprRef) -> z3.ExprRef:
        return z3.If(pred, a, b)

    def pred_op(self, name: str, *args: z3.BoolRef) -> z3.BoolRef:
        return PRED_OPS[name](*args)

    def is_zero(self, a: Bits, type_: str) -> z3.BoolRef:
        return a == 0


def concrete(value: z3.ExprRef) -> int | bool:
    """A term over constants, simplified to its bits (int) or truth (bool)."""
    simple = z3.simplify(value)
    if z3.is_true(simple) or z3.is_false(simple):
        return z3.is_true(simple)
    if z3.is_bv_value(simple):
        return simple.as_long()
    raise ValueError(f"not a constant: {simple}")
