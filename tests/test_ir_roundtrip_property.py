"""Property: every well-typed kernel prints to text that parses back to the same kernel."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ir import IRTypeError, Kernel, Param, TensorType, format_kernel, parse, typecheck
from ir.dtypes import DType
from ir.frontend.builder import Builder
from ir.ops import FLOAT_BINARY, FLOAT_UNARY, NUMERIC_UNARY, PREDICATES, Op

FLOAT_DTYPES = [DType.F32, DType.F16, DType.BF16]
SHAPES = [(4,), (2, 3), (2, 1, 5), (3, 4), (1,), ()]
UNARY = sorted(FLOAT_UNARY | NUMERIC_UNARY | PREDICATES, key=str)
BINARY = sorted(FLOAT_BINARY | {Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.LT, Op.EQ}, key=str)
SCALARS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-9, 9))


def _emit(draw: st.DrawFn, b: Builder, values: list[str]) -> None:
    pick = lambda: draw(st.sampled_from(values))  # noqa: E731
    kind = draw(st.sampled_from(["unary", "binary", "reduce", "cast", "const", "where", "reshape"]))
    x = pick()
    shape = b.type_of(x).shape
    if kind == "unary":
        values.append(b.emit(draw(st.sampled_from(UNARY)), x))
    elif kind == "binary":
        values.append(b.emit(draw(st.sampled_from(BINARY)), x, pick()))
    elif kind == "reduce":
        op = draw(st.sampled_from([Op.SUM, Op.MEAN, Op.AMAX, Op.AMIN, Op.ARGMAX, Op.ARGMIN]))
        axis = st.integers(-len(shape), len(shape) - 1)
        axes = draw(st.lists(axis, max_size=len(shape), unique=True)) if shape else []
        values.append(b.emit(op, x, axes=tuple(axes), keepdim=draw(st.booleans())))
    elif kind == "cast":
        values.append(b.cast(x, draw(st.sampled_from(list(DType)))))
    elif kind == "const":
        value = draw(SCALARS)
        dtype = DType.F32 if isinstance(value, float) else draw(st.sampled_from([DType.I32, DType.F32]))
        values.append(b.const(value, dtype, draw(st.sampled_from(SHAPES))))
    elif kind == "where":
        values.append(b.emit(Op.WHERE, b.emit(Op.GT, x, pick()), x, pick()))
    else:
        values.append(b.emit(Op.RESHAPE, x, shape=(math.prod(shape),)))


@st.composite
def kernels(draw: st.DrawFn) -> Kernel:
    b = Builder()
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    params = [b.add_input(f"%in{i}", TensorType(dtype, draw(st.sampled_from(SHAPES))))
              for i in range(draw(st.integers(1, 3)))]
    values = [p.name for p in params]
    for step in range(draw(st.integers(1, 12))):
        b.start(f"%v{step}")
        try:
            _emit(draw, b, values)
        except IRTypeError:
            pass  # a random combination that does not typecheck: skip that op
    returned = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
    outputs = tuple(Param(f"%out{i}", b.type_of(v)) for i, v in enumerate(returned))
    return Kernel("random", tuple(params), outputs, tuple(b.instrs), tuple(returned))


@settings(max_examples=300, deadline=None)
@given(kernels())
def test_print_then_parse_is_identity(kernel: Kernel) -> None:
    assert typecheck(kernel) == kernel
    text = format_kernel(kernel)
    assert parse(text) == kernel, text
