"""Reduction values proved modulo the order of accumulation (`verify/reductions.py`): a row
reduction's tree, followed through shuffles and shared memory to the threads that supplied each
part, accumulates each of the IR's elements once; wrong trees are refuted with the element they
miss or take twice, and trees of another form are left inconclusive, never proved."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import z3

from ir import parse
from ir.frontend import capture, load_problem
from ptxgen.lower import default_schedule, lower
from ptxgen.schedule import RowSchedule
from ptxgen.targets import TARGETS
from verify import witness
from verify.emulate import Launch
from verify.prove import VALUES, Obligation, _lane, prove_kernel, verdict
from verify.reductions import Rows

REPO = Path(__file__).resolve().parents[1]
TARGET = TARGETS["sm_90a"]
RMSNORM = REPO / "datasets" / "problems" / "reduction" / "rmsnorm_bf16.py"
ACCUMULATE = re.compile(r"add\.rn\.f32 (%f\d+), \1, %f\d+;")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def lowered(sizes: dict[str, int], problem: Path = RMSNORM) -> tuple[object, list[str], Launch]:
    kernel = capture(load_problem(problem, sizes=sizes), shapes_only=True).regions[0].kernel
    result = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    return kernel, result.ptx.splitlines(), Launch.of(result.launch)


# 128 threads to a row: a warp butterfly, then the warps' partials through shared memory.
CTA_ROWS = {"num_tokens": 16, "hidden": 4096}
WARP_ROWS = {"num_tokens": 64, "hidden": 64}  # a warp to a row: the butterfly alone


def values(kernel: object, ptx: str, launch: Launch) -> Obligation:
    approx = getattr(default_schedule(kernel, TARGET), "approx_math", None)  # the form the PTX was lowered with
    return next(o for o in prove_kernel(ptx, launch, kernel, approx) if o.name == VALUES)


def edited(lines: list[str], matches: Callable[[str], object], change: Callable[[str], str], nth: int = 0) -> str:
    index = [i for i, line in enumerate(lines) if matches(line)][nth]
    return "\n".join(lines[:index] + [change(lines[index])] + lines[index + 1:])


@pytest.mark.parametrize("sizes", [WARP_ROWS, CTA_ROWS], ids=["warp", "cta"])
def test_a_row_reduction_is_proved_equal_to_the_ir_modulo_accumulation_order(sizes: dict[str, int]) -> None:
    kernel, lines, launch = lowered(sizes)
    assert any("shfl.sync.bfly" in line for line in lines)
    assert any("ld.shared" in line for line in lines) == (sizes is CTA_ROWS)
    found = values(kernel, "\n".join(lines), launch)
    assert found.status == "proved", found.detail
    assert "modulo the order of accumulation" in found.detail


WRONG = {
    "a dropped term": (lambda line: ACCUMULATE.search(line), lambda line: "// " + line, 0, "misses"),
    "a butterfly that reads one half twice": (lambda line: "shfl.sync.bfly" in line and ", 16," in line,
                                              lambda line: line.replace(", 16,", ", 8,"), 0, "more than once"),
    "one warp's partial read twice": (lambda line: "ld.shared.f32" in line and "+8]" in line,
                                      lambda line: line.replace("+8]", "+0]"), 0, "more than once"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_a_wrong_tree_is_refuted_with_the_element_it_misses_or_repeats(case: str) -> None:
    matches, change, nth, words = WRONG[case]
    kernel, lines, launch = lowered(CTA_ROWS)
    found = values(kernel, edited(lines, matches, change, nth), launch)
    assert found.status == "refuted", found.detail
    assert "a reduction: thread" in found.detail and words in found.detail


def test_an_accumulation_rounded_otherwise_is_not_proved() -> None:
    """add.rz in the accumulation: not a sum of the IR's terms in another order (inconclusive)."""
    kernel, lines, launch = lowered(CTA_ROWS)
    mutant = edited(lines, ACCUMULATE.search, lambda line: line.replace("add.rn", "add.rz"), 1)
    assert values(kernel, mutant, launch).status == "inconclusive"


# An i64 sum: cross-entropy's count of the targets that are not ignored (a 64-bit add tree whose
# butterfly shuffles each partial as two 32-bit halves), beside the float sum of the losses; 8 of
# the 512 threads have targets to read, so the warp's lanes follow other paths after the loop.
CROSS_ENTROPY = REPO / "datasets" / "problems" / "loss" / "cross_entropy_f32.py"


