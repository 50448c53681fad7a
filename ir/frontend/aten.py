"""ATen (core decomposition) ops -> IR, one rule per op overload, in one table.

Each rule sees the node's arguments with tensors replaced by IR value names, emits typed IR into a
Builder, and returns the value (or tuple of values) the node produces. Half-precision inputs
follow PyTorch's eager numerics: composite ops (softmax, norms, GELU, ...) compute in float32 and
round once; a Python scalar that bf16/f16 cannot hold exactly is applied in float32."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

from ir.dtypes import HALF_FLOATS, DType
from ir.frontend.builder import Builder, Scalar, Unsupported, exact_in, ir_dtype
from ir.kernel import TensorType
from ir.ops import Op

Value = str | tuple[str, ...]


@dataclass
class Call:
    """One fx node under translation."""

    b: Builder
    node: torch.fx.Node
    args: list[Any]
    kwargs: dict[str, Any]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if index < len(self.args):
            return self.args[index]
        return self.kwargs.get(name, default)

    def meta(self, index: int) -> Any:
        arg = self.node.args[index]
        return arg.meta.get("val") if isinstance(arg, torch.fx.Node) else arg

    def out(self, index: int = 0) -> Any:
        val = self.node.meta["val"]
        return val[index] if isinstance(val, (tuple, list)) else val

    def out_dtype(self, index: int = 0) -> DType:
        return ir_dtype(self.out(index).dtype)

    def out_shape(self, index: int = 0) -> tuple[int, ...]:
        return tuple(int(n) for n in self.out(index).shape)


Rule = Callable[[Call], Value]
FLOAT32 = DType.F32


def _opmath(dtype: DType) -> DType:
    return FLOAT32 if dtype in HALF_FLOATS else dtype


def _scalars_exact(operands: list[Any], dtype: DType) -> bool:
    return all(isinstance(o, str) or exact_in(o, dtype) for o in operands)


def _apply(c: Call, op: Op, operands: list[Any], out: DType) -> str:
    """`op` over operands in dtype `out`, or in float32 when a scalar is inexact in `out`."""
    compute = out if _scalars_exact(operands, out) else FLOAT32
    values = [c.b.operand(o, compute) for o in operands]
    return c.b.cast(c.b.emit(op, *values), out)


def _elementwise(op: Op) -> Rule:
    """Unary or binary op computed in the node's output dtype."""
    return lambda c: _apply(c, op, list(c.args[:2 if len(c.args) > 1 else 1]), c.out_dtype())


def _unary(op: Op) -> Rule:
    return lambda c: _apply(c, op, [c.args[0]], c.out_dtype())


def _promoted(c: Call, *indices: int) -> DType:
    metas = [c.meta(i) for i in indices]
    return ir_dtype(torch.result_type(*metas) if len(metas) == 2 else metas[0].dtype)


def _compare(op: Op) -> Rule:
    def rule(c: Call) -> str:
        dtype = _promoted(c, 0, 1)
        return c.b.emit(op, *(c.b.operand(a, dtype) for a in c.args[:2]))

    return rule


def _predicate(op: Op) -> Rule:
    return lambda c: c.b.emit(op, c.args[0])


def _with_alpha(op: Op) -> Rule:
    """add/sub with `alpha`: a op alpha * b."""

    def rule(c: Call) -> str:
        alpha = c.kwargs.get("alpha", 1)
        b_term = c.args[1] if alpha == 1 else _apply(c, Op.MUL, [c.args[1], alpha], c.out_dtype())
        return _apply(c, op, [c.args[0], b_term], c.out_dtype())

    return rule


def _rsub(c: Call) -> str:
    alpha = c.kwargs.get("alpha", 1)
    scaled = c.args[0] if alpha == 1 else _apply(c, Op.MUL, [c.args[0], alpha], c.out_dtype())
    return _apply(c, Op.SUB, [c.args[1], scaled], c.out_dtype())


def _div(c: Call) -> str:
    mode = c.kwargs.get("rounding_mode")
    rounding = {None: None, "trunc": Op.TRUNC, "floor": Op.FLOOR}[mode]
    out = c.out_dtype()
    if out.is_int:
        raise Unsupported("integer division is not in the IR")
    quotient = _apply(c, Op.DIV, list(c.args[:2]), out)
    return c.b.emit(rounding, quotient) if rounding else quotient


def _where(c: Call) -> str:
    out = c.out_dtype()
    return c.b.emit(Op.WHERE, c.args[0], *(c.b.operand(v, out) for v in c.args[1:3]))


