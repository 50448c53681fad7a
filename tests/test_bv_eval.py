"""z3 bit-vector terms compiled to Python, against z3's own simplifier on random terms."""

from __future__ import annotations

import random

import pytest
import z3

from verify.bv_eval import NotEvaluable, compiled

X, Y = z3.BitVec("x", 32), z3.BitVec("y", 32)
OPS = (
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, z3.UDiv, z3.URem, lambda a, b: a & b,
    lambda a, b: a | b, lambda a, b: a ^ b, lambda a, b: a << (b & 7), z3.LShR, lambda a, b: a >> (b & 31),
    lambda a, b: z3.If(z3.ULT(a, b), a, b), lambda a, b: z3.If(a < b, b, a),
    lambda a, b: z3.Extract(31, 0, z3.ZeroExt(32, a) * z3.SignExt(32, b)),
    lambda a, b: z3.Concat(z3.Extract(15, 0, a), z3.Extract(31, 16, b)), lambda a, b: -a + ~b,
    lambda a, b: z3.If(z3.Or(a == b, z3.And(z3.UGE(a, 3), z3.Not(b > 5))), a, b + 1),
)


def random_term(rng: random.Random, depth: int) -> z3.BitVecRef:
    if depth == 0:
        return rng.choice([X, Y, z3.BitVecVal(rng.randrange(1 << 32), 32), z3.BitVecVal(rng.randrange(9), 32)])
    return rng.choice(OPS)(random_term(rng, depth - 1), random_term(rng, depth - 1))


@pytest.mark.parametrize("seed", range(40))
def test_compiled_terms_agree_with_z3(seed: int) -> None:
    rng = random.Random(1000 + seed)
    term = random_term(rng, 3)
    function = compiled(term, ("x", "y"))
    for _ in range(5):
        x, y = rng.randrange(1 << 32), rng.choice([0, 1, 7, rng.randrange(1 << 32)])
        want = z3.simplify(z3.substitute(term, (X, z3.BitVecVal(x, 32)), (Y, z3.BitVecVal(y, 32)))).as_long()
        assert function(x, y) == want, term


def test_an_unknown_symbol_or_a_float_is_not_evaluable() -> None:
    with pytest.raises(NotEvaluable):
        compiled(X + Y, ("x",))
    with pytest.raises(NotEvaluable):
        compiled(z3.fpToIEEEBV(z3.FPVal(1.0, z3.Float32())), ())


def test_and_and_or_of_no_operands_are_true_and_false() -> None:
    """A path with no conditions on it is z3.And() of nothing: it holds for every thread."""
    assert compiled(z3.And(), ("x",))(3) is True
    assert compiled(z3.Or(), ("x",))(3) is False
    assert compiled(z3.And(z3.And(), z3.ULT(X, 5)), ("x",))(3) is True
