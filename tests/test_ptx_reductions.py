"""Reductions lowered to PTX on the CPU: layouts, schedules and their spaces, what each layout emits,
and what is refused with the reason. (Every suite kernel assembling: test_suite_assembles.py;
results on the GPU against the interpreter: test_reductions_gpu.py.)"""

from __future__ import annotations

import dataclasses
import random

import pytest

from ir import parse
from ptxgen.columns import ColumnReductionLowering
from ptxgen.lower import LoweringError, default_schedule, iteration_domain, lower, schedule_space
from ptxgen.ptxas import assemble, ptxas_path
from ptxgen.reduce import Layout, reduction_shape
from ptxgen.rows import RowReductionLowering
from ptxgen.scalar import default_scalar_schedule
from ptxgen.schedule import (
    ColumnSchedule,
    ElementwiseSchedule,
    RowSchedule,
    ScalarSchedule,
    ScheduleError,
    column_space,
    row_space,
    scalar_space,
    schedule_from_dict,
)
from ptxgen.targets import TARGETS

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="ptxas is not installed")
H100 = TARGETS["sm_90a"]


def softmax(dtype: str, rows: int, length: int) -> str:
    return (f"kernel softmax(%x: {dtype}[{rows}, {length}]) -> (%y: {dtype}[{rows}, {length}]) {{\n"
            "  %m = amax(%x, axes=[1], keepdim=true)\n  %d = sub(%x, %m)\n  %e = exp(%d)\n"
            "  %s = sum(%e, axes=[1], keepdim=true)\n  %y = div(%e, %s)\n  return %y\n}")


COLUMN_SOFTMAX = ("kernel k(%x: f32[3, 37, 10]) -> (%y: f32[3, 37, 10]) {\n"
                  "  %m = amax(%x, axes=[1], keepdim=true)\n  %d = sub(%x, %m)\n  %e = exp(%d)\n"
                  "  %s = sum(%e, axes=[1], keepdim=true)\n  %y = div(%e, %s)\n  return %y\n}")
COLUMN_ARGMAX = "kernel k(%x: f32[5, 37, 6]) -> (%i: i64[5, 6]) {\n  %i = argmax(%x, axes=[1])\n  return %i\n}"
MEAN_LOSS = ("kernel k(%a: f32[37, 1003], %b: f32[37, 1003]) -> (%l: f32[]) {\n  %d = sub(%a, %b)\n"
             "  %q = mul(%d, %d)\n  %l = mean(%q, axes=[0, 1])\n  return %l\n}")
COUNT_AND_SUM = ("kernel k(%t: i64[1003], %v: f32[1003]) -> (%r: f32[]) {\n  %c = const(-100) : i64\n"
                 "  %k = ne(%t, %c)\n  %n = cast(%k, to=i64)\n  %count = sum(%n, axes=[0])\n"
                 "  %total = sum(%v, axes=[0])\n  %f = cast(%count, to=f32)\n  %r = div(%total, %f)\n  return %r\n}")


@pytest.mark.parametrize("text,layout,split", [
    (softmax("f32", 37, 1003), Layout.ROW, (37, 1003, 1)),
    (COLUMN_SOFTMAX, Layout.COLUMN, (3, 37, 10)),
    (MEAN_LOSS, Layout.SCALAR, (1, 37 * 1003, 1)),
    ("kernel k(%x: f32[2, 3, 4, 5]) -> (%y: f32[2, 5]) {\n  %y = sum(%x, axes=[1, 2])\n  return %y\n}",
     Layout.COLUMN, (2, 12, 5)),
])
def test_layout_of_a_kernels_reductions(text: str, layout: Layout, split: tuple[int, int, int]) -> None:
    shape = reduction_shape(parse(text))
    assert shape is not None and shape.layout == layout and (shape.outer, shape.length, shape.inner) == split


def test_reductions_over_axes_that_are_not_contiguous_are_refused() -> None:
    kernel = parse("kernel k(%x: f32[2, 3, 4]) -> (%y: f32[3]) {\n  %y = sum(%x, axes=[0, 2])\n  return %y\n}")
    with pytest.raises(LoweringError, match=r"axes \[0, 2\], which are not contiguous"):
        lower(kernel, default_schedule(kernel, H100), H100)


