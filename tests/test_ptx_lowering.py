"""Lowering to PTX on the CPU: every elementwise suite kernel, at its default schedule and a sample
of other valid schedules, assembles with ptxas for every target; targets, schedules and errors."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pytest
from conftest import PROBLEMS

from ir import parse
from ir.frontend import capture, load_problem
from ir.kernel import Kernel
from ptxgen.lower import LoweringError, default_schedule, iteration_domain, lower
from ptxgen.ptxas import PtxasError, assemble, parse_report, ptxas_path
from ptxgen.schedule import ElementwiseSchedule, ScheduleError, elementwise_space
from ptxgen.targets import TARGETS, TargetError, get_target, target_for_capability

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="ptxas is not installed")
ELEMENTWISE = sorted((PROBLEMS / "elementwise").glob("*.py"))
ODD = (37, 1003, 5)


@cache
def kernels(path: Path, odd: bool) -> tuple[Kernel, ...]:
    problem = load_problem(path)
    if odd:
        large = [k for k, v in problem.size_constants().items() if v > 32]
        problem = load_problem(path, sizes={k: ODD[i % len(ODD)] for i, k in enumerate(large)})
    return tuple(r.kernel for r in capture(problem, shapes_only=not odd).regions)  # production shapes: traced on meta


@needs_ptxas
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("path", ELEMENTWISE, ids=[p.stem for p in ELEMENTWISE])
def test_default_schedule_assembles_on_every_target(path: Path, target: str) -> None:
    for kernel in kernels(path, odd=False):
        lowered = lower(kernel, default_schedule(kernel, TARGETS[target]), TARGETS[target])
        _, resources = assemble(lowered.ptx, target)
        assert resources.registers > 0 and resources.spill_stores == 0
        assert f".target {target}" in lowered.ptx


@needs_ptxas
@pytest.mark.parametrize("path", ELEMENTWISE, ids=[p.stem for p in ELEMENTWISE])
def test_sampled_schedules_assemble(path: Path) -> None:
    target = TARGETS["sm_90a"]
    (kernel,) = kernels(path, odd=True)
    schedules = [default_schedule(kernel, target)] + random.Random(path.stem).sample(elementwise_space(target), 3)
    for schedule in schedules:
        try:
            lowered = lower(kernel, schedule, target)
        except ScheduleError as err:  # a vector width the odd shape does not allow
            assert "does not divide" in str(err)
            continue
        assemble(lowered.ptx, target.name)


def test_vector_width_that_does_not_divide_a_broadcast_row_is_refused() -> None:
    kernel = parse("kernel k(%x: f32[4, 7], %b: f32[7]) -> (%y: f32[4, 7]) {\n"
                   "  %y = add(%x, %b)\n  return %y\n}")
    with pytest.raises(ScheduleError, match="vector of 4 elements does not divide the innermost size 7"):
        lower(kernel, ElementwiseSchedule(vector_bytes=16), TARGETS["sm_90a"])
    assert default_schedule(kernel, TARGETS["sm_90a"]).vector_bytes == 4  # one f32 per thread


def test_flat_kernels_take_any_shape_with_a_tail() -> None:
    kernel = parse("kernel k(%x: f32[1001]) -> (%y: f32[1001]) {\n  %y = neg(%x)\n  return %y\n}")
    lowered = lower(kernel, ElementwiseSchedule(vector_bytes=16), TARGETS["sm_90a"])
    assert "ld.global.v4.b32" in lowered.ptx and "ld.global.b32" in lowered.ptx  # vectors, then the tail
    assert "setp.lt.u32" in lowered.ptx


def test_large_domains_index_in_64_bits() -> None:
    kernel = parse("kernel k(%x: bf16[65536, 65536]) -> (%y: bf16[65536, 65536]) {\n"
                   "  %y = neg(%x)\n  return %y\n}")
    assert iteration_domain(kernel) == (65536, 65536)
    ptx = lower(kernel, ElementwiseSchedule(), TARGETS["sm_90a"]).ptx
    assert "mul.wide.u32" in ptx and "setp.ge.u64" in ptx


def test_outputs_smaller_than_the_domain_are_written_once() -> None:
    kernel = parse("kernel k(%x: f32[4, 8], %r: f32[4, 1]) -> (%y: f32[4, 8], %s: f32[4, 1]) {\n"
                   "  %e = exp(%r)\n  %y = mul(%x, %e)\n  return %y, %e\n}")
    ptx = lower(kernel, ElementwiseSchedule(vector_bytes=4), TARGETS["sm_90a"]).ptx
    assert "setp.eq.u32" in ptx  # the store of %s is guarded by column == 0


def test_approximate_only_ops_need_approx_math() -> None:
    kernel = parse("kernel k(%x: f32[64]) -> (%y: f32[64]) {\n  %y = sin(%x)\n  return %y\n}")
    with pytest.raises(LoweringError, match="only an approximate form"):
        lower(kernel, ElementwiseSchedule(), TARGETS["sm_90a"])
    assert "sin.approx.f32" in lower(kernel, ElementwiseSchedule(approx_math=True), TARGETS["sm_90a"]).ptx


def test_half_precision_kernels_default_to_approximate_math() -> None:
    half = parse("kernel k(%x: bf16[64]) -> (%y: bf16[64]) {\n  %y = exp(%x)\n  return %y\n}")
    single = parse("kernel k(%x: f32[64]) -> (%y: f32[64]) {\n  %y = exp(%x)\n  return %y\n}")
    assert default_schedule(half, TARGETS["sm_90a"]).approx_math
    assert not default_schedule(single, TARGETS["sm_90a"]).approx_math


def test_schedules_validate_themselves() -> None:
    with pytest.raises(ScheduleError, match="block_size=100 is not one of"):
        ElementwiseSchedule(block_size=100)
    assert not ElementwiseSchedule(block_size=1024, ctas_per_sm=16).fits(TARGETS["sm_90a"])
    assert all(s.fits(TARGETS["sm_86"]) for s in elementwise_space(TARGETS["sm_86"]))


def test_targets() -> None:
    assert get_target("sm_90a").sm_count == 132
    assert target_for_capability(9, 0).name == "sm_90a"
    assert TARGETS["sm_100a"].compute_capability == (10, 0)
    with pytest.raises(TargetError, match="unknown target 'sm_70'; known targets: sm_80"):
        get_target("sm_70")


@needs_ptxas
def test_ptxas_errors_quote_the_offending_line() -> None:
    kernel = parse("kernel k(%x: f32[64]) -> (%y: f32[64]) {\n  %y = neg(%x)\n  return %y\n}")
    broken = lower(kernel, ElementwiseSchedule(), TARGETS["sm_90a"]).ptx.replace("neg.f32", "negate.f32")
    with pytest.raises(PtxasError) as caught:
        assemble(broken, "sm_90a")
    assert "negate.f32" in str(caught.value) and "line" in str(caught.value)


def test_resource_report_is_parsed() -> None:
    log = ("ptxas info    : Used 24 registers, used 0 barriers, 8 bytes smem, 368 bytes cmem[0]\n"
           "    16 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads")
    report = parse_report(log)
    assert (report.registers, report.shared_bytes, report.constant_bytes) == (24, 8, 368)
    assert (report.stack_bytes, report.spill_stores, report.spill_loads) == (16, 4, 4)
