"""What every reduction lowering shares: which layout a kernel's reductions have, partial results
and how two of them merge, warp shuffles, shared-memory exchanges, and the map from the iteration
domain to each value's dims.

A kernel's reductions all reduce values of one shape over one contiguous run of axes; the shape
seen as [outer, R, inner] picks the layout:

- row (inner = 1): threads walk a row along the contiguous axis (`ptxgen.rows`);
- column (inner > 1, a middle axis): threads run along the inner axis and walk R (`ptxgen.columns`);
- scalar (every axis): a grid walks everything and the last CTA combines the partials
  (`ptxgen.scalar`).

Each reduction is a phase: accumulate a partial per thread, combine across threads, and make the
result a per-row value for the phases after it; a last phase computes and stores the outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from ir.dtypes import DType
from ir.kernel import Instr, Kernel
from ir.ops import REDUCTIONS, Op
from ptxgen import mathlib
from ptxgen.lower import (
    REGISTER_KIND,
    Body,
    ElementwiseLowering,
    IndexMap,
    Lanes,
    LoweringError,
    _aligned_map,
    _reshape_map,
)
from ptxgen.ptx import f32_literal
from ptxgen.schedule import Schedule, ScheduleError
from ptxgen.targets import Target

WARP = 32
FULL_MASK = "0xffffffff"
INT_MAX = 2**31 - 1
SLOT_BYTES = 8  # one partial in shared or global memory: a value and, for arg reductions, its index


class Layout(Enum):
    ROW = "row"
    COLUMN = "column"
    SCALAR = "scalar"


@dataclass(frozen=True)
class ReductionShape:
    """The reduced values' shape seen as [outer, length, inner]."""

    layout: Layout
    shape: tuple[int, ...]
    axes: tuple[int, ...]
    outer: int
    length: int
    inner: int


def reduction_shape(kernel: Kernel) -> ReductionShape | None:
    """The layout of the kernel's reductions (None: it has none); a clear error where they differ
    in shape or axes, or reduce axes that are not one contiguous run."""
    types = kernel.types()
    reductions = [i for i in kernel.body if i.op in REDUCTIONS]
    if not reductions:
        return None
    signatures = {(types[i.args[0]].shape, i.attr("axes")) for i in reductions}
    if len(signatures) != 1:
        raise LoweringError(f"kernel {kernel.name} reduces over several shapes or axes: {sorted(signatures)}")
    ((shape, axes),) = signatures
    axes = tuple(sorted(axes))  # type: ignore[arg-type]
    if not axes:
        raise LoweringError(f"kernel {kernel.name} reduces over no axis (a copy, not a reduction)")
    if axes != tuple(range(axes[0], axes[-1] + 1)):
        raise LoweringError(f"kernel {kernel.name} reduces over axes {list(axes)}, which are not contiguous")
    outer, length, inner = (math.prod(shape[:axes[0]]), math.prod(shape[axes[0]:axes[-1] + 1]),
                            math.prod(shape[axes[-1] + 1:]))
    layout = Layout.SCALAR if outer == inner == 1 else Layout.ROW if inner == 1 else Layout.COLUMN
    return ReductionShape(layout, shape, axes, outer, length, inner)


@dataclass(frozen=True)
class Combine:
    """How a value reduction starts and how it merges two partial results, per register kind."""

    identity: str  # PTX literal
    instruction: str  # merges two partials


COMBINE = {
    (Op.SUM, "f32"): Combine(f32_literal(0.0), "add.rn.f32"),
    (Op.MEAN, "f32"): Combine(f32_literal(0.0), "add.rn.f32"),
    (Op.AMAX, "f32"): Combine(f32_literal(-math.inf), "max.NaN.f32"),
    (Op.AMIN, "f32"): Combine(f32_literal(math.inf), "min.NaN.f32"),
    (Op.SUM, "b32"): Combine("0", "add.s32"),
    (Op.SUM, "b64"): Combine("0", "add.s64"),
    (Op.AMAX, "b32"): Combine(str(-2**31), "max.s32"),
    (Op.AMAX, "b64"): Combine(str(-2**63), "max.s64"),
    (Op.AMIN, "b32"): Combine(str(2**31 - 1), "min.s32"),
    (Op.AMIN, "b64"): Combine(str(2**63 - 1), "min.s64"),
}
INDEX_ORDER = {Op.ARGMAX: ("gt", -math.inf), Op.ARGMIN: ("lt", math.inf)}  # strictly better, start
MOVE = {"f32": "mov.f32", "b32": "mov.b32", "b64": "mov.b64"}
SHARED_TYPE = {"f32": "f32", "b32": "b32", "b64": "b64"}


