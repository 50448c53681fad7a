"""Lowering kernels that reduce every axis to a scalar (a mean loss, a global sum).

One launch, two stages: a grid of `ctas_per_sm` CTAs per SM walks the data (grid-stride,
`unroll` vectors a trip), each thread accumulating a partial; each CTA combines its threads' partials
(shuffles, then shared memory) and writes one partial per reduction to a workspace in the module's
global memory; the CTA that arrives last (an atomic counter, after a release fence) combines the
partials in CTA order, computes the outputs and resets the counter for the next launch. The order
of every combination is fixed by the schedule, so the result does not depend on timing.

The workspace lives in the module, so launches of one loaded module must not overlap (they are
serialized on one stream). Outputs that do not depend on a reduction are stored during the walk;
a reduction whose input depends on another reduction would need a grid-wide barrier and is refused."""

from __future__ import annotations

from collections.abc import Iterator

from ir.kernel import Kernel
from ir.ops import Op
from ptxgen.lower import LIBRARY, Body, Lanes, LaunchConfig, LoweringError
from ptxgen.reduce import INDEX_ORDER, SLOT_BYTES, WARP, Layout, Partial, ReductionLowering
from ptxgen.schedule import ScalarSchedule, ScheduleError
from ptxgen.targets import Target


class ScalarReductionLowering(ReductionLowering):
    layout = Layout.SCALAR
    schedule: ScalarSchedule

    def __init__(self, kernel: Kernel, schedule: ScalarSchedule, target: Target) -> None:
        super().__init__(kernel, schedule, target)
        for instr in self.reductions:
            if self.depends_on_reduction(instr.args[0]):
                raise LoweringError(f"kernel {kernel.name}: {instr.result} reduces a value that depends on "
                                    "another reduction to a scalar; that needs a grid-wide barrier, not lowered")
            if instr.op in INDEX_ORDER and self.numel >= 2**31:
                raise LoweringError(f"kernel {kernel.name}: {instr.op} over {self.numel} elements needs 64-bit "
                                    "positions, not lowered")
        self.vectors = self.numel // self.vector
        per_pass = schedule.block_size * schedule.unroll
        self.grid = max(1, min(target.sm_count * schedule.ctas_per_sm, -(-self.vectors // per_pass)))
        self.walked = {v for v in kernel.returns if not self.depends_on_reduction(v)}
        self.partials_name, self.arrived_name = f"{kernel.name}_partials", f"{kernel.name}_arrived"

    def launch(self) -> LaunchConfig:
        return LaunchConfig((self.grid, 1, 1), (self.schedule.block_size, 1, 1))

    def _module(self) -> str:
        workspace = [f".global .align 8 .b8 {self.partials_name}[{len(self.reductions) * self.grid * SLOT_BYTES}];",
                     f".global .align 4 .u32 {self.arrived_name} = 0;", ""]
        text = super()._module()
        marker = ".address_size 64\n"
        return text.replace(marker, marker + "\n" + "\n".join(workspace), 1)

    def render(self) -> str:
        w = self.w
        self._prologue()
        self.tid = w.op("b32", "mov.u32 {}, %tid.x")
        self.lane = w.op("b32", "and.b32 {}, {}, 31", self.tid)
        self.smem = self._declare_shared("block_partials", (self.schedule.block_size // WARP + 1) * SLOT_BYTES)
        unroll = self.schedule.unroll  # a partial per reduction and unrolled step, merged in order after the walk
        steps = [[self._start(instr) for instr in self.reductions] for _ in range(unroll)]
        for u, body in enumerate(self._walk()):
            for instr, partial in zip(self.reductions, steps[u % unroll]):
                lanes = self.value(instr.args[0], self._identity(), body)
                self._accumulate(partial, lanes, body.lanes, body.position, body.guard)
            self._store_outputs(body, self.walked)
        partials = [self._across_block(self._merge_all([step[r] for step in steps]))
                    for r in range(len(self.reductions))]
        done = w.label("done")
        self._arrive(partials, done)
        for instr, partial in zip(self.reductions, partials):
            total = self._across_block(self._gather_grid(partial, self.reductions.index(instr)))
            self.row_values[instr.result] = Lanes([self._finish(instr, total)])
        first = w.op("pred", "setp.eq.u32 {}, {}, 0", self.tid)
        w.emit(f"st.global.u32 [{self.arrived}], 0", first)  # ready for the next launch
        self._epilogue(first)
        w.place(done)
        w.emit("ret")
        return self._module()

    def _walk(self) -> Iterator[Body]:
        """The grid-stride walk over whole vectors (V divides the innermost size, so there is no tail)."""
        w, unroll = self.w, self.schedule.unroll
        thread, threads = self._thread_index()
        vector = self._ix("mov", thread)
        loop, end = w.label("walk"), w.label("walk_end")
        w.place(loop)
        w.emit(f"bra {end}", w.op("pred", f"setp.ge.{self.itype} {{}}, {{}}, {self.vectors}", vector))
        for u in range(unroll):
            current = vector if u == 0 else self._ix("mad.lo", threads, u, vector)
            guard = None if u == 0 else w.op("pred", f"setp.lt.{self.itype} {{}}, {{}}, {self.vectors}", current)
            element = current if self.vector == 1 else self._ix("mul.lo", current, self.vector)
            position = (w.op("b32", "cvt.u32.u64 {}, {}", element) if self.wide else element) \
                if any(i.op in INDEX_ORDER for i in self.reductions) else None
            yield Body(element, self.vector, guard, position=position)
        stride = threads if unroll == 1 else self._ix("mul.lo", threads, unroll)
        w.emit(f"add.{self.itype} {vector}, {vector}, {stride}")
        w.emit(f"bra {loop}")
        w.place(end)

    def _across_block(self, partial: Partial) -> Partial:
        """Every thread's partial combined across the CTA (warps in order); the result in every thread."""
        w = self.w
        self._group_reduce(partial, WARP)
        warp = w.op("b32", "shr.u32 {}, {}, 5", self.tid)
        slot = w.op("b32", f"mad.lo.u32 {{}}, {{}}, {SLOT_BYTES}, {{}}", warp, self.smem)
        self._store_slot(partial, (slot, 0), w.op("pred", "setp.eq.u32 {}, {}, 0", self.lane))
        w.emit("bar.sync 0")
        combined = self._gather_slots(partial, [(self.smem, k * SLOT_BYTES)
                                                for k in range(self.schedule.block_size // WARP)])
        w.emit("bar.sync 0")
        return combined

    def _arrive(self, partials: list[Partial], done: str) -> None:
        """Thread 0 publishes the CTA's partials, then counts the CTA in; CTAs other than the last leave."""
        w = self.w
        self.workspace = w.op("b64", f"mov.u64 {{}}, {self.partials_name}")
        self.arrived = w.op("b64", f"mov.u64 {{}}, {self.arrived_name}")
        cta = w.op("b32", "mov.u32 {}, %ctaid.x")
        first = w.op("pred", "setp.eq.u32 {}, {}, 0", self.tid)
        for r, partial in enumerate(partials):
            slot = w.op("b64", f"mad.wide.u32 {{}}, {{}}, {SLOT_BYTES}, {{}}",
                        w.op("b32", f"add.u32 {{}}, {{}}, {r * self.grid}", cta), self.workspace)
            self._store_slot(partial, (slot, 0), first, space="global")
        flag = (self.smem, (self.schedule.block_size // WARP) * SLOT_BYTES)
        w.emit("fence.acq_rel.gpu", first)
        count = w.reg("b32")
        w.emit(f"atom.global.add.u32 {count}, [{self.arrived}], 1", first)
        w.emit("fence.acq_rel.gpu", first)
        arrived_last = w.op("pred", f"setp.eq.u32 {{}}, {{}}, {self.grid - 1}", count)
        last = w.op("b32", "selp.u32 {}, 1, 0, {}", arrived_last)
        w.emit(f"st.shared.u32 [{flag[0]}+{flag[1]}], {last}", first)
        w.emit("bar.sync 0")
        is_last = w.op("b32", f"ld.shared.u32 {{}}, [{flag[0]}+{flag[1]}]")
        w.emit(f"bra.uni {done}", w.op("pred", "setp.eq.u32 {}, {}, 0", is_last))

    def _gather_grid(self, like: Partial, reduction: int) -> Partial:
        """In the last CTA: each thread combines the partials of CTAs tid, tid + B, ... in order."""
        w, block = self.w, self.schedule.block_size
        partial = self._fresh(like)
        for k in range(-(-self.grid // block)):
            cta = w.op("b32", f"add.u32 {{}}, {{}}, {k * block}", self.tid)
            inside = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.grid}", cta)
            slot = w.op("b64", f"mad.wide.u32 {{}}, {{}}, {SLOT_BYTES}, {{}}",
                        w.op("b32", f"add.u32 {{}}, {{}}, {reduction * self.grid}", cta), self.workspace)
            other, other_index = self._load_slot(like, (slot, 0), "ld.relaxed.gpu.global", guard=inside)
            self._merge(partial, other, other_index)
        return partial

    def _epilogue(self, first: str) -> None:
        """The outputs that depend on the reductions, computed and stored by thread 0."""
        zero = self._ix("mov", 0)
        body = Body(zero, 1, first)
        body.coords.update({d: zero for d in range(len(self.domain))})
        self._store_outputs(body, set(self.kernel.returns) - self.walked)


# Ops whose accurate formulas are long enough that four vectors of them in flight a thread take
# 76 registers (kl_div's log): one CTA of 512 an SM where two were meant. One vector a trip keeps
# 32, and is faster on an H100 (papers/scalar_unroll). It costs kl_div's proof its memory
# obligations: the symbolic execution of four times the trips passes its 20 s (papers/proofs).
HEAVY_FORMULAS = LIBRARY - {Op.DIV, Op.RSQRT, Op.EXP2, Op.SIN, Op.COS}  # sin, cos: approximate forms only


def default_scalar_schedule(kernel: Kernel, target: Target, approx: bool) -> ScalarSchedule:
    """The widest vector the innermost size allows; four vectors a trip, one where an accurate
    library formula is computed for every element (HEAVY_FORMULAS)."""
    heavy = not approx and any(instr.op in HEAVY_FORMULAS for instr in kernel.body)
    for vector_bytes in (16, 8, 4, 2):
        try:
            ScalarReductionLowering(kernel, ScalarSchedule(vector_bytes=vector_bytes), target)
        except ScheduleError:
            continue
        return ScalarSchedule(vector_bytes=vector_bytes, approx_math=approx, unroll=1 if heavy else 4)
    raise LoweringError(f"kernel {kernel.name}: no vector width fits its innermost size")
