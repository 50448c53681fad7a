"""Accurate float32 transcendental functions, written once over a small set of primitive
operations. `PtxMath` emits them as PTX; `NumpyMath` evaluates the same formulas in float32 on the
CPU, so their accuracy is tested without a GPU.

Each function is built from IEEE-exact operations (fma, mul, add, div with round-to-nearest) and
one hardware approximation, ex2.approx on an argument reduced to [-0.5, 0.5]. The polynomial
coefficients are least-squares fits made by `fit_coefficients` below."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ptxgen.ptx import PtxWriter, f32_literal

LOG2E = 1.4426950408889634
LN2_HI = float(np.float32(math.log(2)))
LN2_LO = float(np.float32(math.log(2) - LN2_HI))
SQRT_HALF_BITS = 0x3F3504F3  # float32 bits of sqrt(0.5)
# 1.5 * 2**23: ROUNDER + v, for |v| < 2**22, rounds v to the nearest integer n (ties to even) and holds
# ROUNDER_BITS + n in its bits.
ROUNDER = 12582912.0
ROUNDER_BITS = 0x4B400000
# log(1 + f) = f - (f*f/2 - s*(f*f/2 + R(s*s))), s = f / (2 + f): R's coefficients (atanh series).
LOG_SERIES = (2 / 3, 2 / 5, 2 / 7, 2 / 9)
# erf(x) = x * P(x*x) on [0, 1]; erf(x) = 1 - exp(Q(x)) on [1, 4]; 1 beyond (fit_coefficients).
ERF_SMALL = (1.128379225730896, -0.3761262893676758, 0.11283612251281738, -0.026854807510972023,
             0.005190051626414061, -0.0008024335256777704, 7.898139301687479e-05)
ERF_LARGE = (0.00021513916726689786, -1.1296740770339966, -0.6331323385238647, -0.10832048952579498,
             0.024907849729061127, -0.0038914422038942575, 0.0002602518070489168,
             4.10527027270291e-05, -1.2782881640305277e-05, 1.3800726037516142e-06,
             -5.805837943739789e-08)


# tanh(x) = x * T(x*x) on [0, 0.55] (fit_coefficients); 1 - 2 / (e**2|x| + 1) beyond.
TANH_SMALL = (1.0, -0.33333316445350647, 0.13332559168338776, -0.053850606083869934,
              0.021066898480057716, -0.006269234232604504)
TANH_SPLIT = 0.55
# expm1(x) = x * E(x) on [-0.5, 0.5]: E's coefficients are 1/(k+1)! (Taylor; error below 2**-30).
EXPM1_SMALL = tuple(1 / math.factorial(k + 1) for k in range(9))
EXPM1_SPLIT = 0.5
APPROX_SMALL = 2.0**-5  # approximate forms switch to a short series below this magnitude


class Math(Protocol):
    """The primitive float32 operations the functions below are written in."""

    def const(self, value: float) -> object: ...
    def fma(self, a: object, b: object, c: object) -> object: ...
    def mul(self, a: object, b: object) -> object: ...
    def add(self, a: object, b: object) -> object: ...
    def sub(self, a: object, b: object) -> object: ...
    def div(self, a: object, b: object) -> object: ...  # IEEE, round to nearest
    def div_fast(self, a: object, b: object) -> object: ...  # within 2 ulp
    def sqrt(self, a: object) -> object: ...  # IEEE, round to nearest
    def rcp(self, a: object) -> object: ...  # IEEE, round to nearest
    def abs(self, a: object) -> object: ...
    def neg(self, a: object) -> object: ...
    def max_nan(self, a: object, b: object) -> object: ...
    def min_nan(self, a: object, b: object) -> object: ...
    def trunc(self, a: object) -> object: ...  # to the integer toward zero
    def ex2_approx(self, a: object) -> object: ...
    def lg2_approx(self, a: object) -> object: ...
    def tanh_approx(self, a: object) -> object: ...
    def rsqrt_approx(self, a: object) -> object: ...
    def sin_approx(self, a: object) -> object: ...
    def cos_approx(self, a: object) -> object: ...
    # (2**h, 2**(n - h)), h = floor(n / 2), for t = ROUNDER + n, n an integer in [-150, 130]
    def pow2_halves(self, t: object) -> tuple[object, object]: ...
    def split_exponent(self, a: object) -> tuple[object, object]: ...  # (m, e): a = m * 2**e, m in [sqrt(.5), sqrt(2))
    def less(self, a: object, b: object) -> object: ...
    def equal(self, a: object, b: object) -> object: ...
    def unequal(self, a: object, b: object) -> object: ...  # unordered: true when either is NaN
    def select(self, pred: object, a: object, b: object) -> object: ...
    def copysign(self, magnitude: object, sign: object) -> object: ...


def horner(m: Math, coefficients: tuple[float, ...], u: object) -> object:
    acc = m.const(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = m.fma(acc, u, m.const(c))
    return acc


def exp(m: Math, x: object) -> object:
    """e**x: x = n*ln2 + r (Cody-Waite, with fma), e**r by ex2.approx, 2**n in two exact steps.
    n is rounded by adding ROUNDER in the fma that forms x*log2(e), and 2**n is built from that
    sum's bits: no conversion instructions (a quarter of the float pipe's rate on sm_80 to sm_90)."""
    x = m.min_nan(m.max_nan(x, m.const(-104.0)), m.const(89.0))
    t = m.fma(x, m.const(LOG2E), m.const(ROUNDER))
    n = m.sub(t, m.const(ROUNDER))
    r = m.fma(n, m.const(-LN2_HI), x)
    r = m.fma(n, m.const(-LN2_LO), r)
    p = m.ex2_approx(m.mul(r, m.const(LOG2E)))
    low, high = m.pow2_halves(t)
    return m.mul(m.mul(p, low), high)


def log(m: Math, x: object) -> object:
    """Natural log: x = m * 2**e, log(m) = log(1 + f) by the atanh series in s = f / (2 + f)."""
    mantissa, e = m.split_exponent(x)
    f = m.sub(mantissa, m.const(1.0))
    s = m.div_fast(f, m.add(f, m.const(2.0)))  # s only scales a small correction term
    z = m.mul(s, s)
    r = m.mul(z, horner(m, LOG_SERIES, z))
    hfsq = m.mul(m.mul(f, f), m.const(0.5))
    tail = m.fma(e, m.const(LN2_LO), m.mul(s, m.add(hfsq, r)))
    log1pf = m.sub(f, m.sub(hfsq, tail))
    result = m.fma(e, m.const(LN2_HI), log1pf)
    result = m.select(m.equal(x, m.const(math.inf)), x, result)
    result = m.select(m.equal(x, m.const(0.0)), m.const(-math.inf), result)
    result = m.select(m.less(x, m.const(0.0)), m.const(math.nan), result)
    return m.select(m.equal(x, x), result, x)  # NaN in, NaN out


def log1p(m: Math, x: object) -> object:
    """log(1 + x) without cancellation: log(u) * x / (u - 1) with u = 1 + x (Goldberg)."""
    u = m.add(x, m.const(1.0))
    corrected = m.mul(log(m, u), m.div_fast(x, m.sub(u, m.const(1.0))))
    exact_one = m.equal(u, m.const(1.0))
    result = m.select(exact_one, x, corrected)
    return m.select(m.equal(u, m.const(math.inf)), u, result)


def expm1(m: Math, x: object) -> object:
    """e**x - 1: x * E(x) near 0 (no cancellation), e**x - 1 elsewhere."""
    near_zero = m.mul(x, horner(m, EXPM1_SMALL, x))
    far = m.sub(exp(m, x), m.const(1.0))
    return m.select(m.less(m.abs(x), m.const(EXPM1_SPLIT)), near_zero, far)


def tanh(m: Math, x: object) -> object:
    """x * T(x*x) near 0; 1 - 2 / (e**2|x| + 1) with x's sign elsewhere (e**2|x| may be inf: 1)."""
    a = m.abs(x)
    near_zero = m.mul(a, horner(m, TANH_SMALL, m.mul(a, a)))
    far = m.sub(m.const(1.0), m.div_fast(m.const(2.0), m.add(exp(m, m.add(a, a)), m.const(1.0))))
    return m.copysign(m.select(m.less(a, m.const(TANH_SPLIT)), near_zero, far), x)