def counting() -> tuple[object, list[str], Launch]:
    kernel = capture(load_problem(CROSS_ENTROPY, shrink_to=16), shapes_only=True).regions[-1].kernel
    assert any(i.op.value == "sum" and i.type.dtype.value == "i64" for i in kernel.body)
    result = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    return kernel, result.ptx.splitlines(), Launch.of(result.launch)


def test_an_integer_sum_is_proved_exactly() -> None:
    kernel, lines, launch = counting()
    assert any(line.strip().startswith("add.s64 %rd7, %rd7, %rd") for line in lines)
    found = values(kernel, "\n".join(lines), launch)
    assert found.status == "proved", found.detail


HALVES = re.compile(r"shfl\.sync\.bfly\.b32 %r\d+, %r\d+, 16,")
FROM_LANE_8 = (HALVES.search, lambda line: line.replace(", 16,", ", 8,"))
WRONG_COUNTS = {  # (lines matched, their change, which of them are changed, verdict, what it says)
    "a target counted twice": (lambda line: "selp.s64" in line, lambda line: line.replace(", 1, 0,", ", 2, 0,"),
                               (0,), "refuted", "is not the IR's element"),
    "a butterfly that reads one half of the warp twice": (*FROM_LANE_8, (0, 1), "refuted", "more than once"),
    "a partial put together from two lanes' halves": (*FROM_LANE_8, (1,), "inconclusive",
                                                      "not the bits of one value"),
}


@pytest.mark.parametrize("case", WRONG_COUNTS, ids=list(WRONG_COUNTS))
def test_a_wrong_integer_sum_is_never_proved(case: str) -> None:
    matches, change, changed, status, words = WRONG_COUNTS[case]
    kernel, lines, launch = counting()
    indices = [i for i, line in enumerate(lines) if matches(line)]
    mutant = [change(line) if i in {indices[k] for k in changed} else line for i, line in enumerate(lines)]
    found = values(kernel, "\n".join(mutant), launch)
    assert found.status == status and words in found.detail, found.detail


# Reductions whose terms use another reduction's result: softmax's exponentials of x - max,
# layernorm's squares of x - mean, logsumexp's max + log(sum(exp(x - max))).
PROBLEMS = REPO / "datasets" / "problems" / "reduction"
NESTED_ROWS = {"batch_size": 8, "dim": 2048}  # 64 threads to a row: two warps meet in shared memory


@pytest.mark.parametrize("name", ["softmax_f32", "layernorm_f32", "logsumexp_f32"])
def test_a_reduction_of_another_reductions_results_is_proved(name: str) -> None:
    kernel, lines, launch = lowered(NESTED_ROWS, PROBLEMS / f"{name}.py")
    found = values(kernel, "\n".join(lines), launch)
    assert found.status == "proved", found.detail
    assert "modulo the order of accumulation" in found.detail


def after(first: str, pattern: re.Pattern[str]) -> Callable[[str], object]:
    """Lines matching `pattern` once a line containing `first` has been seen."""
    seen = [False]

    def matches(line: str) -> object:
        seen[0] = seen[0] or first in line
        return seen[0] and pattern.search(line)
    return matches


NESTED_WRONG = {
    "softmax's max misses an element": ("softmax_f32", lambda line: "max.NaN.f32 %f0, %f0, %f5;" in line,
                                        lambda line: "// " + line, "refuted"),
    "layernorm's variance misses a square": ("layernorm_f32", after("sub.rn.f32", ACCUMULATE),
                                             lambda line: "// " + line, "refuted"),
    "softmax exponentiates x - x": ("softmax_f32", lambda line: line.strip().startswith("sub.rn.f32"),
                                    lambda line: re.sub(r", (%f\d+);", ", " + line.split(",")[1].strip() + ";", line),
                                    "refuted by a witness"),
}


@pytest.mark.parametrize("case", NESTED_WRONG, ids=list(NESTED_WRONG))
def test_a_wrong_nested_reduction_is_never_proved(case: str) -> None:
    """A tree of the inner or outer reduction that misses a term is refuted; a term that does not
    use the inner result the IR's does is not refuted by the proof (the result is free in the
    query, so a difference there refutes nothing), but by concrete inputs: exp(x - x) is 1 where
    the IR's exp(x - max) is not."""
    name, matches, change, status = NESTED_WRONG[case]
    kernel, lines, launch = lowered(NESTED_ROWS, PROBLEMS / f"{name}.py")
    mutant = edited(lines, matches, change)
    assert mutant != "\n".join(lines)
    found = values(kernel, mutant, launch)
    assert found.status == status.split(" by ")[0], found.detail
    if status == "refuted":
        assert "a reduction: thread" in found.detail and "misses" in found.detail
    if status == "refuted by a witness":
        assert found.replay == witness.FOUND and "the proof alone: a reduction" in found.detail


