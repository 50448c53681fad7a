"""Lowering kernels that reduce along a middle axis: the reduced values seen as [outer, R, inner]
with inner > 1 (a softmax over dim 1, a mean over channels).

Threads run along the contiguous inner axis, V elements each (one partial per lane), so loads stay
coalesced; a CTA covers `block_size / threads_along_reduction * V` inner columns of one outer index
and its `threads_along_reduction` rows of threads split R, walking it `unroll` rows a trip, then
combine through shared memory in a fixed order. Each phase re-reads its inputs, or, with
`cache_column`, each thread's rows of R are static slots, unrolled, whose values loaded and computed
in one phase stay in registers for the next: the inputs are read from memory once."""

from __future__ import annotations

import math
from collections.abc import Iterator

from ir.kernel import Instr, Kernel
from ptxgen.lower import Body, Lanes, LaunchConfig, LoweringError
from ptxgen.reduce import SLOT_BYTES, WARP, Layout, Partial, ReductionLowering
from ptxgen.rows import MAX_REGISTER_ELEMENTS, next_power_of_two
from ptxgen.schedule import ColumnSchedule, ScheduleError
from ptxgen.targets import Target

STATIC_SHARED_LIMIT = 48 * 1024  # bytes of static shared memory a kernel may declare
CACHED_COLUMN_ELEMENTS = 64  # per thread, in default schedules of columns read by more than one phase
CACHED_ALONG = 32  # threads splitting R in those defaults