def sigmoid(m: Math, x: object) -> object:
    """1 / (1 + e**-x) for x >= 0, e**x / (1 + e**x) below: no overflow, full relative accuracy."""
    e = exp(m, m.sub(m.const(0.0), m.abs(x)))
    reciprocal = m.div_fast(m.const(1.0), m.add(m.const(1.0), e))
    return m.select(m.less(x, m.const(0.0)), m.mul(e, reciprocal), reciprocal)


def erf(m: Math, x: object) -> object:
    a = m.abs(x)
    small = m.mul(a, horner(m, ERF_SMALL, m.mul(a, a)))
    large = m.sub(m.const(1.0), exp(m, horner(m, ERF_LARGE, m.min_nan(a, m.const(4.0)))))
    magnitude = m.select(m.less(a, m.const(1.0)), small, large)
    magnitude = m.select(m.less(m.const(4.0), a), m.const(1.0), magnitude)
    return m.copysign(magnitude, x)


def log2(m: Math, x: object) -> object:
    return m.mul(log(m, x), m.const(LOG2E))


def rsqrt(m: Math, x: object) -> object:
    return m.rcp(m.sqrt(x))


def exp2(m: Math, x: object) -> object:
    """2**x: ex2.approx.f32 itself (relative error below 2**-22 in the PTX ISA), in both forms."""
    return m.ex2_approx(x)


