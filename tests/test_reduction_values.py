"""Reduction values proved modulo the order of accumulation (`verify/reductions.py`): a row
reduction's tree, followed through shuffles and shared memory to the threads that supplied each
part, accumulates each of the IR's elements once; wrong trees are refuted with the element they
miss or take twice, and trees of another form are left inconclusive, never proved."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ir.frontend import capture, load_problem
from ptxgen.lower import default_schedule, lower
from ptxgen.targets import TARGETS
from verify.emulate import Launch
from verify.prove import VALUES, Obligation, prove_kernel

REPO = Path(__file__).resolve().parents[1]
TARGET = TARGETS["sm_90a"]
RMSNORM = REPO / "datasets" / "problems" / "reduction" / "rmsnorm_bf16.py"
ACCUMULATE = re.compile(r"add\.rn\.f32 (%f\d+), \1, %f\d+;")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def lowered(sizes: dict[str, int]) -> tuple[object, list[str], Launch]:
    kernel = capture(load_problem(RMSNORM, sizes=sizes), shapes_only=True).regions[0].kernel
    result = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    return kernel, result.ptx.splitlines(), Launch.of(result.launch)


# 128 threads to a row: a warp butterfly, then the warps' partials through shared memory.
CTA_ROWS = {"num_tokens": 16, "hidden": 4096}
WARP_ROWS = {"num_tokens": 64, "hidden": 64}  # a warp to a row: the butterfly alone


def values(kernel: object, ptx: str, launch: Launch) -> Obligation:
    return next(o for o in prove_kernel(ptx, launch, kernel, True) if o.name == VALUES)


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
