"""The float32 math library's formulas, evaluated on the CPU (NumpyMath), against float64 torch:
errors in units in the last place, and special values (NaN, infinities, signed zeros)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptxgen import mathlib

REFERENCE = {"exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "expm1": torch.expm1,
             "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf, "log2": torch.log2,
             "rsqrt": torch.rsqrt, "exp2": torch.exp2, "sin": torch.sin, "cos": torch.cos}
MAX_ULP = {"exp": 1.0, "log": 1.0, "log1p": 3.0, "expm1": 3.0, "tanh": 5.0, "sigmoid": 3.0, "erf": 3.0,
           "log2": 2.0, "rsqrt": 1.5, "exp2": 1.0}
SPECIALS = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 88.7, 89.0, -87.0, -103.0, -104.5, 1e-40,
            -1e-40, 1e-30, 0.5, 4.0, -4.0, 10.0, -10.0, 20.0, 1e-7, -1e-7]


def sample() -> np.ndarray:
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(100_000) * 3, rng.standard_normal(50_000) * 30,
             rng.uniform(-1e-3, 1e-3, 50_000), np.exp(rng.uniform(-80, 80, 50_000)), np.array(SPECIALS)]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("name", sorted(mathlib.FUNCTIONS))
def test_accuracy_in_ulp_and_special_values(name: str) -> None:
    x = sample()
    with np.errstate(all="ignore"):
        got = np.asarray(mathlib.FUNCTIONS[name](mathlib.NumpyMath(), x), dtype=np.float32)
    want64 = REFERENCE[name](torch.from_numpy(x.astype(np.float64))).numpy()
    with np.errstate(over="ignore"):
        want = want64.astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN where the reference has none, or missing"
    infinite = np.isinf(want)
    assert np.array_equal(got[infinite], want[infinite])
    finite = np.isfinite(want)
    assert np.isfinite(got[finite]).all()
    ulp = np.spacing(np.maximum(np.abs(want[finite]), np.float32(2.0**-126))).astype(np.float64)
    error = np.abs(got[finite].astype(np.float64) - want64[finite]) / ulp
    assert error.max() <= MAX_ULP[name], f"{error.max():.2f} ulp at x={x[finite][error.argmax()]!r}"


def test_coefficients_are_the_fit() -> None:
    """The stored coefficients are the documented least-squares fit, as LAPACK builds reproduce it:
    within 1e-6 relative or 1e-9 absolute (a change far below a float32 ulp of the values the
    polynomials give, 6e-8 near 1; the accuracy itself is measured by the tests above)."""
    small, large, tanh_small = mathlib.fit_coefficients()
    np.testing.assert_allclose(small, mathlib.ERF_SMALL, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(large, mathlib.ERF_LARGE, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(tanh_small, mathlib.TANH_SMALL, rtol=1e-6, atol=1e-9)


APPROX_MAX_RELATIVE = 2.0**-12  # far below bf16/f16 rounding (2**-9, 2**-12)


@pytest.mark.parametrize("name", sorted(mathlib.APPROX_FUNCTIONS))
def test_approximate_forms_are_good_for_half_precision(name: str) -> None:
    """The approximate formulas, with exact hardware primitives: their own error is small."""
    x = sample()
    with np.errstate(all="ignore"):
        got = np.asarray(mathlib.APPROX_FUNCTIONS[name](mathlib.NumpyMath(), x), dtype=np.float32)
    want = REFERENCE[name](torch.from_numpy(x.astype(np.float64))).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    with np.errstate(over="ignore"):
        representable = np.isfinite(want.astype(np.float32))
    finite = representable & (np.abs(want) > 2.0**-100)
    relative = np.abs(got[finite] - want[finite]) / np.abs(want[finite])
    assert relative.max() <= APPROX_MAX_RELATIVE, f"{relative.max():.2e} at x={x[finite][relative.argmax()]!r}"


@pytest.mark.parametrize("exponent", [None, 0.0, 1.0, 3.0, 0.5, 2.5, -1.0, -2.0, 7.0])
def test_power_in_ulp_and_signs(exponent: float | None) -> None:
    """x**y: exp(y log|x|) turns the relative error of y log|x| (the log's ulp and the product's
    rounding) into an absolute one, up to 2|y ln|x|| ulp of the result: that is the bound, plus 3.
    Negative x gives the sign of odd integral y, NaN for fractional y; constant exponents from 0
    to 4 are exact products, 0.5 a square root."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(20_000) * 4, np.exp(rng.uniform(-20, 20, 20_000)),
                        np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, np.inf, -np.inf, np.nan])]).astype(np.float32)
    y = np.full_like(x, exponent) if exponent is not None else \
        rng.choice(np.array([-3.0, -1.5, -1.0, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0], dtype=np.float32), x.size)
    with np.errstate(all="ignore"):
        got = np.broadcast_to(np.asarray(mathlib.power(mathlib.NumpyMath(), x, y, exponent), dtype=np.float32), x.shape)
        want64 = torch.pow(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y.astype(np.float64))).numpy()
        want = want64.astype(np.float32)
        growth = np.abs(y.astype(np.float64) * np.log(np.abs(x.astype(np.float64))))
    normal = np.isfinite(want) & (np.abs(want) >= 2.0**-126) & np.isfinite(x) & (x != 0)
    assert np.array_equal(np.isnan(got[normal]), np.isnan(want[normal]))
    assert np.array_equal(np.signbit(got[normal]), np.signbit(want[normal]))
    ulp = np.spacing(np.abs(want[normal])).astype(np.float64)
    error = np.abs(got[normal].astype(np.float64) - want64[normal]) / ulp
    bound = 3.0 + 2.0 * growth[normal]
    worst = int(np.argmax(error - bound))
    assert (error <= bound).all(), f"{error[worst]:.1f} ulp at x={x[normal][worst]!r}, y={y[normal][worst]!r}"