def _clamp_between(c: Call, x: Any, low: Any, high: Any) -> str:
    out = c.out_dtype()
    value = c.b.operand(x, out)
    if low is not None:
        value = _apply(c, Op.MAXIMUM, [value, low], out)
    if high is not None:
        value = _apply(c, Op.MINIMUM, [value, high], out)
    return value


def _clamp(c: Call) -> str:
    return _clamp_between(c, c.args[0], c.arg(1, "min"), c.arg(2, "max"))


def _relu(c: Call) -> str:
    return _clamp_between(c, c.args[0], 0, None)


def _hardtanh(c: Call) -> str:
    return _clamp_between(c, c.args[0], c.arg(1, "min_val", -1.0), c.arg(2, "max_val", 1.0))


def _is_one(value: str | Scalar) -> bool:
    return not isinstance(value, (str, bool)) and value == 1


class Math:
    """Float arithmetic in one dtype, for composite ops (written as formulas, emitted as IR)."""

    def __init__(self, b: Builder, dtype: DType) -> None:
        self.b, self.dtype = b, dtype

    def v(self, x: str | Scalar) -> str:
        return self.b.operand(x, self.dtype)

    def op(self, op: Op, *xs: str | Scalar, **attrs: Any) -> str:
        return self.b.emit(op, *(self.v(x) for x in xs), **attrs)

    def add(self, x: str | Scalar, y: str | Scalar) -> str:
        return self.op(Op.ADD, x, y)

    def sub(self, x: str | Scalar, y: str | Scalar) -> str:
        return self.op(Op.SUB, x, y)

    def mul(self, x: str | Scalar, y: str | Scalar) -> str:
        return self.v(x) if _is_one(y) else self.op(Op.MUL, x, y)

    def div(self, x: str | Scalar, y: str | Scalar) -> str:
        return self.v(x) if _is_one(y) else self.op(Op.DIV, x, y)

    def gt(self, x: str, y: Scalar) -> str:
        return self.op(Op.GT, x, y)

    def where(self, cond: str, x: str | Scalar, y: str | Scalar) -> str:
        return self.b.emit(Op.WHERE, cond, self.v(x), self.v(y))

    def reduce(self, op: Op, x: str, axes: tuple[int, ...], keepdim: bool = True) -> str:
        return self.op(op, x, axes=axes, keepdim=keepdim)


def _composite(formula: Callable[[Math, Call, str], str]) -> Rule:
    """A float op computed in float32 for half inputs, rounded once to the output dtype."""

    def rule(c: Call) -> str:
        out = c.out_dtype()
        if not out.is_float:
            raise Unsupported(f"{c.node.target} on {out} is not in the IR")
        m = Math(c.b, _opmath(out))
        return c.b.cast(formula(m, c, m.v(c.args[0])), out)

    return rule


def _gelu(m: Math, c: Call, x: str) -> str:
    approximate = c.kwargs.get("approximate", "none")
    if approximate == "tanh":
        cube = m.mul(m.mul(x, x), x)
        inner = m.mul(m.add(x, m.mul(cube, 0.044715)), math.sqrt(2 / math.pi))
        return m.mul(m.mul(x, 0.5), m.add(m.op(Op.TANH, inner), 1))
    return m.mul(m.mul(x, 0.5), m.add(m.op(Op.ERF, m.mul(x, math.sqrt(0.5))), 1))


def _elu(m: Math, c: Call, x: str) -> str:
    alpha, scale, input_scale = (c.arg(i, n, 1) for i, n in [(1, "alpha"), (2, "scale"), (3, "input_scale")])
    negative = m.mul(m.op(Op.EXPM1, m.mul(x, input_scale)), alpha * scale)
    return m.where(m.gt(x, 0), m.mul(x, scale), negative)


def _leaky_relu(m: Math, c: Call, x: str) -> str:
    return m.where(m.gt(x, 0), x, m.mul(x, c.arg(1, "negative_slope", 0.01)))


def _silu(m: Math, c: Call, x: str) -> str:
    return m.mul(x, m.op(Op.SIGMOID, x))


def _softplus(m: Math, c: Call, x: str) -> str:
    beta, threshold = c.arg(1, "beta", 1), c.arg(2, "threshold", 20)
    scaled = m.mul(x, beta)
    soft = m.div(m.op(Op.LOG1P, m.op(Op.EXP, scaled)), beta)
    return m.where(m.gt(scaled, threshold), x, soft)