@dataclass
class Partial:
    """One thread's partial result of a reduction: a value and, for arg reductions, its index
    (the position along the reduced extent, 32 bits); for an online softmax pair (`online`), the
    running maximum and the sum of exp(x - maximum)."""

    op: Op
    kind: str  # register kind of the value
    value: str
    index: str | None = None
    online: bool = False

    @property
    def second_kind(self) -> str:
        return "f32" if self.online else "b32"


class ReductionLowering(ElementwiseLowering):
    """The common part of the row, column and scalar lowerings."""

    layout: Layout

    def __init__(self, kernel: Kernel, schedule: Schedule, target: Target) -> None:
        super().__init__(kernel, schedule, target)  # type: ignore[arg-type]
        self.reductions = [i for i in kernel.body if i.op in REDUCTIONS]
        found = reduction_shape(kernel)
        assert found is not None
        self.reduced = found
        if found.layout != self.layout:
            raise ScheduleError(f"kernel {kernel.name} is a {found.layout.value} reduction, not a "
                                f"{self.layout.value} reduction")
        if not schedule.fits(target):
            raise ScheduleError(f"{schedule} does not fit {target.name}")
        if found.shape != self.domain:
            raise LoweringError(f"kernel {kernel.name} reduces a {list(found.shape)} value inside a "
                                f"{list(self.domain)} domain")
        for instr in self.reductions:
            dtype = self.types[instr.args[0]].dtype
            if (instr.op, REGISTER_KIND[dtype]) not in COMBINE and not (instr.op in INDEX_ORDER and dtype.is_float):
                raise LoweringError(f"{instr.op} of {dtype} is not lowered (float reductions, and sum, amax "
                                    "and amin of integers are)")
        self.row_values: dict[str, Lanes] = {}
        self.shared_arrays: list[str] = []

    def _vector_width(self) -> int:
        """Elements per vector from the widest type among values that run along the innermost
        axis (per-row results, such as an argmax's i64, do not narrow the loads of the row)."""
        if not self.domain:
            return 1
        last = len(self.domain) - 1
        along = [self.types[n].dtype.itemsize for n in self.types if any(last in m for m in self.maps_of(n))]
        vector = max(1, self.schedule.vector_bytes // max(along, default=1))
        if vector > 1 and self.domain[-1] % vector:
            raise ScheduleError(f"vector of {vector} elements does not divide the innermost size {self.domain[-1]}")
        return vector

    def _all_linear(self) -> bool:
        return False  # vectors must not cross a reduced extent: the vector width divides the innermost size

    def value(self, name: str, index: IndexMap, ctx: Body) -> Lanes:
        if name in self.row_values:
            return self.row_values[name]
        return super().value(name, index, ctx)

    def _directives(self) -> list[str]:
        return [f".reqntid {self.schedule.block_size}, 1, 1"]  # thread indexing assumes the whole block

    def _widen_index(self, reg32: str) -> str:
        """A 32-bit index register in index width."""
        return self.w.op("b64", "cvt.u64.u32 {}, {}", reg32) if self.wide else reg32

    def _declare_shared(self, name: str, size: int) -> str:
        self.shared_arrays.append(f"\t.shared .align 8 .b8 {name}[{max(size, SLOT_BYTES)}];")
        return self.w.op("b32", f"mov.u32 {{}}, {name}")

    def _module(self) -> str:
        self.w.lines[0:0] = self.shared_arrays
        return super()._module()

    # -- outputs -------------------------------------------------------------------------------

    def _store_outputs(self, ctx: Body, which: set[str] | None = None) -> None:
        for param, value in zip(self.kernel.outputs, self.kernel.returns):
            if which is None or value in which:
                index = self.domain_map(value)
                self._store(param.type, self.base[param.name], self.value(value, index, ctx), index, ctx)

    def domain_map(self, name: str) -> IndexMap:
        """Which domain dim indexes each dim of `name`: see `_value_maps`."""
        return self._value_maps[name]

    def maps_of(self, name: str) -> list[IndexMap]:
        """The domain maps `name` is read or written at: a computed value's own; an input's or a
        constant's, those its readers give it (one input may be read at several)."""
        if name in self.defs and self.defs[name].op != Op.CONST:
            return [self.domain_map(name)]
        maps = [self._operand_map(name, instr, self._value_maps) for instr in self.kernel.body if name in instr.args]
        returned = [self.domain_map(name)] if name in self.kernel.returns else []
        return maps + returned or [self.domain_map(name)]

    def _operand_map(self, name: str, reader: Instr, maps: dict[str, IndexMap]) -> IndexMap:
        shape, result = self.types[name].shape, self.types[reader.result].shape
        if reader.op in REDUCTIONS:
            return tuple(range(len(self.domain)))  # a reduced operand spans the domain
        if reader.op == Op.RESHAPE:
            return _reshape_map(shape, result, maps[reader.result])
        return _aligned_map(shape, maps[reader.result], result)

    @cached_property
    def _value_maps(self) -> dict[str, IndexMap]:
        """Each value's domain map. A reduction fixes its result's (without keepdim it drops the
        reduced dims, so the result is not right-aligned); fixed maps flow to the values computed
        from it and back to the operands they are computed from, since the IR indexes an op's
        operands alike: a per-row target beside a per-row loss, both of shape [rows], is read by
        row. What nothing fixes is right-aligned to the domain (numpy broadcasting)."""
        everything = tuple(range(len(self.domain)))
        maps = {name: _aligned_map(t.shape, everything, self.domain) for name, t in self.types.items()}
        fixed: set[str] = set()
        while True:
            known = len(fixed)
            for instr in self.kernel.body:
                if instr.result not in fixed and self._place_from_operands(instr, maps, fixed):
                    fixed.add(instr.result)
            for instr in reversed(self.kernel.body):
                if instr.result in fixed and instr.op not in REDUCTIONS:
                    for operand in set(instr.args) - fixed:
                        maps[operand] = self._operand_map(operand, instr, maps)
                        fixed.add(operand)
            if len(fixed) == known:
                return maps

    def _place_from_operands(self, instr: Instr, maps: dict[str, IndexMap], fixed: set[str]) -> bool:
        """Set `instr`'s result map from its operands'; whether that fixes it."""
        shape = self.types[instr.result].shape
        if instr.op == Op.CONST:
            return False
        if instr.op in REDUCTIONS:
            axes = set(instr.attr("axes"))  # type: ignore[arg-type]
            source = maps[instr.args[0]]
            kept = [None if d in axes else m for d, m in enumerate(source)]
            maps[instr.result] = tuple(kept) if instr.attr("keepdim") else tuple(m for d, m in enumerate(source)
                                                                                   if d not in axes)
            return True
        if instr.op == Op.RESHAPE:  # the non-unit dims correspond in order, read the other way
            source = instr.args[0]
            maps[instr.result] = _reshape_map(shape, self.types[source].shape, maps[source])
            return source in fixed
        operands = sorted(instr.args, key=lambda a: a not in fixed)  # fixed maps first
        result: list[int | None] = []
        for j, size in enumerate(shape):
            from_operands = [maps[a][j - len(shape) + len(s)] for a in operands for s in [self.types[a].shape]
                             if j - len(shape) + len(s) >= 0 and s[j - len(shape) + len(s)] == size != 1]
            result.append(from_operands[0] if from_operands else None)
        maps[instr.result] = tuple(result)
        return any(a in fixed for a in instr.args)

    def online_pairs(self) -> dict[str, tuple[Instr, str]]:
        """Softmax-shaped pairs an online pass can compute together: amax(X) = A and
        sum(exp(sub(X, S))) where S is computed from A and constants alone (A itself, or A with
        infinities replaced), both in float32 (no rounding between them). Maps the amax's result
        to (the sum, S)."""
        pairs: dict[str, tuple[Instr, str]] = {}
        for first in (i for i in self.reductions if i.op == Op.AMAX):
            for second in (i for i in self.reductions if i.op == Op.SUM):
                exp = self.defs.get(second.args[0])
                sub = self.defs.get(exp.args[0]) if exp is not None and exp.op == Op.EXP else None
                if sub is None or sub.op != Op.SUB or sub.args[0] != first.args[0]:
                    continue
                floats = {self.types[n].dtype for n in (first.args[0], sub.result, exp.result)}  # type: ignore[union-attr]
                if floats == {DType.F32} and self._computed_from(sub.args[1], first.result):
                    pairs[first.result] = (second, sub.args[1])
        return pairs

    def _computed_from(self, name: str, source: str) -> bool:
        """`name` is `source`, or computed from it and constants only."""
        if name == source:
            return True
        instr = self.defs.get(name)
        if instr is None or instr.op in REDUCTIONS:
            return False
        return instr.op == Op.CONST or all(self._computed_from(a, source) for a in instr.args)

    def depends_on_reduction(self, name: str) -> bool:
        instr = self.defs.get(name)
        if instr is None:
            return False
        return instr.op in REDUCTIONS or any(self.depends_on_reduction(a) for a in instr.args)

    # -- partials ------------------------------------------------------------------------------

    def _start(self, instr: Instr) -> Partial:
        kind = REGISTER_KIND[self.types[instr.args[0]].dtype]
        if instr.op in INDEX_ORDER:
            value = self.w.op("f32", "mov.f32 {}, {}", f32_literal(INDEX_ORDER[instr.op][1]))
            return Partial(instr.op, "f32", value, self.w.op("b32", f"mov.u32 {{}}, {INT_MAX}"))
        return Partial(instr.op, kind, self.w.op(kind, f"{MOVE[kind]} {{}}, {COMBINE[(instr.op, kind)].identity}"))

    def _fresh(self, like: Partial) -> Partial:
        """A partial at the identity of `like`'s reduction."""
        if like.online:
            return self._start_online(like.op)
        if like.index is not None:
            value = self.w.op("f32", "mov.f32 {}, {}", f32_literal(INDEX_ORDER[like.op][1]))
            return Partial(like.op, "f32", value, self.w.op("b32", f"mov.u32 {{}}, {INT_MAX}"))
        identity = COMBINE[(like.op, like.kind)].identity
        return Partial(like.op, like.kind, self.w.op(like.kind, f"{MOVE[like.kind]} {{}}, {identity}"))

    def _merge(self, partial: Partial, value: str, index: str | None, guard: str | None = None) -> None:
        """partial := partial merged with (value, index), where `guard` holds."""
        if partial.online:
            assert index is not None and guard is None
            self._merge_online(partial, value, index)
            return
        if partial.index is None:
            instruction = COMBINE[(partial.op, partial.kind)].instruction
            self.w.emit(f"{instruction} {partial.value}, {partial.value}, {value}", guard)
            return
        assert index is not None
        self._merge_pair(partial, value, index, guard)

    def _merge_pair(self, partial: Partial, other: str, other_index: str, guard: str | None) -> None:
        """The better of the pair and (other, other_index); NaN is the best, then the strictly
        better value, then the lower index (PyTorch's argmax/argmin)."""
        w, value, index = self.w, partial.value, partial.index
        order = INDEX_ORDER[partial.op][0]
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
        if guard is not None:
            better = w.op("pred", "and.pred {}, {}, {}", better, guard)
        w.emit(f"selp.f32 {value}, {other}, {value}, {better}")
        w.emit(f"selp.b32 {index}, {other_index}, {index}, {better}")

    def _accumulate(self, partial: Partial, lanes: Lanes, count: int, position: str | None,
                    guard: str | None) -> None:
        """Merge `count` lanes of a value into the partial; lane k sits at `position` + k along
        the reduced extent (arg reductions only). A thread visits its positions in increasing
        order, so an arg reduction keeps its pair unless the new value is strictly better, or NaN
        where the kept one is not (the first NaN, then the first best value, wins)."""
        for k in range(count):
            if partial.online:
                self._step_online(partial, lanes.lane(k), guard)
                continue
            if partial.index is None:
                self._merge(partial, lanes.lane(k), None, guard)
                continue
            assert position is not None
            index = position if k == 0 else self.w.op("b32", f"add.u32 {{}}, {{}}, {k}", position)
            self._step_pair(partial, lanes.lane(k), index, guard)

    def _step_pair(self, partial: Partial, value: str, index: str, guard: str | None) -> None:
        w, order = self.w, INDEX_ORDER[partial.op][0]
        kept_is_number = w.op("pred", "setp.num.f32 {}, {}, {}", partial.value, partial.value)
        better = w.op("pred", f"setp.{order}u.and.f32 {{}}, {{}}, {{}}, {{}}", value, partial.value, kept_is_number)
        if guard is not None:
            better = w.op("pred", "and.pred {}, {}, {}", better, guard)
        w.emit(f"selp.f32 {partial.value}, {value}, {partial.value}, {better}")
        w.emit(f"selp.b32 {partial.index}, {index}, {partial.index}, {better}")

    # -- online softmax: a maximum and a sum of exp(x - maximum) in one pass ---------------------

    def _start_online(self, op: Op) -> Partial:
        running_max = self.w.op("f32", "mov.f32 {}, {}", f32_literal(-math.inf))
        return Partial(op, "f32", running_max, self.w.op("f32", "mov.f32 {}, {}", f32_literal(0.0)), online=True)

    def _exp(self, x: str) -> str:
        formula = mathlib.recipe("exp", self.schedule.approx_math)
        assert formula is not None
        return formula(mathlib.PtxMath(self.w), x)  # type: ignore[return-value]

    def _rescale(self, old_max: str, new_max: str) -> str:
        """exp(old_max - new_max), and 1 where they are equal (so that -inf, -inf gives 1, not NaN)."""
        w = self.w
        same = w.op("pred", "setp.eq.f32 {}, {}, {}", old_max, new_max)
        return w.op("f32", f"selp.f32 {{}}, {f32_literal(1.0)}, {{}}, {{}}", self._exp(w.sub(old_max, new_max)), same)

    def _merge_online(self, partial: Partial, other_max: str, other_sum: str) -> None:
        w = self.w
        new_max = w.op("f32", "max.NaN.f32 {}, {}, {}", partial.value, other_max)
        mine, theirs = self._rescale(partial.value, new_max), self._rescale(other_max, new_max)
        w.emit(f"fma.rn.f32 {partial.index}, {partial.index}, {mine}, {w.mul(other_sum, theirs)}")
        w.emit(f"mov.f32 {partial.value}, {new_max}")

    def _step_online(self, partial: Partial, x: str, guard: str | None) -> None:
        """One element into the running pair with a single exp: exp(-|x - max|) either rescales
        the sum (x is the new maximum) or is added to it."""
        w = self.w
        high = w.op("f32", "max.NaN.f32 {}, {}, {}", partial.value, x)
        low = w.op("f32", "min.NaN.f32 {}, {}, {}", partial.value, x)
        term = self._rescale(low, high)
        rises = w.op("pred", "setp.gt.f32 {}, {}, {}", x, partial.value)
        rescaled = w.op("f32", f"fma.rn.f32 {{}}, {{}}, {{}}, {f32_literal(1.0)}", partial.index, term)
        added = w.add(partial.index, term)
        w.emit(f"selp.f32 {partial.index}, {rescaled}, {added}, {rises}", guard)
        w.emit(f"mov.f32 {partial.value}, {high}", guard)

    def _merge_all(self, partials: list[Partial]) -> Partial:
        """Partials of one reduction kept apart for accuracy (one per unrolled step), merged in order."""
        for other in partials[1:]:
            self._merge(partials[0], other.value, other.index)
        return partials[0]

    def _finish(self, instr: Instr, partial: Partial) -> str:
        """The reduction's result from the fully combined partial, in the result's register kind."""
        if partial.index is not None:
            # No element beat the start (every one is -inf for argmax, +inf for argmin, none NaN):
            # the first is the answer, as PyTorch gives, not the start's index.
            none_better = self.w.op("pred", f"setp.eq.s32 {{}}, {{}}, {INT_MAX}", partial.index)
            first = self.w.op("b32", "selp.b32 {}, 0, {}, {}", partial.index, none_better)
            return self.w.op("b64", "cvt.s64.s32 {}, {}", first)
        value = partial.value
        if instr.op == Op.MEAN:  # times 1/n, as PyTorch's mean does (no division's slow path)
            value = self.w.op("f32", "mul.rn.f32 {}, {}, {}", value, f32_literal(1.0 / self.reduced.length))
        if partial.kind == "f32":
            return self._round(value, self.types[instr.result].dtype)
        return value

    # -- across threads ------------------------------------------------------------------------

    def _shuffle(self, value: str, kind: str, offset: int) -> str:
        w = self.w
        if kind != "b64":
            return w.op(kind, f"shfl.sync.bfly.b32 {{}}, {{}}, {offset}, 31, {FULL_MASK}", value)
        low, high = w.reg("b32"), w.reg("b32")
        w.emit(f"mov.b64 {{{low}, {high}}}, {value}")
        halves = [w.op("b32", f"shfl.sync.bfly.b32 {{}}, {{}}, {offset}, 31, {FULL_MASK}", h) for h in (low, high)]
        return w.op("b64", "mov.b64 {}, {{{}, {}}}", *halves)

    def _group_reduce(self, partial: Partial, width: int) -> None:
        """Combine the partials of each aligned group of `width` lanes (a power of two up to 32):
        butterfly shuffles, so every lane of the group ends with the group's result."""
        offset = width // 2
        while offset >= 1:
            other = self._shuffle(partial.value, partial.kind, offset)
            other_index = None if partial.index is None else self._shuffle(partial.index, partial.second_kind, offset)
            self._merge(partial, other, other_index)
            offset //= 2

    def _store_slot(self, partial: Partial, slot: tuple[str, int], guard: str | None, space: str = "shared") -> None:
        """Write the partial to the slot at (address register, byte offset)."""
        address, offset = slot
        self.w.emit(f"st.{space}.{SHARED_TYPE[partial.kind]} [{address}+{offset}], {partial.value}", guard)
        if partial.index is not None:
            self.w.emit(f"st.{space}.{partial.second_kind} [{address}+{offset + 4}], {partial.index}", guard)

    def _load_slot(self, like: Partial, slot: tuple[str, int], load: str = "ld.shared",
                   guard: str | None = None) -> tuple[str, str | None]:
        address, offset = slot
        if guard is not None:  # slots past the last read as the identity
            fresh = self._fresh(like)
            self.w.emit(f"{load}.{SHARED_TYPE[like.kind]} {fresh.value}, [{address}+{offset}]", guard)
            if fresh.index is not None:
                self.w.emit(f"{load}.{like.second_kind} {fresh.index}, [{address}+{offset + 4}]", guard)
            return fresh.value, fresh.index
        value = self.w.op(like.kind, f"{load}.{SHARED_TYPE[like.kind]} {{}}, [{address}+{offset}]")
        second = like.second_kind
        index = None if like.index is None else self.w.op(second, f"{load}.{second} {{}}, [{address}+{offset + 4}]")
        return value, index

    def _gather_slots(self, like: Partial, slots: list[tuple[str, int]], load: str = "ld.shared") -> Partial:
        """A partial combining the slots, in the order given (deterministic)."""
        partial = self._fresh(like)
        for slot in slots:
            other, other_index = self._load_slot(like, slot, load)
            self._merge(partial, other, other_index)
        return partial
