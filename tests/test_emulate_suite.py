"""Every suite kernel runs on the CPU emulator and matches the IR interpreter in float64: at small
sizes, under its default schedule on two targets (normal inputs, then inputs with infinities,
NaN and huge values) and under a schedule drawn from its space; the GPU reduction cases (odd
shapes, every layout and knob) do too. Mutants of real kernels are caught, and `ptxgen emulate`
reports verdicts with the exit codes its contract gives."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import problem_files
from test_reductions_gpu import CASES

from ir import parse
from ir.frontend import capture, load_problem
from ir.kernel import Kernel
from ptxgen.cli import main
from ptxgen.lower import LoweredKernel, default_schedule, lower, sample_schedules
from ptxgen.schedule import RowSchedule, Schedule
from ptxgen.targets import TARGETS
from verify.against_ir import check_on_emulator
from verify.emulate import Launch

PROBLEM_FILES = problem_files()
SHRINK = 16
TARGET = TARGETS["sm_90a"]


@cache
def small_kernels(path: Path) -> tuple[Kernel, ...]:
    return tuple(r.kernel for r in capture(load_problem(path, shrink_to=SHRINK), shapes_only=True).regions)


def launch_of(lowered: LoweredKernel) -> Launch:
    return Launch.of(lowered.launch)


def assert_matches(kernel: Kernel, schedule: Schedule, target_name: str = "sm_90a", extremes: bool = False) -> None:
    lowered = lower(kernel, schedule, TARGETS[target_name])
    verdict = check_on_emulator(kernel, lowered.ptx, launch_of(lowered), extremes=extremes)
    assert verdict.status == "match", (kernel.name, target_name, schedule, verdict.reasons)


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in PROBLEM_FILES])
def test_suite_kernels_match_the_interpreter_on_the_emulator(path: Path) -> None:
    for kernel in small_kernels(path):
        assert_matches(kernel, default_schedule(kernel, TARGET))
        assert_matches(kernel, default_schedule(kernel, TARGET), extremes=True)
        assert_matches(kernel, default_schedule(kernel, TARGETS["sm_80"]), "sm_80")
        for schedule in sample_schedules(kernel, TARGET, 1, random.Random(kernel.name)):
            assert_matches(kernel, schedule)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reduction_cases_match_on_the_emulator(name: str) -> None:
    text, chosen = CASES[name]
    kernel = parse(text)
    for schedule in [default_schedule(kernel, TARGET), *chosen]:
        assert_matches(kernel, schedule)


# Wrong versions of a real softmax kernel: (the text to change, its replacement, what must be said).
# (Turning the row max into a min is no mutant here: softmax is the same for any shift that does
# not overflow, so that kernel is still right.)
SOFTMAX = CASES["softmax_f32_odd"][0]
MUTANTS = {
    "sum_becomes_difference": ("add.rn.f32", "sub.rn.f32", "mismatch"),
    "division_becomes_product": ("div.rn.f32", "mul.rn.f32", "mismatch"),
    "tail_guard_dropped": ("@%p2 ld.global.b32", "ld.global.b32", "out_of_bounds"),
    "store_guard_negated": ("@%p", "@!%p", "error|mismatch"),
    "barrier_dropped": ("bar.sync 0;", "// no barrier", "race"),
    "sum_shuffle_offset_changed": ("shfl.sync.bfly.b32 %f63, %f20, 16,", "shfl.sync.bfly.b32 %f63, %f20, 8,",
                                   "mismatch"),
}


# Wrong versions of the same softmax copying its rows into shared memory by cp.async.
ASYNC_MUTANTS = {
    "wait_dropped": ("cp.async.wait_all;", "// no wait", "mismatch"),  # the walks read shared memory before the copy
    "copy_guard_dropped": ("@%p2 cp.async", "cp.async", "out_of_bounds"),
    "copy_lands_elsewhere": ("cp.async.ca.shared.global [%r23]", "cp.async.ca.shared.global [%r23+4]",
                             "race|out_of_bounds"),
}


@pytest.mark.parametrize("name", sorted(ASYNC_MUTANTS))
def test_mutants_of_a_kernel_with_async_copies_are_caught(name: str) -> None:
    kernel = parse(SOFTMAX)
    schedule = CASES["softmax_f32_odd"][1][7]  # the row in shared memory, copied in by cp.async, over 4 CTAs
    assert schedule.async_copy
    lowered = lower(kernel, schedule, TARGET)
    old, new, expected = ASYNC_MUTANTS[name]
    assert old in lowered.ptx, f"{old!r} is not in the kernel: the mutant table is out of date"
    verdict = check_on_emulator(kernel, lowered.ptx.replace(old, new, 1), launch_of(lowered))
    said = verdict.status + " " + " ".join(verdict.reasons)
    assert verdict.status != "match" and any(word in said for word in expected.split("|")), said


ROW_SUMS = "kernel k(%x: f32[200, 256]) -> (%y: f32[200]) {\n  %y = sum(%x, axes=[1])\n  return %y\n}"


def test_clusters_walking_rows_meet_before_the_next_row_reuses_their_slots() -> None:
    """With one exchange a row, a CTA writing its slot for the next row while the other CTA of its
    cluster may still read the last row's is a race; the kernel meets at a cluster barrier first."""
    kernel = parse(ROW_SUMS)
    lowered = lower(kernel, RowSchedule(block_size=64, threads_per_row=64, cluster=2, ctas_per_sm=1), TARGET)
    assert lowered.launch.grid[0] < 2 * 200  # 66 clusters, three or four rows each
    assert check_on_emulator(kernel, lowered.ptx, launch_of(lowered)).status == "match"
    between_rows = "bar.sync 0;\n\tbarrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;"
    assert between_rows in lowered.ptx
    verdict = check_on_emulator(kernel, lowered.ptx.replace(between_rows, "bar.sync 0;", 1), launch_of(lowered))
    assert verdict.status == "error" and "race" in " ".join(verdict.reasons), verdict.reasons


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutants_of_a_real_kernel_are_caught(name: str) -> None:
    kernel = parse(SOFTMAX)
    schedule = CASES["softmax_f32_odd"][1][4]  # a cluster of 2 CTAs of 256 threads per row
    lowered = lower(kernel, schedule, TARGET)
    old, new, expected = MUTANTS[name]
    assert old in lowered.ptx, f"{old!r} is not in the kernel: the mutant table is out of date"
    verdict = check_on_emulator(kernel, lowered.ptx.replace(old, new, 1), launch_of(lowered))
    said = verdict.status + " " + " ".join(verdict.reasons)
    assert verdict.status != "match" and any(word in said for word in expected.split("|")), said


