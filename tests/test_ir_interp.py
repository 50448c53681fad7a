"""The reference interpreter against PyTorch: every op, in float64 and in native precision."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from ir import DType, Precision, parse, run
from ir.dtypes import round_to_bf16
from ir.interp import SEMANTICS
from ir.ops import BINARY, COMPARISONS, FLOAT_UNARY, INDEX_REDUCTIONS, LOGIC, NUMERIC_UNARY, PREDICATES, Op

TORCH_UNARY: dict[Op, Callable[[torch.Tensor], torch.Tensor]] = {
    Op.NEG: torch.neg, Op.ABS: torch.abs, Op.SIGN: torch.sign, Op.EXP: torch.exp,
    Op.EXP2: torch.exp2, Op.EXPM1: torch.expm1, Op.LOG: torch.log, Op.LOG2: torch.log2,
    Op.LOG1P: torch.log1p, Op.SQRT: torch.sqrt, Op.RSQRT: torch.rsqrt, Op.RECIP: torch.reciprocal,
    Op.SIN: torch.sin, Op.COS: torch.cos, Op.TANH: torch.tanh, Op.ERF: torch.erf,
    Op.SIGMOID: torch.sigmoid, Op.FLOOR: torch.floor, Op.CEIL: torch.ceil, Op.ROUND: torch.round,
    Op.TRUNC: torch.trunc, Op.ISNAN: torch.isnan, Op.ISINF: torch.isinf,
}
TORCH_BINARY: dict[Op, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    Op.ADD: torch.add, Op.SUB: torch.sub, Op.MUL: torch.mul, Op.DIV: torch.div, Op.POW: torch.pow,
    Op.MAXIMUM: torch.maximum, Op.MINIMUM: torch.minimum, Op.EQ: torch.eq, Op.NE: torch.ne,
    Op.LT: torch.lt, Op.LE: torch.le, Op.GT: torch.gt, Op.GE: torch.ge,
}
TORCH_REDUCE = {
    Op.SUM: lambda x, d, k: torch.sum(x, d, keepdim=k),
    Op.MEAN: lambda x, d, k: torch.mean(x, d, keepdim=k),
    Op.AMAX: lambda x, d, k: torch.amax(x, d, keepdim=k),
    Op.AMIN: lambda x, d, k: torch.amin(x, d, keepdim=k),
    Op.ARGMAX: lambda x, d, k: torch.argmax(x, d[0], keepdim=k),
    Op.ARGMIN: lambda x, d, k: torch.argmin(x, d[0], keepdim=k),
}


def values(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Wide-range values with negatives, zeros, halves (rounding ties) and non-finite entries."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    flat[:6] = [0.0, -0.0, 0.5, -2.5, np.inf, np.nan][: flat.size]
    return x


def unary_kernel(op: Op, dtype: str, result: str) -> str:
    return (f"kernel k(%x: {dtype}[5, 7]) -> (%y: {result}[5, 7]) {{\n"
            f"  %y = {op}(%x)\n  return %y\n}}\n")


def binary_kernel(op: Op, dtype: str, result: str) -> str:
    return (f"kernel k(%a: {dtype}[5, 7], %b: {dtype}[7]) -> (%y: {result}[5, 7]) {{\n"
            f"  %y = {op}(%a, %b)\n  return %y\n}}\n")


def assert_same(got: np.ndarray, want: torch.Tensor, rtol: float = 1e-12) -> None:
    torch.testing.assert_close(torch.from_numpy(np.asarray(got)), want, rtol=rtol, atol=rtol,
                               equal_nan=True, check_dtype=False)


@pytest.mark.parametrize("op", sorted(FLOAT_UNARY | NUMERIC_UNARY | PREDICATES, key=str))
def test_unary_float64_matches_torch(op: Op) -> None:
    result = "bool" if op in PREDICATES else "f32"
    x = values((5, 7))
    (got,) = run(parse(unary_kernel(op, "f32", result)), [x], Precision.FLOAT64)
    assert_same(got, TORCH_UNARY[op](torch.from_numpy(x)))


@pytest.mark.parametrize("op", sorted(set(TORCH_BINARY), key=str))
def test_binary_float64_matches_torch_with_broadcasting(op: Op) -> None:
    result = "bool" if op in COMPARISONS else "f32"
    a, b = values((5, 7), 1), values((7,), 2)
    (got,) = run(parse(binary_kernel(op, "f32", result)), [a, b], Precision.FLOAT64)
    assert_same(got, TORCH_BINARY[op](torch.from_numpy(a), torch.from_numpy(b)))


@pytest.mark.parametrize("op", [Op.AND, Op.OR])
def test_logic(op: Op) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((5, 7)) > 0.5, rng.random(7) > 0.5
    (got,) = run(parse(binary_kernel(op, "bool", "bool")), [a, b])
    want = {Op.AND: np.logical_and, Op.OR: np.logical_or}[op](a, b)
    assert np.array_equal(got, want)
    assert op in LOGIC and op in BINARY


@pytest.mark.parametrize("op", sorted(TORCH_REDUCE, key=str))
@pytest.mark.parametrize("axes,keepdim", [((1,), True), ((0,), False), ((2,), False)])
def test_reductions_match_torch(op: Op, axes: tuple[int, ...], keepdim: bool) -> None:
    x = np.random.default_rng(4).standard_normal((3, 4, 5))
    want = TORCH_REDUCE[op](torch.from_numpy(x), axes, keepdim)
    result = "i64" if op in INDEX_REDUCTIONS else "f32"
    kernel = parse(f"kernel k(%x: f32[3, 4, 5]) -> (%y: {result}{list(want.shape)}) {{\n"
                   f"  %y = {op}(%x, axes={list(axes)}, keepdim={str(keepdim).lower()})\n  return %y\n}}")
    (got,) = run(kernel, [x], Precision.FLOAT64)
    assert_same(got, want)


def test_multi_axis_reductions_and_argmax_over_a_block() -> None:
    x = np.random.default_rng(5).standard_normal((3, 4, 5))
    k = parse("kernel k(%x: f32[3, 4, 5]) -> (%s: f32[4], %i: i64[1, 4, 1]) {\n"
              "  %s = sum(%x, axes=[0, 2])\n  %i = argmax(%x, axes=[0, 2], keepdim=true)\n"
              "  return %s, %i\n}")
    s, i = run(k, [x], Precision.FLOAT64)
    t = torch.from_numpy(x)
    assert_same(s, t.sum((0, 2)))
    flat = t.permute(1, 0, 2).reshape(4, 15)
    assert np.array_equal(i.reshape(4), flat.argmax(1).numpy())


def test_where_cast_const_reshape_expand() -> None:
    k = parse("""kernel k(%x: f32[2, 3]) -> (%y: i32[3, 2], %z: f32[4, 2, 3]) {
      %zero = const(0.0) : f32
      %pos = gt(%x, %zero)
      %nan = const(nan) : f32
      %w = where(%pos, %x, %nan)
      %c = cast(%x, to=i32)
      %y = reshape(%c, shape=[3, 2])
      %z = expand(%w, shape=[4, 2, 3])
      return %y, %z
    }""")
    x = np.array([[1.7, -2.7, 0.0], [3.5, -0.2, 9.9]])
    y, z = run(k, [x], Precision.FLOAT64)
    t = torch.from_numpy(x)
    assert np.array_equal(y, t.to(torch.int32).reshape(3, 2).numpy())
    assert_same(z, torch.where(t > 0, t, torch.nan).expand(4, 2, 3))


def test_bf16_rounding_matches_torch() -> None:
    x = np.random.default_rng(6).standard_normal(10_000).astype(np.float32) * 100
    x[:4] = [np.inf, -np.inf, np.nan, 3.0]
    want = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(round_to_bf16(x), want)


@pytest.mark.parametrize("dtype,torch_dtype,ulp", [("bf16", torch.bfloat16, 2**-8),
                                                   ("f16", torch.float16, 2**-11),
                                                   ("f32", torch.float32, 2**-23)])
def test_native_precision_rounds_like_eager_torch(dtype: str, torch_dtype: torch.dtype, ulp: float) -> None:
    """Results are held in the dtype: within one rounding step (libm's exp differs by an ulp)."""
    k = parse(f"""kernel k(%x: {dtype}[64, 33]) -> (%y: {dtype}[64, 33], %s: {dtype}[64]) {{
      %e = exp(%x)
      %y = mul(%e, %x)
      %s = sum(%y, axes=[1])
      return %y, %s
    }}""")
    t = torch.randn(64, 33, generator=torch.Generator().manual_seed(0)).to(torch_dtype)
    y, s = run(k, [t.float().numpy()])
    want_y = torch.exp(t) * t
    torch.testing.assert_close(torch.from_numpy(y).float(), want_y.float(), rtol=2 * ulp, atol=0)
    assert y.dtype == DType(dtype).numpy
    torch.testing.assert_close(torch.from_numpy(s).float(), want_y.sum(1).float(), rtol=1e-2, atol=1e-2)


def test_every_op_has_semantics() -> None:
    assert set(SEMANTICS) == set(Op)


def test_inputs_are_checked() -> None:
    k = parse(unary_kernel(Op.EXP, "f32", "f32"))
    with pytest.raises(ValueError, match=r"expected shape \[5, 7\], got \[7, 5\]"):
        run(k, [np.zeros((7, 5))])
    with pytest.raises(ValueError, match="takes inputs"):
        run(k, {"%q": np.zeros((5, 7))})
    assert DType.BF16.numpy == np.float32
