"""The text form: parse(print(k)) == k, and syntax errors that say where and what was expected."""

from __future__ import annotations

import pytest

from ir import IRSyntaxError, format_kernel, parse, parse_module
from ir.dtypes import DType
from ir.ops import Op

SOFTMAX = """
# a comment
kernel softmax(%x: f32[4, 8]) -> (%y: f32[4, 8]) {
  %m = amax(%x, axes=[-1], keepdim=true)
  %d = sub(%x, %m) : f32[4, 8]
  %e = exp(%d)
  %s = sum(%e, axes=[1], keepdim=true)
  %y = div(%e, %s)
  return %y
}
"""

EVERYTHING = """
kernel k(%a: bf16[2, 3] strides [1, 2], %b: i32[3], %c: bool[2, 1]) -> (%o: f32[2, 3], %i: i64[1, 1]) {
  %n = const(nan) : f32
  %p = const(inf) : f32[2, 3]
  %q = const(-inf) : f32[]
  %z = const(-3) : i32
  %t = const(true) : bool
  %f = cast(%a, to=f32)
  %w = where(%c, %f, %n)
  %bb = cast(%b, to=f32)
  %s = add(%w, %bb)
  %r = reshape(%s, shape=[3, 2])
  %r2 = reshape(%r, shape=[2, 3])
  %e = expand(%c, shape=[2, 3])
  %am = argmax(%r2, axes=[0, 1], keepdim=true)
  %v = mean(%r2, axes=[], keepdim=false)
  %g = ge(%s, %p)
  %h = and(%g, %e)
  %o = where(%h, %s, %q)
  %l = lt(%b, %z)
  %small = const(1e-05) : f32
  %o2 = mul(%o, %small)
  return %o2, %am
}
"""


def test_parse_infers_types_and_normalizes_axes() -> None:
    k = parse(SOFTMAX)
    types = {i.result: str(i.type) for i in k.body}
    assert types["%m"] == "f32[4, 1]"
    assert types["%s"] == "f32[4, 1]"
    assert types["%y"] == "f32[4, 8]"
    assert k.body[0].attr("axes") == (1,)
    assert [i.op for i in k.body] == [Op.AMAX, Op.SUB, Op.EXP, Op.SUM, Op.DIV]


@pytest.mark.parametrize("text", [SOFTMAX, EVERYTHING])
def test_round_trip(text: str) -> None:
    k = parse(text)
    printed = format_kernel(k)
    assert parse(printed) == k
    assert format_kernel(parse(printed)) == printed


def test_strides_and_non_finite_constants_survive() -> None:
    k = parse(EVERYTHING)
    assert k.inputs[0].type.strides == (1, 2)
    assert not k.inputs[0].type.is_contiguous
    assert k.inputs[0].type.dtype == DType.BF16
    values = {i.result: i.attr("value") for i in k.body if i.op == Op.CONST}
    assert values == {"%n": "nan", "%p": "inf", "%q": "-inf", "%z": -3, "%t": True, "%small": 1e-05}
    assert "strides [1, 2]" in format_kernel(k)


def test_module_with_two_kernels() -> None:
    text = SOFTMAX + SOFTMAX.replace("softmax", "again")
    assert [k.name for k in parse_module(text)] == ["softmax", "again"]
    with pytest.raises(IRSyntaxError, match="expected one kernel, found 2"):
        parse(text)


def test_equality_ignores_locations() -> None:
    assert parse(SOFTMAX) == parse("\n\n\n" + SOFTMAX.replace("  ", "      "))


SYNTAX_ERRORS = [
    # (text, line, column, words the message must contain)
    ("kernel k(%x: f32[4]) -> (%y: f32[4]) { %y = exp(%x, ) return %y }", 1, 53,
     ["unexpected ')'", "a value like %x"]),
    ("kernel k(%x: f32[4]) -> (%y: f32[4]) {\n  %y = exp(%x) : f33[4]\n  return %y\n}", 2, 18,
     ["unexpected 'f33'", "a dtype (f32, f16, bf16, i32, i64, bool)"]),
    ("kernel k(%x: f32[4]) -> (%y: f32[4]) {\n  %y = exp(%x)\n", 2, 14,
     ["unexpected the end of the text", "'return'"]),
    ("kernel k(%x: f32[4) -> (%y: f32[4]) { return %x }", 1, 19, ["unexpected ')'", "']'"]),
    ("kernel k(x: f32[4]) -> () { return %x }", 1, 10, ["unexpected 'x'", "a value like %x"]),
    ("kernel k(%x: f32[4]) -> (%y: f32[4]) { %y = frob(%x) return %y }", 1, 45,
     ["unknown op 'frob'", "known ops:", "exp"]),
    ("kernel k(%x: f32[4]) -> (%y: f32[4]) { %y = exp(%x) }", 1, 53, ["'}'", "'return'"]),
]


@pytest.mark.parametrize("text,line,column,words", SYNTAX_ERRORS)
def test_syntax_errors_give_line_column_and_expectation(text: str, line: int, column: int,
                                                        words: list[str]) -> None:
    with pytest.raises(IRSyntaxError) as caught:
        parse(text)
    err = caught.value
    assert (err.loc.line, err.loc.column) == (line, column), str(err)
    for word in words:
        assert word in str(err)
    assert str(err).startswith(f"{line}:{column}: ")
