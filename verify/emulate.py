"""The CPU emulator: a PTX kernel parsed back from its text, run with numpy on every thread of a
batch of CTAs at once.

Threads are lanes of arrays. Each lane has its own program counter; every step runs the lowest
program counter among the lanes that can run, for every lane there (so divergent paths run one
after the other and meet again where they join, as SIMT hardware does). A barrier holds its lanes
until every live thread of the CTA (or cluster) is waiting at the same barrier; threads waiting at
different barriers, or a barrier some threads of the CTA exited before reaching, is reported, as
is a `bra.uni` that diverges and a `shfl.sync` whose member lanes did not arrive together.

CTAs run in batches (whole clusters per batch) in launch order; within a batch all CTAs advance
together, instruction by instruction, which is one legal interleaving of them. Atomics take
effect lane by lane in launch order. The data instructions' meaning is `verify.semantics`' table
evaluated in the numpy domain; memory, control flow, barriers and shuffles are here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verify.memory import CLUSTER_FLAG, RANK_SHIFT, GlobalMemory, MemoryFault, SharedMemory
from verify.numeric import NumpyDomain, from_float, storage
from verify.ptxparse import Addr, Entry, Imm, Instruction, Module, Reg, Sym, Vec, parse_ptx, type_bytes
from verify.semantics import SEMANTICS, UNDEFINED, UNDEFINED_MESSAGE, NotModelled, Op, decode, is_float, width

Array = np.ndarray
MAX_LANES = 1 << 15
RUN, BARRIER, CLUSTER_BARRIER, EXITED = 0, 1, 2, 3
WARP = 32
# What a register holds before its first write: a NaN for floats, a large odd value for integers,
# so that reading one before writing it (as hardware would read garbage) shows in the results.
POISON = {"f32": 0x7FBFFFFF, "f16": 0x7DFF, "bf16": 0x7FBF, "f64": 0x7FF7FFFFFFFFFFFF, "b8": 0xA5, "b16": 0x7FBF,
          "b32": 0x7FBFFFFF, "b64": 0xDEADBEEFDEADBEEF, "pred": 1}


class EmulationError(Exception):
    """The kernel did something with no defined result (an access out of bounds, a race, a
    divergent barrier...); `kind` names it, the message says where and which thread."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class Launch:
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    cluster: tuple[int, int, int] = (1, 1, 1)
    shared_bytes: int = 0  # dynamic shared memory: the size of the .extern .shared array

    @classmethod
    def of(cls, config: Any) -> Launch:
        """From a LaunchConfig (or anything with its grid, block, cluster and shared_bytes)."""
        return cls(tuple(config.grid), tuple(config.block), tuple(config.cluster), config.shared_bytes)

    @classmethod
    def from_manifest(cls, launch: dict[str, Any]) -> Launch:
        """From a manifest's "launch" entry."""
        return cls(tuple(launch["grid"]), tuple(launch["block"]), tuple(launch.get("cluster", (1, 1, 1))),
                   launch.get("shared_bytes", 0))

    @property
    def threads(self) -> int:
        return math.prod(self.block)

    @property
    def ctas(self) -> int:
        return math.prod(self.grid)

    @property
    def cluster_size(self) -> int:
        return math.prod(self.cluster)


@dataclass
class Emulation:
    """What a launch left behind: each argument's bytes, and per output argument the bytes it
    never wrote and the bytes it wrote more than once."""

    arguments: list[Array]
    unwritten: dict[int, int] = field(default_factory=dict)
    rewritten: dict[int, int] = field(default_factory=dict)
    writes: dict[int, Array] = field(default_factory=dict)  # per output argument: each byte's write count
    steps: int = 0
    executed: Array | None = None  # per instruction: did some thread run it with its guard true

    def unexecuted_lines(self, entry: Entry) -> list[int]:
        """PTX lines of the instructions no thread ran (guarded off or never reached)."""
        assert self.executed is not None
        return [ins.line for ins, ran in zip(entry.body, self.executed) if not ran]


@dataclass
class AsyncCopy:
    """A cp.async under way: the bytes it read from global memory at issue (inputs do not change
    while a kernel runs), the shared bytes they land on, and per lane the group it belongs to (the
    number of groups that lane had committed when it issued the copy). They land when a wait asks
    for their group, as the issuing thread's write."""

    lanes: Array
    ctas: Array
    offsets: Array
    raw: Array
    group: Array