class ColumnReductionLowering(ReductionLowering):
    layout = Layout.COLUMN
    schedule: ColumnSchedule

    def __init__(self, kernel: Kernel, schedule: ColumnSchedule, target: Target) -> None:
        super().__init__(kernel, schedule, target)
        self.outer, self.length, self.inner = self.reduced.outer, self.reduced.length, self.reduced.inner
        self.along = schedule.threads_along_reduction
        self.across = schedule.block_size // self.along  # threads along the inner axis
        self.columns_per_cta = self.across * self.vector
        self.column_blocks = -(-self.inner // self.columns_per_cta)
        shared = schedule.block_size * self.vector * SLOT_BYTES if self.along > 1 else 0
        if shared > STATIC_SHARED_LIMIT:
            raise ScheduleError(f"{shared} bytes of shared memory for the partials exceed {STATIC_SHARED_LIMIT}")
        self.exact_columns = self.inner % self.columns_per_cta == 0
        self.exact_rows = self.length % (self.along * schedule.unroll) == 0
        self.slots = -(-self.length // self.along)  # this thread's rows of R, cached
        if schedule.cache_column and self.slots * self.vector > MAX_REGISTER_ELEMENTS:
            raise ScheduleError(f"caching {self.slots * self.vector} elements of a column per thread cannot fit in "
                                f"registers (at most {MAX_REGISTER_ELEMENTS})")

    def launch(self) -> LaunchConfig:
        return LaunchConfig((self.outer * self.column_blocks, 1, 1), (self.schedule.block_size, 1, 1))

    def render(self) -> str:
        w = self.w
        self._prologue()
        tid = w.op("b32", "mov.u32 {}, %tid.x")
        self.across_index = w.op("b32", f"and.b32 {{}}, {{}}, {self.across - 1}", tid)
        self.along_index = w.op("b32", f"shr.u32 {{}}, {{}}, {int(math.log2(self.across))}", tid)
        cta = w.op("b32", "mov.u32 {}, %ctaid.x")
        outer = w.op("b32", f"div.u32 {{}}, {{}}, {self.column_blocks}", cta)
        block = w.op("b32", f"rem.u32 {{}}, {{}}, {self.column_blocks}", cta)
        column = w.op("b32", f"mul.lo.u32 {{}}, {{}}, {self.vector}",
                      w.op("b32", f"mad.lo.u32 {{}}, {{}}, {self.across}, {{}}", block, self.across_index))
        self.inside = None if self.exact_columns else w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.inner}", column)
        origin = self._ix("mul.lo", self._widen_index(outer), self.length * self.inner)
        self.origin = self._ix("add", origin, self._widen_index(column))
        if self.along > 1:
            self.smem = self._declare_shared("column_partials", self.schedule.block_size * self.vector * SLOT_BYTES)
            self.tid = tid
        bodies = list(self._slots()) if self.schedule.cache_column else None
        for instr in self.reductions:
            self._phase(instr, bodies)
        if self.outputs_along_reduction():
            for body in self._walk(bodies):
                self._store_outputs(body)
        else:  # outputs without the reduced axes: stored once, by the threads at the first row of R
            guard = self.inside
            if self.along > 1:
                first = w.op("pred", "setp.eq.u32 {}, {}, 0", self.along_index)
                guard = first if guard is None else w.op("pred", "and.pred {}, {}, {}", first, guard)
            self._store_outputs(Body(self.origin, self.vector, guard))
        w.emit("ret")
        return self._module()

    def _along_reduction(self, name: str) -> bool:
        return any(d in self.domain_map(name) for d in self.reduced.axes)

    def outputs_along_reduction(self) -> bool:
        """Some output runs along R (not only values per column)."""
        return any(self._along_reduction(v) for v in self.kernel.returns)

    def passes(self) -> int:
        """How many times R is walked: once per reduction, and once more where an output runs along R."""
        return len(self.reductions) + int(self.outputs_along_reduction())

    def _accumulate_lane(self, partial: Partial, value: str, position: str | None, guard: str | None) -> None:
        if partial.index is None:
            self._merge(partial, value, None, guard)
        else:
            assert position is not None
            self._step_pair(partial, value, position, guard)

    def _slots(self) -> Iterator[Body]:
        """This thread's rows r = along_index + k * threads_along_reduction of R as static slots
        (cache_column): their values outlive a phase. Only slots that can pass the end of R are
        guarded by their row."""
        w, along = self.w, self.along
        for k in range(self.slots):
            row = self.along_index if k == 0 else w.op("b32", f"add.u32 {{}}, {{}}, {k * along}", self.along_index)
            element = self._ix("mad.lo", self._widen_index(row), self.inner, self.origin)
            guard = self.inside
            if (k + 1) * along > self.length:
                below = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.length}", row)
                guard = below if guard is None else w.op("pred", "and.pred {}, {}, {}", below, guard)
            yield Body(element, self.vector, guard, position=row)

    def _walk(self, bodies: list[Body] | None) -> Iterator[Body]:
        """This thread's rows of R for one phase: the cached slots, or a loop over rows
        r = along_index + k * threads_along_reduction re-reading them, `unroll` a trip."""
        if bodies is not None:
            yield from bodies
            return
        w, unroll, along = self.w, self.schedule.unroll, self.along
        row = w.op("b32", "mov.u32 {}, {}", self.along_index)
        element = self._ix("mad.lo", self._widen_index(self.along_index), self.inner, self.origin)
        loop, end = w.label("r"), w.label("r_end")
        w.place(loop)
        w.emit(f"bra {end}", w.op("pred", f"setp.ge.u32 {{}}, {{}}, {self.length}", row))
        for u in range(unroll):
            current = row if u == 0 else w.op("b32", f"add.u32 {{}}, {{}}, {u * along}", row)
            at = element if u == 0 else self._ix("add", element, u * along * self.inner)
            guard = self.inside
            if u > 0 and not self.exact_rows:
                below = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.length}", current)
                guard = below if guard is None else w.op("pred", "and.pred {}, {}, {}", below, guard)
            yield Body(at, self.vector, guard, position=current)
        w.emit(f"add.u32 {row}, {row}, {unroll * along}")
        w.emit(f"add.{self.itype} {element}, {element}, {unroll * along * self.inner}")
        w.emit(f"bra {loop}")
        w.place(end)

    def _phase(self, instr: Instr, bodies: list[Body] | None) -> None:
        unroll = self.schedule.unroll  # a partial per lane and unrolled step, merged in order after the walk
        steps = [[self._start(instr) for _ in range(self.vector)] for _ in range(unroll)]
        for u, body in enumerate(self._walk(bodies)):
            lanes = self.value(instr.args[0], self._identity(), body)
            for k, partial in enumerate(steps[u % unroll]):
                self._accumulate_lane(partial, lanes.lane(k), body.position, body.guard)
        partials = [self._merge_all([step[k] for step in steps]) for k in range(self.vector)]
        if self.along > 1:
            partials = self._across_rows(partials)
        self.row_values[instr.result] = Lanes([self._finish(instr, p) for p in partials])

    def _across_rows(self, partials: list[Partial]) -> list[Partial]:
        """Each lane's partials from the threads that split R, combined in order of their rows."""
        w = self.w
        slot = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {self.vector * SLOT_BYTES}, {{}}", self.tid, self.smem)
        for k, partial in enumerate(partials):
            self._store_slot(partial, (slot, k * SLOT_BYTES), None)
        w.emit("bar.sync 0")
        mine = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {self.vector * SLOT_BYTES}, {{}}", self.across_index, self.smem)
        row_bytes = self.across * self.vector * SLOT_BYTES
        combined = [self._gather_slots(partial, [(mine, j * row_bytes + k * SLOT_BYTES) for j in range(self.along)])
                    for k, partial in enumerate(partials)]
        w.emit("bar.sync 0")
        return combined


