"""argmax and argmin values proved (`verify/arg_reductions.py`): a kernel's (value, index) pairs,
followed through shuffles and shared memory, reach the IR's answer whatever the tree's shape;
combines that take the worse pair, indices that are not their element's position and pairs past
the row are refuted, and what is not modelled stays inconclusive, never proved."""

from __future__ import annotations

import re

import pytest
import z3

from ir import parse
from ir.kernel import Kernel
from ir.ops import Op
from ptxgen.lower import default_schedule, lower
from ptxgen.schedule import ColumnSchedule, RowSchedule, Schedule
from ptxgen.targets import TARGETS
from verify.arg_reductions import START_INDEX, Operand, combine_claim
from verify.emulate import Launch
from verify.ir_symbolic import arg_result
from verify.prove import VALUES, Obligation, prove_kernel
from verify.symbolic import nodes

TARGET = TARGETS["sm_90a"]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ROW_ARGMIN = parse("kernel k(%x: bf16[4, 1000]) -> (%i: i64[4]) {\n  %i = argmin(%x, axes=[1])\n  return %i\n}")
ROW_ARGMAX = parse("kernel k(%x: f32[3, 4096]) -> (%i: i64[3]) {\n  %i = argmax(%x, axes=[1])\n  return %i\n}")
COLUMN_ARGMAX = parse("kernel k(%x: f32[2, 37, 64]) -> (%i: i64[2, 64]) {\n  %i = argmax(%x, axes=[1])\n  return %i\n}")
# A warp to a row (butterfly), a CTA to a row (the warps' pairs through shared memory), a cluster of
# two CTAs to a row (through the cluster's shared memory), and a column split over 8 threads.
SCHEDULES: dict[str, tuple[Kernel, Schedule | None]] = {
    "warp": (ROW_ARGMIN, None),
    "cta": (ROW_ARGMAX, RowSchedule(vector_bytes=16, block_size=256, threads_per_row=256, cache_row=False, unroll=2)),
    "cluster": (ROW_ARGMAX, RowSchedule(vector_bytes=16, block_size=256, threads_per_row=256, cache_row=False,
                                        cluster=2, unroll=1)),
    "column": (COLUMN_ARGMAX, ColumnSchedule(vector_bytes=8, block_size=256, threads_along_reduction=8, unroll=4)),
}


def lowered(kernel: Kernel, schedule: Schedule | None = None) -> tuple[list[str], Launch, Schedule]:
    schedule = schedule or default_schedule(kernel, TARGET)
    result = lower(kernel, schedule, TARGET)
    return result.ptx.splitlines(), Launch.of(result.launch), schedule


def values(kernel: Kernel, ptx: str, launch: Launch, schedule: Schedule) -> Obligation:
    return next(o for o in prove_kernel(ptx, launch, kernel, getattr(schedule, "approx_math", None))
                if o.name == VALUES)


def edited(lines: list[str], pattern: str, replacement: str, nth: int = 0) -> str:
    index = [i for i, line in enumerate(lines) if re.search(pattern, line)][nth]
    return "\n".join(lines[:index] + [re.sub(pattern, replacement, lines[index], count=1)] + lines[index + 1:])


@pytest.mark.parametrize("case", SCHEDULES, ids=list(SCHEDULES))
def test_an_argmax_or_argmin_is_proved_equal_to_the_ir_whatever_its_tree(case: str) -> None:
    kernel, schedule = SCHEDULES[case]
    lines, launch, schedule = lowered(kernel, schedule)
    assert launch.cluster_size == (2 if case == "cluster" else 1)
    found = values(kernel, "\n".join(lines), launch, schedule)
    assert found.status == "proved", found.detail