def test_schedule_kind_must_match_the_kernel() -> None:
    kernel = parse(softmax("f32", 4, 64))
    with pytest.raises(ScheduleError, match="a row reduction: it takes a RowSchedule, not a ElementwiseSchedule"):
        lower(kernel, ElementwiseSchedule(), H100)
    with pytest.raises(ScheduleError, match="a column reduction: it takes a ColumnSchedule"):
        lower(parse(COLUMN_SOFTMAX), RowSchedule(vector_bytes=4), H100)


@pytest.mark.parametrize("dtype,length,threads,cluster,where", [
    ("f32", 1024, 32, 1, "registers"),  # 32 elements a thread in registers; 8 rows a CTA
    ("bf16", 4096, 128, 1, "registers"),
    ("f32", 16384, 512, 1, "registers"),
    ("f32", 32768, 512, 2, "registers"),  # beyond 512 threads' worth: a cluster shares the row
    ("f32", 65536, 512, 4, "registers"),
    ("bf16", 65536, 512, 2, "shared"),  # 2-byte rows: 64 KB of the row a CTA in shared memory
    ("bf16", 262144, 512, 8, "shared"),
    ("f32", 262144, 512, 16, "shared"),  # a non-portable cluster of 16 (sm_90)
])
def test_default_row_schedules(dtype: str, length: int, threads: int, cluster: int, where: str) -> None:
    schedule = default_schedule(parse(softmax(dtype, 8, length)), H100)
    assert isinstance(schedule, RowSchedule) and schedule.vector_bytes == 16
    kept = "registers" if schedule.cache_row else "shared" if schedule.shared_row else "memory"
    assert (schedule.threads_per_row, schedule.cluster, kept) == (threads, cluster, where)
    if where == "shared":
        lowered = lower(parse(softmax(dtype, 8, length)), schedule, H100)
        assert lowered.launch.shared_bytes == length // cluster * {"bf16": 2, "f32": 4}[dtype] <= 64 * 1024
        assert ".extern .shared .align 16 .b8 row_stage[];" in lowered.ptx


def test_long_rows_are_reread_where_the_target_has_no_clusters() -> None:
    schedule = default_schedule(parse(softmax("bf16", 8, 262144)), TARGETS["sm_80"])
    assert isinstance(schedule, RowSchedule) and (schedule.cluster, schedule.cache_row) == (1, False)
    assert not schedule.shared_row


def test_a_row_too_long_for_shared_memory_is_refused_by_name() -> None:
    with pytest.raises(ScheduleError, match="shared memory exceeds sm_90a"):
        lower(parse(softmax("f32", 8, 262144)), RowSchedule(block_size=512, threads_per_row=512, cluster=2,
                                                              cache_row=False, shared_row=True), H100)
    with pytest.raises(ScheduleError, match="choose one"):
        RowSchedule(cache_row=True, shared_row=True)


def test_rows_read_once_are_held_in_static_slots() -> None:
    kernel = parse("kernel k(%x: bf16[8, 16384]) -> (%i: i64[8]) {\n  %i = argmin(%x, axes=[1])\n  return %i\n}")
    schedule = default_schedule(kernel, H100)
    assert isinstance(schedule, RowSchedule) and schedule.cache_row and schedule.cluster == 1
    assert schedule.threads_per_row == 128  # 16 vectors of 8 a thread
    ptx = lower(kernel, schedule, H100).ptx
    assert ptx.count("ld.global.v4.b32") == 16 and "bra $L_col" not in ptx