def default_column_schedule(kernel: Kernel, target: Target, approx: bool) -> ColumnSchedule:
    """Columns read by more than one phase, short enough: cached (`_cached_default`). Otherwise the
    widest vector the inner axis allows; a warp's worth of threads along it (fewer where it is
    narrower: 512 contiguous bytes a warp), the rest of a 256-thread block splitting R, so that
    each thread's share of R is short (more CTAs, and sums accumulated in shorter chains)."""
    cached = _cached_default(kernel, target, approx)
    if cached is not None:
        return cached
    for vector_bytes in (16, 8, 4, 2):
        try:
            probe = ColumnReductionLowering(kernel, ColumnSchedule(vector_bytes=vector_bytes), target)
        except ScheduleError:
            continue
        across = _threads_across(probe, WARP)
        along = min(32, 256 // across)
        return ColumnSchedule(vector_bytes=vector_bytes, block_size=max(64, across * along),
                              threads_along_reduction=along, approx_math=approx)
    raise LoweringError(f"kernel {kernel.name}: no vector width fits its inner axis")


def _cached_default(kernel: Kernel, target: Target, approx: bool) -> ColumnSchedule | None:
    """Where a kernel's inputs are read by more than one phase (two reductions, or a reduction and
    outputs along R): 32 threads split R, each keeping its rows in registers, with the widest vector
    that leaves it at most CACHED_COLUMN_ELEMENTS; 256-thread blocks (fewer across a narrow inner
    axis). Measured on H100 (papers/ptx_suite, `--sweep-set cached_column`): a softmax over 1024
    channels and an RMS norm over 256 at 92-95% of the copy bandwidth, from 50-70% re-reading.
    None where no vector leaves the column short enough."""
    for vector_bytes in (16, 8, 4, 2):
        try:
            probe = ColumnReductionLowering(kernel, ColumnSchedule(vector_bytes=vector_bytes), target)
        except ScheduleError:
            continue
        along = min(CACHED_ALONG, next_power_of_two(probe.length))
        if probe.passes() < 2 or -(-probe.length // along) * probe.vector > CACHED_COLUMN_ELEMENTS:
            continue
        across = _threads_across(probe, 256 // along)
        return ColumnSchedule(vector_bytes=vector_bytes, block_size=max(64, across * along),
                              threads_along_reduction=along, unroll=1, approx_math=approx, cache_column=True)
    return None


def _threads_across(probe: ColumnReductionLowering, most: int) -> int:
    """Threads along the inner axis: `most`, fewer where its vectors are fewer (at least 2)."""
    return min(most, max(2, next_power_of_two(-(-probe.inner // probe.vector))))