def test_ptxgen_emulate_reports_each_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = next(p for p in PROBLEM_FILES if p.stem == "cross_entropy_f32")
    assert main(["lower", str(problem), "--out", str(tmp_path), "--shrink", "24"]) == 0
    capsys.readouterr()
    assert main(["emulate", str(tmp_path / "manifest.json"), "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert [v["status"] for v in verdicts] == ["match"] * len(verdicts) and len(verdicts) == 3
    first = next(v["kernel"] for v in verdicts if "max.NaN.f32" in (tmp_path / f"{v['kernel']}.ptx").read_text())
    ptx_file = tmp_path / f"{first}.ptx"
    ptx_file.write_text(ptx_file.read_text().replace("max.NaN.f32", "min.NaN.f32"))
    assert main(["emulate", str(tmp_path / "manifest.json"), "--kernel", first]) == 1
    assert "mismatch" in capsys.readouterr().out
    ptx_file.write_text(ptx_file.read_text().replace("ret;", "prmt.b32 %r0, %r0, %r0, 0;\n\tret;"))
    assert main(["emulate", str(tmp_path / "manifest.json"), "--kernel", first]) == 2
    said = capsys.readouterr().out
    assert "inconclusive" in said and "prmt" in said
    assert main(["emulate", str(tmp_path / "manifest.json"), "--kernel", "no_such_kernel"]) == 2
    assert "no kernel named" in capsys.readouterr().err


@pytest.mark.parametrize("edit, said", [
    (lambda lines, n: lines[:n] + lines[n + 1:], "waits with no arrival before it"),
    (lambda lines, n: lines[:n] + [lines[n]] + lines[n:], "arrives a second time before its wait"),
], ids=["wait_without_arrival", "arrival_twice"])
def test_a_cluster_barrier_is_arrived_at_once_then_waited_for(edit: Any, said: str) -> None:
    """A CTA of a cluster arrives after its last exchange and waits before it exits (no CTA idles
    while the slowest of its cluster finishes its row); one arrival too few or too many is a deadlock."""
    kernel = parse(SOFTMAX)
    lowered = lower(kernel, RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=False,
                                        shared_row=True, cluster=2), TARGET)
    assert check_on_emulator(kernel, lowered.ptx, launch_of(lowered)).status == "match"
    lines = lowered.ptx.splitlines()
    arrive, wait = "\tbarrier.cluster.arrive.release.aligned;", "\tbarrier.cluster.wait.acquire.aligned;"
    (early,) = [n for n, line in enumerate(lines) if line == arrive and lines[n + 1] != wait
                and not lines[n - 1].endswith(":")]
    verdict = check_on_emulator(kernel, "\n".join(edit(lines, early)) + "\n", launch_of(lowered))
    assert verdict.status == "error" and said in " ".join(verdict.reasons), verdict.reasons


KEPT_SCHEDULE = RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=False, shared_row=True,
                            cluster=2, unroll=2)


def test_a_row_in_shared_memory_keeps_the_exponentials_its_last_walk_divides() -> None:
    """softmax's exp(x - max) is summed by one walk and divided by the sum in the last: the walk
    that sums it stores it in place of x (no later walk reads x), and the last walk reads it back."""
    kernel = parse(SOFTMAX)
    lowered = lower(kernel, KEPT_SCHEDULE, TARGET)
    assert lowered.ptx.count("ex2.approx.f32") == KEPT_SCHEDULE.unroll  # one exp a vector, in one walk
    assert check_on_emulator(kernel, lowered.ptx, launch_of(lowered)).status == "match"
    # the kept value stored one element further on: the next thread's place, which it reads back
    lines = lowered.ptx.splitlines()
    kept = [n for n, line in enumerate(lines) if line.startswith("\tst.shared.b32")][-1]
    place = lines[kept].split("[")[1].split("]")[0]
    wrong = lines[:kept] + [lines[kept].replace(f"[{place}]", f"[{place}+4]")] + lines[kept + 1:]
    verdict = check_on_emulator(kernel, "\n".join(wrong) + "\n", launch_of(lowered))
    assert verdict.status != "match" and any(w in " ".join(verdict.reasons) for w in ("race", "mismatch")), \
        verdict.reasons
