"""Lowering kernels that reduce along their trailing (contiguous) axes: one CTA per row.

The schedule's knobs read here: vector_bytes, block_size (threads per row), ctas_per_sm (0: one
CTA per row; else a grid-stride loop over rows), approx_math and fp32_intermediates.

Each reduction is a phase: the CTA's threads walk the row in vectors, accumulate, and combine
across the block (warp shuffles, then shared memory and barriers); the result is a per-row value
for the phases after it. A last phase computes and stores the outputs. Values are re-read from
memory in each phase (the row is not kept in registers yet)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ir.kernel import Instr, Kernel
from ir.ops import INDEX_REDUCTIONS, REDUCTIONS, Op
from ptxgen.lower import Body, ElementwiseLowering, IndexMap, Lanes, LaunchConfig, LoweringError, _aligned_map
from ptxgen.ptx import f32_literal
from ptxgen.schedule import ElementwiseSchedule, ScheduleError
from ptxgen.targets import Target

WARP = 32
FULL_MASK = "0xffffffff"
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class Combine:
    """How a value reduction starts and how it merges two partial results."""

    identity: float
    instruction: str  # f32 instruction merging two partials


VALUE_COMBINE = {
    Op.SUM: Combine(0.0, "add.rn.f32"),
    Op.MEAN: Combine(0.0, "add.rn.f32"),
    Op.AMAX: Combine(-math.inf, "max.NaN.f32"),
    Op.AMIN: Combine(math.inf, "min.NaN.f32"),
}
INDEX_ORDER = {Op.ARGMAX: ("gt", -math.inf), Op.ARGMIN: ("lt", math.inf)}  # strictly better, start


class RowReductionLowering(ElementwiseLowering):
    def __init__(self, kernel: Kernel, schedule: ElementwiseSchedule, target: Target) -> None:
        super().__init__(kernel, schedule, target)
        self.reductions = [i for i in kernel.body if i.op in REDUCTIONS]
        signatures = {(self.types[i.args[0]].shape, i.attr("axes")) for i in self.reductions}
        if len(signatures) != 1:
            raise LoweringError(f"kernel {kernel.name} reduces over several shapes or axes: {sorted(signatures)}")
        ((shape, axes),) = signatures
        rank = len(shape)
        if shape != self.domain:
            raise LoweringError(f"kernel {kernel.name} reduces a {list(shape)} value inside a "
                                f"{list(self.domain)} domain")
        if axes != tuple(range(rank - len(axes), rank)):
            raise LoweringError(f"kernel {kernel.name} reduces over axes {list(axes)} of a rank-{rank} "
                                "value: reductions over a middle axis are not lowered yet")
        if len(axes) == rank:
            raise LoweringError(f"kernel {kernel.name} reduces to a scalar: reductions to a scalar need a "
                                "two-stage kernel, not lowered yet")
        for instr in self.reductions:
            if not self.types[instr.args[0]].dtype.is_float:
                raise LoweringError(f"{instr.op} of {self.types[instr.args[0]].dtype}: integer reductions "
                                    "are not lowered yet")
        self.row_length = math.prod(shape[rank - len(axes):])
        self.rows = self.numel // self.row_length
        self.warps = schedule.block_size // WARP
        self.row_values: dict[str, Lanes] = {}

    def _all_linear(self) -> bool:
        return False  # vectors must not cross a row: the vector width divides the row

    def value(self, name: str, index: tuple[int | None, ...], ctx: Body) -> Lanes:
        if name in self.row_values:
            return self.row_values[name]
        return super().value(name, index, ctx)

    # -- the kernel ----------------------------------------------------------------------------

    def launch(self) -> LaunchConfig:
        per_sm = self.schedule.ctas_per_sm
        grid = min(self.rows, self.target.sm_count * per_sm) if per_sm else self.rows
        return LaunchConfig((grid, 1, 1), (self.schedule.block_size, 1, 1))

    def render(self) -> str:
        w = self.w
        self._prologue()
        self.shared = "red_smem"
        w.lines.insert(0, f"\t.shared .align 8 .b8 {self.shared}[{self.warps * 8}];")
        self.tid = w.op("b32", "mov.u32 {}, %tid.x")
        self.lane = w.op("b32", "and.b32 {}, {}, 31", self.tid)
        self.warp = w.op("b32", "shr.u32 {}, {}, 5", self.tid)
        self.smem = w.op("b32", f"mov.u32 {{}}, {self.shared}")
        row = w.op("b32", "mov.u32 {}, %ctaid.x")
        step = w.op("b32", "mov.u32 {}, %nctaid.x")
        loop, done = w.label("row"), w.label("done")
        w.place(loop)
        w.emit(f"bra {done}", w.op("pred", f"setp.ge.u32 {{}}, {{}}, {self.rows}", row))
        wide_row = w.op("b64", "cvt.u64.u32 {}, {}", row) if self.wide else row
        self.row_base = self._ix("mul.lo", wide_row, self.row_length)
        for instr in self.reductions:
            self._phase(instr)
        self._columns(lambda ctx: self._store_outputs(ctx))
        w.emit(f"add.u32 {row}, {row}, {step}")
        w.emit(f"bra.uni {loop}")
        w.place(done)
        w.emit("ret")
        return self._module()

    def _columns(self, body: Callable[[Body], None]) -> None:
        """Run `body` for this thread's vectors of the row: columns tid*V, tid*V + B*V, ..."""
        w = self.w
        column = self._ix("mul.lo", self._widen_index(self.tid), self.vector)
        loop, end = w.label("col"), w.label("col_end")
        w.place(loop)
        w.emit(f"bra {end}", w.op("pred", f"setp.ge.{self.itype} {{}}, {{}}, {self.row_length}", column))
        element = self._ix("add", self.row_base, column)
        body(Body(element, self.vector, None))
        w.emit(f"add.{self.itype} {column}, {column}, {self.schedule.block_size * self.vector}")
        w.emit(f"bra {loop}")
        w.place(end)

    def _widen_index(self, reg32: str) -> str:
        return self.w.op("b64", "cvt.u64.u32 {}, {}", reg32) if self.wide else reg32

    def _store_outputs(self, ctx: Body) -> None:
        for param, value in zip(self.kernel.outputs, self.kernel.returns):
            index = self.domain_map(value)
            self._store(param.type, self.base[param.name], self.value(value, index, ctx), index, ctx)

    def domain_map(self, name: str) -> IndexMap:
        """Which domain dim indexes each dim of `name`, from how it was computed: a reduction
        without keepdim drops the reduced dims, so its result is not right-aligned."""
        instr = self.defs.get(name)
        shape = self.types[name].shape
        if instr is None or instr.op == Op.CONST:
            return _aligned_map(shape, tuple(range(len(self.domain))), self.domain)
        if instr.op in REDUCTIONS:
            source = self.domain_map(instr.args[0])
            axes = set(instr.attr("axes"))  # type: ignore[arg-type]
            if instr.attr("keepdim"):
                return tuple(None if d in axes else m for d, m in enumerate(source))
            return tuple(m for d, m in enumerate(source) if d not in axes)
        if instr.op == Op.RESHAPE:
            source = self.domain_map(instr.args[0])
            carried = iter(m for n, m in zip(self.types[instr.args[0]].shape, source) if n != 1)
            return tuple(None if n == 1 else next(carried) for n in shape)
        maps = [(self.types[a].shape, self.domain_map(a)) for a in instr.args]
        result: list[int | None] = []
        for j, size in enumerate(shape):
            from_operands = [m[j - len(shape) + len(s)] for s, m in maps
                             if j - len(shape) + len(s) >= 0 and s[j - len(shape) + len(s)] == size != 1]
            result.append(from_operands[0] if from_operands else None)
        return tuple(result)

    # -- one reduction -------------------------------------------------------------------------

    def _phase(self, instr: Instr) -> None:
        w = self.w
        identity = self._reduction_identity(instr)
        partial = [w.op("f32", "mov.f32 {}, {}", f32_literal(identity[0]))]
        index = [w.op("b32", f"mov.u32 {{}}, {identity[1]}")] if instr.op in INDEX_REDUCTIONS else []

        def accumulate(ctx: Body) -> None:
            lanes = self.value(instr.args[0], tuple(range(len(self.domain))), ctx)
            for k in range(ctx.lanes):
                value = lanes.lane(k)
                if instr.op in INDEX_REDUCTIONS:
                    position = w.op("b32", f"add.u32 {{}}, {{}}, {k}", self._narrow_index(ctx.element))
                    self._merge_pair(instr.op, partial[0], index[0], value, position)
                else:
                    w.emit(f"{VALUE_COMBINE[instr.op].instruction} {partial[0]}, {partial[0]}, {value}")

        self._columns(accumulate)
        if instr.op in INDEX_REDUCTIONS:
            result = self._block_reduce_pair(instr.op, partial[0], index[0])
            self.row_values[instr.result] = Lanes([w.op("b64", "cvt.s64.s32 {}, {}", result)])
            return
        total = self._block_reduce(instr.op, partial[0])
        if instr.op == Op.MEAN:
            total = w.op("f32", "div.rn.f32 {}, {}, {}", total, f32_literal(float(self.row_length)))
        self.row_values[instr.result] = Lanes([self._round(total, self.types[instr.result].dtype)])

    def _reduction_identity(self, instr: Instr) -> tuple[float, int]:
        if instr.op in INDEX_REDUCTIONS:
            return INDEX_ORDER[instr.op][1], INT_MAX
        return VALUE_COMBINE[instr.op].identity, 0

    def _narrow_index(self, element: str) -> str:
        """The column of `element` within its row, as 32 bits (rows are shorter than 2**31)."""
        column = self._ix("sub", element, self.row_base)
        return self.w.op("b32", "cvt.u32.u64 {}, {}", column) if self.wide else column

    def _merge_pair(self, op: Op, value: str, index: str, other: str, other_index: str) -> None:
        """(value, index) := the better of it and (other, other_index); NaN is the best, then
        the strictly better value, then the lower index (PyTorch's argmax/argmin)."""
        w = self.w
        order = INDEX_ORDER[op][0]
        other_nan = w.op("pred", "testp.notanumber.f32 {}, {}", other)
        mine_nan = w.op("pred", "testp.notanumber.f32 {}, {}", value)
        strictly = w.op("pred", f"setp.{order}.f32 {{}}, {{}}, {{}}", other, value)
        equal = w.op("pred", "setp.eq.f32 {}, {}, {}", other, value)
        earlier = w.op("pred", "setp.lt.s32 {}, {}, {}", other_index, index)
        tie = w.op("pred", "and.pred {}, {}, {}", equal, earlier)
        better = w.op("pred", "or.pred {}, {}, {}", strictly, tie)
        both_nan = w.op("pred", "and.pred {}, {}, {}", other_nan, mine_nan)
        nan_tie = w.op("pred", "and.pred {}, {}, {}", both_nan, earlier)
        only_other_nan = w.op("pred", "and.pred {}, {}, {}", other_nan, w.op("pred", "not.pred {}, {}", mine_nan))
        better = w.op("pred", "and.pred {}, {}, {}", better, w.op("pred", "not.pred {}, {}", mine_nan))
        better = w.op("pred", "or.pred {}, {}, {}", better, w.op("pred", "or.pred {}, {}, {}", only_other_nan, nan_tie))
        w.emit(f"selp.f32 {value}, {other}, {value}, {better}")
        w.emit(f"selp.b32 {index}, {other_index}, {index}, {better}")

    # -- across the block ----------------------------------------------------------------------

    def _shuffle(self, value: str, offset: int) -> str:
        return self.w.op("b32" if value.startswith("%r") else "f32",
                         f"shfl.sync.bfly.b32 {{}}, {{}}, {offset}, 31, {FULL_MASK}", value)

    def _warp_reduce(self, op: Op, value: str) -> str:
        instruction = VALUE_COMBINE[op].instruction
        for offset in (16, 8, 4, 2, 1):
            other = self._shuffle(value, offset)
            value = self.w.op("f32", f"{instruction} {{}}, {{}}, {{}}", value, other)
        return value

    def _block_reduce(self, op: Op, partial: str) -> str:
        """Every thread's partial combined; the result in every thread."""
        w = self.w
        value = self._warp_reduce(op, partial)
        slot = w.op("b32", "mad.lo.u32 {}, {}, 8, {}", self.warp, self.smem)
        w.emit(f"st.shared.f32 [{slot}], {value}", w.op("pred", "setp.eq.u32 {}, {}, 0", self.lane))
        w.emit("bar.sync 0")
        mine = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.warps}", self.tid)
        gathered = w.op("f32", "mov.f32 {}, {}", f32_literal(VALUE_COMBINE[op].identity))
        read = w.op("b32", "mad.lo.u32 {}, {}, 8, {}", self.tid, self.smem)
        w.emit(f"ld.shared.f32 {gathered}, [{read}]", mine)
        total = self._warp_reduce(op, gathered)
        w.emit(f"st.shared.f32 [{self.smem}], {total}", w.op("pred", "setp.eq.u32 {}, {}, 0", self.tid))
        w.emit("bar.sync 0")
        result = w.op("f32", "ld.shared.f32 {}, [{}]", self.smem)
        w.emit("bar.sync 0")  # every thread has read it before the next phase writes
        return result

    def _warp_reduce_pair(self, op: Op, value: str, index: str) -> tuple[str, str]:
        w = self.w
        value = w.op("f32", "mov.f32 {}, {}", value)
        index = w.op("b32", "mov.b32 {}, {}", index)
        for offset in (16, 8, 4, 2, 1):
            other = w.op("f32", f"shfl.sync.bfly.b32 {{}}, {{}}, {offset}, 31, {FULL_MASK}", value)
            other_index = w.op("b32", f"shfl.sync.bfly.b32 {{}}, {{}}, {offset}, 31, {FULL_MASK}", index)
            self._merge_pair(op, value, index, other, other_index)
        return value, index

    def _block_reduce_pair(self, op: Op, partial: str, index: str) -> str:
        w = self.w
        value, index = self._warp_reduce_pair(op, partial, index)
        slot = w.op("b32", "mad.lo.u32 {}, {}, 8, {}", self.warp, self.smem)
        first = w.op("pred", "setp.eq.u32 {}, {}, 0", self.lane)
        w.emit(f"st.shared.f32 [{slot}], {value}", first)
        w.emit(f"st.shared.b32 [{slot}+4], {index}", first)
        w.emit("bar.sync 0")
        mine = w.op("pred", f"setp.lt.u32 {{}}, {{}}, {self.warps}", self.tid)
        gathered = w.op("f32", "mov.f32 {}, {}", f32_literal(INDEX_ORDER[op][1]))
        gathered_index = w.op("b32", f"mov.u32 {{}}, {INT_MAX}")
        read = w.op("b32", "mad.lo.u32 {}, {}, 8, {}", self.tid, self.smem)
        w.emit(f"ld.shared.f32 {gathered}, [{read}]", mine)
        w.emit(f"ld.shared.b32 {gathered_index}, [{read}+4]", mine)
        _, best = self._warp_reduce_pair(op, gathered, gathered_index)
        w.emit(f"st.shared.b32 [{self.smem}], {best}", w.op("pred", "setp.eq.u32 {}, {}, 0", self.tid))
        w.emit("bar.sync 0")
        result = w.op("b32", "ld.shared.b32 {}, [{}]", self.smem)
        w.emit("bar.sync 0")
        return result


def default_row_schedule(kernel: Kernel, target: Target, approx: bool) -> ElementwiseSchedule:
    """The widest vector the row allows; threads per row for about four vectors each (64 to 1024)."""
    for vector_bytes in (16, 8, 4, 2):
        try:
            probe = RowReductionLowering(kernel, ElementwiseSchedule(vector_bytes=vector_bytes), target)
        except ScheduleError:
            continue
        vectors = probe.row_length // probe.vector
        block = min(1024, max(64, 1 << max(0, math.ceil(math.log2(max(1, vectors // 4))))))
        return ElementwiseSchedule(vector_bytes=vector_bytes, block_size=block, approx_math=approx)
    raise LoweringError(f"kernel {kernel.name}: no vector width fits its rows")
