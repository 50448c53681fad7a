"""Type errors: each names the op, the line and column, and what was expected."""

from __future__ import annotations

import pytest

from ir import IRTypeError, parse
from ir.ops import ARITY, Op
from ir.typecheck import RULES, broadcast_shapes


def kernel(body: str, inputs: str = "%x: f32[4, 8], %n: i32[4, 8]", outputs: str = "%o: f32[4, 8]",
           ret: str = "%o") -> str:
    return f"kernel k({inputs}) -> ({outputs}) {{\n{body}\n  return {ret}\n}}\n"


TYPE_ERRORS = [
    # (body, line, column, words)
    ("  %o = exp(%n)", 2, 3, ["exp", "expected a floating dtype", "got i32"]),
    ("  %o = add(%x, %n)", 2, 3, ["expected operands of one dtype", "f32 and i32", "insert a cast"]),
    ("  %o = add(%x, %zz)", 2, 3, ["operand %zz is not defined"]),
    ("  %o = exp(%x, %x)", 2, 3, ["expected 1 operand(s), got 2"]),
    ("  %o = exp(%x) : f32[4]", 2, 3, ["annotated f32[4]", "produces f32[4, 8]"]),
    ("  %o = sum(%x, axes=[2])", 2, 3, ["axis 2 out of range for rank 2"]),
    ("  %o = sum(%x, axes=[1, -1])", 2, 3, ["repeated axis"]),
    ("  %o = sum(%x)", 2, 3, ["missing attribute 'axes'"]),
    ("  %o = sum(%x, axes=[1], keep=true)", 2, 3, ["unknown attribute 'keep'", "axes, keepdim"]),
    ("  %o = sum(%x, axes=[1], keepdim=3)", 2, 3, ["keepdim=3 is not a valid bool"]),
    ("  %o = const(1.5)", 2, 3, ["expected a result type"]),
    ("  %o = const(1.5) : i32", 2, 3, ["expected an integer for a i32 constant"]),
    ("  %o = const(1) : bool", 2, 3, ["expected true or false"]),
    ("  %o = reshape(%x, shape=[5, 7])", 2, 3, ["expected a shape of 32 elements"]),
    ("  %o = expand(%x, shape=[4, 9])", 2, 3, ["broadcasts to"]),
    ("  %a = const(1.0) : f32[3]\n  %o = add(%x, %a)", 3, 3, ["shapes that broadcast", "[4, 8], [3]"]),
    ("  %o = where(%x, %x, %x)", 2, 3, ["expected bool, got f32"]),
    ("  %o = not(%x)", 2, 3, ["expected bool, got f32"]),
    ("  %o = matmul(%x, %x)", 2, 3, ["[..., M, K] and [..., K, N]"]),
    ("  %o = exp(%x)\n  %o = exp(%x)", 3, 3, ["%o is defined twice"]),
]


@pytest.mark.parametrize("body,line,column,words", TYPE_ERRORS)
def test_type_errors(body: str, line: int, column: int, words: list[str]) -> None:
    with pytest.raises(IRTypeError) as caught:
        parse(kernel(body))
    err = caught.value
    assert (err.loc.line, err.loc.column) == (line, column), str(err)
    for word in words:
        assert word in str(err), str(err)


def test_return_count_and_output_types_are_checked() -> None:
    with pytest.raises(IRTypeError, match="returns 2 value"):
        parse(kernel("  %o = exp(%x)", ret="%o, %o"))
    with pytest.raises(IRTypeError, match=r"output %o: declared f32\[4, 8\] but %s is f32\[4\]"):
        parse(kernel("  %s = sum(%x, axes=[1])", ret="%s"))


def test_repeated_parameter_names_are_rejected() -> None:
    with pytest.raises(IRTypeError, match="parameter names repeated: %x"):
        parse(kernel("  %o = exp(%x)", inputs="%x: f32[4, 8], %x: f32[4, 8]"))


def test_index_reductions_give_i64_and_comparisons_bool() -> None:
    k = parse(kernel("  %i = argmin(%x, axes=[1])\n  %b = lt(%n, %n)\n  %o = exp(%x)"))
    types = {i.result: str(i.type) for i in k.body}
    assert types == {"%i": "i64[4]", "%b": "bool[4, 8]", "%o": "f32[4, 8]"}


def test_every_op_has_a_typing_rule_and_an_arity() -> None:
    assert set(RULES) == set(Op)
    assert set(ARITY) == set(Op)


@pytest.mark.parametrize("shapes,expected", [
    (((4, 1), (1, 8)), (4, 8)),
    (((8,), (4, 8)), (4, 8)),
    (((), (2, 3)), (2, 3)),
    (((4, 2), (4, 8)), None),
    (((3,), (4,)), None),
])
def test_broadcast_shapes(shapes: tuple, expected: tuple | None) -> None:
    assert broadcast_shapes(*shapes) == expected