def _axes_arg(c: Call, index: int, name: str) -> tuple[int, ...]:
    """A `dim` argument as a tuple of axes; None or [] means every axis."""
    rank = len(c.meta(0).shape)
    dims = c.arg(index, name)
    if dims is None or dims == []:
        return tuple(range(rank))
    return tuple(d % rank if rank else d for d in ((dims,) if isinstance(dims, int) else dims))


def _softmax(m: Math, c: Call, x: str) -> str:
    axes = _axes_arg(c, 1, "dim")
    exps = m.op(Op.EXP, m.sub(x, m.reduce(Op.AMAX, x, axes)))
    return m.div(exps, m.reduce(Op.SUM, exps, axes))


def _log_softmax(m: Math, c: Call, x: str) -> str:
    axes = _axes_arg(c, 1, "dim")
    shifted = m.sub(x, m.reduce(Op.AMAX, x, axes))
    return m.sub(shifted, m.op(Op.LOG, m.reduce(Op.SUM, m.op(Op.EXP, shifted), axes)))


def _reduction(op: Op) -> Rule:
    """sum/mean/amax/amin with `dim` (None: all) and `keepdim`; optional `dtype`."""

    def rule(c: Call) -> str:
        out = c.out_dtype()
        x = c.b.cast(c.args[0], out) if op in (Op.SUM, Op.MEAN) else c.args[0]
        return c.b.emit(op, x, axes=_axes_arg(c, 1, "dim"), keepdim=bool(c.arg(2, "keepdim", False)))

    return rule


def _arg_reduction(op: Op) -> Rule:
    return lambda c: c.b.emit(op, c.args[0], axes=_axes_arg(c, 1, "dim"),
                              keepdim=bool(c.arg(2, "keepdim", False)))


def _value_and_index(value_op: Op, index_op: Op) -> Rule:
    """max.dim / min.dim: (values, indices)."""

    def rule(c: Call) -> tuple[str, str]:
        axes, keep = _axes_arg(c, 1, "dim"), bool(c.arg(2, "keepdim", False))
        return (c.b.emit(value_op, c.args[0], axes=axes, keepdim=keep),
                c.b.emit(index_op, c.args[0], axes=axes, keepdim=keep))

    return rule


def _var(m: Math, c: Call, x: str) -> str:
    axes = _axes_arg(c, 1, "dim")
    correction = 1 if c.kwargs.get("correction") is None else c.kwargs["correction"]
    count = math.prod(int(c.meta(0).shape[a]) for a in axes)
    centered = m.sub(x, m.reduce(Op.MEAN, x, axes))
    total = m.reduce(Op.SUM, m.mul(centered, centered), axes, bool(c.kwargs.get("keepdim", False)))
    return m.div(total, max(count - correction, 0))


def _vector_norm(m: Math, c: Call, x: str) -> str:
    order = c.arg(1, "ord", 2)
    axes, keep = _axes_arg(c, 2, "dim"), bool(c.arg(3, "keepdim", False))
    magnitude = m.op(Op.ABS, x)
    if order == math.inf:
        return m.reduce(Op.AMAX, magnitude, axes, keep)
    if order == 2:
        return m.op(Op.SQRT, m.reduce(Op.SUM, m.mul(x, x), axes, keep))
    if order == 1:
        return m.reduce(Op.SUM, magnitude, axes, keep)
    powered = m.reduce(Op.SUM, m.op(Op.POW, magnitude, order), axes, keep)
    return m.op(Op.POW, powered, 1 / order)


def _layer_norm(c: Call) -> tuple[str, str, str]:
    x, normalized_shape, weight, bias, eps = c.args[:5]
    rank = len(c.meta(0).shape)
    axes = tuple(range(rank - len(normalized_shape), rank))
    m = Math(c.b, _opmath(c.out_dtype()))
    xf = m.v(x)
    mean = m.reduce(Op.MEAN, xf, axes)
    centered = m.sub(xf, mean)
    rstd = m.op(Op.RSQRT, m.add(m.reduce(Op.MEAN, m.mul(centered, centered), axes), eps))
    out = m.mul(centered, rstd)
    out = m.mul(out, weight) if weight is not None else out
    out = m.add(out, bias) if bias is not None else out
    return (c.b.cast(out, c.out_dtype(0)), c.b.cast(mean, c.out_dtype(1)), c.b.cast(rstd, c.out_dtype(2)))


