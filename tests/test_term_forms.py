"""The term rewrites the value proofs rely on (`verify.prove.Canonical`, `equal_by_congruence`,
`verify.symbolic.decoded`): each keeps a term's meaning, checked by the solver on the terms the
rewrites are for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import z3

from verify.prove import Canonical, equal_by_congruence
from verify.symbolic import decoded, to_bits

F32 = z3.Float32()
RNE = z3.RNE()


def equivalent(a: z3.ExprRef, b: z3.ExprRef) -> bool:
    solver = z3.Solver()
    solver.add(a != b)
    return solver.check() == z3.unsat


def test_operands_of_commutative_operations_are_put_in_one_order() -> None:
    x, y, z = z3.FPs("x y z", F32)
    p, q = z3.Bools("p q")
    first = z3.If(z3.Or(p, q), z3.fpAdd(RNE, x, y), z)
    second = z3.If(z3.Or(q, p), z3.fpAdd(RNE, y, x), z)
    assert not first.eq(second)
    canonical = Canonical()
    assert canonical(first).eq(canonical(second))
    assert equivalent(canonical(first), first)


CANONICAL_ORDER = """
import z3
from verify.prove import Canonical
canonical = Canonical()
x, y = z3.FPs("x y", z3.Float32())
for k in range(12):
    a, b = z3.BitVecs(f"a{k} b{k}", 32)
    print(canonical(z3.fpAdd(z3.RNE(), z3.fpBVToFP(a * 3, z3.Float32()), z3.fpBVToFP(b + 1, z3.Float32()))).sexpr())
"""


def test_the_order_is_the_same_in_every_process() -> None:
    """Not of Python's string hashing, which PYTHONHASHSEED varies: the order of a query's operands,
    and with it the solver's time, would change from one run to the next."""
    root = Path(__file__).resolve().parents[1]
    printed = {subprocess.run([sys.executable, "-c", CANONICAL_ORDER], capture_output=True, text=True, check=True,
                              cwd=root, env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(printed) == 1 and printed.pop().count("fp.add") == 12


def test_non_commutative_operands_keep_their_order() -> None:
    x, y = z3.FPs("x y", F32)
    canonical = Canonical()
    assert not canonical(z3.fpSub(RNE, x, y)).eq(canonical(z3.fpSub(RNE, y, x)))
    assert not canonical(z3.fpDiv(RNE, x, y)).eq(canonical(z3.fpDiv(RNE, y, x)))


def test_a_float_decoded_from_its_own_bits_is_the_float() -> None:
    m = z3.FP("m", F32)
    bits = to_bits(m, "f32")
    guarded = z3.fpBVToFP(z3.If(z3.fpIsInf(m), z3.BitVecVal(0, 32), bits), F32)  # logsumexp's max, 0 where infinite
    assert decoded(z3.fpBVToFP(bits, F32)).eq(m)
    rewritten = decoded(guarded)
    assert not any(z3.is_app_of(n, z3.Z3_OP_FPA_TO_IEEE_BV) for n in [rewritten] + list(rewritten.children()))
    assert equivalent(rewritten, guarded)


def test_terms_that_differ_in_equal_subterms_are_equal_by_congruence() -> None:
    x, m = z3.FPs("x m", F32)
    inner = z3.If(z3.fpIsInf(m), z3.FPVal(0.0, F32), m)
    spelled = z3.fpBVToFP(z3.If(z3.fpIsInf(m), z3.BitVecVal(0, 32), z3.fpToIEEEBV(m)), F32)
    outer = [z3.fpMul(RNE, z3.fpSub(RNE, x, v), z3.fpSub(RNE, x, v)) for v in (inner, spelled)]
    asked: list[z3.BoolRef] = []

    def proved(claim: z3.BoolRef) -> bool:
        asked.append(claim)
        return equivalent(claim, z3.BoolVal(True))

    assert equal_by_congruence(outer[0], outer[1], proved)
    assert asked and not any(c.arg(0).eq(outer[0]) for c in asked)  # smaller queries than the whole


def test_subterms_that_differ_leave_congruence_unproved() -> None:
    x, y = z3.FPs("x y", F32)
    a, b = z3.fpAdd(RNE, x, z3.fpNeg(y)), z3.fpAdd(RNE, x, y)
    assert not equal_by_congruence(a, b, lambda claim: equivalent(claim, z3.BoolVal(True)))
    # The whole terms differing at their root: no smaller query, nothing claimed.
    assert not equal_by_congruence(z3.fpAdd(RNE, x, y), z3.fpSub(RNE, x, y), lambda claim: True)


MAGIC = 0x4B400000  # exp's round-to-integer constant: its low 22 bits are 0


def exponent_field(n: z3.BitVecRef, magic: int) -> z3.BitVecRef:
    """mathlib exp's scale factor, as ptxgen emits it: the integer part (n - magic, halved) put in
    the exponent field by a product with 2**23."""
    return z3.simplify(((n + magic) >> 1) * 0x00800000)


def test_constants_are_cut_to_the_low_bits_a_product_by_a_power_of_two_keeps() -> None:
    n = z3.BitVec("n", 32)
    subtracted, added = exponent_field(n, -MAGIC & 0xFFFFFFFF), exponent_field(n, MAGIC)
    assert not subtracted.eq(added)
    canonical = Canonical()
    assert canonical(subtracted).eq(canonical(added))  # the magic's bits never reach the product
    assert equivalent(canonical(subtracted), subtracted) and equivalent(canonical(added), added)


def test_constants_whose_low_bits_reach_the_result_stay_apart() -> None:
    n = z3.BitVec("n", 32)
    canonical = Canonical()
    for a, b in ((1, 0xFFFFFFFF), (MAGIC + 2, MAGIC), (1 << 9, 0)):  # bit 9 of n + c reaches the product
        assert not canonical(exponent_field(n, a)).eq(canonical(exponent_field(n, b))), (a, b)
    assert not equivalent(exponent_field(n, 1 << 9), exponent_field(n, 0))


def test_low_bits_rewrites_keep_the_meaning_of_every_form_they_touch() -> None:
    n, m = z3.BitVecs("n m", 32)
    canonical = Canonical()
    forms = [z3.Extract(7, 0, n + 0x12345600), z3.Extract(15, 0, (n ^ 0xFFFF0000) + m * 0x10000),
             ((n - 0x7F000000) >> 3) * 0x20000000, z3.LShR((n | 0xFF000000) + m, 4) * 0x01000000,
             z3.Extract(3, 0, z3.LShR(n, 30) + 0xF0), ((n + 5) >> 30) * 0x4]
    for form in forms:
        form = z3.simplify(form)
        assert equivalent(canonical(form), form), form