# Edits of the row argmin (a warp to a row): what each does, and the words its refutation carries.
WRONG = {
    "ties taken by the later index": (r"setp\.lt\.s32 (%p\d+), (%r\d+), (%r\d+)", r"setp.lt.s32 \1, \3, \2", 0,
                                      "does not take the better"),
    "a step that takes an equal value": (r"setp\.ltu\.and", "setp.leu.and", 3, "does not take the better"),
    "a merge that takes an equal value": (r"setp\.lt\.f32", "setp.le.f32", 1, "does not take the better"),
    "a NaN test dropped": (r"testp\.notanumber\.f32 (%p\d+), %f0;", r"mov.pred \1, 0;", 1,
                           "does not take the better"),
    "an index off by one": (r"add\.u32 (%r\d+), %r10, 1;", r"add.u32 \1, %r10, 2;", 0,
                            "pairs the element at position 1 of its row with index 2"),
    "a tail lane left unguarded": (r"and\.pred (%p\d+), (%p\d+), %p5;", r"mov.pred \1, \2;", 0,
                                   "past the row's 1000 elements"),
    "a tie's test dropped": (r"^\s*setp\.eq\.f32 (%p\d+), (%f\d+), (%f\d+);", "// dropped", 0,
                             "never written) any value"),
    "no element read as 1, not 0": (r"selp\.b32 (%r\d+), 0, %r19", r"selp.b32 \1, 1, %r19", 0, "the IR gives 0x0"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_a_wrong_argmin_is_refuted_saying_what_is_wrong(case: str) -> None:
    pattern, replacement, nth, words = WRONG[case]
    lines, launch, schedule = lowered(ROW_ARGMIN)
    found = values(ROW_ARGMIN, edited(lines, pattern, replacement, nth), launch, schedule)
    assert found.status == "refuted", found.detail
    assert words in found.detail, found.detail


OPEN = {
    "an index select dropped": (r"^\s*selp\.b32 %r19, %r24, %r19, (%p\d+);", "// dropped", 0,
                                "chosen under different conditions"),
    "another start value": (r"mov\.f32 %f0, 0f7F800000;", "mov.f32 %f0, 0f7F7FFFFF;", 0, "not the start"),
    "another start index": (r"mov\.u32 %r19, 2147483647;", "mov.u32 %r19, 2147483646;", 0, "not the start"),
}


@pytest.mark.parametrize("case", OPEN, ids=list(OPEN))
def test_what_is_not_modelled_stays_inconclusive(case: str) -> None:
    pattern, replacement, nth, words = OPEN[case]
    lines, launch, schedule = lowered(ROW_ARGMIN)
    found = values(ROW_ARGMIN, edited(lines, pattern, replacement, nth), launch, schedule)
    assert found.status == "inconclusive" and words in found.detail, found.detail


def test_operands_swapped_in_an_equality_change_nothing_and_are_proved() -> None:
    lines, launch, schedule = lowered(ROW_ARGMIN)
    ptx = edited(lines, r"setp\.eq\.f32 (%p\d+), (%f\d+), (%f\d+)", r"setp.eq.f32 \1, \3, \2")
    assert values(ROW_ARGMIN, ptx, launch, schedule).status == "proved"


# The combine query alone: two running pairs (each may be the start), positions interleaved.
FIRST = Operand(z3.BitVec("v1", 32), z3.BitVec("i1", 32))
SECOND = Operand(z3.BitVec("v2", 32), z3.BitVec("i2", 32))
RUNNING = ((False, True, True), (False, True, True))


def _solve(condition: z3.BoolRef, op: Op = Op.ARGMAX, how: str = "interleaved") -> z3.CheckSatResult:
    solver = z3.Solver()
    solver.add(*combine_claim(op, condition, FIRST, SECOND, RUNNING, how, 100))
    return solver.check()


def _better(op: Op) -> z3.BoolRef:
    """The kernels' merge: NaN first, then the strictly better value, then the lower index."""
    a, b = FIRST.float, SECOND.float
    strictly = z3.fpGT(a, b) if op == Op.ARGMAX else z3.fpLT(a, b)
    earlier = z3.ULT(FIRST.index, SECOND.index)
    return z3.Or(z3.And(z3.Not(z3.fpIsNaN(b)), z3.Or(z3.fpIsNaN(a), strictly, z3.And(z3.fpEQ(a, b), earlier))),
                 z3.And(z3.fpIsNaN(a), z3.fpIsNaN(b), earlier))


@pytest.mark.parametrize("op", [Op.ARGMAX, Op.ARGMIN])
def test_the_combine_query_proves_the_merge_and_refutes_its_wrong_twins(op: Op) -> None:
    assert _solve(_better(op), op) == z3.unsat
    a, b = FIRST.float, SECOND.float
    assert _solve(z3.fpGT(a, b) if op == Op.ARGMAX else z3.fpLT(a, b), op) == z3.sat  # NaN and ties lost
    assert _solve(z3.Not(_better(op)), op) == z3.sat
    # A step that keeps the earlier pair on a tie is right only where the new one comes after it.
    step = z3.And(z3.Not(z3.fpIsNaN(b)), z3.Or(z3.fpIsNaN(a), z3.fpGT(a, b) if op == Op.ARGMAX else z3.fpLT(a, b)))
    assert _solve(step, op, "after") == z3.unsat and _solve(step, op, "before") == z3.sat


def test_the_irs_answer_is_the_first_position_where_every_element_is_the_worst() -> None:
    best = z3.BitVec("best", 64)
    worst, found = z3.BitVecVal(1 << 32, 64) | 7, z3.BitVecVal(7, 64)
    assert z3.simplify(arg_result(z3.substitute(best, (best, worst)), 10)).as_long() == 0
    assert z3.simplify(arg_result(z3.substitute(best, (best, found)), 10)).as_long() == 7
    assert START_INDEX == 2**31 - 1


def test_reads_that_differ_in_a_sums_constant_share_one_shift_over_the_constants_range() -> None:
    """A column's loop trips read at offsets that differ only in the constant of a 32-bit sum: the
    lemma that carries CTA 0 to every CTA asks once for the whole range of that constant."""
    from verify.reductions import ROW_CONSTANT, _constant_held, _ranged, merge_shifts

    x = z3.BitVec("x", 32)
    held, constant = _constant_held(z3.simplify(4 * z3.ZeroExt(32, 65536 + 2 * x)))
    assert constant == 65536 and any(n.eq(ROW_CONSTANT) for n in nodes(held))
    assert z3.simplify(z3.substitute(held, (ROW_CONSTANT, z3.BitVecVal(65536, 32))) -
                       z3.simplify(4 * z3.ZeroExt(32, 65536 + 2 * x))).as_long() == 0
    assert _constant_held(z3.simplify(4 * z3.ZeroExt(32, 2 * x)))[1] is None  # no constant: nothing held
    shifts = {7: (held, held, 4, "memory %x", (65536, 65536))}
    merge_shifts(shifts, {7: (held, held, 4, "memory %x", (131072, 131072))})
    assert shifts[7][4] == (65536, 131072)
    assert _ranged(None) == [] and len(_ranged((1, 2))) == 2

