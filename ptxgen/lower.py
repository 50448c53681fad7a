"""IR kernel + schedule + target -> PTX text.

Kernels with no reduction are lowered here: every value is computed per element of the kernel's
iteration domain (the broadcast of all its shapes), `V` consecutive elements per thread at a time,
with 16-byte vector loads and stores where the layout allows, a grid-stride loop, predicated
tails, and 64-bit addresses. Broadcasting and unit-dimension reshapes become index maps: each
value is evaluated under a map from domain coordinates to its own coordinates."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ir.dtypes import HALF_FLOATS, DType
from ir.kernel import NON_FINITE, Instr, Kernel, TensorType, constant_value
from ir.ops import ELEMENTWISE, MOVEMENT, REDUCTIONS, Op
from ir.typecheck import broadcast_shapes
from ptxgen import mathlib
from ptxgen.ptx import PtxWriter, f32_literal
from ptxgen.schedule import ElementwiseSchedule, Schedule, ScheduleError
from ptxgen.targets import Target

# For each dim of a value: the domain dim that indexes it, or None (a size-1 dim: index 0).
IndexMap = tuple[int | None, ...]


class LoweringError(ValueError):
    """A kernel, dtype or schedule that this lowering does not handle; the message says which."""


@dataclass(frozen=True)
class LaunchConfig:
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int = 0
    cluster: tuple[int, int, int] = (1, 1, 1)  # CTAs per thread-block cluster (fixed in the PTX)


@dataclass(frozen=True)
class LoweredKernel:
    """PTX for one kernel and how to launch it. Parameters: the kernel's inputs then outputs,
    each a 64-bit global address."""

    name: str
    ptx: str
    launch: LaunchConfig
    target: str
    schedule: Schedule
    params: tuple[str, ...] = field(default=())


# How each dtype lives in registers and memory: register kind, load/store type, bytes.
REGISTER_KIND = {DType.F32: "f32", DType.BF16: "f32", DType.F16: "f32", DType.I32: "b32",
                 DType.I64: "b64", DType.BOOL: "pred"}
INT_TYPE = {DType.I32: "s32", DType.I64: "s64"}
ROUNDING = {DType.BF16: ("cvt.rn.bf16.f32", "cvt.f32.bf16"), DType.F16: ("cvt.rn.f16.f32", "cvt.f32.f16")}

F32_BINARY = {
    Op.ADD: "add.rn.f32", Op.SUB: "sub.rn.f32", Op.MUL: "mul.rn.f32",
    Op.MAXIMUM: "max.NaN.f32", Op.MINIMUM: "min.NaN.f32",
}
F32_UNARY = {
    Op.NEG: "neg.f32", Op.ABS: "abs.f32", Op.SQRT: "sqrt.rn.f32", Op.RECIP: "rcp.rn.f32",
    Op.FLOOR: "cvt.rmi.f32.f32", Op.CEIL: "cvt.rpi.f32.f32", Op.TRUNC: "cvt.rzi.f32.f32",
    Op.ROUND: "cvt.rni.f32.f32",
}
INT_BINARY = {Op.ADD: "add", Op.SUB: "sub", Op.MUL: "mul.lo", Op.MAXIMUM: "max", Op.MINIMUM: "min"}
INT_UNARY = {Op.NEG: "neg", Op.ABS: "abs"}
COMPARE = {Op.EQ: "eq", Op.NE: "neu", Op.LT: "lt", Op.LE: "le", Op.GT: "gt", Op.GE: "ge"}
INT_COMPARE = {Op.EQ: "eq", Op.NE: "ne", Op.LT: "lt", Op.LE: "le", Op.GT: "gt", Op.GE: "ge"}
PRED_LOGIC = {Op.AND: "and.pred", Op.OR: "or.pred"}
# Ops computed by ptxgen.mathlib's formulas (sin and cos have only approximate ones).
LIBRARY = {Op.EXP, Op.LOG, Op.LOG1P, Op.EXPM1, Op.TANH, Op.SIGMOID, Op.ERF, Op.LOG2, Op.RSQRT, Op.EXP2, Op.SIN,
           Op.COS, Op.DIV}


def iteration_domain(kernel: Kernel) -> tuple[int, ...]:
    """The elements the kernel iterates over: the shape of the values it reduces, or, with no
    reduction, the broadcast of its outputs' shapes. Every other value is reached from these
    through index maps, so values whose dims a reshape moves (an unsqueeze, a view of a
    parameter) do not widen the domain, and reduced outputs are not mistaken for rows."""
    types = kernel.types()
    shapes = [types[i.args[0]].shape for i in kernel.body if i.op in REDUCTIONS]
    shapes = shapes or [p.type.shape for p in kernel.outputs]
    domain = broadcast_shapes(*shapes)
    if domain is None:
        raise LoweringError(f"kernel {kernel.name}: its outputs and reduced values do not broadcast to one "
                            f"domain: {sorted(set(shapes))}")
    return domain


def _aligned_map(shape: tuple[int, ...], outer: IndexMap, outer_shape: tuple[int, ...]) -> IndexMap:
    """Map of an operand broadcast (numpy rules) into a value of `outer_shape` with map `outer`."""
    offset = len(outer_shape) - len(shape)
    return tuple(None if n == 1 else outer[j + offset] for j, n in enumerate(shape))


def _reshape_map(source: tuple[int, ...], result: tuple[int, ...], outer: IndexMap) -> IndexMap:
    """Unit-dimension reshapes only: the non-unit dims correspond in order."""
    carried = iter(m for n, m in zip(result, outer) if n != 1)
    return tuple(None if n == 1 else next(carried) for n in source)


@dataclass
class Lanes:
    """A value at the V elements a thread handles: one register, or one per lane."""

    regs: list[str]

    def lane(self, k: int) -> str:
        return self.regs[k] if len(self.regs) > 1 else self.regs[0]


class ElementwiseLowering:
    def __init__(self, kernel: Kernel, schedule: Schedule, target: Target) -> None:
        self.kernel, self.schedule, self.target = kernel, schedule, target
        self.domain = iteration_domain(kernel)
        self.numel = math.prod(self.domain)
        self.defs = {i.result: i for i in kernel.body}
        self.types: dict[str, TensorType] = kernel.types()
        self.params = [p.name for p in kernel.inputs] + [p.name for p in kernel.outputs]
        self.w = PtxWriter()
        self.vector = self._vector_width()
        self.wide = self.numel >= 2**31  # index arithmetic in 64 bits
        self.itype = "u64" if self.wide else "u32"
        self.ikind = "b64" if self.wide else "b32"
        self.uniform: dict[tuple[str, IndexMap], Lanes] = {}

    # -- analysis ---------------------------------------------------------------------------

    def _vector_width(self) -> int:
        widest = max(t.dtype.itemsize for t in self.types.values())
        vector = max(1, self.schedule.vector_bytes // widest)
        inner = self.domain[-1] if self.domain else 1
        if vector > 1 and not self._all_linear() and inner % vector:
            raise ScheduleError(f"vector of {vector} elements does not divide the innermost size {inner}")
        return vector

    def _identity(self) -> IndexMap:
        return tuple(range(len(self.domain)))

    def _all_linear(self) -> bool:
        """Every input and output covers the whole domain, so elements are a flat range."""
        full = [p.type.shape for p in self.kernel.inputs + self.kernel.outputs]
        return all(s == self.domain for s in full) and not any(i.op in MOVEMENT for i in self.kernel.body)

    # -- indices and addresses ---------------------------------------------------------------

    def _ix(self, op: str, *operands: str | int) -> str:
        """An integer instruction in index width (`op.u32` or `op.u64`) on registers and immediates."""
        return self.w.op(self.ikind, f"{op}.{self.itype} {{}}, " + ", ".join(str(o) for o in operands))

    def _coordinate(self, element: str, dim: int, cache: dict[int, str]) -> str:
        if dim not in cache:
            inner = math.prod(self.domain[dim + 1:])
            quotient = element if inner == 1 else self._ix("div", element, inner)
            cache[dim] = quotient if dim == 0 else self._ix("rem", quotient, self.domain[dim])
        return cache[dim]

    def _offset(self, shape: tuple[int, ...], index: IndexMap, element: str, coords: dict[int, str]) -> str | None:
        """Element offset of lane 0 in a tensor of `shape` read through `index` (None: offset 0)."""
        if index == self._identity() and shape == self.domain:
            return element
        strides = [math.prod(shape[j + 1:]) for j in range(len(shape))]
        terms = [(self._coordinate(element, d, coords), s) for d, s in zip(index, strides) if d is not None]
        offset = None
        for coordinate, stride in terms:
            scaled = coordinate if stride == 1 else self._ix("mul.lo", coordinate, stride)
            offset = scaled if offset is None else self._ix("add", offset, scaled)
        return offset

    def _address(self, base: str, offset: str | None, itemsize: int) -> str:
        if offset is None:
            return base
        multiply = "mad.lo.u64" if self.wide else "mad.wide.u32"
        return self.w.op("b64", f"{multiply} {{}}, {{}}, {itemsize}, {{}}", offset, base)

    # -- loads and stores ---------------------------------------------------------------------

    def _varies_by_lane(self, index: IndexMap) -> bool:
        return bool(self.domain) and (len(self.domain) - 1) in index

    def _load(self, name: str, index: IndexMap, ctx: "Body") -> Lanes:
        type_ = self.types[name]
        offset = self._offset(type_.shape, index, ctx.element, ctx.coords)
        address = self._address(self.base[name], offset, type_.dtype.itemsize)
        lanes = ctx.lanes if self._varies_by_lane(index) else 1
        contiguous = lanes == 1 or (index and index[-1] == len(self.domain) - 1)
        if not contiguous:  # the lanes step along a non-innermost dim of this tensor
            stride = math.prod(type_.shape[index.index(len(self.domain) - 1) + 1:])
            addresses = [self._lane_address(address, k * stride, type_.dtype) for k in range(lanes)]
            return Lanes([self._load_scalar(type_.dtype, a, ctx.guard) for a in addresses])
        return Lanes(self._load_vector(type_.dtype, address, lanes, ctx.guard))

    def _lane_address(self, address: str, elements: int, dtype: DType) -> str:
        return self.w.op("b64", "add.u64 {}, {}, %d" % (elements * dtype.itemsize), address) if elements else address

    def _load_scalar(self, dtype: DType, address: str, guard: str | None) -> str:
        return self._load_vector(dtype, address, 1, guard)[0]

    def _load_vector(self, dtype: DType, address: str, lanes: int, guard: str | None) -> list[str]:
        """`lanes` consecutive elements at `address`, widened to their register kind."""
        if dtype == DType.BOOL:
            return [self._bool_from_byte(address, k, guard) for k in range(lanes)]
        return [self._widen(r, dtype) for r in self._load_raw(dtype, f"[{address}]", lanes, guard)]

    def _load_raw(self, dtype: DType, address: str, lanes: int, guard: str | None, space: str = "global") -> list[str]:
        """`lanes` consecutive elements at `address` (an operand like [%rd4]) as stored: their bits."""
        width = dtype.itemsize * 8
        raw = [self.w.reg("b16" if width == 16 else f"b{width}") for _ in range(lanes)]
        operands = raw[0] if lanes == 1 else "{" + ", ".join(raw) + "}"
        vector = "" if lanes == 1 else f".v{lanes}" if lanes <= 4 else None
        if vector is None:  # 8 halves: four 32-bit words, unpacked
            words = [self.w.reg("b32") for _ in range(lanes // 2)]
            self.w.emit(f"ld.{space}.v4.b32 {{{', '.join(words)}}}, {address}", guard)
            for k, word in enumerate(words):
                self.w.emit(f"mov.b32 {{{raw[2 * k]}, {raw[2 * k + 1]}}}, {word}")
        else:
            self.w.emit(f"ld.{space}{vector}.b{width} {operands}, {address}", guard)
        return raw

    def _store_raw(self, dtype: DType, address: str, raw: list[str], guard: str | None, space: str = "global") -> None:
        """Bits of consecutive elements stored at `address` (an operand like [%rd4])."""
        width, lanes = dtype.itemsize * 8, len(raw)
        if lanes == 8:  # halves, packed in pairs
            words = [self.w.op("b32", "mov.b32 {}, {{{}, {}}}", raw[2 * k], raw[2 * k + 1]) for k in range(4)]
            self.w.emit(f"st.{space}.v4.b32 {address}, {{{', '.join(words)}}}", guard)
        elif lanes == 1:
            self.w.emit(f"st.{space}.b{width} {address}, {raw[0]}", guard)
        else:
            self.w.emit(f"st.{space}.v{lanes}.b{width} {address}, {{{', '.join(raw)}}}", guard)

    def _bool_from_byte(self, address: str, lane: int, guard: str | None) -> str:
        byte = self.w.reg("b16")
        self.w.emit(f"ld.global.u8 {byte}, [{address}+{lane}]", guard)
        return self.w.op("pred", "setp.ne.u16 {}, {}, 0", byte)

    def _widen(self, raw: str, dtype: DType) -> str:
        if dtype in ROUNDING:
            return self.w.op("f32", f"{ROUNDING[dtype][1]} {{}}, {{}}", raw)
        if dtype == DType.F32:
            return self.w.op("f32", "mov.b32 {}, {}", raw)
        return raw

    def _narrow(self, value: str, dtype: DType) -> str:
        """A register value as the bits stored in memory."""
        if dtype in ROUNDING:
            return self.w.op("b16", f"{ROUNDING[dtype][0]} {{}}, {{}}", value)
        if dtype == DType.F32:
            return self.w.op("b32", "mov.b32 {}, {}", value)
        if dtype == DType.BOOL:
            return self.w.op("b16", "selp.u16 {}, 1, 0, {}", value)
        return value

    def _store(self, output: TensorType, base: str, value: Lanes, index: IndexMap, ctx: "Body") -> None:
        offset = self._offset(output.shape, index, ctx.element, ctx.coords)
        address = self._address(base, offset, output.dtype.itemsize)
        guard = self._owner_guard(index, ctx)
        lanes = ctx.lanes if self._varies_by_lane(index) else 1
        bits = [self._narrow(value.lane(k), output.dtype) for k in range(lanes)]
        if output.dtype == DType.BOOL:
            for k, b in enumerate(bits):
                self.w.emit(f"st.global.u8 [{address}+{k}], {b}", guard)
            return
        self._store_raw(output.dtype, f"[{address}]", bits, guard)

    def _owner_guard(self, index: IndexMap, ctx: "Body") -> str | None:
        """An output smaller than the domain is written where its broadcast coordinates are 0."""
        missing = [d for d in range(len(self.domain)) if d not in index and self.domain[d] > 1]
        guard = ctx.guard
        for d in missing:
            coordinate = self._coordinate(ctx.element, d, ctx.coords)
            zero = self.w.op("pred", f"setp.eq.{self.itype} {{}}, {{}}, 0", coordinate)
            guard = zero if guard is None else self.w.op("pred", "and.pred {}, {}, {}", guard, zero)
        return guard

    # -- values ------------------------------------------------------------------------------

    def value(self, name: str, index: IndexMap, ctx: "Body") -> Lanes:
        is_const = name in self.defs and self.defs[name].op == Op.CONST
        key = (name, () if is_const else index)
        if key in self.uniform:
            return self.uniform[key]
        if key not in ctx.cache:
            ctx.cache[key] = self._compute(name, index, ctx)
        return ctx.cache[key]

    def _compute(self, name: str, index: IndexMap, ctx: "Body") -> Lanes:
        if name not in self.defs:
            return self._load(name, index, ctx)
        instr = self.defs[name]
        result = self.types[name]
        if instr.op == Op.RESHAPE:
            source = self.types[instr.args[0]].shape
            return self.value(instr.args[0], _reshape_map(source, result.shape, index), ctx)
        operands = [self.value(a, _aligned_map(self.types[a].shape, index, result.shape), ctx)
                    for a in instr.args]
        if instr.op == Op.EXPAND:
            return operands[0]
        lanes = max((len(o.regs) for o in operands), default=1)
        return Lanes([self._round(self._element(instr, [o.lane(k) for o in operands]), result.dtype)
                      for k in range(lanes)])

    def _round(self, value: str, dtype: DType) -> str:
        """bf16/f16 results are rounded to their type (unless the schedule keeps float32)."""
        if dtype not in ROUNDING or self.schedule.fp32_intermediates:
            return value
        return self._widen(self._narrow(value, dtype), dtype)

    def _element(self, instr: Instr, args: list[str]) -> str:
        source = self.types[instr.args[0]].dtype if instr.args else self.types[instr.result].dtype
        kind = REGISTER_KIND[source]
        emit = ELEMENT_RULES.get((instr.op, kind)) or ELEMENT_RULES.get((instr.op, "any"))
        if emit is None:
            raise LoweringError(f"{instr.op} on {source} is not lowered yet")
        return emit(self, instr, args)

    # -- the kernel ----------------------------------------------------------------------------

    def _prologue(self) -> None:
        self.base: dict[str, str] = {}
        for k, name in enumerate(self.params):
            generic = self.w.op("b64", "ld.param.u64 {}, [%s]" % self._param_name(k))
            self.base[name] = self.w.op("b64", "cvta.to.global.u64 {}, {}", generic)
        ctx = Body(element="", lanes=1, guard=None)
        for instr in self.kernel.body:  # values that are the same for every element
            if instr.op == Op.CONST:
                self.uniform[(instr.result, ())] = self.value(instr.result, (), ctx)

    def _param_name(self, k: int) -> str:
        return f"{self.kernel.name}_param_{k}"

    def _body(self, element: str, lanes: int, guard: str | None) -> None:
        ctx = Body(element, lanes, guard)
        for param, value in zip(self.kernel.outputs, self.kernel.returns):
            index = _aligned_map(param.type.shape, self._identity(), self.domain)
            self._store(param.type, self.base[param.name], self.value(value, index, ctx), index, ctx)

    def _thread_index(self) -> tuple[str, str]:
        """(this thread's global index, the number of threads in the grid), in index width."""
        w = self.w
        specials = ("tid.x", "ntid.x", "ctaid.x", "nctaid.x")
        tid, ntid, ctaid, nctaid = (w.op("b32", f"mov.u32 {{}}, %{s}") for s in specials)
        if self.wide:
            base = w.op("b64", "mul.wide.u32 {}, {}, {}", ctaid, ntid)
            index = w.op("b64", "add.u64 {}, {}, {}", base, w.op("b64", "cvt.u64.u32 {}, {}", tid))
            return index, w.op("b64", "mul.wide.u32 {}, {}, {}", nctaid, ntid)
        index = w.op("b32", "mad.lo.u32 {}, {}, {}, {}", ctaid, ntid, tid)
        return index, w.op("b32", "mul.lo.u32 {}, {}, {}", nctaid, ntid)

    def launch(self) -> LaunchConfig:
        vectors = self.numel // self.vector
        needed = max(1, -(-vectors // (self.schedule.block_size * self.schedule.unroll)))
        if self.schedule.ctas_per_sm:
            needed = min(needed, self.target.sm_count * self.schedule.ctas_per_sm)
        return LaunchConfig((needed, 1, 1), (self.schedule.block_size, 1, 1))

    def render(self) -> str:
        w = self.w
        self._prologue()
        thread, threads = self._thread_index()
        vectors = self.numel // self.vector
        vector_index = self._ix("mov", thread)
        loop, done = w.label("loop"), w.label("done")
        w.place(loop)
        exit_now = w.op("pred", f"setp.ge.{self.itype} {{}}, {{}}, {vectors}", vector_index)
        w.emit(f"bra {done}", exit_now)
        for step in range(self.schedule.unroll):
            current = vector_index if step == 0 else self._ix("mad.lo", threads, step, vector_index)
            guard = None if step == 0 else w.op("pred", f"setp.lt.{self.itype} {{}}, {{}}, {vectors}", current)
            element = current if self.vector == 1 else self._ix("mul.lo", current, self.vector)
            self._body(element, self.vector, guard)
        stride = threads if self.schedule.unroll == 1 else self._ix("mul.lo", threads, self.schedule.unroll)
        w.emit(f"add.{self.itype} {vector_index}, {vector_index}, {stride}")
        if self.schedule.ctas_per_sm:
            w.emit(f"bra.uni {loop}")
        w.place(done)
        self._tail(thread, vectors * self.vector)
        w.emit("ret")
        return self._module()

    def _tail(self, thread: str, first: int) -> None:
        """Elements past the last whole vector (fewer than V): one each, by the first threads."""
        if first == self.numel:
            return
        element = self._ix("add", thread, first)
        inside = self.w.op("pred", f"setp.lt.{self.itype} {{}}, {{}}, {self.numel}", element)
        self._body(element, 1, inside)

    def _directives(self) -> list[str]:
        return [f".maxntid {self.schedule.block_size}, 1, 1"]

    def _module(self) -> str:
        params = ",\n".join(f"\t.param .u64 {self._param_name(k)}" for k in range(len(self.params)))
        names = ", ".join(self.params)
        header = [f".version {self.target.ptx_isa}", f".target {self.target.name}", ".address_size 64", "",
                  f"// {self.kernel.name}: domain {list(self.domain)}, {self.vector} element(s) per vector;"
                  f" parameters {names}",
                  f".visible .entry {self.kernel.name}(", params, ")", *self._directives(), "{"]
        return "\n".join(header + self.w.declarations() + self.w.lines + ["}", ""])


@dataclass
class Body:
    """One emitted copy of the per-element code: its element index, lanes, guard and caches."""

    element: str
    lanes: int
    guard: str | None
    cache: dict[tuple[str, IndexMap], Lanes] = field(default_factory=dict)
    coords: dict[int, str] = field(default_factory=dict)
    position: str | None = None  # reductions: lane 0's position along the reduced extent (32 bits)


# -- per-element rules: (op, register kind of the first operand) -> emitter ---------------------


def _f32_binary(template: str):  # type: ignore[no-untyped-def]
    return lambda L, i, a: L.w.op("f32", f"{template} {{}}, {{}}, {{}}", a[0], a[1])


def _f32_unary(template: str):  # type: ignore[no-untyped-def]
    return lambda L, i, a: L.w.op("f32", f"{template} {{}}, {{}}", a[0])


def _library(name: str):  # type: ignore[no-untyped-def]
    """An op computed by ptxgen.mathlib's formula of that name, in the schedule's form."""

    def emit(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
        formula = mathlib.recipe(name, L.schedule.approx_math)
        if formula is None:
            raise LoweringError(f"{instr.op} has only an approximate form: use a schedule with approx_math")
        return formula(mathlib.PtxMath(L.w), *args)  # type: ignore[return-value]

    return emit


def _pow(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
    exponent = constant_value(L.defs, instr.args[1])
    return mathlib.power(mathlib.PtxMath(L.w), args[0], args[1], exponent)  # type: ignore[return-value]


def _sign(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
    positive = L.w.select(L.w.setp("gt", args[0], f32_literal(0.0)), L.w.const_f32(1.0), L.w.const_f32(0.0))
    negative = L.w.select(L.w.setp("lt", args[0], f32_literal(0.0)), L.w.const_f32(1.0), L.w.const_f32(0.0))
    return L.w.sub(positive, negative)


def _const(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
    dtype, value = L.types[instr.result].dtype, instr.attr("value")
    number = NON_FINITE[value] if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    if dtype.is_float:
        return L.w.const_f32(number)
    if dtype == DType.BOOL:
        return L.w.op("pred", f"setp.ne.u32 {{}}, {int(bool(number))}, 0")
    return L.w.op(REGISTER_KIND[dtype], f"mov.{INT_TYPE[dtype]} {{}}, {int(number)}")


def _where(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
    cond, a, b = args
    kind = REGISTER_KIND[L.types[instr.result].dtype]
    if kind == "pred":
        both = L.w.op("pred", "and.pred {}, {}, {}", cond, a)
        other = L.w.op("pred", "and.pred {}, {}, {}", L.w.op("pred", "not.pred {}, {}", cond), b)
        return L.w.op("pred", "or.pred {}, {}, {}", both, other)
    suffix = {"f32": "f32", "b32": "b32", "b64": "b64"}[kind]
    return L.w.op(kind, f"selp.{suffix} {{}}, {{}}, {{}}, {{}}", a, b, cond)


def _cast(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
    source, target = L.types[instr.args[0]].dtype, L.types[instr.result].dtype
    rule = CASTS.get((REGISTER_KIND[source], REGISTER_KIND[target]))
    if rule is None:
        raise LoweringError(f"cast from {source} to {target} is not lowered yet")
    return rule(L, source, target, args[0])


CASTS = {
    ("f32", "f32"): lambda L, s, t, x: x,  # rounding to bf16/f16 happens in _round
    ("f32", "b32"): lambda L, s, t, x: L.w.op("b32", "cvt.rzi.s32.f32 {}, {}", x),
    ("f32", "b64"): lambda L, s, t, x: L.w.op("b64", "cvt.rzi.s64.f32 {}, {}", x),
    ("b32", "f32"): lambda L, s, t, x: L.w.op("f32", "cvt.rn.f32.s32 {}, {}", x),
    ("b64", "f32"): lambda L, s, t, x: L.w.op("f32", "cvt.rn.f32.s64 {}, {}", x),
    ("b32", "b64"): lambda L, s, t, x: L.w.op("b64", "cvt.s64.s32 {}, {}", x),
    ("b64", "b32"): lambda L, s, t, x: L.w.op("b32", "cvt.u32.u64 {}, {}", x),
    ("b32", "b32"): lambda L, s, t, x: x,
    ("b64", "b64"): lambda L, s, t, x: x,
    ("f32", "pred"): lambda L, s, t, x: L.w.op("pred", "setp.neu.f32 {}, {}, 0f00000000", x),
    ("b32", "pred"): lambda L, s, t, x: L.w.op("pred", "setp.ne.s32 {}, {}, 0", x),
    ("b64", "pred"): lambda L, s, t, x: L.w.op("pred", "setp.ne.s64 {}, {}, 0", x),
    ("pred", "f32"): lambda L, s, t, x: L.w.op("f32", "selp.f32 {}, 0f3F800000, 0f00000000, {}", x),
    ("pred", "b32"): lambda L, s, t, x: L.w.op("b32", "selp.s32 {}, 1, 0, {}", x),
    ("pred", "b64"): lambda L, s, t, x: L.w.op("b64", "selp.s64 {}, 1, 0, {}", x),
    ("pred", "pred"): lambda L, s, t, x: x,
}


def _int_binary(template: str):  # type: ignore[no-untyped-def]
    def emit(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
        dtype = L.types[instr.args[0]].dtype
        return L.w.op(REGISTER_KIND[dtype], f"{template}.{INT_TYPE[dtype]} {{}}, {{}}, {{}}", *args)

    return emit


def _int_unary(template: str):  # type: ignore[no-untyped-def]
    def emit(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
        dtype = L.types[instr.args[0]].dtype
        return L.w.op(REGISTER_KIND[dtype], f"{template}.{INT_TYPE[dtype]} {{}}, {{}}", args[0])

    return emit


def _compare(kind: str, op: Op):  # type: ignore[no-untyped-def]
    def emit(L: ElementwiseLowering, instr: Instr, args: list[str]) -> str:
        if kind == "f32":
            return L.w.setp(COMPARE[op], args[0], args[1])
        if kind == "pred":  # bools: eq is xnor, ne is xor
            differ = L.w.op("pred", "xor.pred {}, {}, {}", args[0], args[1])
            return differ if op == Op.NE else L.w.op("pred", "not.pred {}, {}", differ)
        dtype = L.types[instr.args[0]].dtype
        return L.w.op("pred", f"setp.{INT_COMPARE[op]}.{INT_TYPE[dtype]} {{}}, {{}}, {{}}", *args)

    return emit


ELEMENT_RULES = {
    **{(op, "f32"): _f32_binary(t) for op, t in F32_BINARY.items()},
    **{(op, "f32"): _f32_unary(t) for op, t in F32_UNARY.items()},
    **{(op, "f32"): _library(op.value) for op in LIBRARY},
    **{(op, kind): _int_binary(t) for op, t in INT_BINARY.items() for kind in ("b32", "b64")},
    **{(op, kind): _int_unary(t) for op, t in INT_UNARY.items() for kind in ("b32", "b64")},
    **{(op, kind): _compare(kind, op) for op in COMPARE for kind in ("f32", "b32", "b64", "pred")},
    **{(op, "pred"): (lambda t: lambda L, i, a: L.w.op("pred", f"{t} {{}}, {{}}, {{}}", *a))(t)
       for op, t in PRED_LOGIC.items()},
    (Op.NOT, "pred"): lambda L, i, a: L.w.op("pred", "not.pred {}, {}", a[0]),
    (Op.ISNAN, "f32"): lambda L, i, a: L.w.op("pred", "testp.notanumber.f32 {}, {}", a[0]),
    (Op.ISINF, "f32"): lambda L, i, a: L.w.op("pred", "testp.infinite.f32 {}, {}", a[0]),
    (Op.POW, "f32"): _pow,
    (Op.SIGN, "f32"): _sign,
    (Op.WHERE, "pred"): _where,
    (Op.CONST, "any"): _const,
    (Op.CAST, "any"): _cast,
}


def _lowerings() -> dict[object, tuple[type, type]]:
    """Each reduction layout (None: no reduction) -> (schedule class, lowering class)."""
    from ptxgen.columns import ColumnReductionLowering
    from ptxgen.reduce import Layout
    from ptxgen.rows import RowReductionLowering
    from ptxgen.scalar import ScalarReductionLowering
    from ptxgen.schedule import ColumnSchedule, RowSchedule, ScalarSchedule

    return {None: (ElementwiseSchedule, ElementwiseLowering), Layout.ROW: (RowSchedule, RowReductionLowering),
            Layout.COLUMN: (ColumnSchedule, ColumnReductionLowering),
            Layout.SCALAR: (ScalarSchedule, ScalarReductionLowering)}


def lowering_for(kernel: Kernel, schedule: Schedule, target: Target) -> ElementwiseLowering:
    """The lowering of `kernel` under `schedule`: the schedule's kind must match the kernel's."""
    from ptxgen.reduce import reduction_shape

    unknown = sorted({str(i.op) for i in kernel.body if i.op not in ELEMENTWISE | MOVEMENT | REDUCTIONS})
    if unknown:
        raise LoweringError(f"kernel {kernel.name}: {', '.join(unknown)} cannot be lowered here")
    if not schedule.fits(target):
        raise ScheduleError(f"{schedule} does not fit {target.name} (threads per block at most "
                            f"{target.max_threads_per_block}, per SM {target.max_threads_per_sm}, cluster at most "
                            f"{target.max_cluster_size})")
    shape = reduction_shape(kernel)
    layout = shape.layout if shape else None
    schedule_class, lowering_class = _lowerings()[layout]
    if not isinstance(schedule, schedule_class):
        what = f"a {layout.value} reduction" if layout else "elementwise"
        raise ScheduleError(f"kernel {kernel.name} is {what}: it takes a {schedule_class.__name__}, "
                            f"not a {type(schedule).__name__}")
    return lowering_class(kernel, schedule, target)  # type: ignore[no-any-return]


def kind_space(kernel: Kernel, target: Target) -> list[Schedule]:
    """Every schedule of the kernel's kind that fits the target (its shapes may rule some out)."""
    from ptxgen.reduce import Layout, reduction_shape
    from ptxgen.schedule import column_space, elementwise_space, row_space, scalar_space

    shape = reduction_shape(kernel)
    spaces = {None: elementwise_space, Layout.ROW: row_space, Layout.COLUMN: column_space,
              Layout.SCALAR: scalar_space}
    return spaces[shape.layout if shape else None](target)  # type: ignore[no-any-return]


def _allows(kernel: Kernel, schedule: Schedule, target: Target) -> bool:
    try:
        lowering_for(kernel, schedule, target)
    except ScheduleError:
        return False
    return True


def schedule_space(kernel: Kernel, target: Target) -> list[Schedule]:
    """Every schedule of the kernel's kind that fits the target and that the kernel's shapes allow
    (vector widths that divide its innermost size, clusters its rows can fill, ...): what search
    enumerates."""
    return [s for s in kind_space(kernel, target) if _allows(kernel, s, target)]


def sample_schedules(kernel: Kernel, target: Target, count: int, rng: random.Random) -> list[Schedule]:
    """Up to `count` valid schedules drawn at random without building the whole valid space."""
    candidates = kind_space(kernel, target)
    rng.shuffle(candidates)
    chosen: list[Schedule] = []
    for schedule in candidates:
        if len(chosen) == count:
            break
        if _allows(kernel, schedule, target):
            chosen.append(schedule)
    return chosen


def lower(kernel: Kernel, schedule: Schedule, target: Target) -> LoweredKernel:
    """PTX for `kernel` under `schedule` on `target`."""
    lowering = lowering_for(kernel, schedule, target)
    ptx = lowering.render()
    return LoweredKernel(kernel.name, ptx, lowering.launch(), target.name, schedule, tuple(lowering.params))


def lower_all(kernels: list[Kernel], target: Target,
              choose: Callable[[Kernel, Target], Schedule] | None = None) -> dict[str, LoweredKernel]:
    """Every kernel lowered under the schedule `choose` picks (default_schedule unless given)."""
    pick = choose or default_schedule
    return {k.name: lower(k, pick(k, target), target) for k in kernels}


def default_schedule(kernel: Kernel, target: Target) -> Schedule:
    """The widest vector the kernel's layout allows; approximate math where every float the kernel
    reads or writes is bf16/f16 (their rounding is far coarser than the approximations' error)."""
    from ptxgen.columns import default_column_schedule
    from ptxgen.reduce import Layout, reduction_shape
    from ptxgen.rows import default_row_schedule
    from ptxgen.scalar import default_scalar_schedule

    floats = {p.type.dtype for p in kernel.inputs + kernel.outputs if p.type.dtype.is_float}
    approx = bool(floats) and floats <= HALF_FLOATS
    shape = reduction_shape(kernel)
    if shape is not None:
        pick = {Layout.ROW: default_row_schedule, Layout.COLUMN: default_column_schedule,
                Layout.SCALAR: default_scalar_schedule}[shape.layout]
        return pick(kernel, target, approx)
    for vector_bytes in (16, 8, 4, 2):
        schedule = ElementwiseSchedule(vector_bytes=vector_bytes, approx_math=approx)
        try:
            ElementwiseLowering(kernel, schedule, target)
            return schedule
        except ScheduleError:
            continue
    return ElementwiseSchedule(vector_bytes=2, approx_math=approx)