def power(m: Math, x: object, y: object, exponent: float | None = None) -> object:
    """x**y. `exponent`: y's value where it is a constant known when the kernel is written; small
    integral ones (0 to 4) are products, 0.5 a square root; otherwise exp(y log|x|), with the sign of
    x**y for negative x and integral y, NaN for negative x and fractional y."""
    if exponent is not None and float(exponent).is_integer() and 0 <= exponent <= 4:
        result = m.const(1.0)
        for _ in range(int(exponent)):
            result = m.mul(result, x)
        return result
    if exponent == 0.5:
        return m.sqrt(x)
    magnitude = exp(m, m.mul(y, log(m, m.abs(x))))
    half = m.mul(y, m.const(0.5))
    odd = m.unequal(m.trunc(half), half)
    signed = m.select(odd, m.neg(magnitude), magnitude)
    integral = m.equal(m.trunc(y), y)
    nan_if_fractional = m.select(integral, signed, m.const(math.nan))
    return m.select(m.less(x, m.const(0.0)), nan_if_fractional, magnitude)


FUNCTIONS = {"exp": exp, "log": log, "log1p": log1p, "expm1": expm1, "tanh": tanh,
             "sigmoid": sigmoid, "erf": erf, "log2": log2, "rsqrt": rsqrt, "exp2": exp2}


# Approximate forms: hardware approximations (relative error near 2**-22, tanh near 2**-11), for
# kernels whose results are rounded to bf16 or f16, far coarser than these errors.


def exp_approx(m: Math, x: object) -> object:
    return m.ex2_approx(m.mul(x, m.const(LOG2E)))


def log_approx(m: Math, x: object) -> object:
    return m.mul(m.lg2_approx(x), m.const(math.log(2)))


def expm1_approx(m: Math, x: object) -> object:
    series = m.mul(x, horner(m, EXPM1_SMALL[:3], x))
    far = m.sub(exp_approx(m, x), m.const(1.0))
    return m.select(m.less(m.abs(x), m.const(APPROX_SMALL)), series, far)


def log1p_approx(m: Math, x: object) -> object:
    series = m.mul(x, horner(m, (1.0, -1 / 2, 1 / 3, -1 / 4), x))
    far = log_approx(m, m.add(x, m.const(1.0)))
    return m.select(m.less(m.abs(x), m.const(APPROX_SMALL)), series, far)


def sigmoid_approx(m: Math, x: object) -> object:
    return m.div_fast(m.const(1.0), m.add(m.const(1.0), exp_approx(m, m.sub(m.const(0.0), x))))


def erf_approx(m: Math, x: object) -> object:
    a = m.abs(x)
    small = m.mul(a, horner(m, ERF_SMALL, m.mul(a, a)))
    large = m.sub(m.const(1.0), exp_approx(m, horner(m, ERF_LARGE, m.min_nan(a, m.const(4.0)))))
    magnitude = m.select(m.less(a, m.const(1.0)), small, large)
    return m.copysign(m.select(m.less(m.const(4.0), a), m.const(1.0), magnitude), x)


APPROX_FUNCTIONS = {"exp": exp_approx, "log": log_approx, "log1p": log1p_approx, "expm1": expm1_approx,
                    "tanh": lambda m, x: m.tanh_approx(x), "sigmoid": sigmoid_approx, "erf": erf_approx,
                    "log2": lambda m, x: m.lg2_approx(x), "rsqrt": lambda m, x: m.rsqrt_approx(x), "exp2": exp2,
                    "sin": lambda m, x: m.sin_approx(x), "cos": lambda m, x: m.cos_approx(x)}


FORMS: dict[bool, dict[str, Callable[..., object]]] = {
    False: {**FUNCTIONS, "div": lambda m, a, b: m.div(a, b)},
    True: {**APPROX_FUNCTIONS, "div": lambda m, a, b: m.div_fast(a, b)},
}