def test_online_softmax_partial_sums_are_not_refuted() -> None:
    """Online logsumexp rescales each thread's partial sum by its partial max and combines them: a
    term holding part of a row is meant there, and the values are left inconclusive, not refuted."""
    kernel = capture(load_problem(PROBLEMS / "logsumexp_f32.py", sizes=NESTED_ROWS), shapes_only=True).regions[0].kernel
    schedule = dataclasses.replace(default_schedule(kernel, TARGET), online=True)
    result = lower(kernel, schedule, TARGET)
    found = next(o for o in prove_kernel(result.ptx, Launch.of(result.launch), kernel, schedule.approx_math)
                 if o.name == VALUES)
    assert found.status == "inconclusive", found.detail
    assert "online softmax" in found.detail


def row_in_shared_memory(name: str, copied: bool) -> tuple[object, str, Launch]:
    kernel = capture(load_problem(PROBLEMS / f"{name}.py", sizes=NESTED_ROWS), shapes_only=True).regions[0].kernel
    schedule = dataclasses.replace(default_schedule(kernel, TARGET), block_size=256, threads_per_row=256,
                                   cache_row=False, shared_row=True, async_copy=copied, unroll=2)
    result = lower(kernel, schedule, TARGET)
    return kernel, result.ptx, Launch.of(result.launch)


@pytest.mark.parametrize("name,copied", [("softmax_f32", False), ("softmax_f32", True), ("layernorm_f32", True)],
                         ids=["softmax loads", "softmax cp.async", "layernorm cp.async"])
def test_rows_read_back_from_shared_memory_are_proved(name: str, copied: bool) -> None:
    """Each thread reads back the copy of the row it put in shared memory (by its loads' stores or
    by cp.async) in later phases: its own bytes, which no other thread stores to in between."""
    kernel, ptx, launch = row_in_shared_memory(name, copied)
    obligations = prove_kernel(ptx, launch, kernel, False)
    assert all(o.status == "proved" for o in obligations), [o for o in obligations if o.status != "proved"]


def test_a_row_read_back_from_a_neighbours_copy_is_never_proved() -> None:
    kernel, ptx, launch = row_in_shared_memory("softmax_f32", False)
    lines = ptx.splitlines()
    reads = [i for i, line in enumerate(lines) if re.search(r"\tld\.shared(\.v4)?\.b32 [^\[]*\[%r\d+\];", line)]
    assert reads, "no read of the row's copy: the test is out of date"
    lines[reads[0]] = lines[reads[0]].replace("];", "+16];")  # the next thread's elements
    found = values(kernel, "\n".join(lines), launch)
    assert found.status != "proved", found.detail


# Rows of 1003 split over a cluster of 2 CTAs of 256 threads: each CTA's partial is read by every
# thread of the cluster from the other CTA's shared memory (mapa, ld.shared::cluster).
CLUSTER_SOFTMAX = ("kernel k(%x: f32[37, 1003]) -> (%y: f32[37, 1003]) {\n  %m = amax(%x, axes=[1], keepdim=true)\n"
                   "  %d = sub(%x, %m)\n  %e = exp(%d)\n  %s = sum(%e, axes=[1], keepdim=true)\n  %y = div(%e, %s)\n"
                   "  return %y\n}")
CLUSTER_SCHEDULES = {
    "registers": RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=True, cluster=2),
    "shared memory by cp.async": RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=False,
                                             shared_row=True, async_copy=True, cluster=2),
    "registers, 8 CTAs of 512 threads": RowSchedule(vector_bytes=4, block_size=512, threads_per_row=512,
                                                    cache_row=True, cluster=8),
}


def cluster_kernel(schedule: RowSchedule) -> tuple[object, str, Launch]:
    kernel = parse(CLUSTER_SOFTMAX)
    result = lower(kernel, schedule, TARGET)
    return kernel, result.ptx, Launch.of(result.launch)


@pytest.mark.parametrize("kept", sorted(CLUSTER_SCHEDULES))
def test_a_reduction_across_the_ctas_of_a_cluster_is_proved(kept: str) -> None:
    kernel, ptx, launch = cluster_kernel(CLUSTER_SCHEDULES[kept])
    obligations = prove_kernel(ptx, launch, kernel, False)
    assert all(o.status == "proved" for o in obligations), [o for o in obligations if o.status != "proved"]


