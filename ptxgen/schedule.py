"""Schedules: frozen, self-validating sets of knobs, and for each kernel and target the space of
valid ones, which search enumerates."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

from ptxgen.targets import Feature, Target

VECTOR_BYTES = (2, 4, 8, 16)
BLOCK_SIZES = (64, 128, 256, 512, 1024)
CTAS_PER_SM = (0, 1, 2, 4, 8, 16)  # 0: one vector per thread, no grid-stride loop
UNROLLS = (1, 2, 4)


class ScheduleError(ValueError):
    """A schedule whose knobs are out of range, or that does not fit a kernel or target."""


@dataclass(frozen=True)
class ElementwiseSchedule:
    """Knobs of a kernel with no reduction: each thread handles `unroll` vectors of
    `vector_bytes` per loop trip, in a grid of `ctas_per_sm` CTAs per SM (grid-stride loop)."""

    vector_bytes: int = 16
    block_size: int = 256
    ctas_per_sm: int = 0  # one pass over the data: measured fastest on H100 (papers/ptx_suite)
    unroll: int = 2
    approx_math: bool = False  # ex2/lg2/tanh.approx instead of the accurate math library
    fp32_intermediates: bool = False  # bf16/f16 kernels: keep float32 between ops (round at stores)

    def __post_init__(self) -> None:
        allowed = {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES, "ctas_per_sm": CTAS_PER_SM,
                   "unroll": UNROLLS}
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ScheduleError(f"{name}={getattr(self, name)} is not one of {values}")

    def fits(self, target: Target) -> bool:
        resident = self.block_size * self.ctas_per_sm
        return self.block_size <= target.max_threads_per_block and resident <= target.max_threads_per_sm

    def to_dict(self) -> dict[str, object]:
        return {"kind": "elementwise", **{f.name: getattr(self, f.name) for f in fields(self)}}


def elementwise_space(target: Target) -> list[ElementwiseSchedule]:
    """Every elementwise schedule that fits the target (the kernel may rule out vector widths)."""
    product = itertools.product(VECTOR_BYTES, BLOCK_SIZES, CTAS_PER_SM, UNROLLS, (False, True), (False, True))
    schedules = [ElementwiseSchedule(*knobs) for knobs in product]
    return [s for s in schedules if s.fits(target)]


THREADS_PER_ROW = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
CLUSTER_SIZES = (1, 2, 4, 8, 16)
THREADS_ALONG_REDUCTION = (1, 2, 4, 8, 16, 32)
PRECISION = (False, True)  # approx_math, fp32_intermediates


def _check(schedule: object, allowed: dict[str, tuple[int, ...]]) -> None:
    for name, values in allowed.items():
        if getattr(schedule, name) not in values:
            raise ScheduleError(f"{name}={getattr(schedule, name)} is not one of {values}")


@dataclass(frozen=True)
class RowSchedule:
    """Knobs of a kernel that reduces along its trailing (contiguous) axes. `threads_per_row`
    threads share a row (a part of a warp, a warp, or several), so a CTA holds
    block_size / threads_per_row rows; `cluster` CTAs share a row through distributed shared
    memory (sm_90+). With `cache_row` each thread keeps its vectors of the row in registers from
    the first phase to the last; otherwise every phase walks them, `unroll` vectors per trip,
    re-reading global memory, or with `shared_row` reading the copy of the row the first walk
    left in shared memory; with `async_copy` too, that copy is made before the first walk by
    asynchronous copies (cp.async, sm_80+), every vector of the thread's share in flight at once."""

    vector_bytes: int = 16
    block_size: int = 256
    threads_per_row: int = 256
    cache_row: bool = True
    cluster: int = 1
    ctas_per_sm: int = 0  # 0: one CTA (or cluster) per group of rows; else a grid-stride loop over them
    unroll: int = 2
    approx_math: bool = False
    fp32_intermediates: bool = False
    online: bool = False  # a max and a sum of exp(x - max) in one pass (online softmax), where the kernel has them
    shared_row: bool = False  # walks after the first read the row from shared memory (not with cache_row)
    async_copy: bool = False  # shared_row: the row copied in by cp.async, all of it in flight, before the first walk

    def __post_init__(self) -> None:
        _check(self, {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES,
                      "threads_per_row": THREADS_PER_ROW, "cluster": CLUSTER_SIZES, "ctas_per_sm": CTAS_PER_SM,
                      "unroll": UNROLLS})
        if self.shared_row and self.cache_row:
            raise ScheduleError("shared_row keeps the row in shared memory, cache_row in registers: choose one")
        if self.async_copy and not self.shared_row:
            raise ScheduleError("async_copy copies the row into shared memory: it needs shared_row")
        if self.threads_per_row > self.block_size:
            raise ScheduleError(f"threads_per_row={self.threads_per_row} exceeds block_size={self.block_size}")
        if self.cluster > 1 and self.threads_per_row != self.block_size:
            raise ScheduleError("a cluster shares one row: threads_per_row must equal block_size")

    @property
    def rows_per_cta(self) -> int:
        return self.block_size // self.threads_per_row

    def fits(self, target: Target) -> bool:
        if self.block_size > target.max_threads_per_block:
            return False
        if self.block_size * self.ctas_per_sm > target.max_threads_per_sm:
            return False
        if self.async_copy and not target.has(Feature.CP_ASYNC):
            return False
        return self.cluster == 1 or (target.has(Feature.CLUSTERS) and self.cluster <= target.max_cluster_size)

    def to_dict(self) -> dict[str, object]:
        return {"kind": "row", **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class ColumnSchedule:
    """Knobs of a kernel that reduces along a middle axis ([outer, R, inner] with inner > 1):
    threads run along the contiguous inner axis, `vector_bytes` at a time, and
    `threads_along_reduction` of them split R, combining through shared memory; each thread
    walks its part of R `unroll` rows per trip, every phase re-reading its inputs, or with
    `cache_column` keeps its part of R in registers from the first phase to the last (read once;
    `unroll` partials then interleave the additions)."""

    vector_bytes: int = 16
    block_size: int = 256
    threads_along_reduction: int = 1
    unroll: int = 4
    approx_math: bool = False
    fp32_intermediates: bool = False
    cache_column: bool = False

    def __post_init__(self) -> None:
        _check(self, {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES,
                      "threads_along_reduction": THREADS_ALONG_REDUCTION, "unroll": UNROLLS})

    def fits(self, target: Target) -> bool:
        return self.block_size <= target.max_threads_per_block

    def to_dict(self) -> dict[str, object]:
        return {"kind": "column", **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class ScalarSchedule:
    """Knobs of a kernel that reduces every axis to a scalar: a grid of ctas_per_sm CTAs per SM
    walks the data (grid-stride, `unroll` vectors per trip); each CTA writes its partial, and the
    last CTA to finish combines them in CTA order, so the result does not depend on timing."""

    vector_bytes: int = 16
    block_size: int = 512
    ctas_per_sm: int = 2
    unroll: int = 4
    approx_math: bool = False
    fp32_intermediates: bool = False

    def __post_init__(self) -> None:
        _check(self, {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES,
                      "ctas_per_sm": CTAS_PER_SM[1:], "unroll": UNROLLS})

    def fits(self, target: Target) -> bool:
        resident = self.block_size * self.ctas_per_sm
        return self.block_size <= target.max_threads_per_block and resident <= target.max_threads_per_sm

    def to_dict(self) -> dict[str, object]:
        return {"kind": "scalar", **{f.name: getattr(self, f.name) for f in fields(self)}}


Schedule = ElementwiseSchedule | RowSchedule | ColumnSchedule | ScalarSchedule
SCHEDULE_KINDS: dict[str, type] = {"elementwise": ElementwiseSchedule, "row": RowSchedule,
                                   "column": ColumnSchedule, "scalar": ScalarSchedule}


def schedule_from_dict(knobs: dict[str, object]) -> Schedule:
    """The schedule `to_dict` wrote (its "kind" names the class)."""
    knobs = dict(knobs)
    kind = str(knobs.pop("kind", "elementwise"))
    if kind not in SCHEDULE_KINDS:
        raise ScheduleError(f"unknown schedule kind {kind!r}; known: {', '.join(SCHEDULE_KINDS)}")
    try:
        return SCHEDULE_KINDS[kind](**knobs)  # type: ignore[no-any-return]
    except TypeError as err:
        raise ScheduleError(f"{kind} schedule: {err}") from None


def row_space(target: Target) -> list[RowSchedule]:
    """Every row schedule that fits the target (the kernel may rule out vector widths)."""
    schedules = []
    kept = ((True, False, False), (False, False, False), (False, True, False), (False, True, True))
    for vector, block, threads, (cache, shared, copy), cluster, unroll, approx, fp32, online in itertools.product(
            VECTOR_BYTES, BLOCK_SIZES, THREADS_PER_ROW, kept, CLUSTER_SIZES, UNROLLS, PRECISION, PRECISION,
            (False, True)):
        if threads > block or (cluster > 1 and threads != block) or (cache and unroll != 1):
            continue
        schedule = RowSchedule(vector, block, threads, cache, cluster, 0, unroll, approx, fp32, online, shared, copy)
        if schedule.fits(target):
            schedules.append(schedule)
    return schedules


def column_space(target: Target) -> list[ColumnSchedule]:
    """Every column schedule that fits the target (the kernel may rule out vector widths, and
    cached columns longer than registers hold)."""
    product = itertools.product(VECTOR_BYTES, BLOCK_SIZES, THREADS_ALONG_REDUCTION, UNROLLS, PRECISION, PRECISION,
                                (False, True))
    return [s for s in (ColumnSchedule(*knobs) for knobs in product) if s.fits(target)]


def scalar_space(target: Target) -> list[ScalarSchedule]:
    product = itertools.product(VECTOR_BYTES, BLOCK_SIZES, CTAS_PER_SM[1:], UNROLLS, PRECISION, PRECISION)
    return [s for s in (ScalarSchedule(*knobs) for knobs in product) if s.fits(target)]