def recipe(name: str, approx: bool) -> Callable[..., object] | None:
    """The formula an op of this name is computed by (None: it has none in this form). These
    formulas are the meaning the prover gives the ops that have no exact IEEE one: a kernel is
    proved to compute them exactly; their accuracy is what tests/test_mathlib.py measures."""
    return FORMS[approx].get(name)


class PtxMath:
    """Emits each primitive as PTX instructions on float32 registers."""

    def __init__(self, w: PtxWriter) -> None:
        self.w = w

    def const(self, value: float) -> str:
        return self.w.const_f32(value)

    def fma(self, a: str, b: str, c: str) -> str:
        return self.w.fma(a, b, c)

    def mul(self, a: str, b: str) -> str:
        return self.w.mul(a, b)

    def add(self, a: str, b: str) -> str:
        return self.w.add(a, b)

    def sub(self, a: str, b: str) -> str:
        return self.w.sub(a, b)

    def div(self, a: str, b: str) -> str:
        return self.w.op("f32", "div.rn.f32 {}, {}, {}", a, b)

    def div_fast(self, a: str, b: str) -> str:
        return self.w.op("f32", "div.full.f32 {}, {}, {}", a, b)

    def sqrt(self, a: str) -> str:
        return self.w.op("f32", "sqrt.rn.f32 {}, {}", a)

    def rcp(self, a: str) -> str:
        return self.w.op("f32", "rcp.rn.f32 {}, {}", a)

    def abs(self, a: str) -> str:
        return self.w.op("f32", "abs.f32 {}, {}", a)

    def neg(self, a: str) -> str:
        return self.w.op("f32", "neg.f32 {}, {}", a)

    def max_nan(self, a: str, b: str) -> str:
        return self.w.op("f32", "max.NaN.f32 {}, {}, {}", a, b)

    def min_nan(self, a: str, b: str) -> str:
        return self.w.op("f32", "min.NaN.f32 {}, {}, {}", a, b)

    def trunc(self, a: str) -> str:
        return self.w.op("f32", "cvt.rzi.f32.f32 {}, {}", a)

    def ex2_approx(self, a: str) -> str:
        return self.w.op("f32", "ex2.approx.f32 {}, {}", a)

    def lg2_approx(self, a: str) -> str:
        return self.w.op("f32", "lg2.approx.f32 {}, {}", a)

    def tanh_approx(self, a: str) -> str:
        return self.w.op("f32", "tanh.approx.f32 {}, {}", a)

    def rsqrt_approx(self, a: str) -> str:
        return self.w.op("f32", "rsqrt.approx.f32 {}, {}", a)

    def sin_approx(self, a: str) -> str:
        return self.w.op("f32", "sin.approx.f32 {}, {}", a)

    def cos_approx(self, a: str) -> str:
        return self.w.op("f32", "cos.approx.f32 {}, {}", a)

    def pow2_halves(self, t: str) -> tuple[str, str]:
        w = self.w
        n = w.op("b32", f"sub.s32 {{}}, {{}}, {ROUNDER_BITS}", w.op("b32", "mov.b32 {}, {}", t))
        low = w.op("b32", "shr.s32 {}, {}, 1", n)
        high = w.op("b32", "sub.s32 {}, {}, {}", n, low)
        return (self._pow2_bits(low), self._pow2_bits(high))

    def _pow2_bits(self, k: str) -> str:
        """2**k for an integer k in [-126, 127]: (k + 127) << 23 as float32 bits."""
        return self.w.op("f32", "mov.b32 {}, {}", self.w.op("b32", "mad.lo.s32 {}, {}, 8388608, 1065353216", k))

    def split_exponent(self, a: str) -> tuple[str, str]:
        w = self.w
        tiny = w.setp("lt", a, f32_literal(2.0**-126))
        scaled = w.select(tiny, w.mul(a, w.const_f32(2.0**23)), a)
        bits = w.op("b32", "mov.b32 {}, {}", scaled)
        offset = w.op("b32", "sub.s32 {}, {}, %d" % SQRT_HALF_BITS, bits)
        exponent = w.op("b32", "shr.s32 {}, {}, 23", offset)
        shifted = w.op("b32", "shl.b32 {}, {}, 23", exponent)
        mantissa = w.op("f32", "mov.b32 {}, {}", w.op("b32", "sub.s32 {}, {}, {}", bits, shifted))
        e = w.op("f32", "cvt.rn.f32.s32 {}, {}", exponent)
        return mantissa, w.select(tiny, w.sub(e, w.const_f32(23.0)), e)

    def less(self, a: str, b: str) -> str:
        return self.w.setp("lt", a, b)

    def equal(self, a: str, b: str) -> str:
        return self.w.setp("eq", a, b)

    def unequal(self, a: str, b: str) -> str:
        return self.w.setp("neu", a, b)

    def select(self, pred: str, a: str, b: str) -> str:
        return self.w.select(pred, a, b)

    def copysign(self, magnitude: str, sign: str) -> str:
        return self.w.op("f32", "copysign.f32 {}, {}, {}", sign, magnitude)