def test_long_rows_with_per_row_outputs_are_split_over_a_cluster_of_small_ctas() -> None:
    kernel = parse("kernel k(%x: bf16[8, 65536]) -> (%i: i64[8]) {\n  %i = argmin(%x, axes=[1])\n  return %i\n}")
    schedule = default_schedule(kernel, H100)
    assert isinstance(schedule, RowSchedule) and schedule.cache_row
    assert (schedule.threads_per_row, schedule.cluster) == (256, 2)  # 256 bytes a thread: 2 CTAs hold the row
    ptx = lower(kernel, schedule, H100).ptx
    assert ptx.count("ld.global.v4.b32") == 16 and "bra $L_col" not in ptx
    longer = "kernel k(%x: f32[{r}, 262144]) -> (%s: f32[{r}]) {{\n  %s = sum(%x, axes=[1])\n  return %s\n}}"
    for rows, cluster in ((2, 8), (100, 2), (512, 1)):  # 16 such CTAs would hold a row: it is walked instead,
        walked = default_schedule(parse(longer.format(r=rows)), H100)  # by a CTA a row, more where rows are few
        assert isinstance(walked, RowSchedule) and not walked.cache_row
        assert (walked.threads_per_row, walked.cluster) == (256, cluster), rows
    assert default_schedule(kernel, TARGETS["sm_80"]).cluster == 1  # no clusters before sm_90


LOGSUMEXP_ROWS = ("kernel k(%x: bf16[{r}, {n}]) -> (%y: f32[{r}]) {{\n  %f = cast(%x, to=f32)\n"
                  "  %m = amax(%f, axes=[1], keepdim=true)\n  %d = sub(%f, %m)\n  %e = exp(%d)\n"
                  "  %s = sum(%e, axes=[1], keepdim=true)\n  %l = log(%s)\n  %t = add(%l, %m)\n"
                  "  %y = reshape(%t, shape=[{r}])\n  return %y\n}}")


@pytest.mark.parametrize("length, cached", [(131072, True), (128256, False), (130048, False)])
def test_long_rows_are_held_by_a_cluster_only_where_they_fill_it_exactly(length: int, cached: bool) -> None:
    """A row a cluster of 4 holds with its last loads predicated (a vocabulary of 128,256) is walked
    by one CTA, two vectors a trip, instead: held, it took 151 registers (papers/vocab_rows)."""
    schedule = default_schedule(parse(LOGSUMEXP_ROWS.format(r=8192, n=length)), H100)
    assert isinstance(schedule, RowSchedule) and schedule.online
    assert (schedule.cache_row, schedule.cluster, schedule.unroll) == ((True, 4, 1) if cached else (False, 1, 2))


def test_row_launch_counts_rows_per_cta_and_clusters() -> None:
    kernel = parse(softmax("f32", 37, 1003))
    lowered = lower(kernel, RowSchedule(vector_bytes=4, block_size=256, threads_per_row=64), H100)
    assert lowered.launch.grid == (10, 1, 1)  # 4 rows a CTA; the last CTA has one row
    assert ".reqntid 256, 1, 1" in lowered.ptx and "selp.b32" in lowered.ptx  # rows past the last load nothing
    long = parse(softmax("bf16", 3, 65536))
    lowered = lower(long, RowSchedule(block_size=1024, threads_per_row=1024, cluster=4), H100)
    assert lowered.launch.grid == (12, 1, 1) and lowered.launch.cluster == (4, 1, 1)


@needs_ptxas
def test_cluster_rows_exchange_through_distributed_shared_memory() -> None:
    lowered = lower(parse(softmax("bf16", 3, 65536)), RowSchedule(block_size=1024, threads_per_row=1024, cluster=4),
                    H100)
    for needed in (".reqnctapercluster 4, 1, 1", "mapa.shared::cluster.u32", "ld.shared::cluster.f32",
                   "barrier.cluster.arrive.release.aligned", "%cluster_ctarank"):
        assert needed in lowered.ptx
    _, resources = assemble(lowered.ptx, "sm_90a")
    assert resources.spill_stores == 0


def test_cached_rows_are_read_once_and_reread_rows_in_every_phase() -> None:
    kernel = parse(softmax("f32", 8, 4096))
    cached = lower(kernel, RowSchedule(block_size=256, threads_per_row=256, cache_row=True), H100).ptx
    reread = lower(kernel, RowSchedule(block_size=256, threads_per_row=256, cache_row=False, unroll=1), H100).ptx
    assert cached.count("ld.global.v4.b32") == 4096 // (256 * 4)  # one load per slot, for all three phases
    assert reread.count("ld.global.v4.b32") == 3  # a loop per phase: max, sum, output


