"""The reference interpreter: each op's meaning, written once, in one table over numpy.

Two precisions: "native" keeps each value in its own dtype (half types are computed in float32
and rounded once per op, as PyTorch's eager kernels do); "float64" computes every floating value
in float64, for references. Reductions accumulate in float32 or wider."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

import numpy as np

from ir.dtypes import DType, round_to_bf16
from ir.kernel import NON_FINITE, Instr, Kernel, TensorType
from ir.ops import Op


class Precision(Enum):
    NATIVE = "native"
    FLOAT64 = "float64"


Fn = Callable[[list[np.ndarray], Instr], np.ndarray]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sign(x: np.ndarray) -> np.ndarray:
    """(x > 0) - (x < 0): 0 for NaN, as torch.sign."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Fn:
    return lambda a, _: fn(a[0])


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fn:
    return lambda a, _: fn(a[0], a[1])


def _axes(instr: Instr) -> tuple[int, ...]:
    return instr.attr("axes")  # type: ignore[return-value]


def _reduce(fn: Callable[..., np.ndarray]) -> Fn:
    return lambda a, i: fn(a[0], axis=_axes(i), keepdims=bool(i.attr("keepdim")))


def _arg_reduce(fn: Callable[..., np.ndarray]) -> Fn:
    """argmax/argmin over several axes: the row-major index within the reduced block."""

    def run(a: list[np.ndarray], instr: Instr) -> np.ndarray:
        x, axes = a[0], _axes(instr)
        kept = [d for d in range(x.ndim) if d not in axes]
        moved = np.transpose(x, kept + list(axes))
        flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
        index = fn(flat, axis=-1)
        if instr.attr("keepdim"):
            index = index.reshape(tuple(1 if d in axes else n for d, n in enumerate(x.shape)))
        return index

    return run


def _cast(a: list[np.ndarray], instr: Instr) -> np.ndarray:
    target: DType = instr.attr("to")  # type: ignore[assignment]
    x = a[0]
    if target == DType.BOOL:
        return x != 0
    if target.is_int and x.dtype.kind == "f":
        return np.trunc(x)
    return x


def _const(_: list[np.ndarray], instr: Instr) -> np.ndarray:
    value = instr.attr("value")
    number = NON_FINITE[value] if isinstance(value, str) else value
    return np.full(instr.type.shape, number)  # type: ignore[union-attr]


SEMANTICS: dict[Op, Fn] = {
    Op.NEG: _unary(np.negative),
    Op.ABS: _unary(np.abs),
    Op.SIGN: _unary(_sign),
    Op.EXP: _unary(np.exp),
    Op.EXP2: _unary(np.exp2),
    Op.EXPM1: _unary(np.expm1),
    Op.LOG: _unary(np.log),
    Op.LOG2: _unary(np.log2),
    Op.LOG1P: _unary(np.log1p),
    Op.SQRT: _unary(np.sqrt),
    Op.RSQRT: _unary(lambda x: 1 / np.sqrt(x)),
    Op.RECIP: _unary(lambda x: 1 / x),
    Op.SIN: _unary(np.sin),
    Op.COS: _unary(np.cos),
    Op.TANH: _unary(np.tanh),
    Op.ERF: _unary(_erf),
    Op.SIGMOID: _unary(_sigmoid),
    Op.FLOOR: _unary(np.floor),
    Op.CEIL: _unary(np.ceil),
    Op.ROUND: _unary(np.round),  # half to even, as torch.round
    Op.TRUNC: _unary(np.trunc),
    Op.ISNAN: _unary(np.isnan),
    Op.ISINF: _unary(np.isinf),
    Op.NOT: _unary(np.logical_not),
    Op.ADD: _binary(np.add),
    Op.SUB: _binary(np.subtract),
    Op.MUL: _binary(np.multiply),
    Op.DIV: _binary(np.divide),
    Op.POW: _binary(np.power),
    Op.MAXIMUM: _binary(np.maximum),  # NaN-propagating, as torch.maximum
    Op.MINIMUM: _binary(np.minimum),
    Op.AND: _binary(np.logical_and),
    Op.OR: _binary(np.logical_or),
    Op.EQ: _binary(np.equal),
    Op.NE: _binary(np.not_equal),
    Op.LT: _binary(np.less),
    Op.LE: _binary(np.less_equal),
    Op.GT: _binary(np.greater),
    Op.GE: _binary(np.greater_equal),
    Op.WHERE: lambda a, _: np.where(a[0], a[1], a[2]),
    Op.CAST: _cast,
    Op.CONST: _const,
    Op.RESHAPE: lambda a, i: np.reshape(a[0], i.attr("shape")),  # type: ignore[arg-type]
    Op.EXPAND: lambda a, i: np.broadcast_to(a[0], i.attr("shape")).copy(),  # type: ignore[arg-type]
    Op.SUM: _reduce(np.sum),
    Op.MEAN: _reduce(np.mean),
    Op.AMAX: _reduce(np.max),
    Op.AMIN: _reduce(np.min),
    Op.ARGMAX: _arg_reduce(np.argmax),
    Op.ARGMIN: _arg_reduce(np.argmin),
    Op.MATMUL: _binary(np.matmul),
}


def storage(dtype: DType, precision: Precision) -> np.dtype:
    """The numpy dtype a value of `dtype` is held in at `precision`."""
    if precision is Precision.FLOAT64 and dtype.is_float:
        return np.dtype(np.float64)
    return dtype.numpy


def store(values: np.ndarray, type_: TensorType, precision: Precision) -> np.ndarray:
    """`values` as a value of `type_`: converted to its storage and rounded to its precision."""
    with np.errstate(all="ignore"):
        held = np.asarray(values).astype(storage(type_.dtype, precision))
    if type_.dtype == DType.BF16 and precision is Precision.NATIVE:
        held = round_to_bf16(held)
    return held.reshape(type_.shape)


def _compute_view(value: np.ndarray) -> np.ndarray:
    """Half floats are computed in float32 (rounded once when stored)."""
    return value.astype(np.float32) if value.dtype == np.float16 else value


def run(kernel: Kernel, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
        precision: Precision = Precision.NATIVE) -> tuple[np.ndarray, ...]:
    """Evaluate a typechecked kernel; returns its outputs in declaration order."""
    given = inputs if isinstance(inputs, Mapping) else dict(zip((p.name for p in kernel.inputs), inputs))
    if set(given) != {p.name for p in kernel.inputs}:
        raise ValueError(f"kernel {kernel.name} takes inputs {[p.name for p in kernel.inputs]}, "
                         f"got {sorted(given)}")
    env: dict[str, np.ndarray] = {}
    for param in kernel.inputs:
        value = np.asarray(given[param.name])
        if value.shape != param.type.shape:
            raise ValueError(f"input {param.name}: expected shape {list(param.type.shape)}, "
                             f"got {list(value.shape)}")
        env[param.name] = store(value, param.type, precision)
    for instr in kernel.body:
        args = [_compute_view(env[a]) for a in instr.args]
        with np.errstate(all="ignore"):
            result = SEMANTICS[instr.op](args, instr)
        env[instr.result] = store(result, instr.type, precision)  # type: ignore[arg-type]
    return tuple(env[name] for name in kernel.returns)
