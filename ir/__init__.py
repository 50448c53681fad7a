"""The small IR every stage speaks: dtypes, ops, SSA kernels, text form, typechecker and
reference interpreter. The PyTorch frontend lives in `ir.frontend`."""

from ir.dtypes import DType
from ir.errors import IRError, IRSyntaxError, IRTypeError
from ir.interp import Precision, run
from ir.kernel import Instr, Kernel, Loc, Param, TensorType
from ir.ops import Op
from ir.parser import parse, parse_module
from ir.printer import format_kernel
from ir.typecheck import typecheck

__all__ = [
    "DType", "IRError", "IRSyntaxError", "IRTypeError", "Instr", "Kernel", "Loc", "Op", "Param",
    "Precision", "TensorType", "format_kernel", "parse", "parse_module", "run", "typecheck",
]