def _cast(c: Call) -> str:
    dtype = c.arg(1, "dtype")
    return c.b.cast(c.args[0], ir_dtype(dtype)) if dtype is not None else c.args[0]


def _alias(c: Call) -> str:
    return c.args[0]


def _full(c: Call) -> str:
    value = c.arg(1, "fill_value") if str(c.node.target).startswith("aten.full") else c.args[0]
    return c.b.const(value, c.out_dtype(), c.out_shape())


def _unit_dims(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _reshape(c: Call) -> str:
    source = c.b.type_of(c.args[0]).shape
    target = c.out_shape()
    if source == target:
        return c.args[0]
    if _unit_dims(source) != _unit_dims(target):
        raise Unsupported("a reshape that regroups dimensions is left to PyTorch (a view)")
    return c.b.emit(Op.RESHAPE, c.args[0], shape=target)


def _expand(c: Call) -> str:
    target = c.out_shape()
    return c.args[0] if c.b.type_of(c.args[0]).shape == target else c.b.emit(Op.EXPAND, c.args[0], shape=target)


def _getitem(c: Call) -> str:
    values, index = c.args
    return values[index]


def _left_to_pytorch(reason: str) -> Rule:
    def rule(c: Call) -> str:
        raise Unsupported(reason)

    return rule


MATMUL_NOTE = "matmul is left to PyTorch (cuBLAS) for now"
LAYOUT_NOTE = "a layout change (permute/transpose) is left to PyTorch"

RULES: dict[str, Rule] = {
    # unary
    "aten.abs.default": _unary(Op.ABS),
    "aten.neg.default": _unary(Op.NEG),
    "aten.sign.default": _unary(Op.SIGN),
    "aten.exp.default": _unary(Op.EXP),
    "aten.exp2.default": _unary(Op.EXP2),
    "aten.expm1.default": _unary(Op.EXPM1),
    "aten.log.default": _unary(Op.LOG),
    "aten.log2.default": _unary(Op.LOG2),
    "aten.log1p.default": _unary(Op.LOG1P),
    "aten.sqrt.default": _unary(Op.SQRT),
    "aten.rsqrt.default": _unary(Op.RSQRT),
    "aten.reciprocal.default": _unary(Op.RECIP),
    "aten.sin.default": _unary(Op.SIN),
    "aten.cos.default": _unary(Op.COS),
    "aten.tanh.default": _unary(Op.TANH),
    "aten.erf.default": _unary(Op.ERF),
    "aten.sigmoid.default": _unary(Op.SIGMOID),
    "aten.floor.default": _unary(Op.FLOOR),
    "aten.ceil.default": _unary(Op.CEIL),
    "aten.round.default": _unary(Op.ROUND),
    "aten.trunc.default": _unary(Op.TRUNC),
    "aten.isnan.default": _predicate(Op.ISNAN),
    "aten.isinf.default": _predicate(Op.ISINF),
    "aten.logical_not.default": _predicate(Op.NOT),
    "aten.bitwise_not.default": _predicate(Op.NOT),
    "aten.relu.default": _relu,
    # binary
    "aten.add.Tensor": _with_alpha(Op.ADD),
    "aten.add.Scalar": _with_alpha(Op.ADD),
    "aten.sub.Tensor": _with_alpha(Op.SUB),
    "aten.sub.Scalar": _with_alpha(Op.SUB),
    "aten.rsub.Scalar": _rsub,
    "aten.rsub.Tensor": _rsub,
    "aten.mul.Tensor": _elementwise(Op.MUL),
    "aten.mul.Scalar": _elementwise(Op.MUL),
    "aten.div.Tensor": _div,
    "aten.div.Scalar": _div,
    "aten.div.Tensor_mode": _div,
    "aten.pow.Tensor_Scalar": _elementwise(Op.POW),
    "aten.pow.Tensor_Tensor": _elementwise(Op.POW),
    "aten.pow.Scalar": _elementwise(Op.POW),
    "aten.maximum.default": _elementwise(Op.MAXIMUM),
    "aten.minimum.default": _elementwise(Op.MINIMUM),
    "aten.logical_and.default": _compare(Op.AND),
    "aten.logical_or.default": _compare(Op.OR),
    "aten.bitwise_and.Tensor": _compare(Op.AND),
    "aten.bitwise_or.Tensor": _compare(Op.OR),
    **{f"aten.{name}.{form}": _compare(op)
       for name, op in [("eq", Op.EQ), ("ne", Op.NE), ("lt", Op.LT), ("le", Op.LE), ("gt", Op.GT), ("ge", Op.GE)]
       for form in ("Tensor", "Scalar")},
    "aten.where.self": _where,
    "aten.where.ScalarSelf": _where,
    "aten.where.ScalarOther": _where,
    "aten.where.Scalar": _where,
    "aten.clamp.default": _clamp,
    "aten.clamp.Tensor": _clamp,
    "aten.clamp_min.default": lambda c: _clamp_between(c, c.args[0], c.args[1], None),
    "aten.clamp_max.default": lambda c: _clamp_between(c, c.args[0], None, c.args[1]),
    "aten.hardtanh.default": _hardtanh,
    # composite activations
    "aten.gelu.default": _composite(_gelu),
    "aten.elu.default": _composite(_elu),
    "aten.leaky_relu.default": _composite(_leaky_relu),
    "aten.silu.default": _composite(_silu),
    "aten.softplus.default": _composite(_softplus),
    # casts, copies, constants and views
    "aten._to_copy.default": _cast,
    "prims.convert_element_type.default": _cast,
    "aten.clone.default": _alias,
    "aten.alias.default": _alias,
    "aten.detach.default": _alias,
    "aten.lift_fresh_copy.default": _alias,
    "aten.full.default": _full,
    "aten.scalar_tensor.default": _full,
    "aten.view.default": _reshape,
    "aten._unsafe_view.default": _reshape,
    "aten.reshape.default": _reshape,
    "aten.unsqueeze.default": _reshape,
    "aten.squeeze.dim": _reshape,
    "aten.squeeze.dims": _reshape,
    "aten.squeeze.default": _reshape,
    "aten.expand.default": _expand,
    "<built-in function getitem>": _getitem,
    # reductions
    "aten.sum.dim_IntList": _reduction(Op.SUM),
    "aten.sum.default": _reduction(Op.SUM),
    "aten.mean.dim": _reduction(Op.MEAN),
    "aten.mean.default": _reduction(Op.MEAN),
    "aten.amax.default": _reduction(Op.AMAX),
    "aten.amin.default": _reduction(Op.AMIN),
    "aten.max.default": _reduction(Op.AMAX),
    "aten.min.default": _reduction(Op.AMIN),
    "aten.argmax.default": _arg_reduction(Op.ARGMAX),
    "aten.argmin.default": _arg_reduction(Op.ARGMIN),
    "aten.max.dim": _value_and_index(Op.AMAX, Op.ARGMAX),
    "aten.min.dim": _value_and_index(Op.AMIN, Op.ARGMIN),
    "aten.var.correction": _composite(_var),
    "aten.linalg_vector_norm.default": _composite(_vector_norm),
    "aten._softmax.default": _composite(_softmax),
    "aten._log_softmax.default": _composite(_log_softmax),
    "aten.native_layer_norm.default": _layer_norm,
    # left to PyTorch, with the reason
    "aten.mm.default": _left_to_pytorch(MATMUL_NOTE),
    "aten.addmm.default": _left_to_pytorch(MATMUL_NOTE),
    "aten.bmm.default": _left_to_pytorch(MATMUL_NOTE),
    "aten.convolution.default": _left_to_pytorch("convolution is left to PyTorch (cuDNN); the IR has none"),
    "aten.permute.default": _left_to_pytorch(LAYOUT_NOTE),
    "aten.transpose.int": _left_to_pytorch(LAYOUT_NOTE),
    "aten.t.default": _left_to_pytorch(LAYOUT_NOTE),
    "aten.gather.default": _left_to_pytorch("data-dependent indexing (gather) is not in the IR"),
    "aten.index.Tensor": _left_to_pytorch("data-dependent indexing is not in the IR"),
}


def rule_for(node: torch.fx.Node) -> Rule:
    """The rule that translates `node`; a rule raising Unsupported where none exists."""
    key = "<built-in function getitem>" if node.target is operator.getitem else str(node.target)
    return RULES.get(key, _left_to_pytorch(f"no IR rule for {key}"))


def tensor_type(val: Any) -> TensorType:
    """The IR type of a traced value (a FakeTensor)."""
    if not isinstance(val, torch.Tensor):
        raise Unsupported(f"a value of type {type(val).__name__} is not a tensor")
    return TensorType(ir_dtype(val.dtype), tuple(int(n) for n in val.shape))
