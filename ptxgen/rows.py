"""Lowering kernels that reduce along their trailing (contiguous) axes.

`threads_per_row` threads share a row, so a CTA of `block_size` threads holds several rows (a row
per group of 4..32 lanes: shuffles only) or one row per CTA (warps combine through shared memory
and a barrier); a cluster of CTAs can share one row, each taking a contiguous chunk, their
partials exchanged through distributed shared memory (`mapa`, `ld.shared::cluster`) between
cluster barriers. Every thread's vectors sit at column lane*V + k*threads_per_row*V of its chunk.

With `cache_row` those vectors are static slots, unrolled: the values loaded and computed in one
phase stay in registers for the next, so the row is read from memory once. Otherwise each phase
walks the row in a loop: it re-reads global memory, or, with `shared_row`, the first walk also
copies the row's inputs (as stored, bf16 stays 2 bytes) into dynamic shared memory and later walks
read that copy. Each thread reads back only what it wrote there, so no barrier is needed, and the
copy is small enough for several CTAs to share an SM (their loads overlap each other's exchanges).
A value a walk computes by a library formula and a later walk needs again (softmax's exponentials)
is stored in the place of an input no later walk reads, and read back instead of computed again.
With `async_copy` the copy is made before the first walk by `cp.async` (each thread's vectors all
in flight at once, none waiting on a register), and `cp.async.wait_all` makes it visible to the
thread that asked for it, the only one that reads it.
Partials are combined in a fixed order, so results do not depend on timing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ir.dtypes import DType
from ir.kernel import Instr, Kernel, Param
from ptxgen.lower import LIBRARY, ROUNDING, Body, IndexMap, Lanes, LaunchConfig, LoweringError
from ptxgen.reduce import SLOT_BYTES, WARP, Layout, Partial, ReductionLowering
from ptxgen.schedule import RowSchedule, ScheduleError
from ptxgen.targets import Feature, Target

CLUSTER_BARRIER = ("barrier.cluster.arrive.release.aligned", "barrier.cluster.wait.acquire.aligned")
MAX_CACHED_ELEMENTS = 32  # per thread, in default schedules of rows read more than once
# Row length beyond which default schedules use an online pass where it makes the only read (by
# approx_math: with the accurate exp, the update's second exp per element costs more).
ONLINE_FROM = {True: 16384, False: 65536}
MAX_REGISTER_ELEMENTS = 128  # per thread: more cached elements than this are refused
LONG_ROW, LONG_ROW_THREADS = 16384, 256  # rows longer than this with per-row outputs: CTAs of this many threads
LONG_ROW_THREAD_BYTES = 256  # of such a row, held in registers by each thread
ASYNC_COPY_BYTES = {4: "cp.async.ca", 8: "cp.async.ca", 16: "cp.async.cg"}  # .cg takes 16 bytes only
SHARED_ROW_BYTES = 64 * 1024  # a CTA's share of a row kept in shared memory, in default schedules


class RowReductionLowering(ReductionLowering):
    layout = Layout.ROW
    schedule: RowSchedule

    def __init__(self, kernel: Kernel, schedule: RowSchedule, target: Target) -> None:
        super().__init__(kernel, schedule, target)
        self.row_length, self.rows = self.reduced.length, self.reduced.outer
        vectors = self.row_length // self.vector
        self.chunk = -(-vectors // schedule.cluster) * self.vector  # elements of a row per CTA of a cluster
        self.stride = schedule.threads_per_row * self.vector  # columns between a thread's vectors
        self.slots = -(-self.chunk // self.stride)
        if schedule.cache_row and self.slots * self.vector > MAX_REGISTER_ELEMENTS:
            raise ScheduleError(f"caching {self.slots * self.vector} elements of a row per thread cannot fit in "
                                f"registers (at most {MAX_REGISTER_ELEMENTS})")
        if schedule.cluster > 1 and self.chunk * (schedule.cluster - 1) >= self.row_length:
            raise ScheduleError(f"a row of {self.row_length} is too short for a cluster of {schedule.cluster}")
        self.fused = self.online_pairs() if schedule.online else {}
        if schedule.online and not self.fused:
            raise ScheduleError(f"kernel {kernel.name} has no max and sum of exp(x - max) for an online pass")
        self.exact = (self.row_length == self.chunk * schedule.cluster and self.chunk % self.stride == 0
                      and self.rows % schedule.rows_per_cta == 0)
        self.stage_offsets = self._stage_layout() if schedule.shared_row else {}
        self.kept = self._keep_plan() if schedule.shared_row and not schedule.cache_row and not self.fused else {}
        self.exchanges = 0  # partials exchanged across the cluster per row
        self.staged: set[str] = set()  # inputs a finished walk has copied into shared memory
        self.staging: set[str] = set()  # inputs the walk under way is copying

    def _stage_layout(self) -> dict[str, int]:
        """Byte offset in dynamic shared memory of each input kept there: those read along the
        whole domain (the row's own values), one chunk per row of the CTA."""
        offsets, end = {}, 0
        for param in self._row_inputs():
            offsets[param.name] = end
            end += self.schedule.rows_per_cta * self.chunk * param.type.dtype.itemsize
        if not offsets:
            raise ScheduleError(f"kernel {self.kernel.name} has no input along its rows to keep in shared memory")
        if self.schedule.async_copy:
            for param in self._row_inputs():
                size = self.vector * param.type.dtype.itemsize
                if size not in ASYNC_COPY_BYTES:
                    raise ScheduleError(f"async_copy copies 4, 8 or 16 bytes; a vector of {param.name} is {size}")
        if end > self.target.shared_memory_per_block - 1024:
            raise ScheduleError(f"keeping {end} bytes of rows in shared memory exceeds {self.target.name}'s "
                                f"{self.target.shared_memory_per_block} per CTA")
        self.stage_bytes = end
        return offsets
    def _keep_plan(self) -> dict[str, tuple[str, str]]:
        """shared_row: a value that one walk computes by a library formula (softmax's exp(x - max))
        and a later walk needs again is kept in the shared copy of an input that no later walk reads,
        in place of that input, instead of being computed again. Value -> (the input whose place it
        takes, the reduction whose walk stores it). Only values whose bits as stored are the value
        itself: float32, or a bf16/f16 value rounded to its type."""
        walks = [[i.args[0]] for i in self.reductions] + [list(self.kernel.returns) if self.outputs_along_row() else []]
        kept: dict[str, tuple[str, str]] = {}
        for k, instr in enumerate(self.reductions):
            later = walks[k + 1:]
            for name in self._row_dag(instr.args[0], set(kept)):
                if name not in self.defs or self.defs[name].op not in LIBRARY or not self._stored_exactly(name):
                    continue
                needed = set().union(*(self._row_dag(r, set(kept) | {name}) for roots in later for r in roots),
                                     *(set(roots) for roots in later))
                taken = {host for host, _ in kept.values()}
                hosts = [p for p in self.stage_offsets if p not in needed and p not in taken and
                         self.types[p].dtype.itemsize == self.types[name].dtype.itemsize]
                if name in needed and hosts:
                    kept[name] = (hosts[0], instr.result)
                    break
        return kept

    def _row_dag(self, root: str, cut: set[str]) -> set[str]:
        """Names along the whole domain that `root` is computed from within one walk (inputs
        included), not looking past `cut` or values of another shape (a row's reduced values)."""
        seen: set[str] = set()
        pending = [root]
        while pending:
            name = pending.pop()
            if name in seen or self.types[name].shape != self.domain:
                continue
            seen.add(name)
            if name in self.defs and name not in cut:
                pending.extend(self.defs[name].args)
        return seen

    def _stored_exactly(self, name: str) -> bool:
        dtype = self.types[name].dtype
        return dtype.is_float and (dtype.itemsize == 4 or dtype in ROUNDING and not self.schedule.fp32_intermediates)

    def _row_inputs(self) -> list[Param]:
        """The inputs read along the whole domain (the rows' own values): what shared_row keeps."""
        return [p for p in self.kernel.inputs if p.type.shape == self.domain and p.type.dtype != DType.BOOL]

    def stage_itemsize(self) -> int:
        """Bytes per column of the inputs a shared_row schedule keeps in shared memory (0: none)."""
        return sum(p.type.dtype.itemsize for p in self._row_inputs())

    def outputs_along_row(self) -> bool:
        """Some output runs along the row (not only per-row values)."""
        last = len(self.domain) - 1
        return any(last in self.domain_map(v) for v in self.kernel.returns)

    def passes(self) -> int:
        """How many times the row is walked: once per reduction (a pair fused by an online pass
        counts once), and once more where an output runs along the row."""
        return len(self.reductions) - len(self.fused) + int(self.outputs_along_row())

    # -- the kernel ----------------------------------------------------------------------------

    def launch(self) -> LaunchConfig:
        s = self.schedule
        groups = -(-self.rows // s.rows_per_cta)
        held = max(1, self.target.sms_holding_clusters(s.cluster) * s.ctas_per_sm // s.cluster)  # clusters at once
        grid = min(groups, held) if s.ctas_per_sm else groups
        return LaunchConfig((grid * s.cluster, 1, 1), (s.block_size, 1, 1), cluster=(s.cluster, 1, 1),
                            shared_bytes=self.stage_bytes if s.shared_row else 0)

    def _module(self) -> str:
        text = super()._module()
        if not self.schedule.shared_row:
            return text
        marker = ".address_size 64\n"  # dynamic shared memory is declared at module scope
        return text.replace(marker, marker + "\n.extern .shared .align 16 .b8 row_stage[];\n", 1)

    def _directives(self) -> list[str]:
        cluster = [f".reqnctapercluster {self.schedule.cluster}, 1, 1"] if self.schedule.cluster > 1 else []
        return super()._directives() + cluster

    def render(self) -> str:
        w, s = self.w, self.schedule
        self._prologue()
        self.tid = w.op("b32", "mov.u32 {}, %tid.x")
        self.lane_in_row = w.op("b32", f"and.b32 {{}}, {{}}, {s.threads_per_row - 1}", self.tid)
        self.row_in_cta = w.op("b32", f"shr.u32 {{}}, {{}}, {int(math.log2(s.threads_per_row))}", self.tid)
        self.lane = w.op("b32", "and.b32 {}, {}, 31", self.tid)
        self.smem = self._declare_shared("row_partials", (s.block_size // WARP) * SLOT_BYTES)
        if s.shared_row:
            self.stage = w.op("b32", "mov.u32 {}, row_stage")
        if s.cluster > 1:
            self.cluster_smem = self._declare_shared("cluster_partials", len(self.reductions) * SLOT_BYTES)
            rank = w.op("b32", "mov.u32 {}, %cluster_ctarank")
            group = w.op("b32", "mov.u32 {}, %clusterid.x")
            step = w.op("b32", "mov.u32 {}, %nclusterid.x")
        else:
            rank, group = "0", w.op("b32", "mov.u32 {}, %ctaid.x")
            step = w.op("b32", "mov.u32 {}, %nctaid.x")
        skipped = {second.result for second, _ in self.fused.values()}
        self.planned_exchanges = sum(instr.result not in skipped for instr in self.reductions) if s.cluster > 1 else 0
        early = self._arrives_early()
        loop, done = w.label("rows"), w.label("done")
        idle = w.label("idle") if early else done
        w.place(loop)
        first_row = w.op("b32", f"mul.lo.u32 {{}}, {{}}, {s.rows_per_cta}", group)
        w.emit(f"bra.uni {idle}", w.op("pred", f"setp.ge.u32 {{}}, {{}}, {self.rows}", first_row))
        row = w.op("b32", "add.u32 {}, {}, {}", first_row, self.row_in_cta)
        self.row_base = self._ix("mul.lo", self._widen_index(row), self.row_length)
        self._column_bounds(rank, row)
        bodies = list(self._slots()) if s.cache_row else None
        if s.async_copy:
            self._copy_row_in()
        for phase, instr in enumerate(self.reductions):
            if instr.result not in skipped:
                self._phase(instr, phase, bodies)
        if self.outputs_along_row():
            for body in self._walk(bodies):
                self._store_outputs(body)
        else:  # per-row outputs only: stored once, by the thread holding the row's first column
            inside = None if self.exact else self.w.op("pred", "setp.lt.u32 {}, {}, {}", self.first_column, self.end)
            self._store_outputs(bodies[0] if bodies else self._body_at(self.first_column, inside))
        if s.ctas_per_sm:
            w.emit(f"add.u32 {group}, {group}, {step}")
            w.emit("bar.sync 0")  # the next rows' exchanges reuse the shared slots
            if s.cluster > 1 and self.exchanges < 2:  # and the cluster's: every CTA has read them first
                for barrier in CLUSTER_BARRIER:
                    w.emit(barrier)
            w.emit(f"bra.uni {loop}")
        elif early:  # a CTA without a row arrives too
            w.emit(f"bra.uni {done}")
            w.place(idle)
            w.emit(CLUSTER_BARRIER[0])
        w.place(done)
        if s.cluster > 1:  # no CTA leaves while another may still read its shared memory
            for barrier in CLUSTER_BARRIER[1:] if early else CLUSTER_BARRIER:
                w.emit(barrier)
        w.emit("ret")
        return self._module()

    def _arrives_early(self) -> bool:
        """A CTA of a cluster that takes one row group and exits arrives at the cluster's last
        barrier right after its last exchange (nothing it does after touches shared memory another
        CTA reads) and waits there only before it exits: it does not idle at the end while the
        slowest CTA of its cluster finishes its row, as a barrier met in one step would make it."""
        return self.planned_exchanges > 0 and not self.schedule.ctas_per_sm

    def _column_bounds(self, rank: str, row: str) -> None:
        """This thread's first column and the end of its CTA's chunk (0 where its row is past the
        last, so that it loads and stores nothing but still joins every exchange)."""
        w = self.w
        start = w.op("b32", f"mul.lo.u32 {{}}, {{}}, {self.vector}", self.lane_in_row)
        end = str(self.chunk) if self.schedule.cluster > 1 else str(self.row_length)
        self.chunk_start = "0"
        if self.schedule.cluster > 1:
            chunk_start = self.chunk_start = w.op("b32", f"mul.lo.u32 {{}}, {{}}, {self.chunk}", rank)
            start = w.op("b32", "add.u32 {}, {}, {}", start, chunk_start)
            end = w.op("b32", f"min.u32 {{}}, {{}}, {self.row_length}",
                       w.op("b32", f"add.u32 {{}}, {{}}, {self.chunk}", chunk_start))
        if self.rows % self.schedule.rows_per_cta:
            valid = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.rows}", row)
            end = w.op("b32", f"selp.b32 {{}}, {end}, 0, {{}}", valid)
        self.first_column, self.end = start, end

    def _body_at(self, column: str, guard: str | None) -> Body:
        element = self._ix("add", self.row_base, self._widen_index(column))
        body = Body(element, self.vector, guard, position=column)
        if len(self.reduced.axes) == 1:  # the column is the last coordinate: no division needed
            body.coords[len(self.domain) - 1] = self._widen_index(column)
        return body

    def _slots(self) -> Iterator[Body]:
        """The thread's vectors as static slots (cache_row): their values outlive a phase."""
        for k in range(self.slots):
            column = self.first_column if k == 0 else self.w.op(
                "b32", f"add.u32 {{}}, {{}}, {k * self.stride}", self.first_column)
            guard = None if self.exact else self.w.op("pred", "setp.lt.u32 {}, {}, {}", column, self.end)
            yield self._body_at(column, guard)

    def _walk(self, bodies: list[Body] | None) -> Iterator[Body]:
        """The thread's vectors for one phase: the cached slots, or a loop re-reading them
        (`unroll` vectors a trip; the loop closes when the caller resumes the generator)."""
        if bodies is not None:
            yield from bodies
            return
        w, unroll = self.w, self.schedule.unroll
        column = w.op("b32", "mov.u32 {}, {}", self.first_column)
        loop, end = w.label("col"), w.label("col_end")
        w.place(loop)
        w.emit(f"bra {end}", w.op("pred", "setp.ge.u32 {}, {}, {}", column, self.end))
        for u in range(unroll):
            current = column if u == 0 else w.op("b32", f"add.u32 {{}}, {{}}, {u * self.stride}", column)
            guard = None if u == 0 else w.op("pred", "setp.lt.u32 {}, {}, {}", current, self.end)
            yield self._body_at(current, guard)
        w.emit(f"add.u32 {column}, {column}, {unroll * self.stride}")
        w.emit(f"bra {loop}")
        w.place(end)
        self.staged |= self.staging

    # -- the row in shared memory (shared_row) ----------------------------------------------------

    def _load(self, name: str, index: IndexMap, ctx: Body) -> Lanes:
        """Inputs kept in shared memory: the first walk copies what it loads there, later walks
        read the copy (at the same place, by the same thread)."""
        if name not in self.stage_offsets or index != self._identity() or ctx.position is None:
            return super()._load(name, index, ctx)
        dtype = self.types[name].dtype
        place = self._stage_address(name, ctx.position)
        if name in self.staged:
            raw = self._load_raw(dtype, f"[{place}]", ctx.lanes, ctx.guard, space="shared")
        else:
            address = self._address(self.base[name], ctx.element, dtype.itemsize)
            raw = self._load_raw(dtype, f"[{address}]", ctx.lanes, ctx.guard)
            self._store_raw(dtype, f"[{place}]", raw, ctx.guard, space="shared")
            self.staging.add(name)
        return Lanes([self._widen(r, dtype) for r in raw])

    def _copy_row_in(self) -> None:
        """async_copy: every vector of the thread's share of its row copied into shared memory by
        cp.async (16-byte copies bypass L1), then waited for; the walks read the copy."""
        for body in self._walk(None):
            for name in self.stage_offsets:
                itemsize = self.types[name].dtype.itemsize
                size = body.lanes * itemsize
                place = self._stage_address(name, body.position)
                address = self._address(self.base[name], body.element, itemsize)
                self.w.emit(f"{ASYNC_COPY_BYTES[size]}.shared.global [{place}], [{address}], {size}", body.guard)
        self.w.emit("cp.async.wait_all")
        self.staged |= set(self.stage_offsets)

    def _keep(self, name: str, body: Body) -> None:
        """Store the value `name` where its host input's shared copy was (`_keep_plan`)."""
        dtype = self.types[name].dtype
        raw = [self._narrow(r, dtype) for r in self.value(name, self._identity(), body).regs]
        place = self._stage_address(self.kept[name][0], body.position)  # type: ignore[arg-type]
        self._store_raw(dtype, f"[{place}]", raw, body.guard, space="shared")
        self.staging.add(name)

    def _compute(self, name: str, index: IndexMap, ctx: Body) -> Lanes:
        """A value kept in shared memory by an earlier walk is read back, not computed again."""
        if name not in self.kept or name not in self.staged or index != self._identity() or ctx.position is None:
            return super()._compute(name, index, ctx)
        dtype = self.types[name].dtype
        place = self._stage_address(self.kept[name][0], ctx.position)
        raw = self._load_raw(dtype, f"[{place}]", ctx.lanes, ctx.guard, space="shared")
        return Lanes([self._widen(r, dtype) for r in raw])

    def _stage_address(self, name: str, column: str) -> str:
        """Where column `column` of this thread's row sits in the shared copy of input `name`."""
        w = self.w
        local = column if self.chunk_start == "0" else w.op("b32", "sub.u32 {}, {}, {}", column, self.chunk_start)
        within = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {self.chunk}, {{}}", self.row_in_cta, local)
        start = w.op("b32", f"add.u32 {{}}, {{}}, {self.stage_offsets[name]}", self.stage)
        return w.op("b32", f"mad.lo.u32 {{}}, {{}}, {self.types[name].dtype.itemsize}, {{}}", within, start)

    # -- one reduction -------------------------------------------------------------------------

    def _phase(self, instr: Instr, phase: int, bodies: list[Body] | None) -> None:
        steps = 1 if bodies is not None else self.schedule.unroll  # a partial per unrolled step
        online = instr.result in self.fused
        partials = [self._start_online(instr.op) if online else self._start(instr) for _ in range(steps)]
        kept = [name for name, (_, walk) in self.kept.items() if walk == instr.result]
        for k, body in enumerate(self._walk(bodies)):
            lanes = self.value(instr.args[0], self._identity(), body)
            for name in kept:
                self._keep(name, body)
            self._accumulate(partials[k % steps], lanes, body.lanes, body.position, body.guard)
        partial = self._combine_row(self._merge_all(partials), phase)
        if not online:
            self.row_values[instr.result] = Lanes([self._finish(instr, partial)])
            return
        assert partial.index is not None
        self.row_values[instr.result] = Lanes([partial.value])  # the amax, in float32
        second, shift = self.fused[instr.result]
        shift_value = self.value(shift, self.domain_map(shift), Body(self.row_base, 1, None)).lane(0)
        total = self.w.mul(partial.index, self._exp(self.w.sub(partial.value, shift_value)))  # to exp(x - shift)
        self.row_values[second.result] = Lanes([self._round(total, self.types[second.result].dtype)])

    def _combine_row(self, partial: Partial, phase: int) -> Partial:
        """Every thread's partial combined with those of its row: within the group of lanes, then
        across the row's warps, then across the cluster. Every thread of the row gets the result."""
        s = self.schedule
        self._group_reduce(partial, min(s.threads_per_row, WARP))
        if s.threads_per_row > WARP:
            partial = self._across_warps(partial)
        if s.cluster > 1:
            partial = self._across_cluster(partial, phase)
        return partial

    def _across_warps(self, partial: Partial) -> Partial:
        w = self.w
        warps = self.schedule.threads_per_row // WARP
        warp = w.op("b32", "shr.u32 {}, {}, 5", self.tid)  # slot of this warp; its row's slots follow each other
        slot = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {SLOT_BYTES}, {{}}", warp, self.smem)
        self._store_slot(partial, (slot, 0), w.op("pred", "setp.eq.u32 {}, {}, 0", self.lane))
        w.emit("bar.sync 0")
        first = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {warps * SLOT_BYTES}, {{}}", self.row_in_cta, self.smem)
        combined = self._gather_slots(partial, [(first, k * SLOT_BYTES) for k in range(warps)])
        w.emit("bar.sync 0")  # every thread has read the slots before the next phase writes them
        return combined

    def _across_cluster(self, partial: Partial, phase: int) -> Partial:
        w = self.w
        self.exchanges += 1
        slot = w.op("b32", f"add.u32 {{}}, {{}}, {phase * SLOT_BYTES}", self.cluster_smem)
        self._store_slot(partial, (slot, 0), w.op("pred", "setp.eq.u32 {}, {}, 0", self.tid))
        for barrier in CLUSTER_BARRIER:
            w.emit(barrier)
        remote = [(w.op("b32", f"mapa.shared::cluster.u32 {{}}, {{}}, {rank}", slot), 0)
                  for rank in range(self.schedule.cluster)]
        gathered = self._gather_slots(partial, remote, load="ld.shared::cluster")
        if self._arrives_early() and self.exchanges == self.planned_exchanges:
            w.emit(CLUSTER_BARRIER[0])
        return gathered


def default_row_schedule(kernel: Kernel, target: Target, approx: bool) -> RowSchedule:
    """The widest vector the row allows, and threads per row from measurements on H100
    (papers/ptx_suite, schedule sweep over rows of 1024 to 262144 elements):

    - a row longer than 16384 with per-row outputs only (logsumexp) takes CTAs of 256 threads, 256
      bytes of it a thread held in registers, over a cluster of up to 8 (a sweep of these rows:
      papers/ptx_suite, `--sweep-set read_once`); longer rows, one CTA walking it uncached;
    - a row read once is held in static slots, up to 16 vectors (128 elements) a thread; a max
      and a sum of exp(x - max) whose outputs are per row (logsumexp) make one online pass where
      the row is longer than 16384 (65536 with accurate math; shorter rows are faster kept in
      registers for two passes: the online update costs a second exp per element);
    - a row read more than once is kept in registers, 32 elements a thread, by up to 512 threads
      (several short rows a CTA); rows beyond 16384 elements take a cluster of up to 4 such CTAs,
      except that a row of 2-byte values, or one too long for that, is kept in shared memory by
      a cluster whose CTAs hold at most 64 KB of it each (16 CTAs for a float32 row of 262144),
      a row of 2-byte values walked three times or more copied in by cp.async (faster for
      softmax and layernorm in bf16, not for float32 rows or rmsnorm's two walks: papers/ptx_suite,
      `--sweep-set async_copy`);
      beyond what clusters hold (or without clusters) 512 or 1024 threads re-read the row."""
    for vector_bytes in (16, 8, 4, 2):
        try:
            probe = RowReductionLowering(kernel, RowSchedule(vector_bytes=vector_bytes, cache_row=False), target)
        except ScheduleError:
            continue
        length, vector = probe.row_length, probe.vector
        knobs = dict(vector_bytes=vector_bytes, approx_math=approx)
        passes = probe.passes()
        online_from = ONLINE_FROM[approx]
        if passes > 1 and length > online_from and probe.passes() - len(probe.online_pairs()) == 1:
            passes, knobs["online"] = 1, True  # a long row read once by an online pass (logsumexp)
        reduced = _long_row_reduced(probe, knobs, target)
        if reduced is not None:
            return reduced
        if passes == 1:
            per_thread = min(MAX_REGISTER_ELEMENTS, 16 * vector)
            threads = _clamp_threads(-(-length // per_thread), 1024)
            cache = length <= threads * per_thread
            return RowSchedule(**knobs, block_size=max(threads, 256), threads_per_row=threads,  # type: ignore[arg-type]
                               cache_row=cache, unroll=1 if cache else 4)
        threads = _clamp_threads(-(-length // MAX_CACHED_ELEMENTS), 512)
        cluster = next_power_of_two(-(-length // (threads * MAX_CACHED_ELEMENTS)))
        clusters = target.has(Feature.CLUSTERS)
        shared = _shared_row_cluster(probe, target) if clusters and length > 16384 else None
        if shared is not None and (probe.stage_itemsize() < 4 or cluster > 4):
            copied = probe.stage_itemsize() < 4 and passes >= 3 and target.has(Feature.CP_ASYNC)
            return RowSchedule(**knobs, block_size=512, threads_per_row=512, cache_row=False,  # type: ignore[arg-type]
                               shared_row=True, cluster=shared, unroll=2, async_copy=copied)
        if cluster == 1 or (clusters and cluster <= min(4, target.max_cluster_size)):
            return RowSchedule(**knobs, block_size=max(threads, 256), threads_per_row=threads,  # type: ignore[arg-type]
                               cluster=cluster, unroll=1)
        if clusters:
            return RowSchedule(**knobs, block_size=512, threads_per_row=512, cache_row=False,  # type: ignore[arg-type]
                               cluster=min(8, target.max_cluster_size), unroll=4)
        return RowSchedule(**knobs, block_size=1024, threads_per_row=1024, cache_row=False, unroll=4)  # type: ignore[arg-type]
    raise LoweringError(f"kernel {kernel.name}: no vector width fits its rows")


def _long_row_reduced(probe: RowReductionLowering, knobs: dict[str, Any], target: Target) -> RowSchedule | None:
    """A row longer than LONG_ROW with per-row outputs only (logsumexp): CTAs of 256 threads, each
    thread holding LONG_ROW_THREAD_BYTES of the row in registers (at most MAX_REGISTER_ELEMENTS),
    over a cluster of as many as hold the row (at most 8), where the row fills the cluster's
    threads exactly (no load predicated); any other row is walked uncached by one such CTA, or by
    a cluster of as many as give every SM a CTA where rows are fewer than SMs: one wave where rows
    allow. (A cluster of 2 for each of 512 rows of 262,144 floats made 1,024 CTAs, two waves of the
    6 an SM holds, the second less than a third full; one CTA a row is faster:
    papers/logsumexp_launches. Rows of 128,256 held by a cluster of 4 with their loads predicated
    took 151 registers, ptxas keeping every load's values: 2.7 times slower than uncached, two
    vectors a trip: papers/vocab_rows.)"""
    if probe.row_length <= LONG_ROW or probe.outputs_along_row() or not target.has(Feature.CLUSTERS):
        return None
    per_thread = min(MAX_REGISTER_ELEMENTS, LONG_ROW_THREAD_BYTES // max(1, probe.stage_itemsize()))
    cluster = next_power_of_two(-(-probe.row_length // (LONG_ROW_THREADS * per_thread)))
    spread = min(8, target.max_cluster_size, next_power_of_two(-(-target.sm_count // max(1, probe.rows))))
    if cluster <= min(8, target.max_cluster_size):
        cached = RowSchedule(**knobs, block_size=LONG_ROW_THREADS, threads_per_row=LONG_ROW_THREADS, cache_row=True,
                             cluster=cluster, unroll=1)
        if _fills_exactly(probe, cached, target):
            return cached
        return RowSchedule(**knobs, block_size=LONG_ROW_THREADS, threads_per_row=LONG_ROW_THREADS, cache_row=False,
                           cluster=spread, unroll=2)
    return RowSchedule(**knobs, block_size=LONG_ROW_THREADS, threads_per_row=LONG_ROW_THREADS, cache_row=False,
                       cluster=spread, unroll=4)


def _fills_exactly(probe: RowReductionLowering, schedule: RowSchedule, target: Target) -> bool:
    """Whether the schedule's lowering walks every row with no load predicated."""
    try:
        return RowReductionLowering(probe.kernel, schedule, target).exact
    except ScheduleError:
        return False


def _shared_row_cluster(probe: RowReductionLowering, target: Target) -> int | None:
    """The cluster that keeps each CTA's share of the row in shared memory within
    SHARED_ROW_BYTES (room for 3 CTAs an SM), if the target has one that large."""
    row_bytes = probe.row_length * probe.stage_itemsize()
    cluster = max(2, next_power_of_two(-(-row_bytes // SHARED_ROW_BYTES)))
    return cluster if probe.stage_itemsize() and cluster <= target.max_cluster_size else None


def _clamp_threads(wanted: int, most: int) -> int:
    return min(most, max(32, next_power_of_two(wanted)))


def next_power_of_two(n: int) -> int:
    """The least power of two at least n (1 for n < 1)."""
    return 1 << max(0, math.ceil(math.log2(max(1, n))))