@dataclass
class Batch:
    """The state of `ctas` consecutive CTAs starting at `first`."""

    entry: Entry
    launch: Launch
    first: int
    ctas: int
    memory: GlobalMemory
    params: dict[str, int]
    globals_: dict[str, int]
    shared: SharedMemory
    domain: NumpyDomain = field(init=False)
    regs: dict[str, Array] = field(default_factory=dict)
    pc: Array = field(init=False)
    status: Array = field(init=False)
    copies: list[AsyncCopy] = field(default_factory=list)  # cp.async under way
    committed: Array = field(init=False)  # per lane: cp.async groups it has committed
    arrived: Array = field(init=False)  # per lane: arrived at a cluster barrier, not yet waited

    def __post_init__(self) -> None:
        lanes = self.ctas * self.launch.threads
        self.committed = np.zeros(lanes, np.int64)
        self.arrived = np.zeros(lanes, bool)
        self.domain = NumpyDomain(lanes)
        self.pc = np.zeros(lanes, np.int64)
        self.status = np.zeros(lanes, np.int8)
        self.lane = np.arange(lanes)
        self.tid = self.lane % self.launch.threads
        self.cta_local = self.lane // self.launch.threads
        self.cta = self.first + self.cta_local
        self.warp = self.cta_local * -(-self.launch.threads // WARP) + self.tid // WARP

    def where(self, lane: int) -> str:
        bx, by, _ = self.launch.block
        gx, gy, _ = self.launch.grid
        tid, cta = int(self.tid[lane]), int(self.cta[lane])
        return (f"thread ({tid % bx}, {tid // bx % by}, {tid // (bx * by)}) of CTA "
                f"({cta % gx}, {cta // gx % gy}, {cta // (gx * gy)})")


def _grid_coordinates(linear: Array, dims: tuple[int, int, int]) -> tuple[Array, Array, Array]:
    return linear % dims[0], linear // dims[0] % dims[1], linear // (dims[0] * dims[1])


def _special(batch: Batch, name: str) -> Array:
    launch = batch.launch
    cluster = launch.cluster_size
    clusters = (launch.grid[0] // launch.cluster[0], launch.grid[1], launch.grid[2])
    axis = "xyz".index(name[-1]) if name[-2] == "." else 0
    values: dict[str, Callable[[], Array]] = {
        "%tid": lambda: _grid_coordinates(batch.tid, launch.block)[axis],
        "%ntid": lambda: np.full(batch.lane.size, launch.block[axis]),
        "%ctaid": lambda: _grid_coordinates(batch.cta, launch.grid)[axis],
        "%nctaid": lambda: np.full(batch.lane.size, launch.grid[axis]),
        "%laneid": lambda: batch.tid % WARP,
        "%warpid": lambda: batch.tid // WARP,
        "%cluster_ctarank": lambda: batch.cta % cluster,
        "%cluster_nctarank": lambda: np.full(batch.lane.size, cluster),
        "%cluster_ctaid": lambda: _grid_coordinates(batch.cta % cluster, launch.cluster)[axis],
        "%cluster_nctaid": lambda: np.full(batch.lane.size, launch.cluster[axis]),
        "%clusterid": lambda: _grid_coordinates(batch.cta // cluster, clusters)[axis],
        "%nclusterid": lambda: np.full(batch.lane.size, clusters[axis]),
    }
    return values[name.split(".")[0]]().astype(np.uint32)


SPECIAL_REGISTERS = frozenset({"%tid", "%ntid", "%ctaid", "%nctaid", "%laneid", "%warpid", "%cluster_ctarank",
                               "%cluster_nctarank", "%cluster_ctaid", "%cluster_nctaid", "%clusterid", "%nclusterid"})


def immediate_bits(imm: Imm, type_: str) -> int:
    """An immediate operand as the bits of an operand of `type_`."""
    if type_ == "pred":
        return int(bool(imm.value))
    if imm.bits is not None and imm.width == width(type_):
        return imm.bits
    if is_float(type_):
        return int(from_float(np.array([float(imm.value)]), type_)[0])
    if imm.bits is not None:
        return imm.bits
    return int(imm.value) & ((1 << width(type_)) - 1)


def _fit(value: Array, type_: str) -> Array:
    """A register's bits as an operand of `type_` (truncated or zero-extended where widths differ)."""
    want = storage(type_)
    return value if value.dtype == want else value.astype(want)


class Executor:
    """Operand access for one batch. Each step runs on a selection of lanes (those at the step's
    instruction): values read are arrays over the selection, and masks are over it too."""

    def __init__(self, batch: Batch) -> None:
        self.b = batch
        self.lanes = batch.lane
        self.everyone = True
        self.specials: dict[str, Array] = {}

    def select(self, active: Array) -> None:
        self.everyone = bool(active.all())
        self.lanes = self.b.lane if self.everyone else np.nonzero(active)[0]
        self.b.domain.lanes = self.lanes.size

    def take(self, full: Array) -> Array:
        return full if self.everyone else full[self.lanes]

    def register(self, name: str) -> Array:
        """The whole register (every lane of the batch)."""
        regs = self.b.regs
        if name not in regs:
            if name not in self.b.entry.registers:
                if name.split(".")[0] in SPECIAL_REGISTERS:
                    if name not in self.specials:
                        self.specials[name] = _special(self.b, name)
                    return self.specials[name]
                raise NotModelled(f"register {name} is not declared")
            type_ = self.b.entry.registers[name]
            poison = POISON[type_] if type_ in POISON else POISON[f"b{width(type_)}"]
            regs[name] = np.full(self.b.lane.size, poison, storage(type_))
        return regs[name]

    def read(self, operand: object, type_: str) -> Array:
        if isinstance(operand, Reg):
            return _fit(self.take(self.register(operand.name)), type_)
        if isinstance(operand, Imm):
            return self.b.domain.constant(immediate_bits(operand, type_), type_)
        if isinstance(operand, Sym):
            return self.b.domain.constant(self.symbol(operand.name), type_)
        if isinstance(operand, Vec):
            parts = [self.take(self.register(r)) for r in operand.regs if r is not None]
            total = np.zeros(self.lanes.size, np.uint64)
            for index, part in enumerate(parts):
                total |= part.astype(np.uint64) << np.uint64(index * part.dtype.itemsize * 8)
            return _fit(total, type_)
        raise NotModelled(f"operand {operand} as a value")

    def symbol(self, name: str) -> int:
        for table in (self.b.shared.offsets, self.b.globals_, self.b.params):
            if name in table:
                return table[name]
        raise NotModelled(f"symbol {name} is not declared")

    def write(self, operand: object, value: Array, mask: Array) -> None:
        if isinstance(operand, Vec):
            self.write_vector(operand, value, mask)
            return
        if not isinstance(operand, Reg) or operand.name not in self.b.entry.registers:
            raise NotModelled(f"destination {operand}")
        target = self.register(operand.name)
        target[self.lanes[mask]] = value[mask].astype(target.dtype)

    def write_vector(self, vec: Vec, value: Array, mask: Array) -> None:
        """mov {a, b}, c: split c's bits into the registers, low part first."""
        bits = value.astype(np.uint64)
        offset = 0
        for name in vec.regs:
            if name is None:
                continue
            target = self.register(name)
            part_bits = target.dtype.itemsize * 8
            part = (bits >> np.uint64(offset)) & np.uint64((1 << part_bits) - 1)
            target[self.lanes[mask]] = part[mask].astype(target.dtype)
            offset += part_bits

    def address(self, addr: Addr) -> Array:
        base = addr.base
        if isinstance(base, Reg):
            start = self.take(self.register(base.name)).astype(np.uint64)
        else:
            start = np.full(self.lanes.size, self.symbol(base.name) if isinstance(base, Sym) else base, np.uint64)
        return start + np.uint64(addr.offset & 0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Step:
    """An instruction made ready to run: `run(executor, mask)` does its work on the lanes in
    `mask`; `branch` is the target index of a branch; `kind` steers the scheduler."""

    instruction: Instruction
    run: Callable[[Executor, Array], None]
    kind: str = "next"  # next | branch | barrier | cluster_barrier | exit
    branch: int = -1
    uniform: bool = False


def _data_step(ins: Instruction, op: Op) -> Step:
    spec = SEMANTICS[op.base]
    types = spec.operands(op)
    if len(types) != len(ins.operands):
        raise NotModelled(f"{ins}: {len(ins.operands)} operands, expected {len(types)}")
    undefined = UNDEFINED.get(op.base)

    def run(ex: Executor, mask: Array) -> None:
        sources = [ex.read(o, t) for o, t in zip(ins.operands[1:], types[1:])]
        if undefined is not None:
            bad = undefined(ex.b.domain, op, sources)
            if bad is not None and (bad & mask).any():
                lane = int(ex.lanes[np.nonzero(bad & mask)[0][0]])
                raise EmulationError("undefined", f"{ins}: {UNDEFINED_MESSAGE[op.base]} in {ex.b.where(lane)}")
        ex.write(ins.operands[0], spec.meaning(ex.b.domain, op, sources), mask)
    return Step(ins, run)


MEMORY_HINTS = frozenset({"relaxed", "acquire", "release", "volatile", "weak", "gpu", "cta", "sys", "cluster", "nc",
                          "ca", "cg", "cs", "lu", "cv", "wb", "wt", "L1::no_allocate", "L1::evict_last",
                          "L1::evict_first", "L1::evict_normal", "L1::evict_unchanged", "L2::evict_first",
                          "L2::evict_last", "L2::evict_normal", "L2::64B", "L2::128B", "L2::256B", "acq_rel"})
SPACES = ("global", "shared", "shared::cta", "shared::cluster", "param")


def _memory_op(op: Op) -> tuple[str, int, str]:
    """(state space, vector length, element type) of a ld/st/atom, or NotModelled."""
    spaces = [m for m in op.mods if m in SPACES]
    vector = [int(m[1:]) for m in op.mods if m in ("v2", "v4", "v8")]
    unknown = [m for m in op.mods if m not in SPACES and m not in MEMORY_HINTS and m not in ("v2", "v4", "v8")]
    if unknown and op.base in ("ld", "st"):
        raise NotModelled(f"{op.opcode}: modifier .{unknown[0]}")
    space = spaces[0] if spaces else "global"  # generic addresses are global ones here
    return ("shared" if space == "shared::cta" else space), (vector[0] if vector else 1), op.type


def _shared_target(ex: Executor, addresses: Array, space: str, lanes: Array) -> tuple[Array, Array]:
    """(CTA in batch, offset) of the shared addresses of batch lanes `lanes`; shared::cluster
    addresses (from mapa) may name another CTA of the cluster."""
    addresses = addresses.astype(np.uint64)
    remote = (addresses & np.uint64(CLUSTER_FLAG)) != 0
    if space == "shared" and remote.any():
        raise MemoryFault("address_space", "a shared::cluster address (from mapa) used by ld/st.shared",
                          np.nonzero(remote)[0])
    cluster = ex.b.launch.cluster_size
    rank = ((addresses >> np.uint64(RANK_SHIFT)) & np.uint64(0x7F)).astype(np.int64)
    own = ex.b.cta_local[lanes]
    cta = np.where(remote, own - own % cluster + rank, own)
    return cta, np.where(remote, addresses & np.uint64((1 << RANK_SHIFT) - 1), addresses).astype(np.int64)


def _element_values(raw: Array, count: int, type_: str) -> list[Array]:
    size = type_bytes(type_)
    words = np.ascontiguousarray(raw).view(storage(type_) if type_ != "pred" else np.uint8)
    return [words[:, i] for i in range(count)] if size else []


def _access(ex: Executor, mask: Array, ins: Instruction, fn: Callable[[Array], None]) -> None:
    """Run a memory access for the batch lanes under `mask`; a fault names the thread."""
    lanes = ex.lanes[mask]
    if lanes.size == 0:
        return
    try:
        fn(lanes)
    except MemoryFault as fault:
        lane = int(lanes[fault.lanes[0]]) if fault.lanes.size else int(lanes[0])
        raise EmulationError(fault.kind, f"{ins}: {fault} ({ex.b.where(lane)})") from None


def _load_step(ins: Instruction, op: Op) -> Step:
    space, count, type_ = _memory_op(op)
    dest, addr = ins.operands
    if not isinstance(addr, Addr):
        raise NotModelled(f"{ins}: address operand {addr}")
    names = dest.regs if isinstance(dest, Vec) else (dest.name,) if isinstance(dest, Reg) else ()
    if len(names) != count:
        raise NotModelled(f"{ins}: {len(names)} destinations for a .v{count} load")
    size = type_bytes(type_)

    def run(ex: Executor, mask: Array) -> None:
        if space == "param":
            if not isinstance(addr.base, Sym):
                raise NotModelled(f"{ins}: ld.param from a register")
            value = ex.b.domain.constant(ex.b.params[addr.base.name], type_)
            ex.write(Reg(names[0]), value, mask)
            return

        def load(lanes: Array) -> None:
            addresses = ex.address(addr)[mask]
            if space == "global":
                raw = ex.b.memory.read(addresses, size * count)
            else:
                ctas, offsets = _shared_target(ex, addresses, space, lanes)
                raw = ex.b.shared.read(ctas, offsets, size * count, lanes)
            for name, value in zip(names, _element_values(raw, count, type_)):
                if name is None:
                    continue
                if type_.startswith("s") and width(type_) < 32:  # sign-extended into the register
                    value = value.view(f"int{width(type_)}").astype(np.int64).view(np.uint64)
                selected = np.zeros(ex.lanes.size, value.dtype)
                selected[mask] = value
                ex.write(Reg(name), selected, mask)
        _access(ex, mask, ins, load)
    return Step(ins, run)


def _store_step(ins: Instruction, op: Op) -> Step:
    space, count, type_ = _memory_op(op)
    addr, source = ins.operands
    if not isinstance(addr, Addr):
        raise NotModelled(f"{ins}: address operand {addr}")
    parts = list(source.regs) if isinstance(source, Vec) else [source]
    if len(parts) != count:
        raise NotModelled(f"{ins}: {len(parts)} sources for a .v{count} store")
    size = type_bytes(type_)

    def run(ex: Executor, mask: Array) -> None:
        def store(lanes: Array) -> None:
            values = [ex.read(Reg(p) if isinstance(p, str) else p, type_)[mask] for p in parts]
            raw = np.ascontiguousarray(np.stack(values, axis=1)).view(np.uint8).reshape(lanes.size, size * count)
            addresses = ex.address(addr)[mask]
            if space == "global":
                ex.b.memory.write(addresses, raw)
            elif space in ("shared", "shared::cluster"):
                ctas, offsets = _shared_target(ex, addresses, space, lanes)
                ex.b.shared.write(ctas, offsets, raw, lanes)
            else:
                raise NotModelled(f"{ins}: store to .{space}")
        _access(ex, mask, ins, store)
    return Step(ins, run)


ATOMIC_OPS: dict[str, Callable[[NumpyDomain, str, Array, list[Array]], Array]] = {
    "add": lambda d, t, old, a: d.float_op("add", t, old, a[0]) if is_float(t) else d.int_op("add", t, old, a[0]),
    "min": lambda d, t, old, a: d.int_op("min", t, old, a[0]),
    "max": lambda d, t, old, a: d.int_op("max", t, old, a[0]),
    "and": lambda d, t, old, a: d.int_op("and", t, old, a[0]),
    "or": lambda d, t, old, a: d.int_op("or", t, old, a[0]),
    "xor": lambda d, t, old, a: d.int_op("xor", t, old, a[0]),
    "exch": lambda d, t, old, a: a[0],
    "cas": lambda d, t, old, a: d.select(old == a[0], a[1], old),
    "inc": lambda d, t, old, a: d.select(old >= a[0], d.constant(0, t), d.int_op("add", t, old, d.constant(1, t))),
    "dec": lambda d, t, old, a: d.select((old == 0) | (old > a[0]), a[0], d.int_op("sub", t, old, d.constant(1, t))),
}


def _atomic_step(ins: Instruction, op: Op) -> Step:
    """atom (returns the old value) and red: one lane at a time, in launch order."""
    name = next((m for m in op.mods if m in ATOMIC_OPS), None)
    if name is None or "shared" in op.mods or "shared::cta" in op.mods:
        raise NotModelled(f"{ins}: only global atom/red of {', '.join(ATOMIC_OPS)} are modelled")
    returns = op.base == "atom"
    addr = ins.operands[1 if returns else 0]
    sources = ins.operands[2 if returns else 1:]
    type_, size = op.type, type_bytes(op.type)
    if not isinstance(addr, Addr):
        raise NotModelled(f"{ins}: address operand {addr}")

    def run(ex: Executor, mask: Array) -> None:
        def apply(lanes: Array) -> None:
            addresses = ex.address(addr)
            values = [ex.read(s, type_) for s in sources]
            olds = np.zeros(ex.lanes.size, storage(type_))
            one = NumpyDomain(1)
            for index in np.nonzero(mask)[0]:
                where = addresses[index:index + 1]
                old = ex.b.memory.read(where, size).view(storage(type_))[:, 0]
                new = ATOMIC_OPS[name](one, type_, old, [v[index:index + 1] for v in values])
                ex.b.memory.write(where, np.ascontiguousarray(new.astype(storage(type_))).view(np.uint8)[None, :])
                olds[index] = old[0]
            if returns:
                ex.write(ins.operands[0], olds, mask)
        _access(ex, mask, ins, apply)
    return Step(ins, run)


def _shuffle_step(ins: Instruction, op: Op) -> Step:
    """shfl.sync.{up,down,bfly,idx}.b32 d, a, b, c, membermask (PTX ISA's definition)."""
    mode = next((m for m in op.mods if m in ("up", "down", "bfly", "idx")), None)
    if mode is None or len(ins.operands) != 5 or not isinstance(ins.operands[0], Reg):
        raise NotModelled(f"{ins}: shfl forms other than shfl.sync.MODE.b32 d, a, b, c, mask")

    def run(ex: Executor, mask: Array) -> None:
        value, b, c, members = (ex.read(o, "b32").astype(np.int64) for o in ins.operands[1:])
        lane = (ex.take(ex.b.tid) % WARP).astype(np.int64)
        bval, cval, segmask = b & 31, c & 31, (c >> 8) & 31
        max_lane = (lane & segmask) | (cval & ~segmask)
        min_lane = lane & segmask
        source, valid = {
            "up": (lane - bval, lane - bval >= min_lane),
            "down": (lane + bval, lane + bval <= max_lane),
            "bfly": (lane ^ bval, (lane ^ bval) <= max_lane),
            "idx": (min_lane | (bval & ~segmask), (min_lane | (bval & ~segmask)) <= max_lane),
        }[mode]
        _check_members(ex, ins, mask, members)
        position = np.full(ex.b.lane.size + WARP, -1)
        position[ex.lanes[mask]] = np.nonzero(mask)[0]
        source_lane = ex.lanes - lane + np.where(valid, source, lane)
        found = position[source_lane[mask]]
        if (found < 0).any():
            bad = int(ex.lanes[mask][found < 0][0])
            raise EmulationError("shuffle", f"{ins}: {ex.b.where(bad)} reads a lane that does not execute the shuffle")
        result = np.zeros(ex.lanes.size, np.uint32)
        result[mask] = value[found].astype(np.uint32)
        ex.write(ins.operands[0], result, mask)
    return Step(ins, run)


def _check_members(ex: Executor, ins: Instruction, mask: Array, members: Array) -> None:
    """Every lane named in a member mask must execute the instruction with the lanes naming it."""
    executing = ex.lanes[mask]
    warp = ex.b.warp[executing]
    present = np.zeros(ex.b.warp.max() + 1, np.int64)
    np.bitwise_or.at(present, warp, np.int64(1) << (ex.b.tid[executing] % WARP))
    absent = members[mask] & ~present[warp]
    missing = executing[absent != 0]
    if missing.size:
        absent = int(absent[absent != 0][0])
        raise EmulationError("shuffle", f"{ins}: the member mask of {ex.b.where(int(missing[0]))} names lanes "
                             f"{absent:#010x} of its warp, which do not execute it with it")


def _mapa_step(ins: Instruction, op: Op) -> Step:
    if "shared::cluster" not in op.mods or op.type != "u32":
        raise NotModelled(f"{ins}: only mapa.shared::cluster.u32 is modelled")

    def run(ex: Executor, mask: Array) -> None:
        address, rank = ex.read(ins.operands[1], "u32"), ex.read(ins.operands[2], "u32")
        bad = mask & (rank >= ex.b.launch.cluster_size)
        if bad.any():
            lane = int(ex.lanes[np.nonzero(bad)[0][0]])
            raise EmulationError("out_of_bounds", f"{ins}: CTA rank {int(rank[lane])} outside a cluster of "
                                 f"{ex.b.launch.cluster_size} ({ex.b.where(lane)})")
        mapped = CLUSTER_FLAG | (rank << np.uint32(RANK_SHIFT)) | (address & np.uint32((1 << RANK_SHIFT) - 1))
        ex.write(ins.operands[0], mapped.astype(np.uint32), mask)
    return Step(ins, run)


def _nothing(ex: Executor, mask: Array) -> None:
    return None


def _branch_step(ins: Instruction, op: Op, labels: dict[str, int]) -> Step:
    target = ins.operands[0] if ins.operands else None
    if not isinstance(target, Sym) or target.name not in labels:
        raise NotModelled(f"{ins}: branch target {target}")
    return Step(ins, _nothing, "branch", labels[target.name], uniform=op.has("uni"))


def _barrier_step(ins: Instruction, op: Op) -> Step:
    if op.base == "barrier" and op.has("cluster"):
        if op.has("arrive"):  # the wait that follows is where the cluster meets
            return Step(ins, lambda ex, mask: _cluster_arrival(ex, mask, ins, True))
        return Step(ins, lambda ex, mask: _cluster_arrival(ex, mask, ins, False), "cluster_barrier")
    if len(ins.operands) != 1 or op.has("arrive", "red"):
        raise NotModelled(f"{ins}: only bar.sync/barrier.sync of the whole CTA is modelled")
    return Step(ins, _nothing, "barrier")


def _cluster_arrival(ex: Executor, mask: Array, ins: Instruction, arriving: bool) -> None:
    """A thread arrives at a cluster barrier once, then waits: a second arrival, or a wait with no
    arrival before it (the cluster would wait for that thread forever), is a deadlock."""
    lanes = ex.lanes[mask]
    wrong = lanes[ex.b.arrived[lanes] == arriving]
    if wrong.size:
        what = "arrives a second time before its wait" if arriving else "waits with no arrival before it"
        raise EmulationError("deadlock", f"{ins}: {ex.b.where(int(wrong[0]))} {what}")
    ex.b.arrived[lanes] = arriving


ASYNC_COPY_BYTES = (4, 8, 16)


def _async_step(ins: Instruction, op: Op) -> Step:
    """cp.async: a copy from global to shared memory that lands at a wait (commit_group closes a
    group; wait_group N lands every group but the N newest; wait_all lands every copy)."""
    if op.mods[:1] != ("async",) or op.has("bulk"):
        raise NotModelled(f"{ins}: only cp.async (not bulk copies) is modelled")
    if op.has("commit_group"):
        return Step(ins, _commit_copies)
    if op.has("wait_group", "wait_all"):
        given = ins.operands[0] if ins.operands else None
        keep = 0 if op.has("wait_all") else given.value if isinstance(given, Imm) else None
        if keep is None:
            raise NotModelled(f"{ins}: wait_group takes an immediate")
        return Step(ins, lambda ex, mask: _land_copies(ex, mask, int(keep), op.has("wait_all")))
    return _copy_step(ins, op)


def _copy_step(ins: Instruction, op: Op) -> Step:
    if not op.has("shared", "shared::cta") or not op.has("global") or not 3 <= len(ins.operands) <= 4:
        raise NotModelled(f"{ins}: only cp.async.ca/cg.shared.global [dst], [src], size[, src_size] is modelled")
    dest, source, size_operand = ins.operands[:3]
    if not isinstance(dest, Addr) or not isinstance(source, Addr) or not isinstance(size_operand, Imm):
        raise NotModelled(f"{ins}: operands")
    size = int(size_operand.value)
    if size not in ASYNC_COPY_BYTES or (op.has("cg") and size != 16):
        raise NotModelled(f"{ins}: copies {size} bytes (.ca: 4, 8 or 16; .cg: 16)")
    filled = ins.operands[3] if len(ins.operands) == 4 else None

    def run(ex: Executor, mask: Array) -> None:
        def issue(lanes: Array) -> None:
            raw = ex.b.memory.read(ex.address(source)[mask], size)
            if filled is not None:  # bytes past src_size are zeros
                kept = ex.read(filled, "u32")[mask].astype(np.int64)
                raw = np.where(np.arange(size)[None, :] < kept[:, None], raw, 0).astype(np.uint8)
            ctas, offsets = _shared_target(ex, ex.address(dest)[mask], "shared", lanes)
            ex.b.shared.check(ctas, offsets, size)
            ex.b.copies.append(AsyncCopy(lanes, ctas, offsets, raw, ex.b.committed[lanes].copy()))
        _access(ex, mask, ins, issue)
    return Step(ins, run)


def _commit_copies(ex: Executor, mask: Array) -> None:
    ex.b.committed[ex.lanes[mask]] += 1


def _land_copies(ex: Executor, mask: Array, keep: int, commit: bool) -> None:
    """The waiting lanes' copies of every group but their `keep` newest land in shared memory."""
    if commit:
        _commit_copies(ex, mask)
    waiting = np.zeros(ex.b.lane.size, bool)
    waiting[ex.lanes[mask]] = True
    pending = []
    for copy in ex.b.copies:
        lands = waiting[copy.lanes] & (copy.group < ex.b.committed[copy.lanes] - keep)
        if lands.any():
            try:
                ex.b.shared.write(copy.ctas[lands], copy.offsets[lands], copy.raw[lands], copy.lanes[lands])
            except MemoryFault as fault:
                lane = int(copy.lanes[lands][fault.lanes[0]]) if fault.lanes.size else int(copy.lanes[0])
                message = f"a cp.async landing at a wait: {fault} ({ex.b.where(lane)})"
                raise EmulationError(fault.kind, message) from None
        rest = ~lands
        if rest.any():
            pending.append(AsyncCopy(copy.lanes[rest], copy.ctas[rest], copy.offsets[rest], copy.raw[rest],
                                     copy.group[rest]))
    ex.b.copies = pending


def _cvta_step(ins: Instruction, op: Op) -> Step:
    if not op.has("to") or not op.has("global"):
        raise NotModelled(f"{ins}: only cvta.to.global is modelled")

    def run(ex: Executor, mask: Array) -> None:
        ex.write(ins.operands[0], ex.read(ins.operands[1], "u64"), mask)
    return Step(ins, run)


STEPS: dict[str, Callable[[Instruction, Op], Step]] = {
    "ld": _load_step, "st": _store_step, "atom": _atomic_step, "red": _atomic_step, "shfl": _shuffle_step,
    "mapa": _mapa_step, "cvta": _cvta_step, "cp": _async_step, "bar": _barrier_step, "barrier": _barrier_step,
    "fence": lambda ins, op: Step(ins, _nothing), "membar": lambda ins, op: Step(ins, _nothing),
    "ret": lambda ins, op: Step(ins, _nothing, "exit"), "exit": lambda ins, op: Step(ins, _nothing, "exit"),
}


def compile_entry(entry: Entry) -> list[Step]:
    """Every instruction made ready to run; NotModelled names the first that is not modelled."""
    steps = []
    for ins in entry.body:
        op = decode(ins.opcode)
        try:
            if op.base == "bra":
                steps.append(_branch_step(ins, op, entry.labels))
            elif op.base in STEPS:
                steps.append(STEPS[op.base](ins, op))
            elif op.base in SEMANTICS:
                steps.append(_data_step(ins, op))
            else:
                raise NotModelled(f"instruction {op.base}")
        except NotModelled as err:
            raise NotModelled(f"line {ins.line}: {ins.opcode}: {err}") from None
    return steps


def _guard(ex: Executor, step: Step) -> Array:
    """Which of the selected lanes the instruction's guard lets through."""
    guard = step.instruction.guard
    if guard is None:
        return np.ones(ex.lanes.size, bool)
    value = ex.take(ex.register(guard.reg)).astype(bool)
    return ~value if guard.negated else value


def _check_uniform(batch: Batch, step: Step, active: Array, taken: Array) -> None:
    warp = batch.warp
    sizes = np.bincount(warp[active], minlength=warp.max() + 1)
    taking = np.bincount(warp[taken], minlength=warp.max() + 1)
    split = np.nonzero((taking > 0) & (taking < sizes))[0]
    if split.size:
        lane = int(np.nonzero(warp == split[0])[0][0])
        raise EmulationError("divergence", f"{step.instruction}: bra.uni diverges in the warp of {batch.where(lane)}")


def _advance(batch: Batch, step: Step, active: Array, mask: Array) -> None:
    """Move the active lanes on; `mask`: those the guard let through (over the whole batch)."""
    if step.kind == "branch":
        if step.uniform:
            _check_uniform(batch, step, active, mask)
        batch.pc[active] += 1
        batch.pc[mask] = step.branch
    elif step.kind == "exit":
        batch.status[mask] = EXITED
        batch.pc[active & ~mask] += 1
    elif step.kind in ("barrier", "cluster_barrier"):
        batch.status[mask] = BARRIER if step.kind == "barrier" else CLUSTER_BARRIER
        batch.pc[active & ~mask] += 1
    else:
        batch.pc[active] += 1


def _release(batch: Batch, steps: list[Step]) -> None:
    """No lane can run: release each CTA (or cluster) whose live threads all wait at one barrier;
    anything else is a divergent barrier or a deadlock."""
    threads = batch.launch.threads
    status = batch.status.reshape(batch.ctas, threads)
    pcs = batch.pc.reshape(batch.ctas, threads)
    released = False
    for kind, group in ((BARRIER, 1), (CLUSTER_BARRIER, batch.launch.cluster_size)):
        waiting = status.reshape(-1, group * threads)
        grouped_pc = pcs.reshape(-1, group * threads)
        for index in np.nonzero((waiting == kind).any(axis=1))[0]:
            row, at = waiting[index], grouped_pc[index]
            _check_barrier(batch, steps, row, at, kind, index * group * threads)
            lanes = slice(index * group * threads, (index + 1) * group * threads)
            meeting = batch.status[lanes] == kind
            batch.status[lanes][meeting] = RUN
            batch.pc[lanes][meeting] += 1
            batch.shared.epoch[index * group:(index + 1) * group] += 1
            if kind == CLUSTER_BARRIER:
                batch.shared.cluster_epoch[index * group:(index + 1) * group] += 1
            released = True
        if released:
            return
    lane = int(np.nonzero(batch.status != EXITED)[0][0])
    raise EmulationError("deadlock", f"no thread can go on ({batch.where(lane)} waits at "
                         f"{steps[batch.pc[lane]].instruction})")


def _check_barrier(batch: Batch, steps: list[Step], row: Array, at: Array, kind: int, first_lane: int) -> None:
    live = row != EXITED
    places = np.unique(at[row == kind])
    if (row[live] != kind).any() or places.size > 1:
        lane = first_lane + int(np.nonzero(live & (row != kind))[0][0]) if (row[live] != kind).any() else first_lane
        raise EmulationError("barrier_divergence", f"{steps[at[row == kind][0]].instruction}: a barrier waits for "
                             f"threads that are elsewhere ({batch.where(lane)} is at "
                             f"{steps[min(batch.pc[lane], len(steps) - 1)].instruction})")
    if not live.all():
        raise EmulationError("barrier_divergence", f"{steps[places[0]].instruction}: {int(live.sum())} of "
                             f"{row.size} threads reach a barrier; the others exited before it")


def _run_batch(batch: Batch, steps: list[Step], max_steps: int, executed: Array) -> int:
    ex = Executor(batch)
    count = 0
    while True:
        running = batch.status == RUN
        if not running.any():
            if (batch.status == EXITED).all():
                return count
            _release(batch, steps)
            continue
        pc = int(batch.pc[running].min())
        if pc >= len(steps):
            raise EmulationError("fell_off", "threads ran past the last instruction without ret or exit")
        active = running & (batch.pc == pc)
        step = steps[pc]
        ex.select(active)
        mask = _guard(ex, step)
        executed[pc] |= bool(mask.any())
        step.run(ex, mask)
        taken = np.zeros(batch.lane.size, bool)
        taken[ex.lanes[mask]] = True
        _advance(batch, step, active, taken)
        count += 1
        if count > max_steps:
            raise EmulationError("step_limit", f"more than {max_steps} steps: a loop that does not end?")


def _check_launch(entry: Entry, launch: Launch) -> None:
    required = entry.performance.get(".reqntid")
    if required and tuple(required) + (1,) * (3 - len(required)) != launch.block:
        raise EmulationError("launch", f"the kernel requires {required} threads per CTA, launched with {launch.block}")
    cluster = entry.performance.get(".reqnctapercluster")
    if cluster and tuple(cluster) + (1,) * (3 - len(cluster)) != launch.cluster:
        raise EmulationError("launch", f"the kernel requires clusters of {cluster}, launched with {launch.cluster}")
    if launch.cluster[1:] != (1, 1) or launch.grid[0] % launch.cluster[0]:
        raise NotModelled("clusters other than (n, 1, 1) dividing the grid's x")


def _batches(launch: Launch, only: Sequence[int] | None) -> list[tuple[int, int]]:
    """(first CTA, CTAs) of each batch: the whole grid in batches of whole clusters, or just the
    clusters holding the CTAs `only` names."""
    cluster = launch.cluster_size
    if only is not None:
        firsts = sorted({c // cluster * cluster for c in only if 0 <= c < launch.ctas})
        return [(first, cluster) for first in firsts]
    per_batch = max(1, MAX_LANES // launch.threads // cluster) * cluster
    return [(first, min(per_batch, launch.ctas - first)) for first in range(0, launch.ctas, per_batch)]


def emulate(ptx: str | Module, launch: Launch, arguments: list[Array], outputs: set[int] = frozenset(),
            kernel: str | None = None, max_steps: int = 5_000_000, ctas: Sequence[int] | None = None) -> Emulation:
    """Run the kernel on `arguments` (one array per parameter, each passed as a pointer to its
    bytes); returns the arguments' bytes afterwards. With `ctas`, only those CTAs run (each with
    its whole cluster), as in the full launch: to replay what some threads do. Raises NotModelled
    for what the emulator does not model and EmulationError for what the kernel must not do."""
    module = parse_ptx(ptx) if isinstance(ptx, str) else ptx
    entry = module.entries[kernel] if kernel else next(iter(module.entries.values()))
    if len(arguments) != len(entry.params):
        raise EmulationError("launch", f"{entry.name} takes {len(entry.params)} parameters, given {len(arguments)}")
    _check_launch(entry, launch)
    steps = compile_entry(entry)
    memory = GlobalMemory()
    params = {p.name: memory.add(p.name, a, i in outputs) for i, (p, a) in enumerate(zip(entry.params, arguments))}
    globals_ = {v.name: memory.add(v.name, np.zeros(max(v.size, 1), np.uint8)) for v in module.globals}
    total = 0
    executed = np.zeros(len(steps), bool)
    for first, count in _batches(launch, ctas):
        shared = SharedMemory(module.shared + entry.shared, count, launch.shared_bytes, launch.threads)
        batch = Batch(entry, launch, first, count, memory, params, globals_, shared)
        total += _run_batch(batch, steps, max_steps, executed)
    result = Emulation([b.data for b in memory.buffers[:len(arguments)]], steps=total, executed=executed)
    for index in outputs:
        writes = memory.buffers[index].writes
        result.unwritten[index] = int((writes == 0).sum())
        result.rewritten[index] = int((writes > 1).sum())
        result.writes[index] = writes
    return result