class NumpyMath:
    """The same primitives in numpy float32 (fma through float64, ex2.approx as exact 2**x)."""

    def const(self, value: float) -> np.ndarray:
        return np.float32(value)

    def fma(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.float32(a) * np.float32(b)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.float32(a) + np.float32(b)

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.float32(a) - np.float32(b)

    def div(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.float32(a) / np.float32(b)

    def div_fast(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.float32(a) / np.float32(b)

    def sqrt(self, a: np.ndarray) -> np.ndarray:
        return np.sqrt(np.float32(a))

    def rcp(self, a: np.ndarray) -> np.ndarray:
        return np.float32(1.0) / np.float32(a)

    def abs(self, a: np.ndarray) -> np.ndarray:
        return np.abs(a)

    def neg(self, a: np.ndarray) -> np.ndarray:
        return -np.float32(a)

    def max_nan(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    def min_nan(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.minimum(a, b)

    def trunc(self, a: np.ndarray) -> np.ndarray:
        return np.trunc(a).astype(np.float32)

    def ex2_approx(self, a: np.ndarray) -> np.ndarray:
        return np.exp2(np.float64(a)).astype(np.float32)

    def lg2_approx(self, a: np.ndarray) -> np.ndarray:
        return np.log2(np.float64(a)).astype(np.float32)

    def tanh_approx(self, a: np.ndarray) -> np.ndarray:
        return np.tanh(np.float64(a)).astype(np.float32)

    def rsqrt_approx(self, a: np.ndarray) -> np.ndarray:
        return (1.0 / np.sqrt(np.float64(a))).astype(np.float32)

    def sin_approx(self, a: np.ndarray) -> np.ndarray:
        return np.sin(np.float64(a)).astype(np.float32)

    def cos_approx(self, a: np.ndarray) -> np.ndarray:
        return np.cos(np.float64(a)).astype(np.float32)

    def pow2_halves(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(t, dtype=np.float32).view(np.int32) - np.int32(ROUNDER_BITS)
        low = n >> 1
        return tuple(np.exp2(np.float64(k)).astype(np.float32) for k in (low, n - low))  # type: ignore[return-value]

    def split_exponent(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tiny = a < np.float32(2.0**-126)
        scaled = np.where(tiny, a * np.float32(2.0**23), a).astype(np.float32)
        bits = scaled.view(np.int32)
        exponent = (bits - np.int32(SQRT_HALF_BITS)) >> 23
        mantissa = (bits - (exponent << 23)).astype(np.int32).view(np.float32)
        return mantissa, np.where(tiny, exponent - 23, exponent).astype(np.float32)

    def less(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.less(a, b)

    def equal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.equal(a, b)

    def unequal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.not_equal(a, b)

    def select(self, pred: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(pred, a, b).astype(np.float32)

    def copysign(self, magnitude: np.ndarray, sign: np.ndarray) -> np.ndarray:
        return np.copysign(magnitude, sign).astype(np.float32)


def fit_coefficients() -> tuple[list[float], list[float], list[float]]:
    """Regenerate ERF_SMALL, ERF_LARGE and TANH_SMALL: relative least squares on Chebyshev points."""
    erf_, erfc_ = np.vectorize(math.erf), np.vectorize(math.erfc)

    def fit(f, lo: float, hi: float, degree: int, var=lambda t: t) -> list[float]:  # type: ignore[no-untyped-def]
        t = np.cos(np.linspace(0, np.pi, 4000)) * (hi - lo) / 2 + (hi + lo) / 2
        y = f(t)
        basis = np.vander(var(t), degree + 1, increasing=True) / np.abs(y)[:, None]
        coefficients, *_ = np.linalg.lstsq(basis, y / np.abs(y), rcond=None)
        return [float(np.float32(c)) for c in coefficients]

    small = fit(lambda t: erf_(t) / t, 1e-6, 1.0, 6, var=lambda t: t * t)
    large = fit(lambda t: np.log(erfc_(t)), 1.0, 4.0, 10)
    tanh_small = fit(lambda t: np.tanh(t) / t, 1e-6, TANH_SPLIT, 5, var=lambda t: t * t)
    return small, large, tanh_small
