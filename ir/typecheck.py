"""The typechecker: infers every instruction's type, checks what was written, and normalizes
attributes (axes made non-negative and sorted, defaults filled in). Errors carry line and column
and say what was expected."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from ir.dtypes import FLOATS, NUMERIC, DType
from ir.errors import IRTypeError
from ir.kernel import NON_FINITE, Attr, Instr, Kernel, Param, TensorType
from ir.ops import (
    ARITHMETIC,
    ARITY,
    ATTRIBUTES,
    COMPARISONS,
    FLOAT_BINARY,
    FLOAT_UNARY,
    INDEX_REDUCTIONS,
    LOGIC,
    NUMERIC_UNARY,
    PREDICATES,
    Op,
)

ATTRIBUTE_DEFAULTS: dict[str, Attr] = {"keepdim": False}
DTYPE_CLASSES = {
    "a floating dtype (f32, f16, bf16)": FLOATS,
    "a numeric dtype": NUMERIC,
    "bool": frozenset({DType.BOOL}),
    "any dtype": frozenset(DType),
}


class Checked:
    """One instruction under check: its operand types, attributes and location."""

    def __init__(self, instr: Instr, operands: list[TensorType], attrs: dict[str, Attr]) -> None:
        self.instr = instr
        self.operands = operands
        self.attrs = attrs

    def fail(self, message: str) -> IRTypeError:
        return IRTypeError(f"{self.instr.op}: {message}", self.instr.loc)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy broadcasting of `shapes`, or None where they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    result = []
    for dim in range(rank):
        sizes = {s[dim - rank + len(s)] for s in shapes if dim - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def _require_dtype(c: Checked, dtype: DType, expected: str) -> None:
    if dtype not in DTYPE_CLASSES[expected]:
        raise c.fail(f"expected {expected}, got {dtype}")


def _same_dtype(c: Checked) -> DType:
    dtypes = {t.dtype for t in c.operands}
    if len(dtypes) != 1:
        spelled = " and ".join(str(t.dtype) for t in c.operands)
        raise c.fail(f"expected operands of one dtype, got {spelled} (insert a cast)")
    return dtypes.pop()


def _broadcast(c: Checked, types: list[TensorType]) -> tuple[int, ...]:
    shape = broadcast_shapes(*(t.shape for t in types))
    if shape is None:
        spelled = ", ".join(str(list(t.shape)) for t in types)
        raise c.fail(f"expected shapes that broadcast together, got {spelled}")
    return shape


def _elementwise(expected: str, result: DType | None = None) -> Callable[[Checked], TensorType]:
    """Operands of one dtype in class `expected`, broadcast; result dtype `result` or theirs."""

    def rule(c: Checked) -> TensorType:
        dtype = _same_dtype(c)
        _require_dtype(c, dtype, expected)
        return TensorType(result or dtype, _broadcast(c, c.operands))

    return rule


def _where(c: Checked) -> TensorType:
    cond, *values = c.operands
    _require_dtype(c, cond.dtype, "bool")
    dtype = _same_dtype(Checked(c.instr, values, c.attrs))
    return TensorType(dtype, _broadcast(c, c.operands))


def _cast(c: Checked) -> TensorType:
    target = c.attrs["to"]
    return TensorType(target, c.operands[0].shape)  # type: ignore[arg-type]


def _const(c: Checked) -> TensorType:
    if c.instr.type is None:
        raise c.fail("expected a result type after ':' (e.g. `%c = const(0.5) : f32`)")
    value, dtype = c.attrs["value"], c.instr.type.dtype
    if dtype == DType.BOOL and not isinstance(value, bool):
        raise c.fail(f"expected true or false for a bool constant, got {value}")
    if dtype in NUMERIC and isinstance(value, bool):
        raise c.fail(f"expected a number for a {dtype} constant, got {value}")
    if dtype.is_int and not isinstance(value, int):
        raise c.fail(f"expected an integer for a {dtype} constant, got {value}")
    return TensorType(dtype, c.instr.type.shape)


def _reshape(c: Checked) -> TensorType:
    source, shape = c.operands[0], c.attrs["shape"]
    if math.prod(shape) != source.numel:  # type: ignore[arg-type]
        raise c.fail(f"expected a shape of {source.numel} elements, got {list(shape)}")  # type: ignore[arg-type]
    return TensorType(source.dtype, shape)  # type: ignore[arg-type]


def _expand(c: Checked) -> TensorType:
    source, shape = c.operands[0], c.attrs["shape"]
    if broadcast_shapes(source.shape, shape) != shape:  # type: ignore[arg-type]
        raise c.fail(f"expected a shape that {list(source.shape)} broadcasts to, got {list(shape)}")  # type: ignore[arg-type]
    return TensorType(source.dtype, shape)  # type: ignore[arg-type]


def _reduction(expected: str, result: DType | None = None) -> Callable[[Checked], TensorType]:
    def rule(c: Checked) -> TensorType:
        source = c.operands[0]
        _require_dtype(c, source.dtype, expected)
        axes = set(c.attrs["axes"])  # type: ignore[arg-type]
        keep = bool(c.attrs["keepdim"])
        shape = tuple(1 if d in axes else n for d, n in enumerate(source.shape) if keep or d not in axes)
        return TensorType(result or source.dtype, shape)

    return rule


def _matmul(c: Checked) -> TensorType:
    a, b = c.operands
    dtype = _same_dtype(c)
    _require_dtype(c, dtype, "a floating dtype (f32, f16, bf16)")
    if a.rank < 2 or b.rank < 2 or a.shape[-1] != b.shape[-2]:
        raise c.fail(f"expected [..., M, K] and [..., K, N] operands, got {list(a.shape)} and {list(b.shape)}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if batch is None:
        raise c.fail(f"expected batch dimensions that broadcast, got {list(a.shape)} and {list(b.shape)}")
    return TensorType(dtype, batch + (a.shape[-2], b.shape[-1]))


FLOAT = "a floating dtype (f32, f16, bf16)"
RULES: dict[Op, Callable[[Checked], TensorType]] = {
    **{op: _elementwise(FLOAT) for op in FLOAT_UNARY | FLOAT_BINARY},
    **{op: _elementwise("a numeric dtype") for op in NUMERIC_UNARY | ARITHMETIC},
    **{op: _elementwise(FLOAT, DType.BOOL) for op in PREDICATES},
    **{op: _elementwise("bool") for op in LOGIC | {Op.NOT}},
    **{op: _elementwise("any dtype", DType.BOOL) for op in COMPARISONS},
    Op.WHERE: _where,
    Op.CAST: _cast,
    Op.CONST: _const,
    Op.RESHAPE: _reshape,
    Op.EXPAND: _expand,
    Op.SUM: _reduction("a numeric dtype"),
    Op.MEAN: _reduction(FLOAT),
    Op.AMAX: _reduction("a numeric dtype"),
    Op.AMIN: _reduction("a numeric dtype"),
    **{op: _reduction("a numeric dtype", DType.I64) for op in INDEX_REDUCTIONS},
    Op.MATMUL: _matmul,
}


def _attr_kind_ok(kind: str, value: Attr) -> bool:
    checks: dict[str, Callable[[Attr], bool]] = {
        "axes": lambda v: isinstance(v, tuple),
        "shape": lambda v: isinstance(v, tuple) and all(n >= 0 for n in v),
        "bool": lambda v: isinstance(v, bool),
        "dtype": lambda v: isinstance(v, DType),
        "literal": lambda v: isinstance(v, (int, float)) or v in NON_FINITE,
    }
    return checks[kind](value)


def _normalize_attrs(instr: Instr, source_rank: int | None) -> dict[str, Attr]:
    """Check the attribute names and kinds of `instr`; fill defaults; make axes canonical."""
    wanted = ATTRIBUTES.get(instr.op, {})
    given = dict(instr.attrs)
    for name, value in given.items():
        if name not in wanted:
            expected = ", ".join(wanted) or "no attributes"
            raise IRTypeError(f"{instr.op}: unknown attribute {name!r}; expected {expected}", instr.loc)
        if not _attr_kind_ok(wanted[name], value):
            raise IRTypeError(f"{instr.op}: attribute {name}={value} is not a valid {wanted[name]}", instr.loc)
    for name in wanted:
        if name not in given and name in ATTRIBUTE_DEFAULTS:
            given[name] = ATTRIBUTE_DEFAULTS[name]
        elif name not in given:
            raise IRTypeError(f"{instr.op}: missing attribute {name!r} ({wanted[name]})", instr.loc)
    if "axes" in given and source_rank is not None:
        given["axes"] = _canonical_axes(instr, given["axes"], source_rank)  # type: ignore[arg-type]
    if instr.op == Op.CONST and instr.type is not None and instr.type.dtype.is_float:
        value = given["value"]
        given["value"] = value if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    return given


def _canonical_axes(instr: Instr, axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    for axis in axes:
        if not -rank <= axis < rank:
            raise IRTypeError(f"{instr.op}: axis {axis} out of range for rank {rank} "
                              f"(expected {-rank} <= axis < {rank})", instr.loc)
    canonical = sorted(a % rank if rank else a for a in axes)
    if len(set(canonical)) != len(canonical):
        raise IRTypeError(f"{instr.op}: repeated axis in {list(axes)}", instr.loc)
    return tuple(canonical)


def _check_param(param: Param, role: str) -> None:
    t = param.type
    if any(n < 0 for n in t.shape):
        raise IRTypeError(f"{role} {param.name}: negative size in shape {list(t.shape)}", param.loc)
    if len(t.strides) != t.rank:
        raise IRTypeError(f"{role} {param.name}: expected {t.rank} strides, got {len(t.strides)}", param.loc)


def check_instr(instr: Instr, env: dict[str, TensorType]) -> Instr:
    if instr.result in env:
        raise IRTypeError(f"{instr.result} is defined twice (SSA: one definition per value)", instr.loc)
    if len(instr.args) != ARITY[instr.op]:
        raise IRTypeError(f"{instr.op}: expected {ARITY[instr.op]} operand(s), got {len(instr.args)}",
                          instr.loc)
    for arg in instr.args:
        if arg not in env:
            raise IRTypeError(f"{instr.op}: operand {arg} is not defined before this line", instr.loc)
    operands = [env[a] for a in instr.args]
    attrs = _normalize_attrs(instr, operands[0].rank if operands else None)
    inferred = RULES[instr.op](Checked(instr, operands, attrs))
    if instr.type is not None and (instr.type.dtype, instr.type.shape) != (inferred.dtype, inferred.shape):
        raise IRTypeError(f"{instr.op}: result annotated {instr.type} but the op produces {inferred}",
                          instr.loc)
    return replace(instr, attrs=tuple(sorted(attrs.items())), type=inferred)


def _check_returns(kernel: Kernel, env: dict[str, TensorType]) -> None:
    if len(kernel.returns) != len(kernel.outputs):
        raise IRTypeError(f"kernel {kernel.name}: returns {len(kernel.returns)} value(s) but declares "
                          f"{len(kernel.outputs)} output(s)", kernel.loc)
    for value, output in zip(kernel.returns, kernel.outputs):
        if value not in env:
            raise IRTypeError(f"return: {value} is not defined", kernel.loc)
        got = env[value]
        if (got.dtype, got.shape) != (output.type.dtype, output.type.shape):
            raise IRTypeError(f"output {output.name}: declared {output.type} "
                              f"but {value} is {got}", output.loc)


def typecheck(kernel: Kernel) -> Kernel:
    """The kernel with every instruction typed and its attributes normalized, or IRTypeError."""
    names = [p.name for p in kernel.inputs + kernel.outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise IRTypeError(f"kernel {kernel.name}: parameter names repeated: {', '.join(duplicates)}",
                          kernel.loc)
    for param in kernel.inputs:
        _check_param(param, "input")
    for param in kernel.outputs:
        _check_param(param, "output")
    env = {p.name: p.type for p in kernel.inputs}
    body = []
    for instr in kernel.body:
        typed = check_instr(instr, env)
        env[typed.result] = typed.type  # type: ignore[assignment]
        body.append(typed)
    _check_returns(kernel, env)
    return replace(kernel, body=tuple(body))

