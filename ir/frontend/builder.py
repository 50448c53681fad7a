"""Building IR instruction by instruction, each one typechecked as it is added."""

from __future__ import annotations

import math

import torch

from ir.dtypes import HALF_FLOATS, DType
from ir.kernel import Attr, Instr, Param, TensorType, sorted_attrs
from ir.ops import Op
from ir.typecheck import check_instr

TORCH_TO_IR = {
    torch.float32: DType.F32,
    torch.float16: DType.F16,
    torch.bfloat16: DType.BF16,
    torch.int32: DType.I32,
    torch.int64: DType.I64,
    torch.bool: DType.BOOL,
}
IR_TO_TORCH = {v: k for k, v in TORCH_TO_IR.items()}

Scalar = int | float | bool


class Unsupported(Exception):
    """An op (or a form of it) the IR does not express; the message says why."""


def ir_dtype(dtype: torch.dtype) -> DType:
    if dtype not in TORCH_TO_IR:
        raise Unsupported(f"dtype {dtype} is not in the IR")
    return TORCH_TO_IR[dtype]


def literal(value: Scalar) -> Attr:
    """A Python number as an IR literal (non-finite floats spelled as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def exact_in(value: Scalar, dtype: DType) -> bool:
    """Whether `value` survives conversion to `dtype` unchanged."""
    if dtype not in HALF_FLOATS or isinstance(value, bool) or not math.isfinite(value):
        return True
    return float(torch.tensor(value, dtype=IR_TO_TORCH[dtype])) == value


class Builder:
    """Accumulates typed instructions; value names are `%{prefix}` and `%{prefix}.{k}`."""

    def __init__(self) -> None:
        self.instrs: list[Instr] = []
        self.types: dict[str, TensorType] = {}
        self.prefix = "%t"
        self._count = 0

    def start(self, prefix: str) -> None:
        """Name what follows after `prefix` (usually the fx node being translated)."""
        self.prefix, self._count = prefix, 0

    def add_input(self, name: str, type_: TensorType) -> Param:
        self.types[name] = type_
        return Param(name, type_)

    def type_of(self, value: str) -> TensorType:
        return self.types[value]

    def emit(self, op: Op, *args: str, type_: TensorType | None = None, **attrs: Attr) -> str:
        name = f"{self.prefix}.{self._count}"
        self._count += 1
        instr = check_instr(Instr(name, op, tuple(args), sorted_attrs(attrs), type_), self.types)
        self.instrs.append(instr)
        self.types[name] = instr.type  # type: ignore[assignment]
        return name

    def const(self, value: Scalar, dtype: DType, shape: tuple[int, ...] = ()) -> str:
        return self.emit(Op.CONST, type_=TensorType(dtype, shape), value=literal(value))

    def cast(self, value: str, dtype: DType) -> str:
        return value if self.type_of(value).dtype == dtype else self.emit(Op.CAST, value, to=dtype)

    def operand(self, value: str | Scalar, dtype: DType) -> str:
        """A tensor value cast to `dtype`, or a Python scalar as a constant of `dtype`."""
        return self.cast(value, dtype) if isinstance(value, str) else self.const(value, dtype)

    def finish(self, value: str, name: str) -> str:
        """Rename `value` to `name` (the node's own name) if the last instruction defines it."""
        if not self.instrs or self.instrs[-1].result != value:
            return value
        last = self.instrs[-1]
        self.instrs[-1] = Instr(name, last.op, last.args, last.attrs, last.type)
        self.types[name] = self.types.pop(value)
        return name