def test_cached_columns_are_read_once_and_only_their_last_slot_is_guarded_by_its_row() -> None:
    kernel = parse(COLUMN_SOFTMAX.replace("10]", "16]"))  # R = 37 rows, 16 columns
    schedule = ColumnSchedule(vector_bytes=16, block_size=64, threads_along_reduction=16, unroll=1)
    cached = lower(kernel, dataclasses.replace(schedule, cache_column=True), H100).ptx
    reread = lower(kernel, schedule, H100).ptx
    assert cached.count("ld.global.v4.b32") == 3  # 37 rows over 16 threads: 3 slots, for all three phases
    assert reread.count("ld.global.v4.b32") == 3  # a loop per phase: max, sum, output
    assert cached.count(", 37;") == 1 and "bra" not in cached  # one row bound (the third slot's), no loop
    with pytest.raises(ScheduleError, match="caching 148 elements of a column per thread cannot fit"):
        lower(kernel, ColumnSchedule(vector_bytes=16, threads_along_reduction=1, cache_column=True), H100)


def test_clusters_are_refused_where_the_target_has_none() -> None:
    assert not RowSchedule(block_size=1024, threads_per_row=1024, cluster=2).fits(TARGETS["sm_80"])
    with pytest.raises(ScheduleError, match="does not fit sm_80"):
        lower(parse(softmax("bf16", 3, 65536)), RowSchedule(block_size=1024, threads_per_row=1024, cluster=2),
              TARGETS["sm_80"])
    with pytest.raises(ScheduleError, match="a cluster shares one row"):
        RowSchedule(block_size=256, threads_per_row=64, cluster=2)


def test_non_keepdim_outputs_map_to_the_kept_dims() -> None:
    kernel = parse("kernel k(%x: f32[64, 64]) -> (%s: f32[64]) {\n  %s = sum(%x, axes=[1])\n  return %s\n}")
    lowering = RowReductionLowering(kernel, RowSchedule(), H100)
    assert lowering.domain_map("%s") == (0,)  # not right-aligned: the rows, not the columns


def test_domain_ignores_dims_that_a_reshape_moves() -> None:
    kernel = parse("kernel k(%t: i64[64]) -> (%u: i64[64, 1]) {\n"
                   "  %c = const(1) : i64\n  %a = add(%t, %c)\n  %u = reshape(%a, shape=[64, 1])\n  return %u\n}")
    assert iteration_domain(kernel) == (64, 1)


def test_column_partials_beyond_static_shared_memory_are_refused() -> None:
    kernel = parse(COLUMN_SOFTMAX.replace("10]", "16]").replace("f32", "bf16"))
    with pytest.raises(ScheduleError, match="65536 bytes of shared memory for the partials exceed"):
        ColumnReductionLowering(kernel, ColumnSchedule(vector_bytes=16, block_size=1024, threads_along_reduction=32),
                                H100)


def test_scalar_reductions_combine_in_the_last_cta() -> None:
    lowered = lower(parse(MEAN_LOSS), ScalarSchedule(vector_bytes=4), H100)
    for needed in ("atom.global.add.u32", "fence.acq_rel.gpu", "ld.relaxed.gpu.global.f32",
                   ".global .align 4 .u32 k_arrived = 0;", ".global .align 8 .b8 k_partials["):
        assert needed in lowered.ptx


def test_scalar_reductions_of_accurate_formulas_take_one_vector_a_trip() -> None:
    """Four vectors of an accurate log in flight a thread took kl_div 76 registers (one CTA an SM
    where two are meant): such kernels walk one vector a trip; others, and approximate forms, four."""
    def unroll(op: str, approx: bool = False) -> int:
        kernel = parse(f"kernel k(%x: f32[64, 1024]) -> (%v: f32[]) {{\n  %l = {op}(%x)\n"
                       "  %v = sum(%l, axes=[0, 1])\n  return %v\n}")
        schedule = default_schedule(kernel, H100) if not approx else default_scalar_schedule(kernel, H100, True)
        assert isinstance(schedule, ScalarSchedule) and schedule.approx_math == approx
        return schedule.unroll
    assert (unroll("log"), unroll("exp"), unroll("abs"), unroll("log", approx=True)) == (1, 1, 4, 4)


