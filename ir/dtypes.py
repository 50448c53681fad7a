"""Element types of the IR and how each is stored in numpy."""

from __future__ import annotations

from enum import Enum

import numpy as np


class DType(Enum):
    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"
    I32 = "i32"
    I64 = "i64"
    BOOL = "bool"

    @property
    def is_float(self) -> bool:
        return self in FLOATS

    @property
    def is_int(self) -> bool:
        return self in INTS

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self]

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype that holds values of this type (bf16 is held in float32)."""
        return NUMPY_STORAGE[self]

    def __str__(self) -> str:
        return self.value


FLOATS = frozenset({DType.F32, DType.F16, DType.BF16})
INTS = frozenset({DType.I32, DType.I64})
NUMERIC = FLOATS | INTS
HALF_FLOATS = frozenset({DType.F16, DType.BF16})

ITEMSIZE = {
    DType.F32: 4,
    DType.F16: 2,
    DType.BF16: 2,
    DType.I32: 4,
    DType.I64: 8,
    DType.BOOL: 1,
}

NUMPY_STORAGE = {
    DType.F32: np.dtype(np.float32),
    DType.F16: np.dtype(np.float16),
    DType.BF16: np.dtype(np.float32),
    DType.I32: np.dtype(np.int32),
    DType.I64: np.dtype(np.int64),
    DType.BOOL: np.dtype(np.bool_),
}


def round_to_bf16(values: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bf16 (ties to even), kept in float32."""
    as_f32 = np.ascontiguousarray(values, dtype=np.float32)
    bits = as_f32.view(np.uint32)
    rounding_bias = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded = ((bits + rounding_bias) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isnan(as_f32), as_f32, rounded)


def parse_dtype(name: str) -> DType:
    """The DType spelled `name` ("f32", "bf16", ...); ValueError names the valid spellings."""
    try:
        return DType(name)
    except ValueError:
        valid = ", ".join(d.value for d in DType)
        raise ValueError(f"unknown dtype {name!r}; expected one of {valid}") from None
