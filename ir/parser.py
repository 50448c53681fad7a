"""IR text -> kernels. The grammar (grammar.lark) is the spec; `ToIR` turns its parse tree into IR
dataclasses; `parse` then typechecks, so what it returns is fully typed and normalized."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args

from ir.dtypes import DType
from ir.errors import IRSyntaxError
from ir.kernel import Attr, Instr, Kernel, Loc, Param, TensorType
from ir.ops import OPS_BY_NAME
from ir.typecheck import typecheck

GRAMMAR = Path(__file__).with_name("grammar.lark")

# Terminal names as a person would say them, for "expected ..." in syntax errors.
TERMINAL_WORDS = {
    "VALUE": "a value like %x",
    "NAME": "a name",
    "DTYPE": "a dtype (f32, f16, bf16, i32, i64, bool)",
    "INT": "an integer",
    "SIGNED_NUMBER": "a number",
    "BOOL": "true or false",
    "NON_FINITE": "nan, inf or -inf",
    "STRIDES": "'strides'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "RETURN": "'return'",
    "KERNEL": "'kernel'",
    "MINUS": "'-'",
    "MORETHAN": "'>'",
    "__ANON_0": "'->'",
    "$END": "the end of the text",
}


@cache
def _lark() -> Lark:
    return Lark(GRAMMAR.read_text(), start="module", parser="lalr", propagate_positions=True)


def _loc(meta: Any) -> Loc:
    return Loc(meta.line, meta.column)


@v_args(meta=True)
class ToIR(Transformer):
    """Parse tree -> IR dataclasses. Types after ':' are kept as written (None if absent)."""

    def module(self, meta: Any, kernels: list[Kernel]) -> tuple[Kernel, ...]:
        return tuple(kernels)

    def kernel(self, meta: Any, children: list[Any]) -> Kernel:
        name, inputs, outputs, *body, returns = children
        return Kernel(str(name), inputs or (), outputs or (), tuple(body), returns, _loc(meta))

    def params(self, meta: Any, params: list[Param]) -> tuple[Param, ...]:
        return tuple(params)

    def param(self, meta: Any, children: list[Any]) -> Param:
        name, type_ = children
        return Param(str(name), type_, _loc(meta))

    def type(self, meta: Any, children: list[Any]) -> TensorType:
        dtype, shape, _strides_word, strides = children
        return TensorType(DType(str(dtype)), shape or (), strides or ())

    def scalar_type(self, meta: Any, children: list[Token]) -> TensorType:
        return TensorType(DType(str(children[0])), ())

    def ints(self, meta: Any, tokens: list[Token]) -> tuple[int, ...]:
        return tuple(int(t) for t in tokens)

    def instr(self, meta: Any, children: list[Any]) -> Instr:
        result, op_name, args, type_ = children
        op = OPS_BY_NAME.get(str(op_name))
        if op is None:
            raise IRSyntaxError(f"unknown op {str(op_name)!r}; known ops: {', '.join(sorted(OPS_BY_NAME))}",
                                Loc(op_name.line, op_name.column))
        operands = tuple(a for kind, a in (args or ()) if kind == "operand")
        attrs = dict(a for kind, a in (args or ()) if kind == "keyword")
        literals = [a for kind, a in (args or ()) if kind == "literal"]
        if literals:
            attrs["value"] = literals[0] if len(literals) == 1 else tuple(literals)
        return Instr(str(result), op, operands, tuple(sorted(attrs.items())), type_, _loc(meta))

    def args(self, meta: Any, args: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return args

    def operand(self, meta: Any, children: list[Token]) -> tuple[str, str]:
        return ("operand", str(children[0]))

    def positional_literal(self, meta: Any, children: list[Attr]) -> tuple[str, Attr]:
        return ("literal", children[0])

    def keyword(self, meta: Any, children: list[Any]) -> tuple[str, tuple[str, Attr]]:
        name, value = children
        return ("keyword", (str(name), value))

    def dtype_attr(self, meta: Any, children: list[Token]) -> DType:
        return DType(str(children[0]))

    def int_list(self, meta: Any, children: list[Any]) -> tuple[int, ...]:
        return children[0] or ()

    def number(self, meta: Any, children: list[Token]) -> int | float:
        text = str(children[0])
        is_int = all(c not in text for c in ".eE")
        return int(text) if is_int else float(text)

    def boolean(self, meta: Any, children: list[Token]) -> bool:
        return str(children[0]) == "true"

    def non_finite(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    def ret(self, meta: Any, values: list[Token]) -> tuple[str, ...]:
        return tuple(str(v) for v in values)


def _expected_words(expected: set[str]) -> str:
    words = sorted({TERMINAL_WORDS.get(t, repr(t)) for t in expected})
    return ", ".join(words)


def _syntax_error(text: str, err: lark.exceptions.UnexpectedInput) -> IRSyntaxError:
    loc = Loc(err.line, err.column)
    context = err.get_context(text).rstrip("\n")
    if isinstance(err, lark.exceptions.UnexpectedToken):
        found = "the end of the text" if err.token.type == "$END" else repr(str(err.token))
        message = f"unexpected {found}; expected {_expected_words(set(err.expected))}"
    elif isinstance(err, lark.exceptions.UnexpectedCharacters):
        message = f"unexpected character {text[err.pos_in_stream]!r}"
        if err.allowed:
            message += f"; expected {_expected_words(set(err.allowed))}"
    else:
        message = f"unexpected end of text; expected {_expected_words(set(err.expected))}"
    return IRSyntaxError(message, loc, context)


def parse_untyped(text: str) -> tuple[Kernel, ...]:
    """Kernels as written, without typechecking (types only where annotated)."""
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedInput as err:
        raise _syntax_error(text, err) from None
    try:
        return ToIR().transform(tree)
    except lark.exceptions.VisitError as err:
        if isinstance(err.orig_exc, IRSyntaxError):
            raise err.orig_exc from None
        raise


def parse_module(text: str) -> tuple[Kernel, ...]:
    """Every kernel in `text`, typechecked."""
    return tuple(typecheck(k) for k in parse_untyped(text))


def parse(text: str) -> Kernel:
    """The one kernel in `text`, typechecked."""
    kernels = parse_module(text)
    if len(kernels) != 1:
        names = ", ".join(k.name for k in kernels)
        raise IRSyntaxError(f"expected one kernel, found {len(kernels)} ({names})", Loc(1, 1))
    return kernels[0]
