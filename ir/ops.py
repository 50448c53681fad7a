"""The IR's operations, in named groups. Their meaning lives in `interp.py`, their typing in
`typecheck.py`; both are tables keyed by `Op`."""

from __future__ import annotations

from enum import Enum


class Op(Enum):
    # unary, float -> float
    NEG = "neg"
    ABS = "abs"
    SIGN = "sign"
    EXP = "exp"
    EXP2 = "exp2"
    EXPM1 = "expm1"
    LOG = "log"
    LOG2 = "log2"
    LOG1P = "log1p"
    SQRT = "sqrt"
    RSQRT = "rsqrt"
    RECIP = "recip"
    SIN = "sin"
    COS = "cos"
    TANH = "tanh"
    ERF = "erf"
    SIGMOID = "sigmoid"
    FLOOR = "floor"
    CEIL = "ceil"
    ROUND = "round"
    TRUNC = "trunc"
    # unary predicates and logic
    ISNAN = "isnan"
    ISINF = "isinf"
    NOT = "not"
    # binary arithmetic
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    # binary logic
    AND = "and"
    OR = "or"
    # comparisons -> bool
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    # ternary select
    WHERE = "where"
    # type and value producers
    CAST = "cast"
    CONST = "const"
    # movement (no arithmetic)
    RESHAPE = "reshape"
    EXPAND = "expand"
    # reductions
    SUM = "sum"
    MEAN = "mean"
    AMAX = "amax"
    AMIN = "amin"
    ARGMAX = "argmax"
    ARGMIN = "argmin"
    # contraction (left to PyTorch by the frontend for now)
    MATMUL = "matmul"

    def __str__(self) -> str:
        return self.value


FLOAT_UNARY = frozenset({
    Op.EXP, Op.EXP2, Op.EXPM1, Op.LOG, Op.LOG2, Op.LOG1P, Op.SQRT, Op.RSQRT, Op.RECIP,
    Op.SIN, Op.COS, Op.TANH, Op.ERF, Op.SIGMOID, Op.FLOOR, Op.CEIL, Op.ROUND, Op.TRUNC,
})
NUMERIC_UNARY = frozenset({Op.NEG, Op.ABS, Op.SIGN})
PREDICATES = frozenset({Op.ISNAN, Op.ISINF})
UNARY = FLOAT_UNARY | NUMERIC_UNARY | PREDICATES | {Op.NOT, Op.CAST}
ARITHMETIC = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM})
FLOAT_BINARY = frozenset({Op.DIV, Op.POW})
LOGIC = frozenset({Op.AND, Op.OR})
COMPARISONS = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE})
BINARY = ARITHMETIC | FLOAT_BINARY | LOGIC | COMPARISONS
ELEMENTWISE = UNARY | BINARY | {Op.WHERE, Op.CONST}
MOVEMENT = frozenset({Op.RESHAPE, Op.EXPAND})
VALUE_REDUCTIONS = frozenset({Op.SUM, Op.MEAN, Op.AMAX, Op.AMIN})
INDEX_REDUCTIONS = frozenset({Op.ARGMAX, Op.ARGMIN})
REDUCTIONS = VALUE_REDUCTIONS | INDEX_REDUCTIONS

ARITY = {
    **{op: 1 for op in UNARY | MOVEMENT | REDUCTIONS},
    **{op: 2 for op in BINARY | {Op.MATMUL}},
    Op.WHERE: 3,
    Op.CONST: 0,
}

# The attributes each op takes: name -> kind ("axes", "bool", "shape", "dtype", "literal").
ATTRIBUTES: dict[Op, dict[str, str]] = {
    **{op: {"axes": "axes", "keepdim": "bool"} for op in REDUCTIONS},
    Op.RESHAPE: {"shape": "shape"},
    Op.EXPAND: {"shape": "shape"},
    Op.CAST: {"to": "dtype"},
    Op.CONST: {"value": "literal"},
}

OPS_BY_NAME = {op.value: op for op in Op}
