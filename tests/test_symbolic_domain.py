"""The z3 domain against the numpy domain: each instruction's meaning, evaluated on the same
inputs in both, gives the same bits (NaNs and the signs of zeros included); approximate
instructions become uninterpreted functions in z3; definedness and refusals agree. Pinned cases
state the PTX ISA's result where an easy implementation goes wrong (64-bit overflow, double
rounding, signed zeros, NaN conversions), and both domains must give it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import z3

from verify.numeric import NumpyDomain, from_float, storage
from verify.semantics import FLOAT_TYPES, SEMANTICS, UNDEFINED, NotModelled, Op, decode, width
from verify.symbolic import FORMATS, Z3Domain, concrete, float_sort

N = 64
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's casts of inf and NaN
OPCODES = (
    "add.rn.f32", "sub.rn.f32", "mul.rn.f32", "fma.rn.f32", "div.rn.f32", "max.NaN.f32", "max.f32", "min.f32",
    "min.NaN.f32", "abs.f32", "neg.f32", "copysign.f32", "sqrt.rn.f32", "rcp.rn.f32", "add.rn.bf16", "mul.rn.f16",
    "sub.rn.f16", "max.bf16", "min.ftz.f16", "add.ftz.f32", "mul.sat.f32", "min.ftz.f32", "add.rn.f64",
    "sqrt.rn.f64", "add.s32", "sub.u32", "mul.lo.s32", "mul.hi.u32", "mul.hi.s32", "mul.wide.s32",
    "mad.lo.u32", "mad.wide.u32", "div.s32", "rem.s32", "div.u32", "div.s64", "rem.u64", "min.s32", "min.u32",
    "max.u64", "abs.s32", "neg.s32", "and.b32", "or.b32", "xor.b64", "not.b32", "and.pred", "shl.b32", "shl.b16",
    "shr.s32", "shr.u32", "shr.u64", "shr.s16", "setp.lt.f32", "setp.ne.f32", "setp.neu.f32", "setp.gtu.and.f32",
    "setp.equ.f64", "setp.num.f32", "setp.lt.s32", "setp.lo.u32", "setp.eq.u64", "setp.ge.s64", "selp.b32",
    "selp.f32", "testp.notanumber.f32", "testp.finite.f32", "testp.normal.f32", "testp.subnormal.f64",
    "cvt.rn.bf16.f32", "cvt.f32.bf16", "cvt.rn.f16.f32", "cvt.f32.f16", "cvt.rn.f32.f64", "cvt.f64.f32",
    "cvt.rn.f16.f64", "cvt.rni.f32.f32", "cvt.rzi.f32.f32", "cvt.rpi.f32.f32", "cvt.rmi.f64.f64",
    "cvt.rzi.s32.f32", "cvt.rni.s64.f32", "cvt.rzi.u64.f32", "cvt.rmi.u16.f32", "cvt.rzi.s32.f64",
    "cvt.rn.f32.s32", "cvt.rn.f32.u64", "cvt.rn.f64.s64", "cvt.rn.f16.s32", "cvt.s64.s32", "cvt.u64.u32",
    "cvt.u32.u64", "cvt.s8.s32", "mov.b32",
    # fused multiply-add, 64-bit and narrow integers, .ftz, .sat and conversions that round once
    "fma.rn.f16", "fma.rn.bf16", "fma.rn.f64", "mad.rn.f32", "rem.s64", "div.s16", "shl.b64", "shr.u16",
    "add.sat.f16", "mul.sat.f16", "fma.rn.sat.f32", "add.ftz.f16", "abs.ftz.f32", "neg.bf16", "max.f64",
    "min.NaN.f16", "max.ftz.NaN.f32", "setp.lt.ftz.f32", "setp.eq.ftz.f16", "testp.normal.f64",
    "testp.infinite.f64", "testp.number.f32", "cvt.rn.bf16.s32", "cvt.rn.bf16.u64", "cvt.rn.bf16.f64",
    "cvt.rn.f16.s64", "cvt.rn.f32.s64", "cvt.rn.f64.u64", "cvt.rn.f16.u32", "cvt.rzi.u32.f64", "cvt.rmi.s64.f64",
    "cvt.rpi.u64.f64", "cvt.rni.s16.f16", "cvt.rzi.s8.bf16", "cvt.rpi.ftz.s32.f32", "cvt.rn.ftz.f32.f64",
    "cvt.ftz.f32.f16", "cvt.rn.sat.f32.f32", "cvt.rn.sat.f16.f32", "cvt.rn.sat.f16.s32", "cvt.sat.f64.f32",
    "cvt.rni.ftz.f32.f32",
    # directed rounding: toward zero, -inf and +inf
    "add.rz.f32", "add.rm.f32", "add.rp.f32", "sub.rm.f32", "sub.rp.bf16", "mul.rz.f32", "mul.rm.f16",
    "mul.rp.bf16", "fma.rz.f32", "fma.rm.f32", "fma.rp.f16", "fma.rz.bf16", "div.rz.f32", "div.rm.f32",
    "div.rp.f32", "div.rz.f16", "sqrt.rz.f32", "sqrt.rm.f32", "sqrt.rp.f32", "rcp.rz.f32", "rcp.rp.f32",
    "add.rz.ftz.f32", "mul.rm.sat.f32", "add.rm.f16", "cvt.rz.bf16.f32", "cvt.rm.bf16.f32", "cvt.rp.f16.f32",
    "cvt.rz.f32.f64", "cvt.rm.f16.f64", "cvt.rp.bf16.f64", "cvt.rz.ftz.f32.f64", "cvt.rz.f32.s32",
    "cvt.rm.bf16.s64", "cvt.rp.f16.u32", "cvt.rz.f32.u64",
)
# approximate instruction: the operation the domains see
APPROXIMATE = {"ex2.approx.f32": "ex2", "lg2.approx.f32": "lg2", "rsqrt.approx.f32": "rsqrt",
               "tanh.approx.f32": "tanh", "sin.approx.f32": "sin", "cos.approx.f32": "cos", "ex2.approx.f16": "ex2",
               "tanh.approx.bf16": "tanh", "ex2.approx.ftz.f32": "ex2", "rcp.approx.f32": "rcp_approx",
               "rcp.approx.ftz.f64": "rcp_approx", "sqrt.approx.f32": "sqrt_approx", "div.approx.f32": "div_approx",
               "div.full.f32": "div_full", "div.approx.ftz.f32": "div_approx"}
# approximate forms the numpy domain computes exactly: (form, its IEEE counterpart)
COMPUTED_EXACTLY = (("rcp.approx.f32", "rcp.rn.f32"), ("sqrt.approx.f32", "sqrt.rn.f32"),
                    ("div.approx.f32", "div.rn.f32"), ("div.full.f32", "div.rn.f32"),
                    ("sqrt.approx.ftz.f32", "sqrt.rn.ftz.f32"), ("div.approx.ftz.f32", "div.rn.ftz.f32"))
REFUSED = ("mul.hi.u64", "mad.hi.s64", "add.rz.f64", "fma.rm.f64", "cvt.rz.f64.s64", "cvt.rni.f16.f32",
           "cvt.rn.s32.f32", "setp.lo.f32", "setp.equ.s32", "add.sat.s32", "cvt.sat.s8.s32")
# min/max modifiers outside the model: (opcode, the modifier the refusal names)
MIN_MAX_REFUSED = (("min.xorsign.abs.f16", "xorsign"), ("max.abs.f32", "abs"), ("max.relu.bf16", "relu"),
                   ("min.NaN.relu.f16", "relu"))


def f32(x: float) -> int:
    return int(np.float32(x).view(np.uint32))


def f64(x: float) -> int:
    return int(np.float64(x).view(np.uint64))


# (opcode, input bits, the PTX ISA's result, what the case shows)
PINNED = (
    ("div.s64", (1 << 63, 3), 0xD555555555555556, "|INT64_MIN| does not fit an int64: INT64_MIN / 3 keeps its sign"),
    ("div.s64", (2**64 - 45, 1 << 63), 0, "-45 / INT64_MIN truncates to 0"),
    ("rem.s64", (1 << 63, 3), 2**64 - 2, "INT64_MIN % 3 is -2: the remainder takes the dividend's sign"),
    ("shl.b16", (1, 1 << 16), 0, "the u32 shift amount is clamped before it meets the 16-bit operand (65536 > 16)"),
    ("shr.s16", (0x8000, 1 << 16), 0xFFFF, "an arithmetic shift by 65536 fills with the sign"),
    ("cvt.rni.s64.f32", (f32(np.inf),), 2**63 - 1, "+inf clamps to INT64_MAX (float(INT64_MAX) is 2**63)"),
    ("cvt.rni.s64.f32", (f32(2.0**63),), 2**63 - 1, "2**63 clamps to INT64_MAX"),
    ("cvt.rni.s64.f32", (f32(-np.inf),), 1 << 63, "-inf clamps to INT64_MIN"),
    ("cvt.rni.s64.f32", (f32(np.nan),), 1 << 63, "NaN to a 64-bit integer gives 1 << 63"),
    ("cvt.rzi.s32.f64", (f64(np.nan),), 1 << 31, "NaN from an f64 source gives 1 << 31"),
    ("cvt.rzi.s32.f32", (f32(np.nan),), 0, "NaN from an f32 source to a 32-bit integer gives 0"),
    ("cvt.rzi.u64.f32", (f32(2.0**63),), 1 << 63, "2**63 converts exactly to a u64"),
    ("cvt.rzi.u64.f32", (f32(2.0**64 - 2.0**40),), 2**64 - 2**40, "the largest f32 below 2**64 converts exactly"),
    ("cvt.rzi.u64.f32", (f32(2.0**64),), 2**64 - 1, "2**64 saturates to UINT64_MAX"),
    ("cvt.rzi.u64.f32", (f32(np.nan),), 1 << 63, "NaN to a u64 gives 1 << 63"),
    ("min.f32", (0x80000000, 0), 0x80000000, "-0.0 counts as smaller than +0.0"),
    ("min.f32", (0, 0x80000000), 0x80000000, "-0.0 counts as smaller than +0.0, in either position"),
    ("max.f32", (0, 0x80000000), 0, "+0.0 counts as larger than -0.0"),
    ("max.f32", (0x80000000, 0), 0, "+0.0 counts as larger than -0.0, in either position"),
    ("min.f32", (0x7FC00001, f32(2.0)), f32(2.0), "min of a NaN and a number is the number"),
    ("min.f32", (0x7FC00001, 0xFFC00002), 0x7FFFFFFF, "min of two NaNs is the canonical NaN"),
    ("max.NaN.f32", (f32(2.0), 0x7FC00001), 0x7FFFFFFF, "max.NaN of a NaN is the canonical NaN"),
    ("add.sat.f32", (0x80000000, 0x80000000), 0, "saturation clamps to [+0.0, 1.0] (SASS): -0.0 becomes +0.0"),
    ("add.sat.f32", (f32(np.nan), 0), 0, ".sat turns NaN into +0.0"),
    ("add.sat.f16", (0x8000, 0x8000), 0, "-0.0 saturates to +0.0 in f16 too"),
    ("mul.sat.f16", (0xBC00, 0), 0, "-1 * +0.0 = -0.0 saturates to +0.0"),
    ("testp.normal.f32", (0,), True, "testp counts +0.0 as normal"),
    ("testp.normal.f32", (0x80000000,), True, "testp counts -0.0 as normal"),
    ("testp.normal.f32", (1,), False, "a subnormal is not normal"),
    ("add.ftz.f16", (1, 0), 0, ".ftz flushes f16 subnormals (below 2**-14), not only float32's"),
    ("setp.eq.ftz.f32", (1, 0), True, "setp.ftz compares flushed operands: the smallest subnormal equals 0"),
    ("setp.eq.f32", (1, 0), False, "without .ftz a subnormal is not zero"),
    ("cvt.rpi.ftz.s32.f32", (1,), 0, "cvt.ftz flushes an f32 subnormal source before rounding up"),
    ("cvt.rpi.s32.f32", (1,), 1, "without .ftz a positive subnormal rounds up to 1"),
    ("cvt.rn.sat.f32.f64", (f64(-0.5),), 0, "cvt.sat with a float destination clamps to [+0.0, 1.0]"),
    ("cvt.rn.sat.f16.f32", (f32(np.nan),), 0, "cvt.sat turns NaN into +0.0"),
    ("cvt.rn.sat.f32.s32", (7,), f32(1.0), "cvt.sat from an integer clamps to 1.0"),
    ("fma.rn.f16", (0x3F00, 0x3894, 0x8001), 0x3C01,
     "1.75 * 0.572265625 - 2**-24: rounding via float32 lands on an f16 tie"),
    ("fma.rn.f32", (f32(3.0), f32(5592409 / 2**24), f32(-(2.0**-60))), 0x3F800005,
     "3 * b lies on a float32 tie that c moves off; rounding via float64 lands back on the tie"),
    ("fma.rn.f64", (f64(1 + 2**-52), f64(1 - 2**-52), f64(-1.0)), f64(-(2.0**-104)),
     "fused: a * b is not rounded before the sum"),
    ("fma.rn.f64", (f64(2.0**1000), f64(2.0**100), f64(-np.inf)), f64(-np.inf),
     "a product beyond float64 plus -inf is -inf, not NaN"),
    ("fma.rn.f64", (f64(2.0**-600), f64(2.0**-600), f64(-0.0)), 0, "a positive product below every subnormal: +0.0"),
    ("fma.rn.f64", (f64(-(2.0**-600)), f64(2.0**-600), f64(0.0)), f64(-0.0), "a negative one gives -0.0"),
    ("fma.rn.f64", (f64(1.0), f64(-0.0), f64(-0.0)), f64(-0.0), "-0.0 + -0.0 stays -0.0"),
    ("fma.rn.f64", (f64(3.0), f64(1 / 3), f64(-1.0)), f64(-(2.0**-54)), "the exact residual of 3 * fl(1/3) - 1"),
    ("cvt.rn.bf16.s32", (0x40BFFFFF,), 0x4E81, "an integer rounds once to bf16 (via float32 it rounds twice)"),
    ("cvt.rn.bf16.s64", (2**62 + 3 * 2**54 - 1,), 0x5E81, "a 64-bit integer rounds once to bf16 (via float64, twice)"),
    ("cvt.rn.f32.u64", (2**64 - 1,), f32(2.0**64), "UINT64_MAX rounds to 2**64"),
    ("cvt.rn.bf16.f64", (f64(1 + 2**-7 + 2**-8 - 2**-40),), 0x3F81, "f64 rounds once to bf16 (via float32, twice)"),
    ("cvt.rn.f16.f64", (f64(1 + 2**-11 + 2**-40),), 0x3C01, "f64 rounds once to f16: just above a tie rounds up"),
    ("add.rz.f32", (f32(1.0), f32(2.0**-30)), f32(1.0), "toward zero: a small positive addend is dropped"),
    ("add.rp.f32", (f32(1.0), f32(2.0**-30)), f32(1.0) + 1, "toward +inf: it moves the sum up one ulp"),
    ("add.rm.f32", (f32(1.0), f32(-(2.0**-30))), f32(1.0) - 1, "toward -inf: a small negative addend moves it down"),
    ("add.rm.f32", (f32(1.0), f32(-1.0)), 0x80000000, "an exact zero sum is -0.0 toward -inf"),
    ("add.rz.f32", (f32(1.0), f32(-1.0)), 0, "and +0.0 in every other mode"),
    ("add.rm.f32", (0, 0), 0, "but +0.0 + +0.0 stays +0.0 toward -inf"),
    ("mul.rz.f32", (0x7F7FFFFF, f32(2.0)), 0x7F7FFFFF, "overflow toward zero gives the largest finite number"),
    ("mul.rm.f32", (0x7F7FFFFF, f32(-2.0)), 0xFF800000, "overflow toward -inf of a negative product is -inf"),
    ("mul.rp.f32", (1, f32(0.5)), 1, "a positive product below the smallest subnormal rounds up to it"),
    ("mul.rm.f32", (1, f32(-0.5)), 0x80000001, "a negative one rounds down to minus the smallest subnormal"),
    ("div.rz.f32", (f32(1.0), f32(3.0)), 0x3EAAAAAA, "1/3 toward zero (nearest is 0x3EAAAAAB)"),
    ("div.rp.f32", (f32(2.0), f32(3.0)), 0x3F2AAAAB, "2/3 toward +inf (nearest is also 0x3F2AAAAB)"),
    ("div.rm.f32", (f32(2.0), f32(3.0)), 0x3F2AAAAA, "2/3 toward -inf"),
    ("sqrt.rz.f32", (f32(2.0),), 0x3FB504F3, "sqrt(2) toward zero (nearest rounds down too)"),
    ("sqrt.rp.f32", (f32(2.0),), 0x3FB504F4, "sqrt(2) toward +inf"),
    ("sqrt.rp.f32", (f32(4.0),), f32(2.0), "an exact square root is not moved"),
    ("cvt.rz.bf16.f32", (0x3F81FFFF,), 0x3F81, "toward zero to bf16 truncates the low bits"),
    ("cvt.rp.bf16.f32", (0x3F810001,), 0x3F82, "toward +inf, any low bit rounds up"),
    ("cvt.rm.bf16.f32", (0xBF810001,), 0xBF82, "toward -inf, a negative value with low bits rounds away from zero"),
    ("cvt.rz.f32.s32", (16777217,), f32(16777216.0), "2**24 + 1 toward zero"),
    ("cvt.rp.f32.s32", (16777217,), f32(16777218.0), "2**24 + 1 toward +inf"),
)


def specials(type_: str) -> list[int]:
    if type_ in FLOAT_TYPES:
        exponent, significand = FORMATS[type_]
        field, unit = ((1 << exponent) - 1) << (significand - 1), 1 << (significand - 1)
        one, quiet = ((1 << (exponent - 1)) - 1) << (significand - 1), unit >> 1
        magnitudes = [0, field, field | quiet, field | 1, one, one - unit, one + quiet, one + unit,
                      one + unit + (quiet >> 1), 1, unit - 1, unit, field - 1]
        return magnitudes + [m | (1 << (exponent + significand - 1)) for m in magnitudes]
    mask, sign = (1 << width(type_)) - 1, 1 << (width(type_) - 1)
    return [0, 1, 2, 3, 7, mask, mask - 6, sign - 1, sign, sign + 1, mask >> 1, 1 << (width(type_) // 2)]


def typical(type_: str, rng: np.random.Generator) -> list[int]:
    if type_ not in FLOAT_TYPES:
        return [int(x) & ((1 << width(type_)) - 1) for x in rng.integers(-1000, 1000, N)]
    values = rng.standard_normal(N) * 10.0 ** rng.integers(-4, 5, N)
    dtype = {"f16": np.float16, "bf16": np.float32, "f32": np.float32, "f64": np.float64}[type_]
    return [int(b) >> (16 if type_ == "bf16" else 0) for b in values.astype(dtype).view(f"u{dtype().itemsize}")]


def draw(type_: str, rng: np.random.Generator, shift_amount: bool) -> list[int]:
    """N inputs mixing special values, typical values and random bits."""
    if type_ == "pred":
        return [int(b) for b in rng.integers(0, 2, N)]
    random_bits = [int(x) & ((1 << width(type_)) - 1) for x in np.frombuffer(rng.bytes(8 * N), np.uint64)]
    pools = [list(range(41)) if shift_amount else specials(type_), typical(type_, rng), random_bits]
    return [pools[p][rng.integers(len(pools[p]))] for p in rng.integers(len(pools), size=N)]


def operand_types(op: Op) -> tuple[str, ...]:
    return SEMANTICS[op.base].operands(op)


def inputs_for(opcode: str) -> list[list[int]]:
    op, rng = decode(opcode), np.random.default_rng(zlib.crc32(opcode.encode()))
    sources = operand_types(op)[1:]
    return [draw(t, rng, op.base in ("shl", "shr") and i == 1) for i, t in enumerate(sources)]


def numpy_meaning(op: Op, columns: list[list[int]]) -> np.ndarray:
    arrays = [np.array(c, dtype=storage(t)) for c, t in zip(columns, operand_types(op)[1:])]
    return SEMANTICS[op.base].meaning(NumpyDomain(N), op, arrays)


def z3_meaning(domain: Z3Domain, op: Op, inputs: tuple[int, ...]) -> int | bool:
    args = [domain.constant(v, t) for v, t in zip(inputs, operand_types(op)[1:])]
    return concrete(SEMANTICS[op.base].meaning(domain, op, args))


def divides_by_zero(op: Op, inputs: tuple[int, ...]) -> bool:
    return op.base in ("div", "rem") and op.type not in FLOAT_TYPES and inputs[1] == 0


@pytest.mark.parametrize("opcode", OPCODES)
def test_domains_agree(opcode: str) -> None:
    op, columns = decode(opcode), inputs_for(opcode)
    want, domain = numpy_meaning(op, columns), Z3Domain()
    compared = 0
    for lane, inputs in enumerate(zip(*columns)):
        if divides_by_zero(op, inputs):
            continue
        got, expected = z3_meaning(domain, op, inputs), want[lane].item()
        assert expected == got, f"{opcode} {[hex(v) for v in inputs]}: numpy {expected:#x}, z3 {got:#x}"
        compared += 1
    assert compared >= N // 4


@pytest.mark.parametrize(("opcode", "inputs", "ptx"), [case[:3] for case in PINNED], ids=[c[0] for c in PINNED])
def test_symbolic_domain_follows_ptx(opcode: str, inputs: tuple[int, ...], ptx: int | bool) -> None:
    assert z3_meaning(Z3Domain(), decode(opcode), inputs) == ptx


@pytest.mark.parametrize(("opcode", "inputs", "ptx"), [case[:3] for case in PINNED], ids=[c[0] for c in PINNED])
@pytest.mark.parametrize("lanes", [1, 3, N])  # numpy's loops differ by length (scalar or SIMD)
def test_numpy_domain_follows_ptx(opcode: str, inputs: tuple[int, ...], ptx: int | bool, lanes: int) -> None:
    op = decode(opcode)
    arrays = [np.full(lanes, v, dtype=storage(t)) for v, t in zip(inputs, operand_types(op)[1:])]
    got = SEMANTICS[op.base].meaning(NumpyDomain(lanes), op, arrays)
    assert [x.item() for x in got] == [ptx] * lanes


def applications(term: z3.ExprRef, function: z3.FuncDeclRef) -> list[tuple[z3.ExprRef, ...]]:
    """The arguments of every application of `function` inside `term`."""
    found, stack, seen = [], [term], set()
    while stack:
        node = stack.pop()
        if node.get_id() not in seen:
            seen.add(node.get_id())
            found += [tuple(node.children())] if z3.is_app(node) and node.decl() == function else []
            stack.extend(node.children())
    return found


@pytest.mark.parametrize("opcode", APPROXIMATE)
def test_approximate_instructions_are_uninterpreted(opcode: str) -> None:
    op, domain, name = decode(opcode), Z3Domain(), APPROXIMATE[opcode]
    count = len(operand_types(op)) - 1
    xs, ys = (z3.BitVecs(" ".join(f"{v}{i}" for i in range(count)), width(op.type)) for v in "xy")
    first, second = (SEMANTICS[op.base].meaning(domain, op, list(v)) for v in (xs, ys))
    function = domain.functions[(name, op.type)]
    assert list(domain.functions) == [(name, op.type)]  # both calls share one function
    (arguments,) = applications(first, function)
    assert applications(second, function) and domain.approximation(name, op.type).eq(function)
    if not op.has("ftz"):
        assert all(a.eq(z3.fpBVToFP(x, float_sort(op.type))) for a, x in zip(arguments, xs, strict=True))


def test_approximate_names_are_distinct_functions() -> None:
    domain = Z3Domain()
    assert not domain.approximation("ex2", "f32").eq(domain.approximation("lg2", "f32"))
    assert not domain.approximation("ex2", "f32").eq(domain.approximation("ex2", "f16"))
    assert not domain.approximation("div_approx", "f32").eq(domain.approximation("div_full", "f32"))
    assert domain.approximation("div_full", "f32").arity() == 2


@pytest.mark.parametrize(("approximate", "ieee"), COMPUTED_EXACTLY)
def test_numpy_domain_computes_approximate_forms_exactly(approximate: str, ieee: str) -> None:
    np.testing.assert_array_equal(numpy_meaning(decode(approximate), inputs_for(ieee)),
                                  numpy_meaning(decode(ieee), inputs_for(ieee)))


@pytest.mark.parametrize(("opcode", "modifier"), MIN_MAX_REFUSED)
def test_min_max_modifiers_outside_the_model_are_named(opcode: str, modifier: str) -> None:
    op = decode(opcode)
    for domain in (NumpyDomain(1), Z3Domain()):
        with pytest.raises(NotModelled, match=rf"modifier \.{modifier}$"):
            SEMANTICS[op.base].meaning(domain, op, [domain.constant(1, t) for t in operand_types(op)[1:]])


@pytest.mark.parametrize("opcode", ["div.s32", "div.u64", "rem.s32", "rem.u16", "div.rn.f32"])
def test_definedness_agrees(opcode: str) -> None:
    op, columns = decode(opcode), inputs_for(opcode)
    columns[1] = [0 if lane % 3 == 0 else v for lane, v in enumerate(columns[1])]
    arrays = [np.array(c, dtype=storage(t)) for c, t in zip(columns, operand_types(op)[1:])]
    want, domain = UNDEFINED[op.base](NumpyDomain(N), op, arrays), Z3Domain()
    for lane, inputs in enumerate(zip(*columns)):
        got = UNDEFINED[op.base](domain, op, [domain.constant(v, t) for v, t in zip(inputs, operand_types(op)[1:])])
        assert (got is None) if want is None else concrete(got) == bool(want[lane])


@pytest.mark.parametrize("opcode", REFUSED)
def test_refusals_agree(opcode: str) -> None:
    op = decode(opcode)
    for domain in (NumpyDomain(1), Z3Domain()):
        with pytest.raises(NotModelled):
            SEMANTICS[op.base].meaning(domain, op, [domain.constant(1, t) for t in operand_types(op)[1:]])


def test_every_instruction_is_compared() -> None:
    assert {decode(opcode).base for opcode in OPCODES + tuple(APPROXIMATE)} == set(SEMANTICS)


def near_ties(type_: str, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """fma inputs a = 3, b = k * 2**(s - p) for odd k, so that a * b = 3k * 2**(s - p) has p + 1 bits
    and lies on a tie of the format (p significand bits); c = +-2**(s - d) is far smaller and moves
    the sum just off the tie. With the result, one rounding gives: the neighbour on c's side."""
    p = FORMATS[type_][1]
    smallest = 2 - (1 << (FORMATS[type_][0] - 1)) - (p - 1)  # the exponent of the smallest subnormal
    cases = []
    for k, s, d, sign in zip(rng.integers(-(-(1 << p) // 3), ((2 << p) - 1) // 3, N) | 1, rng.integers(-3, 4, N),
                             rng.integers(p + 1, p + 40, N), rng.choice([-1, 1], N)):
        d = min(int(d), int(s) - smallest)
        cases.append((3.0, int(k) * 2.0 ** (s - p), sign * 2.0 ** (s - d), (3 * int(k) + sign) * 2.0 ** (s - p)))
    return cases


@pytest.mark.parametrize("type_", ["f32", "f16", "bf16", "f64"])
def test_fma_rounds_once_off_a_tie(type_: str) -> None:
    op, domain = decode(f"fma.rn.{type_}"), Z3Domain()
    cases = near_ties(type_, np.random.default_rng(zlib.crc32(type_.encode())))
    columns = [[int(from_float(np.array([case[i]]), type_)[0]) for case in cases] for i in range(4)]
    want = numpy_meaning(op, columns[:3])
    for lane, inputs in enumerate(zip(*columns[:3])):
        assert want[lane].item() == z3_meaning(domain, op, inputs) == columns[3][lane], [hex(v) for v in inputs]


@pytest.mark.parametrize("opcode", ["add.rn.f16", "min.f32", "max.NaN.bf16", "add.s64"])
def test_results_are_determined_symbolically(opcode: str) -> None:
    """Commutative instructions give the same bits both ways for all inputs, NaNs and zeros included:
    nothing is left to z3's unspecified cases (NaN bits, the sign of min/max of zeros)."""
    op, domain = decode(opcode), Z3Domain()
    x, y = z3.BitVecs("x y", width(op.type))
    meaning = SEMANTICS[op.base].meaning
    solver = z3.Solver()
    solver.add(meaning(domain, op, [x, y]) != meaning(domain, op, [y, x]))
    assert solver.check() == z3.unsat


def test_concrete_refuses_symbolic_terms() -> None:
    assert concrete(Z3Domain().constant(1, "pred")) is True
    with pytest.raises(ValueError):
        concrete(z3.BitVec("x", 32) + 1)