def test_scalar_reduction_of_a_reduction_is_refused() -> None:
    kernel = parse("kernel k(%x: f32[64]) -> (%v: f32[]) {\n  %m = mean(%x, axes=[0], keepdim=true)\n"
                   "  %d = sub(%x, %m)\n  %q = mul(%d, %d)\n  %v = sum(%q, axes=[0])\n  return %v\n}")
    with pytest.raises(LoweringError, match="needs a grid-wide barrier"):
        lower(kernel, ScalarSchedule(vector_bytes=4), H100)


def test_reductions_not_lowered_say_why() -> None:
    kernel = parse("kernel k(%x: i32[4, 8]) -> (%y: i64[4]) {\n  %y = argmax(%x, axes=[1])\n  return %y\n}")
    with pytest.raises(LoweringError, match="argmax of i32 is not lowered"):
        lower(kernel, RowSchedule(vector_bytes=4), H100)


def test_schedules_round_trip_through_their_dicts() -> None:
    for schedule in (ElementwiseSchedule(), RowSchedule(cluster=1), ColumnSchedule(), ScalarSchedule()):
        assert schedule_from_dict(schedule.to_dict()) == schedule
    with pytest.raises(ScheduleError, match="unknown schedule kind 'tile'"):
        schedule_from_dict({"kind": "tile"})


SPACES = [
    (softmax("f32", 37, 1003), row_space),
    (softmax("bf16", 5, 8192), row_space),
    ("kernel k(%x: bf16[6, 1000]) -> (%i: i64[6], %l: f32[6]) {\n  %i = argmin(%x, axes=[1])\n"
     "  %c = cast(%x, to=f32)\n  %e = exp(%c)\n  %s = sum(%e, axes=[1])\n  %l = log(%s)\n"
     "  return %i, %l\n}", row_space),
    (COLUMN_SOFTMAX, column_space),
    (COLUMN_ARGMAX, column_space),
    (MEAN_LOSS, scalar_space),
    (COUNT_AND_SUM, scalar_space),
]


@needs_ptxas
@pytest.mark.parametrize("text,space", SPACES, ids=[f"{s.__name__}{k}" for k, (_, s) in enumerate(SPACES)])
def test_sampled_schedules_of_each_layout_assemble(text: str, space) -> None:  # type: ignore[no-untyped-def]
    kernel = parse(text)
    valid = schedule_space(kernel, H100)
    assert valid and set(valid) <= set(space(H100))
    for schedule in [default_schedule(kernel, H100)] + random.Random(text).sample(valid, 6):
        _, resources = assemble(lower(kernel, schedule, H100).ptx, "sm_90a")
        assert resources.registers > 0


LOGSUMEXP = ("kernel k(%x: bf16[8, {n}]) -> (%o: bf16[8]) {{\n  %c = cast(%x, to=f32)\n"
             "  %m = amax(%c, axes=[1], keepdim=true)\n  %d = sub(%c, %m)\n  %e = exp(%d)\n"
             "  %s = sum(%e, axes=[1])\n  %l = log(%s)\n  %v = reshape(%m, shape=[8])\n  %y = add(%l, %v)\n"
             "  %o = cast(%y, to=bf16)\n  return %o\n}}")


def test_online_pass_fuses_a_max_with_its_sum_of_exps() -> None:
    long = parse(LOGSUMEXP.format(n=65536))
    schedule = default_schedule(long, H100)
    assert isinstance(schedule, RowSchedule) and schedule.online  # one pass over a long row (approximate exp)
    lowering = RowReductionLowering(long, schedule, H100)
    assert list(lowering.fused) == ["%m"] and lowering.passes() == 1
    short = default_schedule(parse(LOGSUMEXP.format(n=4096)), H100)
    assert isinstance(short, RowSchedule) and not short.online and short.cache_row  # two passes in registers
    accurate = default_schedule(parse(LOGSUMEXP.format(n=65536).replace("bf16", "f32")), H100)
    assert isinstance(accurate, RowSchedule) and not accurate.online  # the accurate exp: online only beyond 65536


def test_online_pass_needs_float32_between_max_and_exp() -> None:
    rounded = parse(softmax("bf16", 8, 4096))  # sub and exp round to bf16: not the same as rescaling
    with pytest.raises(ScheduleError, match="no max and sum of exp"):
        lower(rounded, RowSchedule(online=True), H100)