@pytest.mark.parametrize("exchange", [0, 1], ids=["max", "sum"])
def test_a_cluster_exchange_reading_one_ctas_partial_twice_is_refuted(exchange: int) -> None:
    kernel, ptx, launch = cluster_kernel(CLUSTER_SCHEDULES["registers"])
    ranks = [line.strip() for line in ptx.splitlines() if "mapa.shared::cluster" in line and line.endswith(", 1;")]
    assert len(ranks) == 2, "one mapa of rank 1 an exchange: the test is out of date"
    found = values(kernel, ptx.replace(ranks[exchange], ranks[exchange][:-3] + " 0;", 1), launch)
    assert found.status == "refuted" and "misses" in found.detail and "more than once" in found.detail, found.detail


def test_a_cluster_exchange_whose_rank_depends_on_the_cluster_is_never_proved() -> None:
    """The rank a thread reads from must be the same in every cluster: here it is the cluster's
    parity (rank 0 read twice in even clusters), which no condition decided once can hide."""
    kernel, ptx, launch = cluster_kernel(CLUSTER_SCHEDULES["registers"])
    ranks = [line for line in ptx.splitlines() if "mapa.shared::cluster" in line and line.endswith(", 1;")]
    assert ranks, "no mapa of rank 1: the test is out of date"

    def ranked_by(computed: str) -> str:  # the rank taken from register %parity, computed so
        lines = computed + ranks[0].replace(", 1;", ", %parity;")
        return ptx.replace(ranks[0], lines, 1).replace("{\n", "{\n\t.reg .b32 %parity;\n", 1)
    same = values(kernel, ranked_by("\tmov.u32 %parity, 1;\n"), launch)
    assert same.status == "proved", same.detail  # the rank from a register, the same in every cluster
    found = values(kernel, ranked_by("\tmov.u32 %parity, %ctaid.x;\n\tshr.u32 %parity, %parity, 1;\n"
                                     "\tand.b32 %parity, %parity, 1;\n"), launch)
    assert found.status != "proved", found.detail


def test_clusters_beyond_what_the_trees_are_followed_through_are_named() -> None:
    schedule = RowSchedule(vector_bytes=4, block_size=1024, threads_per_row=1024, cache_row=True, cluster=16)
    found = values(*cluster_kernel(schedule))
    assert found.status == "inconclusive" and "cluster of 16384 threads" in found.detail, found.detail


# A norm of a residual sum: the IR's elements are x + r, each a sum of two loaded values; the
# kernel's adds of a lane's two values are those elements, not nodes of the mean's tree.
RESIDUAL = REPO / "datasets" / "problems" / "fused" / "linear_residual_layernorm_f32.py"
RESIDUAL_SIZES = {"batch_size": 16, "hidden": 16}
ELEMENT_ADD = re.compile(r"add\.rn\.f32 %f\d+, %f\d+, %f\d+;")  # the first is lane 0's x + r


def test_a_sum_whose_elements_are_sums_of_two_inputs_is_proved() -> None:
    kernel, lines, launch = lowered(RESIDUAL_SIZES, RESIDUAL)
    found = values(kernel, "\n".join(lines), launch)
    assert found.status == "proved", found.detail


RESIDUAL_WRONG = {  # (the change to the first element add, the verdict it must get)
    "an element rounded toward zero": (lambda line: line.replace("add.rn.f32", "add.rz.f32"), "refuted"),
    "an element that pairs two lanes": (lambda line: re.sub(r"(%f\d+);$", lambda m: f"%f{int(m.group(1)[2:]) + 1};",
                                                            line), "not proved"),
}


@pytest.mark.parametrize("case", RESIDUAL_WRONG, ids=list(RESIDUAL_WRONG))
def test_a_wrong_element_of_a_residual_sum_is_never_proved(case: str) -> None:
    change, expected = RESIDUAL_WRONG[case]
    kernel, lines, launch = lowered(RESIDUAL_SIZES, RESIDUAL)
    mutant = edited(lines, lambda line: ELEMENT_ADD.search(line) and not ACCUMULATE.search(line), change)
    assert mutant != "\n".join(lines)
    found = values(kernel, mutant, launch)
    if expected == "refuted":
        assert found.status == "refuted" and "is not the IR's element" in found.detail, found.detail
    else:
        assert found.status != "proved", found.detail


