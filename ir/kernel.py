"""The IR's data: tensor types, SSA instructions and kernels. Everything is frozen."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ir.dtypes import DType
from ir.ops import Op

# An attribute value: an int, a float, a bool, a dtype, a tuple of ints, or a non-finite float
# spelled "nan", "inf" or "-inf" (kept as text so that equality holds for NaN constants).
Attr = int | float | bool | str | DType | tuple[int, ...]
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass(frozen=True)
class Loc:
    """A position in IR text (1-based); never part of equality."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class TensorType:
    """dtype, shape and strides in elements; strides default to row-major contiguous."""

    dtype: DType
    shape: tuple[int, ...]
    strides: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.strides:
            object.__setattr__(self, "strides", contiguous_strides(self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_contiguous(self) -> bool:
        return self.strides == contiguous_strides(self.shape)

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        text = f"{self.dtype}[{', '.join(map(str, self.shape))}]"
        if not self.is_contiguous:
            text += f" strides [{', '.join(map(str, self.strides))}]"
        return text


@dataclass(frozen=True)
class Param:
    """A named, typed kernel input or output."""

    name: str
    type: TensorType
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Instr:
    """`result = op(args..., attrs...) : type`. `type` is None until typechecked."""

    result: str
    op: Op
    args: tuple[str, ...]
    attrs: tuple[tuple[str, Attr], ...] = ()
    type: TensorType | None = None
    loc: Loc | None = field(default=None, compare=False)

    def attr(self, name: str) -> Attr:
        return dict(self.attrs)[name]

    def with_type(self, type_: TensorType) -> Instr:
        return replace(self, type=type_)


@dataclass(frozen=True)
class Kernel:
    """A named kernel: typed inputs and outputs, an SSA body, and the values it returns."""

    name: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    body: tuple[Instr, ...]
    returns: tuple[str, ...]
    loc: Loc | None = field(default=None, compare=False)

    def types(self) -> dict[str, TensorType]:
        """The type of every named value (inputs and typed instructions)."""
        known = {p.name: p.type for p in self.inputs}
        known.update({i.result: i.type for i in self.body if i.type is not None})
        return known


def constant_value(defs: dict[str, Instr], name: str) -> float | None:
    """The value of `name` where it is a finite constant (through reshapes and expansions)."""
    instr = defs.get(name)
    while instr is not None and instr.op in (Op.RESHAPE, Op.EXPAND):
        instr = defs.get(instr.args[0])
    if instr is None or instr.op != Op.CONST or isinstance(instr.attr("value"), str):
        return None
    return float(instr.attr("value"))  # type: ignore[arg-type]


def sorted_attrs(attrs: dict[str, Attr]) -> tuple[tuple[str, Attr], ...]:
    return tuple(sorted(attrs.items()))
