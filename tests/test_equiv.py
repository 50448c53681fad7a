"""IR kernels proved equal with the prover's own engine (verify/equiv.py, `ptxgen equiv`): rewrites
exact in IEEE arithmetic are proved, wrong ones refuted with an input the interpreter confirms,
ops without an exact meaning compared as uninterpreted functions, and what cannot be settled left
inconclusive."""

from __future__ import annotations

from pathlib import Path

import pytest

from ir import parse
from ir.kernel import Kernel
from ptxgen.cli import main
from verify.equiv import prove_equal


def kernel(name: str, body: str, type_: str = "f32[1000, 37]", inputs: str = "%x") -> Kernel:
    params = ", ".join(f"{p}: {type_}" for p in inputs.split(","))
    return parse(f"kernel {name}({params}) -> (%y: {type_}) {{\n{body}\n  return %y\n}}")


TWICE = kernel("twice", "  %y = add(%x, %x)")
DOUBLE = kernel("double", "  %c = const(2.0) : f32\n  %y = mul(%x, %c)")
RELU_MAX = kernel("relu_max", "  %z = const(0.0) : f32\n  %y = maximum(%x, %z)")
RELU_WHERE = kernel("relu_where", "  %z = const(0.0) : f32\n  %g = gt(%x, %z)\n  %y = where(%g, %x, %z)")
SUMS = "%a,%b,%c"
LEFT = kernel("left", "  %s = add(%a, %b)\n  %y = add(%s, %c)", inputs=SUMS)
RIGHT = kernel("right", "  %s = add(%b, %c)\n  %y = add(%a, %s)", inputs=SUMS)

PROVED = {
    "x*2 is x+x": (DOUBLE, TWICE),
    "a-b is a+(-b)": (kernel("sub", "  %y = sub(%a, %b)", inputs="%a,%b"),
                      kernel("addneg", "  %n = neg(%b)\n  %y = add(%a, %n)", inputs="%a,%b")),
    "a kernel is itself, exp and all": (kernel("e", "  %y = exp(%x)"), kernel("e2", "  %y = exp(%x)")),
    "e+e is 2e whatever exp computes": (
        kernel("sum", "  %e = exp(%x)\n  %y = add(%e, %e)"),
        kernel("scaled", "  %e = exp(%x)\n  %c = const(2.0) : f32\n  %y = mul(%e, %c)")),
    "widening an i32 to i64 and narrowing back is the identity": (
        kernel("round_trip", "  %w = cast(%x, to=i64) : i64[64]\n  %y = cast(%w, to=i32) : i32[64]", type_="i32[64]"),
        kernel("same", "  %z = const(0) : i32\n  %y = add(%x, %z)", type_="i32[64]")),
    "a bool cast to i64 is 1 or 0": (
        kernel("cast", "  %g = gt(%x, %z)\n  %y = cast(%g, to=i64) : i64[64]".replace(
            "%g = gt", "%z = const(0) : i64\n  %g = gt"), type_="i64[64]"),
        kernel("chosen", "  %z = const(0) : i64\n  %one = const(1) : i64\n  %g = gt(%x, %z)\n"
                         "  %y = where(%g, %one, %z)", type_="i64[64]")),
}
REFUTED = {
    "narrowing an i64 to i32 wraps": (
        kernel("round_trip", "  %n = cast(%x, to=i32) : i32[64]\n  %y = cast(%n, to=i64) : i64[64]", type_="i64[64]"),
        kernel("same", "  %z = const(0) : i64\n  %y = add(%x, %z)", type_="i64[64]"),
        "the interpreter tells them apart too"),
    "relu as where drops NaN": (RELU_MAX, RELU_WHERE, "relu_max nan, relu_where 0.0"),
    "addition does not associate": (LEFT, RIGHT, "the interpreter tells them apart too"),
    "tanh is not exp": (kernel("t", "  %y = tanh(%x)"), kernel("e", "  %y = exp(%x)"),
                        "on inputs the solver chose, the interpreter tells them apart too"),
    "shapes differ": (TWICE, kernel("small", "  %y = add(%x, %x)", type_="f32[10]"), "their inputs differ"),
}


@pytest.mark.parametrize("name", sorted(PROVED))
def test_exact_rewrites_are_proved(name: str) -> None:
    first, second = PROVED[name]
    result = prove_equal(first, second)
    assert result.status == "proved", result


@pytest.mark.parametrize("name", sorted(REFUTED))
def test_wrong_rewrites_are_refuted_with_an_input_the_interpreter_confirms(name: str) -> None:
    first, second, fragment = REFUTED[name]
    result = prove_equal(first, second)
    assert result.status == "refuted" and fragment in result.detail, result


def test_uninterpreted_ops_name_themselves_in_the_proof() -> None:
    assert "whatever exp f32 compute" in prove_equal(*PROVED["e+e is 2e whatever exp computes"]).detail


def test_a_difference_only_an_arbitrary_exp_could_make_is_inconclusive() -> None:
    positive = kernel("abs_exp", "  %e = exp(%x)\n  %y = abs(%e)")  # exp is never negative: abs changes nothing
    result = prove_equal(positive, kernel("exp", "  %y = exp(%x)"))
    assert result.status == "inconclusive" and "uninterpreted" in result.detail, result


def test_reductions_are_inconclusive() -> None:
    rows = "kernel {}(%x: f32[8, 16]) -> (%y: f32[8, 1]) {{\n  %y = sum(%x, axes=[1], keepdim=true)\n  return %y\n}}"
    result = prove_equal(parse(rows.format("a")), parse(rows.format("b")))
    assert result.status == "inconclusive" and "reduction" in result.detail


def test_ptxgen_equiv_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ir import format_kernel

    files = {}
    for k in (DOUBLE, TWICE, RELU_MAX, RELU_WHERE):
        files[k.name] = tmp_path / f"{k.name}.ir"
        files[k.name].write_text(format_kernel(k))
    assert main(["equiv", str(files["double"]), str(files["twice"])]) == 0
    assert "double and twice: proved" in capsys.readouterr().out
    assert main(["equiv", str(files["relu_max"]), f"{files['relu_where']}:relu_where", "--json"]) == 1
    assert '"status": "refuted"' in capsys.readouterr().out
    both = tmp_path / "both.ir"
    both.write_text(format_kernel(DOUBLE) + "\n" + format_kernel(TWICE))
    assert main(["equiv", str(both), str(files["twice"])]) == 2
    assert "several kernels" in capsys.readouterr().err
    assert main(["equiv", f"{both}:double", f"{both}:twice"]) == 0