# Reductions along a middle axis ([outer, R, inner]): threads along the contiguous inner axis, each
# walking its part of R; the rows are strided, not runs of the input.
COLUMNS = {"sum_dim1_f32": {"batch_size": 2, "dim1": 2304, "dim2": 8},
           "mean_dim1_bf16": {"batch_size": 2, "dim1": 2304, "dim2": 16}}


def column_kernel(name: str, **knobs: int) -> tuple[object, str, Launch]:
    kernel = capture(load_problem(PROBLEMS / f"{name}.py", sizes=COLUMNS[name]), shapes_only=True).regions[0].kernel
    schedule = dataclasses.replace(default_schedule(kernel, TARGET), **knobs)
    result = lower(kernel, schedule, TARGET)
    return kernel, result.ptx, Launch.of(result.launch)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_a_reduction_along_a_middle_axis_is_proved(name: str) -> None:
    kernel, ptx, launch = column_kernel(name)
    found = values(kernel, ptx, launch)
    assert found.status == "proved", found.detail
    assert "modulo the order of accumulation" in found.detail


def test_a_loop_of_more_than_64_trips_is_followed_to_its_end() -> None:
    """Eight threads split R = 2304 rows, four rows a trip: 72 trips of the loop, each index a sum
    again at the back edge (not a chain as long as the trips)."""
    kernel, ptx, launch = column_kernel("sum_dim1_f32", threads_along_reduction=8, block_size=64)
    assert COLUMNS["sum_dim1_f32"]["dim1"] // (8 * 4) == 72
    assert verdict(prove_kernel(ptx, launch, kernel)) == "proved"


COLUMN_WRONG = {  # each refuted, naming the elements the tree misses
    "a partial sum left out": (lambda line: bool(re.search(r"add\.rn\.f32 %f0, %f0, %f\d+;", line)),
                               lambda line: "// " + line),
    "a row stepped past": (lambda line: bool(re.search(r"add\.u32 %r\d+, %r12, \d+;", line)),
                           lambda line: re.sub(r", (\d+);", lambda m: f", {int(m.group(1)) * 2};", line)),
}


@pytest.mark.parametrize("case", COLUMN_WRONG, ids=list(COLUMN_WRONG))
def test_a_wrong_column_reduction_is_refuted(case: str) -> None:
    matches, change = COLUMN_WRONG[case]
    kernel, ptx, launch = column_kernel("sum_dim1_f32")
    mutant = edited(ptx.splitlines(), matches, change)
    assert mutant != ptx
    found = values(kernel, mutant, launch)
    assert found.status == "refuted" and "misses" in found.detail, found.detail


SHAPES = [((4, 3, 5), (1,)), ((4, 3, 5), (2,)), ((4, 3, 5), (0,)), ((4, 3, 5), (0, 2)), ((2, 3, 4, 5), (1, 2)),
          ((6, 7), (0, 1)), ((3, 1, 4), (1,))]


@pytest.mark.parametrize("shape, axes", SHAPES)
def test_rows_name_the_elements_each_result_accumulates(shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    """Rows.base(r) is the first of result r's elements and Rows.result_of takes each back to r,
    against the IR's own enumeration of a reduction's elements."""
    rows = Rows(shape, axes)
    kept = [n for d, n in enumerate(shape) if d not in axes]
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    for result in range(math.prod(kept)):
        coords, rest = [], result
        for n in reversed(kept):
            coords.append(rest % n)
            rest //= n
        coords.reverse()
        first = sum(c * strides[d] for c, d in zip(coords, [d for d in range(len(shape)) if d not in axes]))
        elements = [first + sum(k * strides[a] for a, k in zip(axes, ks))
                    for ks in itertools.product(*[range(shape[a]) for a in axes])]
        assert z3.simplify(rows.base(z3.BitVecVal(result, 64))).as_long() == min(elements)
        assert {rows.result_of(e) for e in elements} == {result}
    assert rows.contiguous == (tuple(axes) == tuple(range(len(shape) - len(axes), len(shape))))


def test_a_vector_lane_is_its_own_term() -> None:
    """A stored vector's lane is the lane's term where the vector concatenates its lanes (nested
    or not), so that what another lane uses stays out of it; an extract otherwise."""
    a, b, c, d = (z3.BitVec(n, 32) for n in "abcd")
    assert _lane(z3.Concat(z3.Concat(z3.Concat(d, c), b), a), 1, 32).eq(b)
    assert _lane(z3.Concat(d, c, b, a), 3, 32).eq(d)
    wide = z3.BitVec("wide", 64)
    assert _lane(wide, 1, 32).eq(z3.Extract(63, 32, wide))
