"""Row reductions lowered to PTX (one CTA per row): every suite kernel that reduces along its
trailing axes assembles for every target; what is not lowered yet is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PROBLEMS
from ir import parse
from ir.frontend import capture, load_problem
from ptxgen.lower import LoweringError, default_schedule, iteration_domain, lower
from ptxgen.ptxas import assemble, ptxas_path
from ptxgen.reduce import RowReductionLowering
from ptxgen.schedule import ElementwiseSchedule
from ptxgen.targets import TARGETS

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="ptxas is not installed")
ROW_PROBLEMS = [PROBLEMS / p for p in (
    "reduction/softmax_f32.py", "reduction/log_softmax_bf16.py", "reduction/layernorm_bf16.py",
    "reduction/rmsnorm_bf16.py", "reduction/logsumexp_f32.py", "reduction/l2_normalize_f32.py",
    "reduction/argmin_lastdim_bf16.py", "fused/bmm_softmax_bf16.py", "rowsweep/softmax_bf16_262144.py")]


@needs_ptxas
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("path", ROW_PROBLEMS, ids=[p.stem for p in ROW_PROBLEMS])
def test_row_reductions_assemble_on_every_target(path: Path, target: str) -> None:
    for region in capture(load_problem(path, shrink_to=1024)).regions:
        kernel = region.kernel
        lowered = lower(kernel, default_schedule(kernel, TARGETS[target]), TARGETS[target])
        _, resources = assemble(lowered.ptx, target)
        assert resources.spill_stores == 0
        assert "bar.sync" in lowered.ptx and "shfl.sync.bfly.b32" in lowered.ptx


def test_one_cta_per_row_and_vectors_that_divide_the_row() -> None:
    kernel = parse("kernel k(%x: f32[37, 1003]) -> (%y: f32[37, 1003]) {\n"
                   "  %m = amax(%x, axes=[1], keepdim=true)\n  %y = sub(%x, %m)\n  return %y\n}")
    schedule = default_schedule(kernel, TARGETS["sm_90a"])
    assert schedule.vector_bytes == 4  # 1003 is odd: one float per vector
    lowered = lower(kernel, schedule, TARGETS["sm_90a"])
    assert lowered.launch.grid == (37, 1, 1)


def test_non_keepdim_outputs_map_to_the_kept_dims() -> None:
    kernel = parse("kernel k(%x: f32[64, 64]) -> (%s: f32[64]) {\n"
                   "  %s = sum(%x, axes=[1])\n  return %s\n}")
    lowering = RowReductionLowering(kernel, ElementwiseSchedule(), TARGETS["sm_90a"])
    assert lowering.domain_map("%s") == (0,)  # not right-aligned: the rows, not the columns


def test_domain_ignores_dims_that_a_reshape_moves() -> None:
    kernel = parse("kernel k(%t: i64[64]) -> (%u: i64[64, 1]) {\n"
                   "  %c = const(1) : i64\n  %a = add(%t, %c)\n  %u = reshape(%a, shape=[64, 1])\n  return %u\n}")
    assert iteration_domain(kernel) == (64, 1)


@pytest.mark.parametrize("text,reason", [
    ("kernel k(%x: f32[4, 8, 16]) -> (%y: f32[4, 16]) {\n  %y = sum(%x, axes=[1])\n  return %y\n}",
     "reductions over a middle axis are not lowered yet"),
    ("kernel k(%x: f32[4, 8]) -> (%y: f32[]) {\n  %y = sum(%x, axes=[0, 1])\n  return %y\n}",
     "reductions to a scalar need a two-stage kernel"),
    ("kernel k(%x: i32[4, 8]) -> (%y: i32[4]) {\n  %y = sum(%x, axes=[1])\n  return %y\n}",
     "integer reductions are not lowered yet"),
])
def test_reductions_not_lowered_yet_say_why(text: str, reason: str) -> None:
    kernel = parse(text)
    with pytest.raises(LoweringError, match=reason):
        lower(kernel, ElementwiseSchedule(vector_bytes=4), TARGETS["sm_90a"])
