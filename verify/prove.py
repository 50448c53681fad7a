"""Proofs about a PTX kernel on a symbolic tile: one thread of one CTA, with its CTA and thread
coordinates symbolic (so a proof covers every thread of every CTA), the kernel's buffers at
symbolic addresses, the launch and the shapes as in production.

The kernel is executed symbolically with `verify.semantics` evaluated in the z3 domain; each
conditional branch forks the path where some thread can take either side, so loops unroll as far
as any thread goes. Global loads read the inputs' bytes (z3 arrays); every global load and store
is recorded with its address, the condition under which it happens and a store's bytes (each
execution of an instruction on a path, such as each trip of a loop, as an access of its own). What
other threads supply (shuffles, shared and cluster-shared loads) is abstracted as any value at
all; shared accesses and CTA barriers are recorded for the race and barrier obligations. The obligations are then one
solver query each:

- in bounds: every access lies inside the buffer its address is derived from, aligned to its size;
- inputs unchanged: no store lands in a buffer the kernel only reads;
- written at most once: no two stores (of two threads, or two stores of one thread) overlap;
- written at least once: every byte of every output is covered by some store (found by inverting
  the store's offset: affine in the thread's linear index, or a sum of weighted bits of the CTA
  and thread indices, by mixed-radix division; the inverse is a candidate the query checks);
- read in full: every element of an input that the IR reduces through ops carrying a NaN is loaded
  by some thread (a kernel that never reads one cannot see a NaN there, which must reach an output);
- no shared-memory race: two threads of one CTA (both symbolic) never touch the same shared byte
  between the same two barriers with one of them writing (each shared access is recorded with the
  number of CTA barriers its path passed before it). A cluster barrier met in two steps
  (`barrier.cluster.arrive`, later `barrier.cluster.wait`) ends the epoch at the wait, and an
  access between the two may meet other threads' accesses of both epochs beside the wait: only
  loads of the thread's own shared stores are modelled there, other accesses are inconclusive;
- no barrier under divergent control: each barrier instance (an instruction, as a path's n-th
  barrier) is reached by every thread of a CTA or by none;
- a workspace shared by CTAs (module-scope globals: a full reduction's parts) is used by the
  last-CTA protocol (`Protocol`): each CTA's one arriving thread adds one to a counter that starts
  at 0 (`atom.global.add.u32`; the executor forks into the CTA that finds the others' count, one
  symbolic CTA `Tile.last`, and the rest), every part is released by a fence at GPU scope before
  the arrival, the last CTA reads after its acquire and sets the counter back to 0, and a load no
  arrival orders meets no other CTA's store; no two stores to the workspace overlap. One thread's
  store to shared memory that the CTA reads after a barrier (the last CTA's flag) is that thread's
  value (`_broadcast`);
- output values: every stored element equals the IR's value for it (`verify.ir_symbolic`); a few
  threads are first tested on random input bytes, so that a difference many threads show is found
  without a search (a difference found this way is a model like any other, checked by the solver).
  A reduction's tree in the stored value (and each one its terms use, such as softmax's max) is
  first proved to accumulate the IR's elements, each once (`verify.reductions`, which follows the
  provenance kept for shuffles and shared loads), and replaced by the IR's accumulated value; the
  two sides are compared in one canonical form (`Canonical`), by congruence where they differ in
  a few subterms, and whole.

Each obligation is proved (the query is unsatisfiable), refuted (a model: the thread and element
it fails for, in the user's terms; never one that rests on abstracted values; replayed concretely
on the CPU emulator with the model's inputs, `verify.replay`) or inconclusive (the
solver gave up within its time, or the kernel uses what this executor does not model: atomics
other than a last-CTA arrival, the values of a workspace across more than one CTA, loops longer
than MAX_TRIPS). A vacuity check comes first: the
assumptions about the launch must be satisfiable, or every proof would be empty."""

from __future__ import annotations

import ctypes
import hashlib
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3

from ir.dtypes import DType
from ir.kernel import Kernel
from ir.ops import Op as IrOp
from verify import witness
from verify.emulate import ASYNC_COPY_BYTES, Launch, immediate_bits
from verify.ir_symbolic import Inexact, IrTerms, describe, is_nan
from verify.memory import CLUSTER_FLAG as MEMORY_CLUSTER_FLAG
from verify.memory import RANK_SHIFT, layout
from verify.ptxparse import Addr, Entry, Imm, Instruction, Reg, Sym, Var, Vec, parse_ptx, type_bytes
from verify.replay import Replayable, chosen_bytes, replay
from verify.semantics import SEMANTICS, NotModelled, Op, decode, width
from verify.symbolic import Z3Domain, decoded, to_float
from verify.symbolic import nodes as _nodes
from verify.tree_verdicts import ONLINE_PARTS

ALIGNMENT = 256  # buffers start at multiples of this (what the CUDA allocator guarantees)
MAX_PATHS = 128
EXECUTION_SECONDS = 20.0  # symbolic execution of one kernel longer than this is left inconclusive
MAX_TRIPS = 256  # column reductions of 4096 rows walk 128 trips
PATH_TIMEOUT_MS = 5_000
PROOF_TIMEOUT_MS = 10_000
VALUE_LOGIC = "QF_FPBV"  # the solver for value queries (see _check)
RETRY_SEEDS = (1, 2)  # z3's seeds for the further tries at a value query it gave up on (see Prover.decide)
RETRY_MS = 5_000  # the time of each
KERNEL_SECONDS = 60.0  # a kernel's obligations not reached within this are left inconclusive
# An obligation whose terms nest deeper than a walk over them can go within Python's recursion
# limit (a long chain of online steps in one thread): inconclusive, saying so, never a crash.
TOO_DEEP = "its terms nest too deeply to follow (past Python's recursion limit)"
TREES_MARGIN_SECONDS = 5  # the reductions stop this early: a step under way may take that long to end
THREAD_NAMES = ("cta", "tid")
SAMPLED_THREADS = 8  # threads a value query tests with random input bytes before searching


@dataclass(frozen=True)
class Access:
    """A global load or store of `size` bytes at `address`, made when `condition` holds."""

    kind: str  # "load" | "store" | "atom"
    instruction: Instruction
    address: z3.BitVecRef
    size: int
    condition: z3.BoolRef
    data: z3.BitVecRef | None = None  # a store's bytes, the first lowest
    occurrence: int = 0  # the instruction's how-manieth execution on its path (a loop's trip), from 0


@dataclass(frozen=True)
class SharedAccess:
    """A load or store of shared memory: `size` bytes at `address` (an offset into the CTA's shared
    window, 32 bits), made when `condition` holds, after `epoch` CTA barriers on its path."""

    kind: str  # "load" | "store"
    instruction: Instruction
    address: z3.BitVecRef
    size: int
    condition: z3.BoolRef
    epoch: int
    cluster: bool  # through the cluster window (.shared::cluster): another CTA's shared memory may be meant
    occurrence: int = 0  # the instruction's how-manieth execution on its path (a loop's trip), from 0
    data: z3.BitVecRef | None = None  # a store's bytes, the first lowest
    cluster_epoch: int = 0  # cluster barriers on its path before it: all that orders it with other CTAs
    between: bool = False  # a load after its thread's cluster arrival, before the wait that ends its epochs


@dataclass(frozen=True)
class Exchange:
    """Where a value another thread supplies came from: a shuffle of `source` (the register's value
    in the thread that supplies it, a term of that thread's coordinates) from the lane `lane` and
    `clamp` select under `mode`; or a load of shared memory at `address` (an offset into the CTA's
    window); or the last CTA's load of a workspace at `address` (an offset into the workspace
    `buffer`), which another CTA's part stored. The loaded or shuffled value is the abstract symbol
    this is recorded under."""

    kind: str  # "shfl" | "shared" | "workspace"
    instruction: Instruction
    condition: z3.BoolRef
    epoch: int
    source: z3.BitVecRef | None = None
    mode: str = ""
    lane: z3.BitVecRef | None = None
    clamp: z3.BitVecRef | None = None
    mask: z3.BitVecRef | None = None
    address: z3.BitVecRef | None = None
    size: int = 0
    cluster: bool = False
    cluster_epoch: int = 0  # cluster barriers on the loading thread's path before it
    occurrence: int = 0  # the instruction's how-manieth execution on its path (a loop's trip), from 0
    buffer: str = ""  # a workspace load's


@dataclass(frozen=True)
class Combine:
    """A float add, sub, max or min, or a 64-bit integer add or sub, of two values (bits), as
    executed: the nodes of a reduction tree (a sub, or an add rounded otherwise than to nearest,
    stands for its other operand where one is the reduction's identity, and is a leaf elsewhere)."""

    opcode: str
    result: z3.BitVecRef
    first: z3.BitVecRef
    second: z3.BitVecRef


@dataclass(frozen=True)
class Barrier:
    """A CTA-wide barrier reached when `condition` holds, as its path's `epoch`-th (from 0)."""

    instruction: Instruction
    condition: z3.BoolRef
    epoch: int


@dataclass
class Obligation:
    name: str
    status: str  # proved | refuted | inconclusive
    detail: str = ""
    seconds: float = 0.0
    witness: dict[str, Any] = field(default_factory=dict)  # a refutation's model, for replaying it
    replay: str = ""  # what replaying the refutation on the emulator showed

    def to_dict(self) -> dict[str, Any]:
        row = {"obligation": self.name, "status": self.status, "detail": self.detail,
               "seconds": round(self.seconds, 3)}
        return {**row, "replay": self.replay} if self.replay else row


@dataclass
class Tile:
    """What symbolic execution of one thread found."""

    entry: Entry
    launch: Launch
    cta: z3.BitVecRef
    tid: z3.BitVecRef
    bases: dict[str, z3.BitVecRef]  # parameter -> its buffer's address
    accesses: list[Access] = field(default_factory=list)
    memory: dict[str, z3.ArrayRef] = field(default_factory=dict)  # parameter -> its bytes (inputs' contents)
    shared: list[SharedAccess] = field(default_factory=list)
    barriers: list[Barrier] = field(default_factory=list)
    # An abstract symbol's term id -> the symbol (kept, so that the id stays its) and where its value came from.
    exchange_ids: dict[int, tuple[z3.ExprRef, Exchange]] = field(default_factory=dict)
    combines: dict[int, Combine] = field(default_factory=dict)  # a float add/sub/max/min result's term id -> it
    # A selp's condition's term id -> the condition (held) and each selp under it: (type, result). An
    # argmax's pair is two selects under one condition (`verify.arg_reductions`).
    selects: dict[int, tuple[z3.BoolRef, list[tuple[str, z3.ExprRef]]]] = field(default_factory=dict)
    paths: int = 0  # paths the execution finished
    renamed: dict[tuple[int, str], tuple[z3.ExprRef, z3.ExprRef]] = field(default_factory=dict)  # `_renamed`'s
    path_stores: list[Access] = field(default_factory=list)  # the global stores of each path, not merged
    workspace: dict[str, Var] = field(default_factory=dict)  # module-scope globals: memory the CTAs share
    last: z3.BitVecRef = field(default_factory=lambda: z3.BitVec(LAST_CTA, 32))  # the CTA that arrives last
    protocol: Protocol = field(default_factory=lambda: Protocol())  # what the workspace's use showed
    pins: dict[int, tuple[z3.BoolRef, int | None]] = field(default_factory=dict)  # `_pinned`'s (term held)
    symbols_below: dict[int, tuple[z3.ExprRef, frozenset[int]]] = field(default_factory=dict)  # `_free_symbols`'s

    @property
    def group(self) -> int:
        """How many CTAs the reduction proofs follow together, their threads numbered rank by rank:
        a cluster's, or every CTA of the launch where the last CTA reads the parts the others left
        in a workspace (`Protocol.across`)."""
        return self.launch.ctas if self.protocol.across else self.launch.cluster_size

    def bytes_of(self, param: str) -> z3.ArrayRef:
        if param not in self.memory:
            self.memory[param] = z3.Array(f"memory {param}", z3.BitVecSort(64), z3.BitVecSort(8))
        return self.memory[param]

    def assumptions(self, suffix: str = "") -> list[z3.BoolRef]:
        """Threads inside the launch (block and grid along x only); with a workspace, the last CTA to
        arrive is one of its CTAs."""
        cta, tid = self.thread(suffix)
        last = [z3.ULT(self.last, self.launch.ctas)] if self.workspace else []
        return [z3.ULT(cta, self.launch.ctas), z3.ULT(tid, self.launch.threads), *last]

    def thread(self, suffix: str) -> tuple[z3.BitVecRef, z3.BitVecRef]:
        return (z3.BitVec(f"cta{suffix}", 32), z3.BitVec(f"tid{suffix}", 32)) if suffix else (self.cta, self.tid)


@dataclass(frozen=True)
class OwnStore:
    """A store of this thread to its CTA's shared memory: `size` bytes of `data` at `address`,
    under its guard (None: unguarded) on the path so far, after `epoch` barriers; `condition` is
    the path's and the guard's."""

    address: z3.BitVecRef
    size: int
    data: z3.BitVecRef
    guard: z3.BoolRef | None
    epoch: int
    condition: z3.BoolRef
    line: int
    occurrence: int


LAST_CTA = "last cta"  # never renamed: one CTA of the launch for every thread
# The most threads the reduction proofs follow one by one as a group of CTAs: a cluster (8 CTAs of
# 512 threads at rows of 262144 take 40-60 s), or a whole launch whose last CTA reads the parts the
# others left in a workspace (49 CTAs of 512 threads summing 100,003 elements: 12 s).
THREADS_FOLLOWED = {"cluster": 8192, "workspace": 32768}
ARRIVAL_COUNT = "arrival count"  # a CTA's: what its arrival finds (a function of the CTA)


@dataclass(frozen=True)
class Arrival:
    """A CTA's arrival at a last-CTA workspace: thread `thread` adds one to `counter` at `line`; on
    this path the CTA is the last to arrive, or not."""

    line: int
    thread: int | None
    counter: str
    last: bool


@dataclass(frozen=True)
class Forwarded:
    """A shared load (at `line`, in epoch `epoch`) that took the bytes thread `thread` stored at
    `store_line` (its `occurrence`-th execution) in epoch `store_epoch`: right if no other store
    touches them in between (checked with the race obligation)."""

    line: int
    address: z3.BitVecRef
    size: int
    condition: z3.BoolRef
    epoch: int
    thread: int
    store_line: int
    occurrence: int
    store_epoch: int


@dataclass
class Part:
    """A workspace store before its CTA's arrival (at `line`, in epoch `epoch`, by the one thread
    `thread` its guard picks, or None) and the fences at GPU scope after it on the path: (epoch,
    the one thread that makes it, None for every thread, -1 for some threads not shown to be one)."""

    line: int
    epoch: int
    thread: int | None
    condition: z3.BoolRef  # the store's, on its path
    fences: list[tuple[int, int | None]] = field(default_factory=list)

    def copy(self) -> Part:
        return Part(self.line, self.epoch, self.thread, self.condition, list(self.fences))

    def released_by(self, arriving: int | None) -> bool:
        """A fence of the arriving thread comes after the store and before the arrival (a release
        pattern), and the store is that thread's or precedes the fence by a barrier (a fence is
        cumulative over what a barrier ordered before it)."""
        return any((who is None or who == arriving) and (self.thread == arriving or epoch > self.epoch)
                   for epoch, who in self.fences)


@dataclass
class Protocol:
    """How a kernel uses a workspace shared by CTAs (the last-CTA protocol): each CTA stores its
    part, releases it (a fence at GPU scope), and one thread adds one to a counter; the CTA that
    finds the count of all the others is the last, acquires (a fence), and reads every part; it
    sets the counter back to 0. `faults` are what breaks that, each naming its line."""

    arrivals: set[int] = field(default_factory=set)
    arriving: int | None = None  # the thread of each CTA that arrives
    resets: set[int] = field(default_factory=set)
    faults: list[str] = field(default_factory=list)
    unfollowed: set[int] = field(default_factory=set)  # workspace loads whose values stay abstract
    across: set[int] = field(default_factory=set)  # workspace loads of other CTAs' parts, their provenance kept
    unordered: list[Access] = field(default_factory=list)  # workspace loads no arrival orders after other CTAs'
    forwarded: list[Forwarded] = field(default_factory=list)
    open: list[str] = field(default_factory=list)  # what the solver did not decide
    acquires: set[int] = field(default_factory=set)  # epochs in which the arriving thread fenced after arriving
    waiting: list[tuple[Access, int]] = field(default_factory=list)  # the last CTA's loads, ordered by a later epoch
    undecided: bool = False  # a query of which thread makes an instruction was not decided

    def fault(self, message: str) -> None:
        if message not in self.faults:
            self.faults.append(message)


@dataclass
class _State:
    pc: int
    regs: dict[str, z3.ExprRef]
    path: list[z3.BoolRef]
    trips: dict[int, int] = field(default_factory=dict)  # branch instruction -> times taken on this path
    epoch: int = 0  # CTA barriers passed on this path
    visits: dict[int, int] = field(default_factory=dict)  # memory instruction's line -> executions on this path
    uncommitted: int = 0  # cp.async copies issued since the last commit_group, not yet landed
    committed: int = 0  # cp.async copies in committed groups, not yet waited for
    cluster_epoch: int = 0  # cluster barriers passed on this path
    stores: list[OwnStore] = field(default_factory=list)  # this thread's shared stores on this path
    workspace_stores: list[Access] = field(default_factory=list)  # this path's stores to a workspace
    parts: list[Part] = field(default_factory=list)  # those stores, with the fences after them
    arrival: Arrival | None = None
    acquired: int | None = None  # the epoch in which the arriving thread fenced after its arrival
    arrived: int | None = None  # the line of this path's cluster arrival not yet waited for

    def fork(self, pc: int, path: list[z3.BoolRef]) -> _State:
        """The same thread on another path from here."""
        return _State(pc, dict(self.regs), path, dict(self.trips), self.epoch, dict(self.visits), self.uncommitted,
                      self.committed, self.cluster_epoch, list(self.stores), list(self.workspace_stores),
                      [p.copy() for p in self.parts], self.arrival, self.acquired, self.arrived)

    def between(self, ins: Instruction, what: str) -> None:
        """Unsupported where this path has arrived at a cluster barrier and not yet waited: only
        loads of the thread's own stores are modelled there (they may meet other CTAs' accesses on
        either side of the barrier, and the race obligation pairs them with both)."""
        if self.arrived is not None:
            raise Unsupported(f"line {ins.line}: {what} between a cluster arrival (line {self.arrived}) and its wait")

    def settled(self, ins: Instruction, what: str) -> None:
        """Unsupported where cp.async copies are still in flight at `ins`: their shared writes are
        recorded where they were issued, which is only right if nothing can see them land later."""
        if self.uncommitted or self.committed:
            raise Unsupported(f"line {ins.line}: {what} while cp.async copies are in flight (not modelled)")

    def visit(self, line: int) -> int:
        """How many times this path executed the instruction at `line` before (and count this one)."""
        seen = self.visits.get(line, 0)
        self.visits[line] = seen + 1
        return seen


SPECIAL_REGISTERS = frozenset({"%tid", "%ctaid", "%ntid", "%nctaid", "%laneid", "%warpid", "%cluster_ctarank",
                               "%clusterid", "%cluster_nctarank", "%nclusterid"})


class Unsupported(NotModelled):
    """Kernel features outside what the symbolic executor models."""


def _special(tile: Tile, name: str) -> z3.BitVecRef:
    launch = tile.launch
    cluster = launch.cluster_size
    table: dict[str, Callable[[], z3.BitVecRef]] = {
        "%tid.x": lambda: tile.tid, "%ctaid.x": lambda: tile.cta,
        "%ntid.x": lambda: z3.BitVecVal(launch.threads, 32), "%nctaid.x": lambda: z3.BitVecVal(launch.ctas, 32),
        "%laneid": lambda: z3.URem(tile.tid, 32), "%warpid": lambda: z3.UDiv(tile.tid, 32),
        "%cluster_ctarank": lambda: z3.URem(tile.cta, cluster), "%clusterid.x": lambda: z3.UDiv(tile.cta, cluster),
        "%cluster_nctarank": lambda: z3.BitVecVal(cluster, 32),
        "%nclusterid.x": lambda: z3.BitVecVal(launch.ctas // cluster, 32),
    }
    if name not in table or launch.block[1:] != (1, 1) or launch.grid[1:] != (1, 1) or launch.cluster[1:] != (1, 1):
        raise Unsupported(f"special register {name} (only 1-D launches and clusters)")
    return table[name]()


class Executor:
    """Symbolic execution of one thread: forks at conditional branches, records accesses."""

    def __init__(self, tile: Tile, shared_symbols: dict[str, int], broadcasts: list[SharedAccess] = ()) -> None:
        self.tile = tile
        self.broadcasts = list(broadcasts)  # shared stores of one thread that the others may read (`_broadcast`)
        self.domain = Z3Domain()
        self.shared_symbols = shared_symbols  # shared variables: their offsets (their contents are abstracted)
        self.abstractions = 0
        self.integers: dict[int, tuple[z3.ExprRef, bool]] = {}  # `integer_only`'s answers
        self.simple: dict[int, tuple[z3.ExprRef, z3.ExprRef]] = {}  # `simplified`'s

    def read(self, state: _State, operand: object, type_: str) -> z3.ExprRef:
        if isinstance(operand, Reg):
            return self._fit(self._register(state, operand.name), type_)
        if isinstance(operand, Imm):
            return self.domain.constant(immediate_bits(operand, type_), type_)
        if isinstance(operand, Sym) and operand.name in self.tile.bases:
            return self.tile.bases[operand.name]
        if isinstance(operand, Sym) and operand.name in self.shared_symbols:
            return self.domain.constant(self.shared_symbols[operand.name], type_)
        if isinstance(operand, Vec):
            return self.read_vector(state, operand, type_)
        raise Unsupported(f"operand {operand}")

    def _register(self, state: _State, name: str) -> z3.ExprRef:
        if name in state.regs:
            return state.regs[name]
        if name.split(".")[0] in SPECIAL_REGISTERS:
            return _special(self.tile, name)
        type_ = self.tile.entry.registers.get(name)
        if type_ is None:
            raise Unsupported(f"register {name} is not declared")
        unset = z3.Bool(f"unset {name}") if type_ == "pred" else z3.BitVec(f"unset {name}", width(type_))
        state.regs[name] = unset  # a value read before any write: anything at all
        return unset

    def _fit(self, value: z3.ExprRef, type_: str) -> z3.ExprRef:
        if type_ == "pred" or z3.is_bool(value):
            return value
        have, want = value.size(), width(type_)
        if have == want:
            return value
        return z3.Extract(want - 1, 0, value) if have > want else z3.ZeroExt(want - have, value)

    def write(self, state: _State, operand: object, value: z3.ExprRef, guard: z3.BoolRef | None) -> None:
        if isinstance(operand, Vec):
            self.write_vector(state, operand, value, guard)
            return
        if not isinstance(operand, Reg):
            raise Unsupported(f"destination {operand}")
        type_ = self.tile.entry.registers.get(operand.name)
        if type_ is None:
            raise Unsupported(f"register {operand.name} is not declared")
        value = self._fit(value, type_)
        if guard is not None:
            value = z3.If(guard, value, self._register(state, operand.name))
        state.regs[operand.name] = value

    def guard(self, state: _State, ins: Instruction) -> z3.BoolRef | None:
        if ins.guard is None:
            return None
        value = self._register(state, ins.guard.reg)
        return z3.Not(value) if ins.guard.negated else value

    def run(self) -> None:
        entry = self.tile.entry
        pending = [_State(0, {}, [])]
        finished = 0
        deadline = time.perf_counter() + EXECUTION_SECONDS
        while pending:
            state = pending.pop()
            while state.pc < len(entry.body):
                if time.perf_counter() > deadline:
                    raise Unsupported(f"symbolic execution took more than {EXECUTION_SECONDS:.0f} s "
                                      f"({finished} path(s) done, {len(pending) + 1} open)")
                forked = self.step(state, entry.body[state.pc])
                if forked is not None:
                    pending.append(forked)
                    if len(pending) + finished > MAX_PATHS:
                        raise Unsupported(f"more than {MAX_PATHS} paths")
                if state.pc < 0:
                    break
            finished += 1
        self.tile.paths = finished

    def step(self, state: _State, ins: Instruction) -> _State | None:
        """Run one instruction; returns the other side of a conditional branch, if any."""
        op = decode(ins.opcode)
        guard = self.guard(state, ins)
        handler = STEPS.get(op.base)
        if handler is not None:
            return handler(self, state, ins, op, guard)
        if op.base not in SEMANTICS:
            raise Unsupported(f"line {ins.line}: {ins.opcode}")
        spec = SEMANTICS[op.base]
        types = spec.operands(op)
        if (isinstance(ins.operands[0], Vec) or any(isinstance(o, Vec) for o in ins.operands[1:])) and op.base != "mov":
            raise Unsupported(f"line {ins.line}: {ins.opcode} with a vector operand")
        sources = [self.read(state, o, t) for o, t in zip(ins.operands[1:], types[1:])]
        result = spec.meaning(self.domain, op, sources)
        if op.base == "selp":
            self.tile.selects.setdefault(sources[2].get_id(), (sources[2], []))[1].append((op.type, result))
        if len(sources) == 2 and op.type in COMBINED_TYPES.get(op.base, ()):
            combine = Combine(ins.opcode, result, *sources)
            self.tile.combines[result.get_id()] = combine
            if op.type in FLOAT_TYPES:
                value = to_float(result, op.type)  # the float itself, as later float operations see it
                if not value.eq(z3.fpBVToFP(result, value.sort())):
                    self.tile.combines[value.get_id()] = combine
        self.write(state, ins.operands[0], result, guard)
        state.pc += 1
        return None

    def compact(self, state: _State) -> None:
        """At a loop's back edge: each register that holds integer arithmetic alone (of the thread's
        coordinates, buffer bases, constants) simplified, so that an index stepped on every trip stays
        one sum, not a chain as long as the trips so far. Registers with floats or loaded bytes in them
        are left as they are (reductions key on their terms)."""
        for name, value in state.regs.items():
            if z3.is_bv(value) and self.integer_only(value):
                state.regs[name] = simple = self.simplified(value)
                self.integers.setdefault(simple.get_id(), (simple, True))  # as integer as what it simplifies

    def integer_only(self, term: z3.ExprRef) -> bool:
        """Whether every subterm of `term` is a bit vector or a Boolean (no float, no memory);
        walked without recursion (a term is as deep as the code before the first back edge). The
        walk stops at the first subterm that is not: every node whose children it was visiting
        contains it (a float accumulator is found at once, however long its chain)."""
        pending = [(term, False)]
        while pending:
            node, expanded = pending.pop()
            key = node.get_id()
            if key in self.integers:
                if not self.integers[key][1]:
                    self._not_integer([n for n, e in pending if e])
                    break
                continue
            if node.sort().kind() not in (z3.Z3_BV_SORT, z3.Z3_BOOL_SORT):
                self._not_integer([node] + [n for n, e in pending if e])
                break
            if expanded:
                self.integers[key] = (node, True)  # every child was: the term held, its id stays its
            else:
                pending.append((node, True))
                pending.extend((c, False) for c in node.children())
        return self.integers[term.get_id()][1]

    def _not_integer(self, nodes: list[z3.ExprRef]) -> None:
        for node in nodes:
            self.integers[node.get_id()] = (node, False)

    def simplified(self, term: z3.ExprRef) -> z3.ExprRef:
        key = term.get_id()
        if key not in self.simple:
            self.simple[key] = (term, z3.simplify(term))
        return self.simple[key][1]

    def read_vector(self, state: _State, vec: Vec, type_: str) -> z3.BitVecRef:
        """mov's {a, b} source: the registers' bits side by side, the first lowest."""
        parts = [self._register(state, r) for r in vec.regs if r is not None]
        return self._fit(z3.Concat(*reversed(parts)) if len(parts) > 1 else parts[0], type_)

    def write_vector(self, state: _State, vec: Vec, value: z3.BitVecRef, guard: z3.BoolRef | None) -> None:
        """mov's {a, b} destination: the value's bits split, the lowest into the first."""
        low = 0
        for name in vec.regs:
            if name is None:
                continue
            bits = width(self.tile.entry.registers[name])
            self.write(state, Reg(name), z3.Extract(low + bits - 1, low, value), guard)
            low += bits


def _condition(state: _State, guard: z3.BoolRef | None) -> z3.BoolRef:
    return z3.And(*state.path, *([guard] if guard is not None else []))


def _feasible(tile: Tile, path: list[z3.BoolRef]) -> bool:
    """Whether some thread of the launch follows `path` (unknown counts as feasible)."""
    result, _ = _check(tile.assumptions() + path, timeout_ms=PATH_TIMEOUT_MS)
    return result != z3.unsat


def _branch(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """Both sides of a conditional branch are followed where some thread can take them, so a loop
    unrolls as far as any thread goes; past MAX_TRIPS trips of one branch the kernel is left
    inconclusive."""
    target = ins.operands[0]
    if not isinstance(target, Sym) or target.name not in ex.tile.entry.labels:
        raise Unsupported(f"line {ins.line}: branch target {target}")
    destination = ex.tile.entry.labels[target.name]
    state.trips[state.pc] = state.trips.get(state.pc, 0) + 1
    if state.trips[state.pc] > MAX_TRIPS:
        raise Unsupported(f"line {ins.line}: a loop of more than {MAX_TRIPS} trips")
    backward = destination <= state.pc
    if guard is None:
        state.pc = destination
        if backward:
            ex.compact(state)
        return None
    taken, fallen = [*state.path, guard], [*state.path, z3.Not(guard)]
    if not _feasible(ex.tile, taken):
        state.path, state.pc = fallen, state.pc + 1
        return None
    if not _feasible(ex.tile, fallen):
        state.path, state.pc = taken, destination
        if backward:
            ex.compact(state)
        return None
    other = state.fork(destination, taken)
    if backward:
        ex.compact(other)
    state.path, state.pc = fallen, state.pc + 1
    return other


def _abstract(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None,
              provenance: Callable[[int], Exchange] | None = None) -> _State | None:
    """What other threads supply (a shuffle, a shared or cluster-shared load): any value at
    all, named "abstract ..." so that a refutation resting on one is not believed. `provenance`
    gives, for the index of a destination, where its value came from (kept for the reduction
    proofs, which follow it to the thread that supplied it)."""
    destinations = ins.operands[0].regs if isinstance(ins.operands[0], Vec) else (ins.operands[0],)
    for index, dest in enumerate(destinations):
        if dest is None:
            continue
        name = dest if isinstance(dest, str) else dest.name
        type_ = ex.tile.entry.registers.get(name, "b32")
        ex.abstractions += 1
        value = z3.Bool(f"abstract {ex.abstractions}") if type_ == "pred" else \
            z3.BitVec(f"abstract {ex.abstractions} line {ins.line}.{index}", width(type_))
        if provenance is not None and type_ != "pred":
            ex.tile.exchange_ids[value.get_id()] = (value, provenance(index))
        ex.write(state, Reg(name), value, guard)
    state.pc += 1
    return None


def _shuffle(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """shfl.sync.MODE.b32 d, a, b, c, mask: the value is abstracted; where it came from is kept."""
    modes = [m for m in op.mods if m in ("bfly", "down", "up", "idx")]
    if len(ins.operands) != 5 or not isinstance(ins.operands[0], Reg) or not modes:
        return _abstract(ex, state, ins, op, guard)
    source, lane, clamp, mask = (ex.read(state, o, "b32") for o in ins.operands[1:])
    exchange = Exchange("shfl", ins, _condition(state, guard), state.epoch, source=source, mode=modes[0],
                        lane=lane, clamp=clamp, mask=mask, occurrence=state.visit(ins.line))
    return _abstract(ex, state, ins, op, guard, lambda index: exchange)


def _no_effect(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """Fences, warp-level barriers, a cluster barrier's arrival: no effect on one thread's accesses."""
    state.pc += 1
    return None


CTA_BARRIERS = {("bar", "sync"), ("barrier", "sync"), ("bar", "red"), ("barrier", "red"), ("barrier", "wait")}


def _barrier(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """A barrier every thread of the CTA waits at (bar.sync, barrier.sync, a cluster barrier's
    wait) is recorded with the path's condition and ends the path's epoch; a guarded one forks the
    path where threads can take either side. Other barriers (bar.warp.sync, arrivals) order nothing
    between threads here."""
    cluster = op.base == "barrier" and op.has("cluster")
    if cluster and op.has("arrive"):
        return _cluster_arrival(state, ins, guard)
    if not any((op.base, m) in CTA_BARRIERS for m in op.mods) or op.has("warp") or op.has("arrive"):
        return _no_effect(ex, state, ins, op, guard)
    state.settled(ins, "a barrier")
    if cluster:
        if state.arrived is None:
            raise Unsupported(f"line {ins.line}: a cluster wait with no arrival before it on its path")
        state.arrived = None
    state.between(ins, "a CTA barrier")
    other = None
    if guard is not None:
        taken, skipped = [*state.path, guard], [*state.path, z3.Not(guard)]
        if _feasible(ex.tile, skipped):
            if not _feasible(ex.tile, taken):
                state.path, state.pc = skipped, state.pc + 1
                return None
            other = state.fork(state.pc + 1, skipped)
        state.path = taken
    ex.tile.barriers.append(Barrier(ins, _condition(state, None), state.epoch))
    state.epoch += 1
    state.cluster_epoch += cluster
    state.pc += 1
    return other


def _cluster_arrival(state: _State, ins: Instruction, guard: z3.BoolRef | None) -> _State | None:
    """barrier.cluster.arrive: the thread's accesses before it are ordered before other CTAs'
    after their wait. Until its own wait it may only read back its own shared stores."""
    if guard is not None:
        raise Unsupported(f"line {ins.line}: a guarded cluster arrival")
    state.between(ins, "a second cluster arrival")
    state.arrived = ins.line
    state.pc += 1
    return None


def _address_of(ex: Executor, state: _State, operand: Addr, bits: int) -> z3.BitVecRef:
    """An address operand ([reg+offset], [symbol], [constant]) as a term of `bits` bits."""
    base = operand.base
    start = ex.read(state, base, f"u{bits}") if isinstance(base, (Reg, Sym)) else z3.BitVecVal(int(base), bits)
    return start + z3.BitVecVal(operand.offset, bits)


def _buffer_bytes(ex: Executor, param: str | None, address: z3.BitVecRef, size: int, label: str) -> z3.BitVecRef:
    """`size` bytes of global memory at `address` (the first lowest): the buffer's own bytes where
    the address is computed from one buffer (`param`), else any value at all."""
    if param is None:
        ex.abstractions += 1
        return z3.BitVec(f"loaded {ex.abstractions} {label}", 8 * size)
    first = address - ex.tile.bases[param]
    data = [z3.Select(ex.tile.bytes_of(param), first + j) for j in range(size)]
    return z3.Concat(*reversed(data)) if len(data) > 1 else data[0]


INTRA_CTA_SPACES = ("shared", "shared::cta", "shared::cluster")
FLOAT_TYPES = frozenset({"f32", "f16", "bf16"})
# The ops recorded as the nodes of reduction trees, and their types: float adds, maxes and mins;
# 64-bit integer adds (an i64 sum's; the trees of other integer adds are never followed); subs,
# which are nodes only where the subtrahend is the identity (`verify.reductions.SIBLINGS`).
COMBINED_TYPES = {"add": FLOAT_TYPES | {"s64", "u64"}, "sub": FLOAT_TYPES | {"s64", "u64"}, "max": FLOAT_TYPES,
                  "min": FLOAT_TYPES}


def _shared(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None,
            occurrence: int = 0) -> _State | None:
    """A shared-memory access: recorded for the race obligation; a load's value is abstracted."""
    address_operand = ins.operands[1] if op.base == "ld" else ins.operands[0]
    values = ins.operands[0] if op.base == "ld" else ins.operands[1]
    if not isinstance(address_operand, Addr):
        raise Unsupported(f"line {ins.line}: address {address_operand}")
    count = len(values.regs) if isinstance(values, Vec) else 1
    address, lane_bytes = _address_of(ex, state, address_operand, 32), type_bytes(op.type)
    condition, cluster = _condition(state, guard), op.has("shared::cluster")
    data = None
    if op.base == "ld":
        state.settled(ins, "a shared-memory load")
    else:
        state.between(ins, "a shared-memory store")
    between = state.arrived is not None
    if between and cluster:
        raise Unsupported(f"line {ins.line}: a load through the cluster window between a cluster arrival "
                          f"(line {state.arrived}) and its wait")
    if op.base == "st":
        parts = values.regs if isinstance(values, Vec) else (values,)
        stored = [ex.read(state, Reg(p) if isinstance(p, str) else p, op.type) for p in parts]
        data = z3.Concat(*reversed(stored)) if len(stored) > 1 else stored[0]
    ex.tile.shared.append(SharedAccess("load" if op.base == "ld" else "store", ins, address, lane_bytes * count,
                                       condition, state.epoch, cluster, occurrence, data, state.cluster_epoch,
                                       between))
    if op.base != "ld":
        if data is not None and not cluster:
            state.stores.append(OwnStore(address, lane_bytes * count, data, guard, state.epoch, condition, ins.line,
                                         occurrence))
        return _no_effect(ex, state, ins, op, guard)
    if not cluster and (_forward(ex, state, values, address, lane_bytes * count, guard)
                        or _broadcast(ex, state, ins, values, address, lane_bytes * count, condition)):
        state.pc += 1
        return None
    state.between(ins, "a shared load of what another thread stored")
    return _abstract(ex, state, ins, op, guard, lambda index: Exchange(
        "shared", ins, condition, state.epoch, address=address + index * lane_bytes, size=lane_bytes,
        cluster=cluster, cluster_epoch=state.cluster_epoch))


def _forward(ex: Executor, state: _State, values: object, address: z3.BitVecRef, size: int,
             guard: z3.BoolRef | None) -> bool:
    """A shared load of what this thread itself stored at the same address (the store made
    wherever the load is: unguarded, or under the same guard, earlier on the same path) reads that
    store's bytes, if no later store of its may touch them, nor, in an epoch since the store's,
    another thread's (another thread's store in the load's own epoch is a race: the race
    obligation's to refute, and a kernel whose race obligation is not proved is not proved). False
    where that is not shown: the load's value stays abstract."""
    same = z3.simplify(address)
    found = [k for k, s in enumerate(state.stores) if s.size == size and z3.eq(z3.simplify(s.address), same)]
    if not found:
        return False
    store, later = state.stores[found[-1]], state.stores[found[-1] + 1:]
    overlaps = [z3.And(z3.ULT(address, s.address + s.size), z3.ULT(s.address, address + size)) for s in later]
    if store.guard is not None and (guard is None or not z3.eq(z3.simplify(store.guard), z3.simplify(guard))):
        return False  # the store may not have been made where the load is
    loading = _condition(state, guard)
    if store.epoch < state.epoch and not _unchanged_by_others(ex.tile, loading, address, size, store.epoch,
                                                             state.epoch):
        return False
    if overlaps and _check(ex.tile.assumptions() + [loading, z3.Or(*overlaps)], FORWARD_MS)[0] != z3.unsat:
        return False  # a later store of its may overwrite part of those bytes
    _write_loaded(ex, state, values, store.data, size, guard)
    return True


def _write_loaded(ex: Executor, state: _State, values: object, data: z3.BitVecRef, size: int,
                  guard: z3.BoolRef | None) -> None:
    """The bytes `data` (the first lowest) into a load's destination registers, a lane each."""
    names = values.regs if isinstance(values, Vec) else (values.name,) if isinstance(values, Reg) else ()
    low, lane_bits = 0, 8 * size // max(len(names), 1)
    for name in names:
        if name is not None:
            whole = lane_bits == data.size()  # the stored term itself, as a reduction's tree has it
            ex.write(state, Reg(name), data if whole else z3.Extract(low + lane_bits - 1, low, data), guard)
        low += lane_bits


FORWARD_MS = 2000  # to show that no later store of a thread overwrites the bytes it reads back


def _pinned(tile: Tile, condition: z3.BoolRef) -> int | None:
    """The one thread index of a CTA for which `condition` can hold (tid == 0 guards), or None."""
    key = condition.get_id()
    if key not in tile.pins:
        result, model = _check(tile.assumptions() + [condition], FORWARD_MS)
        thread = model.eval(tile.tid, model_completion=True).as_long() if result == z3.sat else None
        other = _check(tile.assumptions() + [condition, tile.tid != thread], FORWARD_MS)[0] \
            if thread is not None else result
        if other != z3.unsat:
            thread = None
        if z3.unknown in (result, other):
            tile.protocol.undecided = True  # a fault that rests on this answer is not shown
        tile.pins[key] = (condition, thread)  # the term held: its id stays its
    return tile.pins[key][1]


def _guard_pin(tile: Tile, guard: z3.BoolRef | None) -> int | None:
    """The one thread an instruction's guard picks (`@%p st`, p = tid == 0), whatever the path."""
    return None if guard is None else _pinned(tile, guard)


def _at_thread(tile: Tile, term: z3.ExprRef, thread: int) -> z3.ExprRef:
    return z3.substitute(term, (tile.tid, z3.BitVecVal(thread, 32)))


def _thread_free(data: z3.ExprRef) -> bool:
    """Whether `data` holds no value another thread supplied (those are recorded for the thread
    that loaded them: moved to another thread, they would mean something else)."""
    return not any(str(s).startswith(("abstract", "loaded")) for s in _free_symbols(data))


def _stored_by_one(tile: Tile, condition: z3.BoolRef, address: z3.BitVecRef, store_condition: z3.BoolRef,
                   store_address: z3.BitVecRef, data: z3.BitVecRef) -> tuple[int, z3.BitVecRef] | None:
    """Where one thread of the CTA makes a store (its condition pins the thread), and wherever the
    load happens that thread made it at the load's address: (the thread, the bytes it stored)."""
    thread = _pinned(tile, store_condition)
    if thread is None:
        return None
    made_there = z3.And(_at_thread(tile, store_condition, thread), address == _at_thread(tile, store_address, thread))
    if _check(tile.assumptions() + [condition, z3.Not(made_there)], FORWARD_MS)[0] != z3.unsat:
        return None
    stored = _at_thread(tile, data, thread)
    if not _thread_free(stored) and _check(tile.assumptions() + [condition, tile.tid != thread],
                                           FORWARD_MS)[0] != z3.unsat:
        return None
    return thread, stored


def _broadcast(ex: Executor, state: _State, ins: Instruction, values: object, address: z3.BitVecRef, size: int,
               loading: z3.BoolRef) -> bool:
    """A shared load of what one thread (its store's condition pins it: `tid == 0`) stored at the
    same place in an earlier epoch reads those bytes: that thread's (`Executor.broadcasts`, the
    store on every path, so whichever path that thread took); the claim that no store comes
    between is recorded and checked with the race obligation. False where that is not shown: the
    load's value stays abstract."""
    place = z3.simplify(address)
    for store in ex.broadcasts:
        if store.size != size or store.epoch >= state.epoch or store.data is None:
            continue
        stored_at = z3.simplify(store.address)
        if z3.is_bv_value(place) and z3.is_bv_value(stored_at) and not place.eq(stored_at):
            continue  # two other places (shared offsets are mostly constants): no query needed
        found = _stored_by_one(ex.tile, loading, address, store.condition, store.address, store.data)
        if found is None:
            continue
        thread, stored = found[0], z3.simplify(found[1])  # thread-free: no float tree of other threads to keep
        ex.tile.protocol.forwarded.append(Forwarded(ins.line, address, size, loading, state.epoch, thread,
                                                    store.instruction.line, store.occurrence, store.epoch))
        _write_loaded(ex, state, values, stored, size, None)
        return True
    return False


def _broadcast_sources(tile: Tile) -> list[SharedAccess]:
    """Shared stores (each merged over the paths) that one thread makes, of values that thread
    computed alone: what `_broadcast` lets the CTA's other threads read."""
    found = []
    for store in _merged_shared(tile.shared):
        if store.kind != "store" or store.cluster or store.data is None:
            continue
        thread = _pinned(tile, store.condition)
        if thread is not None and _thread_free(_at_thread(tile, store.data, thread)):
            found.append(store)
    return found


def _may_meet(first: SharedAccess, second: SharedAccess) -> bool:
    """Two accesses no barrier orders: in the same epoch (cluster barriers passed, where either
    reaches through the cluster window; else CTA barriers), or one made between its thread's cluster
    arrival and wait and the other in the epoch after that wait (the other thread's wait returned
    once every thread had arrived, so the two may run at once)."""
    window = first.cluster or second.cluster
    phase: Callable[[SharedAccess], int] = (lambda a: a.cluster_epoch) if window else (lambda a: a.epoch)
    if not window and first.cluster_epoch != second.cluster_epoch and not (first.between or second.between):
        return False
    gap = phase(second) - phase(first)
    return gap == 0 or (gap == 1 and first.between) or (gap == -1 and second.between)


def _unchanged_by_others(tile: Tile, loading: z3.BoolRef, address: z3.BitVecRef, size: int, first: int,
                         last: int) -> bool:
    """Where `loading` holds, no other thread of the CTA stores to these bytes in epochs
    `first`..`last` (stores through the cluster window anywhere in the kernel: not decided)."""
    if any(a.kind == "store" and a.cluster for a in tile.shared):
        return False
    stores = [a for a in tile.shared if a.kind == "store" and first <= a.epoch <= last]
    if not stores:
        return True
    other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
    facts = tile.assumptions() + tile.assumptions("'") + [other_cta == tile.cta, other_tid != tile.tid, loading]
    for store in stores:  # one query each: together they can take the solver longer than apart
        other = _renamed(tile, store.address, "'")
        meets = z3.And(_renamed(tile, store.condition, "'"), z3.ULT(address, other + store.size),
                       z3.ULT(other, address + size))
        if _check(facts + [meets], FORWARD_MS)[0] != z3.unsat:
            return False
    return True


def _memory(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    occurrence = state.visit(ins.line)
    if any(m in op.mods for m in INTRA_CTA_SPACES):
        return _shared(ex, state, ins, op, guard, occurrence)
    spaces = [m for m in op.mods if m in ("local", "const")]
    if spaces:
        raise Unsupported(f"line {ins.line}: {ins.opcode} (.{spaces[0]} memory)")
    load = op.base == "ld"
    address_operand, values = (ins.operands[1], ins.operands[0]) if load else ins.operands
    if not isinstance(address_operand, Addr):
        raise Unsupported(f"line {ins.line}: address {address_operand}")
    count = len(values.regs) if isinstance(values, Vec) else 1
    size = type_bytes(op.type) * count
    if "param" in op.mods:
        if not isinstance(address_operand.base, Sym) or address_operand.base.name not in ex.tile.bases:
            raise Unsupported(f"line {ins.line}: ld.param of {address_operand.base}")
        ex.write(state, values, ex.tile.bases[address_operand.base.name], guard)
        state.pc += 1
        return None
    address = _address_of(ex, state, address_operand, 64)
    lane_bits = width(op.type)
    param = _base_of(ex.tile, address)
    if not load:
        parts = values.regs if isinstance(values, Vec) else (values,)
        data = [ex.read(state, Reg(p) if isinstance(p, str) else p, op.type) for p in parts]
        stored = z3.Concat(*reversed(data)) if len(data) > 1 else data[0]
        access = Access("store", ins, address, size, _condition(state, guard), stored, occurrence)
        ex.tile.accesses.append(access)
        if param in ex.tile.workspace:
            _workspace_store(ex, state, access, param, guard)
        state.pc += 1
        return None
    access = Access("load", ins, address, size, _condition(state, guard), None, occurrence)
    ex.tile.accesses.append(access)
    if param in ex.tile.workspace:
        _write_loaded(ex, state, values, _workspace_load(ex, state, access, op, guard), size, guard)
        state.pc += 1
        return None
    names = values.regs if isinstance(values, Vec) else (values.name,) if isinstance(values, Reg) else ()
    for k, name in enumerate(names):
        if name is not None:
            loaded = _buffer_bytes(ex, param, address + k * lane_bits // 8, lane_bits // 8,
                                   f"line {ins.line} lane {k}")
            ex.write(state, Reg(name), loaded, guard)
    state.pc += 1
    return None


def _identity_u64(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    if not (op.has("to") and op.has("global")):
        raise Unsupported(f"line {ins.line}: {ins.opcode}")
    ex.write(state, ins.operands[0], ex.read(state, ins.operands[1], "u64"), guard)
    state.pc += 1
    return None


def _exit(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    if guard is not None:
        raise Unsupported(f"line {ins.line}: a guarded ret")
    state.settled(ins, "the thread's exit")
    state.between(ins, "the thread's exit")
    state.pc = -1
    return None


def _async_copy(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """cp.async: a copy of global memory into shared memory. Its global read is an access like a
    load's, its shared write the thread's store of those bytes in the epoch it was issued in; the
    copy lands no later than a wait (wait_all, or wait_group 0 for committed groups), and until then
    no barrier, exit or shared load of this thread may come (`_State.settled`), so nothing can tell
    the recorded store from the real one. wait_group N > 0 is not modelled."""
    if op.mods[:1] != ("async",) or op.has("bulk"):
        raise Unsupported(f"line {ins.line}: {ins.opcode} (only cp.async, not bulk copies)")
    state.between(ins, "an asynchronous copy")
    if op.has("commit_group"):
        state.committed, state.uncommitted = state.committed + state.uncommitted, 0
    elif op.has("wait_all"):
        state.committed = state.uncommitted = 0
    elif op.has("wait_group"):
        keep = ins.operands[0] if ins.operands else None
        if not isinstance(keep, Imm) or int(keep.value) != 0:
            raise Unsupported(f"line {ins.line}: {ins.opcode} {keep} (only wait_group 0)")
        state.committed = 0
    else:
        return _copy_in(ex, state, ins, op, guard)
    state.pc += 1
    return None


def _copy_in(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    if not op.has("shared", "shared::cta") or not op.has("global") or len(ins.operands) != 3:
        raise Unsupported(f"line {ins.line}: {ins.opcode} (only cp.async.ca/cg.shared.global [dst], [src], size)")
    dest, source, size_operand = ins.operands
    if not isinstance(dest, Addr) or not isinstance(source, Addr) or not isinstance(size_operand, Imm) \
            or int(size_operand.value) not in ASYNC_COPY_BYTES:
        raise Unsupported(f"line {ins.line}: {ins.opcode} operands")
    size, occurrence, condition = int(size_operand.value), state.visit(ins.line), _condition(state, guard)
    address = _address_of(ex, state, source, 64)
    if _base_of(ex.tile, address) in ex.tile.workspace:
        raise Unsupported(f"line {ins.line}: {ins.opcode} from a workspace shared by CTAs")
    ex.tile.accesses.append(Access("load", ins, address, size, condition, None, occurrence))
    data = _buffer_bytes(ex, _base_of(ex.tile, address), address, size, f"line {ins.line}")
    place = _address_of(ex, state, dest, 32)
    ex.tile.shared.append(SharedAccess("store", ins, place, size, condition, state.epoch, False, occurrence, data,
                                       state.cluster_epoch))
    state.stores.append(OwnStore(place, size, data, guard, state.epoch, condition, ins.line, occurrence))
    state.uncommitted += 1
    state.pc += 1
    return None


CLUSTER_FLAG, OFFSET_MASK = int(MEMORY_CLUSTER_FLAG), (1 << RANK_SHIFT) - 1  # mapa's addresses, as the emulator


def _mapa(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """mapa.shared::cluster.u32 d, a, r: offset a of CTA r's shared memory, encoded as the emulator
    does (a flag, the rank, the offset); ld/st.shared::cluster decode it."""
    if not op.has("shared::cluster") or op.type != "u32" or len(ins.operands) != 3:
        raise Unsupported(f"line {ins.line}: {ins.opcode} (only mapa.shared::cluster.u32)")
    offset, rank = ex.read(state, ins.operands[1], "u32"), ex.read(state, ins.operands[2], "u32")
    field = z3.If(z3.ULT(rank, 0x80), rank, z3.BitVecVal(0x7F, 32))  # past the field: still outside any cluster
    encoded = z3.BitVecVal(CLUSTER_FLAG, 32) | (field << RANK_SHIFT) | (offset & OFFSET_MASK)
    ex.write(state, ins.operands[0], encoded, guard)
    state.pc += 1
    return None


def _unsupported(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    raise Unsupported(f"line {ins.line}: {ins.opcode} (atomics are not modelled by the symbolic executor yet)")


# -- a workspace shared by CTAs: the last-CTA protocol -------------------------------------------


def _orders_gpu(op: Op) -> bool:
    """A fence that orders this thread's memory accesses for every thread of the GPU (release and acquire)."""
    if op.base == "membar":
        return op.has("gl", "sys")
    return op.base == "fence" and op.has("gpu", "sys") and not op.has("proxy", "mbarrier_init")


def _fence(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """A fence at GPU scope releases the workspace stores before it (this thread's, and every
    thread's before a barrier the fence follows: a fence is cumulative) and, made by the arriving
    thread after its arrival, acquires what the other CTAs released."""
    tile, arrival = ex.tile, state.arrival
    acquiring = arrival is not None and arrival.thread is not None and state.acquired is None
    if not _orders_gpu(op) or not (state.parts or acquiring):
        return _no_effect(ex, state, ins, op, guard)  # nothing to release or acquire: no query
    if _check(tile.assumptions() + [_condition(state, guard)], FORWARD_MS)[0] == z3.unsat:
        return _no_effect(ex, state, ins, op, guard)  # counted only where some thread of this path makes it
    thread, every = _guard_pin(tile, guard), guard is None
    for part in state.parts:
        part.fences.append((state.epoch, None if every else thread if thread is not None else -1))
    if acquiring:
        assert arrival is not None
        on_path = thread == arrival.thread or every and _check(
            tile.assumptions() + [*state.path, tile.tid == arrival.thread], FORWARD_MS)[0] != z3.unsat
        if on_path:  # the arriving thread follows this path and fences: its acquire
            state.acquired = state.epoch
            tile.protocol.acquires.add(state.epoch)
    return _no_effect(ex, state, ins, op, guard)


def _workspace_store(ex: Executor, state: _State, access: Access, buffer: str, guard: z3.BoolRef | None) -> None:
    """Before the arrival, a part to release; after it, only the last CTA's reset of the counter
    (a store of 0) or its own use of the workspace."""
    protocol, line, arrival = ex.tile.protocol, access.instruction.line, state.arrival
    if arrival is None:
        state.workspace_stores.append(access)
        state.parts.append(Part(line, state.epoch, _guard_pin(ex.tile, guard), access.condition))
        return
    if buffer == arrival.counter:
        value = z3.simplify(access.data)
        if arrival.last and z3.is_bv_value(value) and value.as_long() == 0:
            protocol.resets.add(line)
        else:
            protocol.fault(f"line {line}: the arrival counter is written after the arrival at line {arrival.line} "
                           "other than by the last CTA setting it to 0")
    elif not arrival.last:
        protocol.fault(f"line {line}: a CTA that is not the last stores to the workspace after its arrival at line "
                       f"{arrival.line}: the last CTA may have read those bytes already")


def _workspace_load(ex: Executor, state: _State, access: Access, op: Op, guard: z3.BoolRef | None) -> z3.BitVecRef:
    """Only the last CTA reads the workspace, after its arriving thread's acquire (that thread
    itself, or any thread after a barrier). With one CTA in the launch, the bytes are its own
    stores' (the one store to them: the workspace's written-at-most-once obligation); with more,
    the value is abstract and, loaded into one register, where it came from is kept
    (`Exchange`), for the reduction proofs to follow to the CTA whose part it is."""
    tile, line, arrival = ex.tile, access.instruction.line, state.arrival
    ex.abstractions += 1
    anything = z3.BitVec(f"abstract {ex.abstractions} workspace line {line}", 8 * access.size)
    if _check(tile.assumptions() + [access.condition], FORWARD_MS)[0] == z3.unsat:
        return anything  # no thread loads here on this path
    if op.has("nc"):
        tile.protocol.fault(f"line {line}: a non-coherent load (.nc) of the workspace, which other CTAs write")
    ordered = arrival is not None and arrival.last and state.acquired is not None and \
        (state.epoch > state.acquired or _guard_pin(tile, guard) == arrival.thread)
    if not ordered and arrival is not None and arrival.last:  # the arriving thread's path may hold its acquire
        tile.protocol.waiting.append((access, state.epoch))
    elif not ordered:  # a race where another CTA may store to these bytes (`Prover.workspace_protocol`)
        tile.protocol.unordered.append(access)
    if tile.launch.ctas == 1:
        for store in reversed(state.workspace_stores):
            if store.size != access.size or store.data is None:
                continue
            found = _stored_by_one(tile, access.condition, access.address, store.condition, store.address,
                                   store.data)
            if found is not None:
                return found[1]
    buffer = _base_of(tile, access.address)
    if tile.launch.ctas > 1 and not isinstance(access.instruction.operands[0], Vec) and buffer is not None:
        tile.exchange_ids[anything.get_id()] = (anything, Exchange(
            "workspace", access.instruction, access.condition, state.epoch, address=access.address - tile.bases[buffer],
            size=access.size, occurrence=access.occurrence, buffer=buffer))
        tile.protocol.across.add(line)
    else:
        tile.protocol.unfollowed.add(line)
    return anything


def _atom(ex: Executor, state: _State, ins: Instruction, op: Op, guard: z3.BoolRef | None) -> _State | None:
    """atom.global.add.u32 d, [counter], 1 on a workspace counter that starts at 0: a CTA's
    arrival. Exactly one CTA (`Tile.last`) finds the count of all the others (ctas - 1); the path
    forks into that CTA's and the others' (whose count is anything less)."""
    tile, line = ex.tile, ins.line
    operands = ins.operands
    address = _address_of(ex, state, operands[1], 64) if len(operands) == 3 and isinstance(operands[1], Addr) \
        else None
    counter = _base_of(tile, address) if address is not None else None
    one = isinstance(operands[-1], Imm) and int(operands[-1].value) == 1
    if not (op.has("global") and op.has("add") and op.mods[-1:] == ("add",) and one and counter in tile.workspace
            and isinstance(operands[0], Reg) and ins.opcode.endswith(".u32")
            and not any(tile.workspace[counter].init)):
        raise Unsupported(f"line {line}: {ins.opcode} (of atomics only a CTA's arrival at a last-CTA workspace is "
                          "modelled: atom.global.add.u32 d, [counter], 1 on a counter that starts at 0)")
    if state.arrival is not None or state.visit(line) or tile.protocol.arrivals - {line}:
        raise Unsupported(f"line {line}: a second arrival (one arrival instruction, made once, is modelled)")
    tile.accesses.append(Access("atom", ins, address, 4, _condition(state, guard)))
    thread = _guard_pin(tile, guard)
    if thread is None:  # unguarded, or a guard more than one thread passes (undecided: `Protocol.undecided`)
        tile.protocol.fault(f"line {line}: the arrival is made by more than one thread of a CTA (its guard does "
                            "not pick one thread)")
    tile.protocol.arriving = thread
    for store in state.workspace_stores:
        if _base_of(tile, store.address) == counter:
            tile.protocol.fault(f"line {store.instruction.line}: the arrival counter is written before the arrival")
    here = thread is not None and _check(tile.assumptions() + [*state.path, tile.tid == thread],
                                         FORWARD_MS)[0] != z3.unsat  # the arriving thread follows this path
    for part in state.parts if tile.launch.ctas > 1 else ():  # one CTA: nothing for others to see
        if _check(tile.assumptions() + [part.condition], FORWARD_MS)[0] == z3.unsat:
            continue  # no thread of this path makes that store
        if thread is not None and not here and part.thread != thread:
            tile.protocol.open.append(f"not decided: line {part.line}: its store and the arrival at line {line} are "
                                      "made on different paths (the fences are followed on each path)")
        elif thread is None or not part.released_by(thread):
            tile.protocol.fault(f"line {part.line}: a workspace store not released before the arrival at line {line} "
                                "(no fence at GPU scope by the arriving thread after it: after the store in that "
                                "thread, or after a barrier)")
    state.parts = []
    tile.protocol.arrivals.add(line)
    ctas = tile.launch.ctas
    state.arrival = Arrival(line, thread, counter, True)
    state.pc += 1
    if ctas == 1:
        ex.write(state, operands[0], z3.BitVecVal(0, 32), guard)
        return None
    count = z3.Function(f"{ARRIVAL_COUNT} line {line}", z3.BitVecSort(32), z3.BitVecSort(32))(tile.cta)  # the CTA's
    other = state.fork(state.pc, [*state.path, tile.cta != tile.last, z3.ULT(count, ctas - 1)])
    other.arrival = Arrival(line, thread, counter, False)
    ex.write(other, operands[0], count, guard)
    state.path = [*state.path, tile.cta == tile.last]
    ex.write(state, operands[0], z3.BitVecVal(ctas - 1, 32), guard)
    return other


STEPS: dict[str, Callable[[Executor, _State, Instruction, Op, z3.BoolRef | None], _State | None]] = {
    "bra": _branch, "ld": _memory, "st": _memory, "cvta": _identity_u64, "ret": _exit, "exit": _exit,
    "bar": _barrier, "barrier": _barrier, "fence": _fence, "membar": _fence, "shfl": _shuffle,
    "mapa": _mapa, "atom": _atom, "red": _unsupported, "cp": _async_copy,
}


# -- building the tile ---------------------------------------------------------------------------


def symbolic_tile(ptx: str, launch: Launch, kernel: str | None = None) -> Tile:
    """Execute one symbolic thread of the kernel; Unsupported names what stops it."""
    module = parse_ptx(ptx)
    entry = module.entries[kernel] if kernel else next(iter(module.entries.values()))
    if entry.local:
        raise Unsupported("local memory")
    bases = {v.name: z3.BitVec(f"base {v.name}", 64) for v in (*entry.params, *module.globals)}
    offsets, _ = layout(module.shared + entry.shared, launch.shared_bytes)

    def executed(broadcasts: list[SharedAccess]) -> Tile:
        tile = Tile(entry, launch, z3.BitVec("cta", 32), z3.BitVec("tid", 32), dict(bases),
                    workspace={v.name: v for v in module.globals})
        Executor(tile, offsets, broadcasts).run()
        return tile

    tile = executed([])
    if tile.workspace:  # the last CTA's flag: one thread's store that every thread reads
        sources = _broadcast_sources(tile)
        if sources:
            tile = executed(sources)
    tile.path_stores = [a for a in tile.accesses if a.kind == "store"]
    tile.accesses = _merged(tile.accesses)
    return tile


def _merged(accesses: list[Access]) -> list[Access]:
    """One access per instruction and execution of it on a path (a loop's trips are executions):
    a thread follows one path, so the address of its n-th execution of an instruction is the one
    of the path whose condition holds."""
    by_instruction: dict[tuple[int, str, int], list[Access]] = {}
    for access in accesses:
        by_instruction.setdefault((access.instruction.line, access.kind, access.occurrence), []).append(access)
    merged = []
    for group in by_instruction.values():
        address, data = group[-1].address, group[-1].data
        for access in reversed(group[:-1]):
            address = z3.If(access.condition, access.address, address)
            if data is not None and access.data is not None:
                data = z3.If(access.condition, access.data, data)
        condition = z3.Or(*[a.condition for a in group]) if len(group) > 1 else group[0].condition
        merged.append(Access(group[0].kind, group[0].instruction, address, group[0].size, condition, data,
                             group[0].occurrence))
    return merged


def _merged_shared(accesses: list[SharedAccess]) -> list[SharedAccess]:
    """One shared access per instruction, epoch and execution of it on a path, its address the one
    of the path taken."""
    groups: dict[tuple[int, str, int, int, int, bool], list[SharedAccess]] = {}
    for access in accesses:
        key = (access.instruction.line, access.kind, access.epoch, access.occurrence, access.cluster_epoch,
               access.between)
        groups.setdefault(key, []).append(access)
    merged = []
    for group in groups.values():
        address = group[-1].address
        for access in reversed(group[:-1]):
            address = z3.If(access.condition, access.address, address)
        condition = z3.Or(*[a.condition for a in group]) if len(group) > 1 else group[0].condition
        first = group[0]
        data = group[-1].data
        for access in reversed(group[:-1]):
            if data is not None and access.data is not None:
                data = z3.If(access.condition, access.data, data)
        merged.append(SharedAccess(first.kind, first.instruction, address, first.size, condition, first.epoch,
                                   first.cluster, first.occurrence, data, first.cluster_epoch, first.between))
    return sorted(merged, key=lambda a: (a.epoch, a.instruction.line))


def _free_symbols(term: z3.ExprRef, tile: Tile | None = None) -> list[z3.ExprRef]:
    """The uninterpreted constants in `term`; with `tile`, each node's found once for every term
    that shares it (a path condition grows by one branch's guard a trip: its accesses share the rest)."""
    if tile is None:
        found = {n.decl().name(): n for n in _nodes(term) if _is_symbol(n)}
        return list(found.values())
    below = tile.symbols_below
    pending = [(term, False)]
    while pending:
        node, expanded = pending.pop()
        key = node.get_id()
        if key in below:
            continue
        if expanded:
            symbols = frozenset().union(*(below[c.get_id()][1] for c in node.children()))
            below[key] = (node, symbols | {key} if _is_symbol(node) else symbols)  # the node held: its id stays its
        else:
            pending.append((node, True))
            pending.extend((c, False) for c in node.children() if c.get_id() not in below)
    return [below[k][0] for k in below[term.get_id()][1]]


def _is_symbol(node: z3.ExprRef) -> bool:
    return z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED


def _renamed(tile: Tile, term: z3.ExprRef, suffix: str) -> z3.ExprRef:
    """`term` for another thread: every symbol but the buffers' addresses renamed (each term once:
    a store's address and condition are renamed for every load that asks about them)."""
    key = (term.get_id(), suffix)
    if key not in tile.renamed:
        shared = {b.decl().name() for b in tile.bases.values()} | {LAST_CTA}
        pairs = [(s, z3.Const(f"{s.decl().name()}{suffix}", s.sort())) for s in _free_symbols(term, tile)
                 if s.decl().name() not in shared]
        tile.renamed[key] = (term, z3.substitute(term, *pairs) if pairs else term)  # the term held: its id stays its
    return tile.renamed[key][1]


# An argmax's or argmin's accumulated result is any best position and either answer to whether the
# row is all the worst value: each is some row's (`ir_symbolic.arg_result`), not an abstraction.
EVERY_VALUE_REACHED = (ARRIVAL_COUNT, "accumulated argmax ", "accumulated argmin ")


def _uninterpreted_calls(*terms: z3.ExprRef) -> set[str]:
    """Names of the uninterpreted functions applied in `terms` (approximate instructions; not a
    CTA's arrival count, which is any count a launch order can give it, nor an argmax's result
    where nothing else in the terms reads memory)."""
    found = list(_nodes(*terms))
    reached = EVERY_VALUE_REACHED if not any(z3.is_select(n) for n in found) else (ARRIVAL_COUNT,)
    return {n.decl().name() for n in found
            if z3.is_app(n) and n.num_args() and n.decl().kind() == z3.Z3_OP_UNINTERPRETED
            and not n.decl().name().startswith(reached)}


CONGRUENCE_PAIRS = 16  # the most differing subterms an equality by congruence is tried with
CONGRUENCE_MS = 2_000  # the solver's time for each of them


def _differing(a: z3.ExprRef, b: z3.ExprRef) -> list[tuple[z3.ExprRef, z3.ExprRef]] | None:
    """The largest subterms at which `a` and `b` differ, walking both where they apply the same
    operation (None: more than CONGRUENCE_PAIRS of them)."""
    pairs: list[tuple[z3.ExprRef, z3.ExprRef]] = []
    pending, seen = [(a, b)], set()
    while pending:
        x, y = pending.pop()
        if x.eq(y) or (x.get_id(), y.get_id()) in seen:
            continue
        seen.add((x.get_id(), y.get_id()))
        if z3.is_app(x) and z3.is_app(y) and x.num_args() == y.num_args() > 0 and x.decl().eq(y.decl()):
            pending.extend(zip(x.children(), y.children()))
            continue
        pairs.append((x, y))
        if len(pairs) > CONGRUENCE_PAIRS:
            return None
    return pairs


def equal_by_congruence(a: z3.ExprRef, b: z3.ExprRef, proved: Callable[[z3.BoolRef], bool]) -> bool:
    """Whether `a` is `b`, shown by proving equal each pair of subterms where they differ (the same
    operations of equal operands are equal): small queries where the whole would be one the solver
    may not finish. False says nothing (the differing subterms may differ where the whole does not)."""
    pairs = _differing(a, b)
    whole = pairs is not None and len(pairs) == 1 and pairs[0][0].eq(a)  # no smaller query than the whole
    return pairs is not None and not whole and all(proved(x == y) for x, y in pairs)


def _generalised(claim: z3.BoolRef, got: z3.ExprRef, want: z3.ExprRef) -> z3.BoolRef:
    """`claim` with each largest term that `want` and `got` share (a value both sides compute the
    same way) replaced by a fresh constant. Proving this proves `claim` (it holds for every value of
    the shared terms, so for theirs), and spares the solver the terms' insides."""
    inside = {n.get_id() for n in _nodes(got)}
    shared: dict[int, z3.ExprRef] = {}
    seen: set[int] = set()
    pending = [want]
    while pending:
        node = pending.pop()
        if node.get_id() in seen:
            continue
        seen.add(node.get_id())
        if node.get_id() in inside and node.num_args() > 0 and not z3.is_bool(node):
            shared[node.get_id()] = node
        else:
            pending.extend(node.children())
    pairs = [(t, z3.FreshConst(t.sort(), "shared")) for t in shared.values()]
    return z3.substitute(claim, *pairs) if pairs else claim


# Operations whose operands may be put in any order (after a float operation's rounding mode).
COMMUTATIVE = {z3.Z3_OP_AND: 0, z3.Z3_OP_OR: 0, z3.Z3_OP_EQ: 0, z3.Z3_OP_BADD: 0, z3.Z3_OP_BMUL: 0,
               z3.Z3_OP_BAND: 0, z3.Z3_OP_BOR: 0, z3.Z3_OP_BXOR: 0, z3.Z3_OP_FPA_ADD: 1, z3.Z3_OP_FPA_MUL: 1,
               z3.Z3_OP_FPA_EQ: 0}


def _stable_hash(*parts: object) -> int:
    """A hash of `parts`' text that is the same in every process (Python's own `hash` of a string
    changes with PYTHONHASHSEED: the order it gave operands, and with it the solver's time, did too)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


class Canonical:
    """Terms rebuilt with the operands of commutative operations in an order of their structure
    alone (not of when z3 made them, nor of the process): two terms that differ only in such orders
    become one; and with constants cut to the bits that matter where only an operand's low bits
    are used (`_low_bits`). Each node met is held, so that its id is not reused while the memo
    keys on it."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[z3.ExprRef, int]] = {}
        self.rebuilt: dict[int, tuple[z3.ExprRef, z3.ExprRef]] = {}

    def key(self, node: z3.ExprRef) -> int:
        if node.get_id() not in self.keys:
            if z3.is_app(node) and node.num_args():
                children = [self.key(c) for c in node.children()]
                skip = COMMUTATIVE.get(node.decl().kind())
                if skip is not None:
                    children = children[:skip] + sorted(children[skip:])
                self.keys[node.get_id()] = (node, _stable_hash(node.decl().sexpr(), children))
            else:
                self.keys[node.get_id()] = (node, _stable_hash(node.sexpr()))
        return self.keys[node.get_id()][1]

    def __call__(self, node: z3.ExprRef) -> z3.ExprRef:
        if node.get_id() not in self.rebuilt:
            rebuilt = node
            if z3.is_app(node) and node.num_args():
                children = [self(c) for c in _low_bits_demanded(node, [self(c) for c in node.children()])]
                skip = COMMUTATIVE.get(node.decl().kind())
                if skip is not None:
                    children = children[:skip] + sorted(children[skip:], key=self.key)
                args = (z3.Ast * len(children))(*[c.as_ast() for c in children])  # no casts to the declared sorts
                rebuilt = z3.z3._to_expr_ref(z3.Z3_mk_app(node.ctx_ref(), node.decl().ast, len(children), args),
                                             node.ctx)
            self.rebuilt[node.get_id()] = (node, rebuilt)
        return self.rebuilt[node.get_id()][1]


def _low_bits_demanded(node: z3.ExprRef, children: list[z3.ExprRef]) -> list[z3.ExprRef]:
    """`node`'s children, where it uses only their low bits (an extract from bit 0, a product by
    a constant with trailing zeros), rewritten to what those bits are (`_low_bits`)."""
    if z3.is_app_of(node, z3.Z3_OP_EXTRACT) and node.params()[1] == 0:
        return [_low_bits(children[0], node.params()[0] + 1)]
    if z3.is_app_of(node, z3.Z3_OP_BMUL):
        constant = next((c.as_long() for c in children if z3.is_bv_value(c)), 0)
        zeros = (constant & -constant).bit_length() - 1 if constant else 0
        if zeros > 0:
            return [c if z3.is_bv_value(c) else _low_bits(c, node.size() - zeros) for c in children]
    return children


# Bit-vector ops whose low bits are those of the same op on their operands' low bits.
LOW_BITS_CLOSED = (z3.Z3_OP_BADD, z3.Z3_OP_BMUL, z3.Z3_OP_BSUB, z3.Z3_OP_BAND, z3.Z3_OP_BOR, z3.Z3_OP_BXOR)


def _low_bits(term: z3.ExprRef, bits: int) -> z3.ExprRef:
    """A term of which only the low `bits` bits are used, rewritten so that each constant in
    it keeps only the bits that reach those (0 dropped from a sum): modulo 2**bits, a sum,
    product or bitwise op of its operands is that of their low bits, and a right shift by s of
    bits s and up. Exp's range reduction subtracts a magic constant whose low bits are 0 before
    the exponent is shifted into place; adding it instead is the same, and so rewritten alike."""
    if not z3.is_bv(term) or bits <= 0 or bits >= term.size() or not z3.is_app(term):
        return term
    kind, children = term.decl().kind(), term.children()
    if kind in (z3.Z3_OP_BASHR, z3.Z3_OP_BLSHR) and z3.is_bv_value(children[1]):
        shift = children[1].as_long()
        if shift + bits <= term.size():
            return _rebuilt(term, [_low_bits(children[0], shift + bits), children[1]])
        return term
    if kind not in LOW_BITS_CLOSED:
        return term
    mask = (1 << bits) - 1
    rewritten = [z3.BitVecVal(c.as_long() & mask, c.size()) if z3.is_bv_value(c) else _low_bits(c, bits)
                 for c in children]
    if kind == z3.Z3_OP_BADD:
        rewritten = [c for c in rewritten if not (z3.is_bv_value(c) and c.as_long() == 0)] or [rewritten[0]]
        if len(rewritten) == 1:
            return rewritten[0]
    return _rebuilt(term, rewritten)


def _rebuilt(term: z3.ExprRef, children: list[z3.ExprRef]) -> z3.ExprRef:
    """`term`'s operation on other operands (no casts to the declared sorts)."""
    args = (z3.Ast * len(children))(*[c.as_ast() for c in children])
    return z3.z3._to_expr_ref(z3.Z3_mk_app(term.ctx_ref(), term.decl().ast, len(children), args), term.ctx)


def _memory_reads(term: z3.ExprRef) -> list[z3.ExprRef]:
    """The distinct array reads (bytes of a buffer) in `term`."""
    return [n for n in _nodes(term) if z3.is_select(n)]


def _index_conditions(term: z3.ExprRef) -> list[z3.BoolRef]:
    """The conditions of if-then-else nodes in `term` that read only indices and addresses: no
    memory, no register left unset, no float."""
    found = {n.arg(0).get_id(): n.arg(0) for n in _nodes(term) if z3.is_app_of(n, z3.Z3_OP_ITE)}
    return [c for c in found.values() if _on_indices(c)]


def _on_indices(condition: z3.ExprRef) -> bool:
    if z3.is_true(condition) or z3.is_false(condition):
        return False
    if _reads_memory_or_floats(condition):  # first: it stops at the first float or read it meets
        return False
    return all(z3.is_bv(s) and not s.decl().name().startswith(("unset", "abstract")) for s in _free_symbols(condition))


def _reads_memory_or_floats(term: z3.ExprRef) -> bool:
    return any(z3.is_select(n) or z3.is_fp(n) or z3.is_array(n) for n in _nodes(term))


def _rests_on_abstractions(*terms: z3.ExprRef) -> bool:
    """Whether a model over `terms` may owe its difference to what is abstracted: values other
    threads supply, or approximate instructions (uninterpreted functions, free to return anything)."""
    return (any(str(s).startswith("abstract") for term in terms for s in _free_symbols(term))
            or bool(_uninterpreted_calls(*terms)))


def _base_of(tile: Tile, address: z3.BitVecRef) -> str | None:
    """The one parameter whose buffer the address is computed from (None: none, or several)."""
    names = {s.decl().name() for s in _free_symbols(address, tile)}
    found = [p for p, b in tile.bases.items() if b.decl().name() in names]
    return found[0] if len(found) == 1 else None


def _lane(data: z3.BitVecRef, k: int, bits: int) -> z3.BitVecRef:
    """Lane k of a vector's bits: the lane's own term where the vector is a concatenation of its
    lanes (nested or not; so that what other lanes use stays out of it), else an extract."""
    parts, pending = [], [data]
    while pending:  # the concatenation's parts, highest first
        node = pending.pop(0)
        if z3.is_app_of(node, z3.Z3_OP_CONCAT) and node.size() > bits:
            pending[:0] = node.children()
        else:
            parts.append(node)
    if all(part.size() == bits for part in parts):
        return parts[len(parts) - 1 - k]
    return z3.Extract((k + 1) * bits - 1, k * bits, data)


def _check(constraints: list[z3.BoolRef], timeout_ms: int = PROOF_TIMEOUT_MS,
           logic: str | None = None, seed: int = 0) -> tuple[z3.CheckSatResult, Any]:
    """One query; `logic` picks z3's solver for it (QF_FPBV for values: several times faster on
    floating-point terms than the default solver, with the same answers). `seed`: z3's random seed."""
    solver = z3.SolverFor(logic) if logic else z3.Solver()
    solver.set("timeout", timeout_ms)
    if seed:
        solver.set("random_seed", seed)
    solver.add(*constraints)
    result = solver.check()
    return result, solver.model() if result == z3.sat else solver.reason_unknown() if result == z3.unknown else None


def _value(model: z3.ModelRef, term: z3.ExprRef) -> int:
    return model.eval(term, model_completion=True).as_long()


@dataclass
class Prover:
    tile: Tile
    sizes: dict[str, int]  # parameter -> bytes of its buffer
    names: dict[str, str]  # parameter -> the name the user knows it by
    outputs: list[str]  # parameters written by the kernel
    deadline: float = field(default_factory=lambda: time.perf_counter() + KERNEL_SECONDS)
    witness: dict[str, Any] = field(default_factory=dict)  # the last refutation's model (see `remember`)
    weights: dict[tuple[int, str], Any] = field(default_factory=dict)  # (access, buffer) -> its bit weights

    def base_facts(self) -> list[z3.BoolRef]:
        """Where buffers lie: a parameter's at the allocator's alignment, a workspace's at its declared one."""
        facts = []
        for name, base in self.tile.bases.items():
            size = self.sizes[name]
            declared = self.tile.workspace.get(name)
            align = (declared.align or declared.element_bytes) if declared is not None else ALIGNMENT
            facts += [z3.URem(base, align) == 0, z3.ULE(base, z3.BitVecVal(2**64 - size - ALIGNMENT, 64)),
                      base != 0]
        return facts

    def offset(self, access: Access, base: str) -> z3.BitVecRef:
        return z3.simplify(access.address - self.tile.bases[base])

    def check(self, constraints: list[z3.BoolRef], logic: str | None = None,
              limit_ms: int = PROOF_TIMEOUT_MS, seed: int = 0) -> tuple[z3.CheckSatResult, Any]:
        """One solver query, given what is left of the kernel's time (at most `limit_ms`)."""
        left_ms = int((self.deadline - time.perf_counter()) * 1000)
        return _check(constraints, max(1, min(limit_ms, left_ms)), logic, seed)

    def decide(self, constraints: list[z3.BoolRef], logic: str) -> tuple[z3.CheckSatResult, Any]:
        """`check`, and where the solver gives up, again with each of RETRY_SEEDS while the
        kernel's time lasts: z3's time on a floating-point query swings by an order of magnitude
        with its seed and with the ids of the query's nodes (which turn on every term the process
        made before), so one that a try leaves undecided is often decided at once by another. Only
        an undecided query is tried again: no answer the first try gives is changed."""
        result = self.check(constraints, logic)
        for seed in RETRY_SEEDS:
            if result[0] != z3.unknown or time.perf_counter() >= self.deadline:
                break
            result = self.check(constraints, logic, limit_ms=RETRY_MS, seed=seed)
        return result

    def timed(self, name: str, check: Callable[[], tuple[str, str]]) -> Obligation:
        started = time.perf_counter()
        if started > self.deadline:
            return Obligation(name, "inconclusive", f"not attempted: the kernel's {KERNEL_SECONDS:.0f} s are spent")
        self.witness = {}
        try:
            status, detail = check()
        except (RecursionError, ctypes.ArgumentError) as err:  # z3's bindings wrap a RecursionError
            if not isinstance(err, RecursionError) and "RecursionError" not in str(err):
                raise
            status, detail = "inconclusive", TOO_DEEP
        witness = self.witness if status == "refuted" else {}
        return Obligation(name, status, detail, time.perf_counter() - started, witness)

    def remember(self, found: z3.ModelRef, ctas: list[z3.ExprRef], **facts: Any) -> None:
        """What a refutation's model says, to replay it concretely: the CTAs whose threads show it
        and every byte of the inputs the kernel reads (a default byte and the exceptions to it)."""
        chosen = {param: chosen_bytes(found, array) for param, array in self.tile.memory.items()}
        memory = {param: c for param, c in chosen.items() if c is not None}
        self.witness = {"ctas": sorted({_value(found, c) for c in ctas}), "memory": memory, **facts}

    def vacuity(self) -> tuple[str, str]:
        result, _ = self.check(self.tile.assumptions() + self.base_facts())
        if result == z3.sat:
            return "proved", "the launch's threads and the buffers' placement can exist together"
        return ("refuted" if result == z3.unsat else "inconclusive"), "the assumptions contradict each other"

    def inputs_unchanged(self) -> tuple[str, str]:
        """No store lands in a buffer the kernel only reads."""
        for access in self.tile.accesses:
            base = _base_of(self.tile, access.address)
            if access.kind == "store" and base is not None and base not in self.outputs \
                    and base not in self.tile.workspace:
                result, found = self.check(self.tile.assumptions() + self.base_facts() + [access.condition])
                if result == z3.sat:
                    self.remember(found, [self.tile.cta], input=base)
                if result != z3.unsat:
                    return "refuted", f"{access.instruction} stores into the input {self.names[base]}"
        return "proved", "every store goes to an output"

    def inside(self, access: Access, base: str) -> z3.BoolRef:
        """The access lies inside buffer `base`, aligned to its size."""
        size, offset = self.sizes[base], self.offset(access, base)
        last = z3.BitVecVal(max(size - access.size, 0), 64)
        return z3.And(z3.ULE(offset, last), z3.URem(offset, access.size) == 0) if size >= access.size \
            else z3.BoolVal(False)

    def all_in_bounds(self, accesses: list[Access]) -> tuple[str, str]:
        """Every execution of one instruction (a loop's trips, each path's) in bounds, in one query;
        where that is not proved, each is asked on its own (so that a refutation names its execution)."""
        bases = {_base_of(self.tile, a.address) for a in accesses}
        if len(bases) != 1 or None in bases:
            return "inconclusive", "not one buffer: asked for each execution"
        base = bases.pop()
        outside = z3.Or(*[z3.And(a.condition, z3.Not(self.inside(a, base))) for a in accesses])
        if self.check(self.tile.assumptions() + self.base_facts() + [outside])[0] != z3.unsat:
            return "inconclusive", "not proved in one query: asked for each execution"
        return "proved", (f"{accesses[0].instruction}: every {accesses[0].kind} lies inside {self.names[base]} "
                          f"({len(accesses)} executions on its paths)")

    def in_bounds(self, access: Access) -> tuple[str, str]:
        base = _base_of(self.tile, access.address)
        if base is None:
            return self._off_every_buffer(access)
        size, offset = self.sizes[base], self.offset(access, base)
        inside = self.inside(access, base)
        result, found = self.check(self.tile.assumptions() + self.base_facts() + [access.condition, z3.Not(inside)])
        if result == z3.unsat:
            return "proved", f"{access.instruction}: every {access.kind} lies inside {self.names[base]}"
        if result == z3.unknown:
            return "inconclusive", f"{access.instruction}: the solver gave up ({found})"
        if _rests_on_abstractions(access.condition, access.address):
            return "inconclusive", (f"{access.instruction}: in bounds unless values other threads supply (shuffles, "
                                    "shared memory) can be anything, which is all this executor knows of them")
        self.remember(found, [self.tile.cta])
        return "refuted", (f"{access.instruction}: thread {_value(found, self.tile.tid)} of CTA "
                           f"{_value(found, self.tile.cta)} makes a {access.size}-byte {access.kind} at byte "
                           f"{_value(found, offset)} of {self.names[base]}, which holds {size} bytes "
                           "(outside it, or not aligned to its size)")

    def _off_every_buffer(self, access: Access) -> tuple[str, str]:
        """An access whose address is not one buffer's: in bounds where no thread makes it; refuted
        where its address depends on a register read before any write (which holds anything)."""
        tile = self.tile
        made, _ = self.check(tile.assumptions() + self.base_facts() + [access.condition])
        if made == z3.unsat:
            return "proved", f"{access.instruction}: no thread of the launch makes it"
        unset = [s for s in _free_symbols(access.address, tile) if s.decl().name().startswith("unset ")]
        if unset and made == z3.sat:
            other = z3.substitute(access.address, *[(s, z3.Const(f"{s.decl().name()} again", s.sort()))
                                                    for s in unset])
            depends, found = self.check(tile.assumptions() + self.base_facts() + [access.condition,
                                                                                  access.address != other])
            if depends == z3.sat:
                self.remember(found, [tile.cta])
                names = ", ".join(sorted(s.decl().name().removeprefix("unset ") for s in unset))
                return "refuted", (f"{access.instruction}: thread {_value(found, tile.tid)} of CTA "
                                   f"{_value(found, tile.cta)} makes it at an address that depends on {names}, "
                                   "read before any instruction wrote it (it holds anything)")
        return "inconclusive", f"the address of {access.instruction} is not computed from exactly one buffer"

    def stores_to(self, output: str) -> list[Access]:
        return [a for a in self.tile.accesses if a.kind == "store" and _base_of(self.tile, a.address) == output]

    def written_at_most_once(self, output: str) -> tuple[str, str]:
        stores = self.stores_to(output)
        if len(stores) > 2 and self._no_overlap_among(output, stores):
            return "proved", f"no two stores to {self.names[output]} overlap ({len(stores)} store instruction(s))"
        for i, first in enumerate(stores):
            for second in stores[i:]:
                verdict = self._overlap(output, first, second)
                if verdict is not None:
                    return verdict
        return "proved", f"no two stores to {self.names[output]} overlap ({len(stores)} store instruction(s))"

    def _no_overlap_among(self, output: str, stores: list[Access]) -> bool:
        """One query for every pair of stores at once (each side a store chosen by a symbolic index):
        True if no two overlap; False if some may or the solver gave up (the pairs are then asked
        one by one, for the message and the witness)."""
        tile = self.tile
        pick, other_pick = z3.BitVec("store", 32), z3.BitVec("store'", 32)

        def chosen(index: z3.BitVecRef, suffix: str) -> tuple[z3.BitVecRef, z3.BitVecRef, z3.BoolRef]:
            offset: z3.BitVecRef = z3.BitVecVal(0, 64)
            size: z3.BitVecRef = z3.BitVecVal(0, 64)
            for k, store in enumerate(stores):
                offset = z3.If(index == k, _renamed(tile, self.bit_sum(store, output), suffix), offset)
                size = z3.If(index == k, z3.BitVecVal(store.size, 64), size)
            condition = z3.Or(*[z3.And(index == k, _renamed(tile, store.condition, suffix))
                                for k, store in enumerate(stores)])
            return offset, size, condition

        (a, a_size, a_cond), (b, b_size, b_cond) = chosen(pick, ""), chosen(other_pick, "'")
        other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
        distinct = z3.Or(pick != other_pick, tile.cta != other_cta, tile.tid != other_tid)
        overlap = z3.And(z3.ULT(a, b + b_size), z3.ULT(b, a + a_size))
        result, _ = self.check(tile.assumptions() + tile.assumptions("'") + self.base_facts()
                               + [a_cond, b_cond, distinct, overlap])
        return result == z3.unsat

    def _overlap(self, output: str, first: Access, second: Access) -> tuple[str, str] | None:
        tile = self.tile
        a, b = self.bit_sum(first, output), _renamed(tile, self.bit_sum(second, output), "'")
        other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
        distinct = z3.Or(tile.cta != other_cta, tile.tid != other_tid) if first is second else z3.BoolVal(True)
        overlap = z3.And(z3.ULT(a, b + second.size), z3.ULT(b, a + first.size))
        constraints = (tile.assumptions() + tile.assumptions("'") + self.base_facts()
                       + [first.condition, _renamed(tile, second.condition, "'"), distinct, overlap])
        result, found = self.check(constraints)
        if result == z3.unsat:
            return None
        if result == z3.unknown:
            return "inconclusive", f"{first.instruction} and {second.instruction}: the solver gave up ({found})"
        if _rests_on_abstractions(first.condition, first.address, second.condition, second.address):
            return "inconclusive", (f"{first.instruction} and {second.instruction} may overlap only if values "
                                    "other threads supply can be anything")
        self.remember(found, [tile.cta, other_cta], output=output, byte=_value(found, a))
        return "refuted", (f"{self.names[output]} byte {_value(found, a)} is written by thread "
                           f"{_value(found, tile.tid)} of CTA {_value(found, tile.cta)} ({first.instruction}) and "
                           f"by thread {_value(found, other_tid)} of CTA {_value(found, other_cta)} "
                           f"({second.instruction})")

    def same_cta(self) -> tuple[z3.BitVecRef, list[z3.BoolRef]]:
        """A second thread (its names primed) of the same CTA, and the facts that make it one."""
        tile = self.tile
        other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
        return other_tid, tile.assumptions() + tile.assumptions("'") + [other_cta == tile.cta, other_tid != tile.tid]

    def no_shared_race(self) -> tuple[str, str]:
        """No two threads touch the same shared byte with one of them writing, unless a barrier
        orders them: for two threads of a CTA reaching its own memory directly, a CTA barrier; where
        either reaches through the cluster window (mapa's addresses, another CTA's memory or its
        own), a cluster barrier."""
        tile, merged = self.tile, _merged_shared(self.tile.shared)
        if not merged:
            return "proved", "no shared memory is accessed"
        outside = self._rank_outside_cluster(merged)
        if outside is not None:
            return outside
        other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
        size = tile.launch.cluster_size
        facts = tile.assumptions() + tile.assumptions("'") + [
            z3.UDiv(tile.cta, size) == z3.UDiv(other_cta, size), z3.Or(tile.cta != other_cta, tile.tid != other_tid)]
        for i, first in enumerate(merged):
            for second in merged[i:]:
                if "store" not in (first.kind, second.kind) or not _may_meet(first, second):
                    continue
                window = first.cluster or second.cluster
                (owner, a), (other_owner, b) = self._reached(first, ""), self._reached(second, "'")
                overlap = z3.And(z3.ULT(a, b + second.size), z3.ULT(b, a + first.size))
                result, found = self.check(facts + [first.condition, _renamed(tile, second.condition, "'"),
                                                    owner == other_owner, overlap])
                if result == z3.unsat:
                    continue
                pair = f"{first.instruction} and {second.instruction}"
                if result == z3.unknown:
                    return "inconclusive", f"{pair}: the solver gave up ({found})"
                if _rests_on_abstractions(first.condition, first.address, second.condition, second.address):
                    return "inconclusive", f"{pair} may meet only if values other threads supply can be anything"
                self.remember(found, [tile.cta, other_cta])
                between = (f"no cluster barrier between them (both after {first.cluster_epoch} cluster barrier(s))"
                           if window else f"no barrier between them (both after {first.epoch} barrier(s))")
                return "refuted", (f"shared byte {_value(found, a)} of CTA {_value(found, owner)}: thread "
                                   f"{_value(found, tile.tid)} of CTA {_value(found, tile.cta)} ({first.kind}, "
                                   f"{first.instruction}) and thread {_value(found, other_tid)} of CTA "
                                   f"{_value(found, other_cta)} ({second.kind}, {second.instruction}), with {between}")
        overwritten = self._forwarded_overwritten(merged, facts)
        if overwritten is not None:
            return overwritten
        through = sum(a.cluster for a in merged)
        return "proved", (f"no two threads meet at a shared byte between barriers with one writing ({len(merged)} "
                          f"shared access(es), {through} through the cluster window)")

    def _forwarded_overwritten(self, merged: list[SharedAccess], facts: list[z3.BoolRef]) -> tuple[str, str] | None:
        """A load that took the bytes one thread stored (`_broadcast`) read them unchanged: no
        other store of any thread of the CTA touches them from that store's epoch to the load's."""
        tile = self.tile
        other_cta, other_tid = _renamed(tile, tile.cta, "'"), _renamed(tile, tile.tid, "'")
        same = [z3.And(*tile.assumptions()), z3.And(*tile.assumptions("'")), other_cta == tile.cta]
        if tile.protocol.forwarded and any(s.kind == "store" and s.cluster for s in merged):
            return "inconclusive", "a load read what one thread stored, and stores through the cluster window exist"
        for claim in tile.protocol.forwarded:
            for store in merged:
                if store.kind != "store" or not claim.store_epoch <= store.epoch <= claim.epoch:
                    continue
                itself = z3.And(other_tid == claim.thread, z3.BoolVal(store.instruction.line == claim.store_line
                                                                      and store.occurrence == claim.occurrence))
                b = _renamed(tile, store.address, "'")
                overlap = z3.And(z3.ULT(claim.address, b + store.size), z3.ULT(b, claim.address + claim.size))
                result, found = self.check(same + [claim.condition, _renamed(tile, store.condition, "'"),
                                                   z3.Not(itself), overlap])
                if result == z3.unsat:
                    continue
                what = (f"line {claim.line} reads the bytes thread {claim.thread} stored at line {claim.store_line}, "
                        f"but {store.instruction} may store over them before")
                if result == z3.unknown or _rests_on_abstractions(store.condition, store.address, claim.condition):
                    return "inconclusive", f"{what} (not decided)"
                self.remember(found, [tile.cta])
                return "refuted", (f"{what}: thread {_value(found, other_tid)} of CTA {_value(found, tile.cta)} "
                                   f"does, for thread {_value(found, tile.tid)}'s load")
        return None

    def workspace_protocol(self) -> tuple[str, str]:
        """The last-CTA protocol holds (`Protocol`): every CTA's workspace stores are released
        before its arrival, the last CTA reads only after its acquire, the counter is set back to 0."""
        protocol, loads = self.tile.protocol, self.workspace_loads()
        if not protocol.arrivals and not loads:
            return "proved", "the workspace is written, never read"
        atoms = [a for a in self.tile.accesses if a.kind == "atom"]
        if atoms and protocol.arriving is not None:
            arrives = _at_thread(self.tile, z3.Or(*[a.condition for a in atoms]), protocol.arriving)
            self._decided(self.check(self.tile.assumptions() + self.base_facts() + [z3.Not(arrives)])[0],
                          f"{atoms[0].instruction}: thread {protocol.arriving} of some CTA does not arrive: no CTA "
                          "would find itself last")
        resets = [a for a in self.tile.accesses if a.kind == "store" and a.instruction.line in protocol.resets]
        if resets:
            self._decided(self._always_reset(resets), f"{resets[0].instruction}: the last CTA does not always set the "
                          "arrival counter back to 0 (no one thread of it always does)")
        if protocol.arrivals and not protocol.resets:
            protocol.fault(f"line {min(protocol.arrivals)}: the arrival counter is not set back to 0 by the last CTA "
                           "(a second launch would find no CTA last)")
        for load, epoch in protocol.waiting:  # ordered by an acquire the arriving thread made on its path
            if not any(acquired < epoch for acquired in protocol.acquires):
                protocol.unordered.append(load)
        for load in protocol.unordered:
            self._workspace_race(load)
        if protocol.faults and not protocol.undecided:
            return "refuted", "; ".join(protocol.faults)
        if protocol.faults or protocol.open:
            return "inconclusive", "; ".join([*protocol.faults, *protocol.open]) + (
                " (a query of which thread makes an instruction was not decided)" if protocol.undecided else "")
        return "proved", (f"one thread of each CTA arrives (line {min(protocol.arrivals)}) after releasing its "
                          f"workspace stores; the last CTA reads {len(loads)} time(s) after acquiring them and sets "
                          f"the counter back to 0 (line {min(protocol.resets)})")

    def _decided(self, result: z3.CheckSatResult, fault: str) -> None:
        """A query whose unsat shows the protocol's step: sat is a fault, unknown leaves it open."""
        if result == z3.sat:
            self.tile.protocol.fault(fault)
        elif result == z3.unknown:
            self.tile.protocol.open.append(f"not decided: {fault}")

    def _always_reset(self, resets: list[Access]) -> z3.CheckSatResult:
        """unsat where some one thread of the last CTA, whichever CTA that is, makes one of the
        counter's resets in every launch (the thread a model of one reset names)."""
        tile = self.tile
        made = z3.Or(*[a.condition for a in resets])
        result, model = self.check(tile.assumptions() + self.base_facts() + [tile.cta == tile.last, made])
        if result != z3.sat:
            return z3.sat if result == z3.unsat else result  # no thread ever resets it: a fault
        thread = model.eval(tile.tid, model_completion=True).as_long()
        return self.check(tile.assumptions() + self.base_facts() + [
            tile.cta == tile.last, z3.Not(_at_thread(tile, made, thread))])[0]

    def _workspace_race(self, load: Access) -> None:
        """A workspace load that no arrival orders after the other CTAs' stores races with a store
        another CTA may make to the same bytes (a fault), unless no such store can be."""
        tile = self.tile
        other_cta = _renamed(tile, tile.cta, "'")
        for store in (a for a in tile.accesses if a.kind == "store" and _base_of(tile, a.address) in tile.workspace):
            b = _renamed(tile, store.address, "'")
            meets = z3.And(z3.ULT(load.address, b + store.size), z3.ULT(b, load.address + load.size))
            result, found = self.check(tile.assumptions() + tile.assumptions("'") + self.base_facts() + [
                load.condition, _renamed(tile, store.condition, "'"), other_cta != tile.cta, meets])
            what = f"{load.instruction}: a workspace load that no arrival orders after the other CTAs' stores"
            if result == z3.sat and not _rests_on_abstractions(load.condition, load.address, store.condition,
                                                                store.address):
                tile.protocol.fault(f"{what}; CTA {_value(found, tile.cta)} loads what CTA "
                                    f"{_value(found, other_cta)} may store there ({store.instruction}): a data race")
                return
            if result != z3.unsat:
                tile.protocol.open.append(f"{what}: whether another CTA stores there ({store.instruction}) is not "
                                          "decided")
                return

    def workspace_loads(self) -> list[Access]:
        return [a for a in self.tile.accesses if a.kind == "load" and _base_of(self.tile, a.address)
                in self.tile.workspace]

    def _reached(self, access: SharedAccess, suffix: str) -> tuple[z3.BitVecRef, z3.BitVecRef]:
        """(CTA, offset) of the shared memory an access reaches, for the thread named by `suffix`:
        its own CTA's, or through the cluster window the CTA of its cluster mapa named."""
        cta = _renamed(self.tile, self.tile.cta, suffix) if suffix else self.tile.cta
        address = _renamed(self.tile, access.address, suffix) if suffix else access.address
        if not access.cluster:
            return cta, address
        size = self.tile.launch.cluster_size
        flagged = (address & CLUSTER_FLAG) != 0
        rank = z3.LShR(address, RANK_SHIFT) & 0x7F
        return z3.If(flagged, z3.UDiv(cta, size) * size + rank, cta), z3.If(flagged, address & OFFSET_MASK, address)

    def _rank_outside_cluster(self, merged: list[SharedAccess]) -> tuple[str, str] | None:
        """An access through the cluster window to a rank its cluster does not have: refuted."""
        tile, size = self.tile, self.tile.launch.cluster_size
        for access in (a for a in merged if a.cluster):
            flagged = (access.address & CLUSTER_FLAG) != 0
            rank = z3.LShR(access.address, RANK_SHIFT) & 0x7F
            result, found = self.check(tile.assumptions() + [access.condition, flagged, z3.UGE(rank, size)])
            if result == z3.unsat:
                continue
            if result == z3.unknown or _rests_on_abstractions(access.condition, access.address):
                return "inconclusive", f"{access.instruction}: the CTA it reaches is not known to be in its cluster"
            self.remember(found, [tile.cta])
            return "refuted", (f"{access.instruction}: thread {_value(found, tile.tid)} of CTA "
                               f"{_value(found, tile.cta)} reaches CTA rank {_value(found, rank)} of a cluster of "
                               f"{size}")
        return None

    def barriers_uniform(self) -> tuple[str, str]:
        """Every barrier instance is reached by all threads of a CTA or by none of them."""
        tile = self.tile
        groups: dict[tuple[int, int], list[Barrier]] = {}
        for barrier in tile.barriers:
            groups.setdefault((barrier.instruction.line, barrier.epoch), []).append(barrier)
        other_tid, facts = self.same_cta()
        for (_, epoch), group in sorted(groups.items(), key=lambda item: item[0][1]):
            reach = z3.Or(*[b.condition for b in group])
            result, found = self.check(facts + [reach, z3.Not(_renamed(tile, reach, "'"))])
            if result == z3.unsat:
                continue
            where = f"{group[0].instruction}"
            if result == z3.unknown:
                return "inconclusive", f"{where}: the solver gave up ({found})"
            if _rests_on_abstractions(reach):
                return "inconclusive", f"{where} is skipped by some threads only if values other threads supply " \
                                       "can be anything"
            self.remember(found, [tile.cta])
            return "refuted", (f"{where}: thread {_value(found, tile.tid)} of CTA {_value(found, tile.cta)} waits "
                               f"there as its barrier number {epoch + 1}, thread {_value(found, other_tid)} of the "
                               "same CTA does not (a barrier under divergent control)")
        count = len(groups)
        return "proved", (f"every one of {count} barrier instance(s) is reached by all threads of a CTA or by none"
                          if count else "no CTA barrier")

    def written_at_least_once(self, output: str) -> tuple[str, str]:
        return self._covered(output, self.stores_to(output), "store")

    def read_in_full(self, param: str) -> tuple[str, str]:
        """Every byte of an input whose every element enters a reduction of the IR is loaded by some
        thread: a kernel that never reads one cannot see a NaN there, which must reach an output."""
        loads = [a for a in self.tile.accesses if a.kind == "load" and _base_of(self.tile, a.address) == param]
        return self._covered(param, loads, "load")

    def _covered(self, param: str, accesses: list[Access], kind: str) -> tuple[str, str]:
        """Every byte of `param` is covered by one of `accesses` of some thread: each access's offset
        is inverted (affine, or bit fields) to the thread that should cover a byte, and the query
        checks that thread exists, makes the access and covers it."""
        size, tile, verb = self.sizes[param], self.tile, COVERAGE[kind][0]
        thread = {str(tile.cta), str(tile.tid), LAST_CTA}
        for access in accesses:
            if any(str(s) not in thread for s in _free_symbols(access.condition, tile)
                   if str(s) not in {str(b) for b in tile.bases.values()}):
                return "inconclusive", f"{access.instruction}: whether it {kind}s depends on data"
        byte = z3.BitVec("byte", 64)
        witnesses = []
        for access in accesses:
            affine = self.affine(access, param)
            if affine is not None:
                witnesses.append(self._covers_by_inverse(access, param, byte, *affine))
                continue
            weights = self.bit_weights(access, param)
            if weights is None:
                return "inconclusive", (f"{access.instruction}: its offset is neither affine in the thread's linear "
                                        "index nor a sum of weighted bits of the CTA and thread indices")
            witnesses.append(self._covers_by_bits(access, param, byte, *weights))
        result, found = self.check(self.base_facts() + [z3.ULT(tile.last, tile.launch.ctas), z3.ULT(byte, size),
                                                         z3.Not(z3.Or(*witnesses))]
                                   if witnesses else [z3.BoolVal(True)])
        if result == z3.unsat:
            return "proved", f"every byte of {self.names[param]} is {verb} by some thread"
        if result == z3.unknown:
            return "inconclusive", f"{self.names[param]}: the solver gave up on coverage ({found})"
        missing = _value(found, byte) if witnesses else 0
        return self._confirm_uncovered(param, accesses, missing, kind)

    def linear(self) -> z3.BitVecRef:
        """The thread's index in the launch, cta * threads + tid, in 64 bits."""
        return z3.ZeroExt(32, self.tile.cta) * self.tile.launch.threads + z3.ZeroExt(32, self.tile.tid)

    def affine(self, access: Access, param: str) -> tuple[int, int] | None:
        """(a, b) with offset = a * linear + b for every thread, proved; None if there is none."""
        offset, tile = self.offset(access, param), self.tile
        at = [z3.simplify(z3.substitute(offset, (tile.cta, z3.BitVecVal(c, 32)), (tile.tid, z3.BitVecVal(t, 32))))
              for c, t in ((0, 0), (0, 1) if tile.launch.threads > 1 else (1, 0))]
        if not all(z3.is_bv_value(v) for v in at):
            return None
        b = at[0].as_long()
        a = (at[1].as_long() - b) % 2**64
        result, _ = self.check(tile.assumptions() + [offset != a * self.linear() + b])
        return (a, b) if result == z3.unsat and a > 0 else None

    def _covers_by_inverse(self, access: Access, param: str, byte: z3.BitVecRef, a: int, b: int) -> z3.BoolRef:
        """`byte` is covered by `access` of the thread whose linear index inverts the affine map."""
        tile = self.tile
        linear = z3.UDiv(byte - b, a)
        threads = tile.launch.threads
        cta, tid = z3.Extract(31, 0, z3.UDiv(linear, threads)), z3.Extract(31, 0, z3.URem(linear, threads))
        return z3.And(z3.UGE(byte, b), z3.ULT(linear, tile.launch.ctas * threads),
                      self._thread_covers(access, param, byte, cta, tid))

    def _thread_covers(self, access: Access, param: str, byte: z3.BitVecRef, cta: z3.BitVecRef,
                       tid: z3.BitVecRef) -> z3.BoolRef:
        """Thread `tid` of CTA `cta` makes `access` and it covers `byte`."""
        tile = self.tile
        offset = z3.substitute(self.offset(access, param), (tile.cta, cta), (tile.tid, tid))
        condition = z3.substitute(access.condition, (tile.cta, cta), (tile.tid, tid))
        return z3.And(condition, z3.ULE(offset, byte), z3.ULT(byte, offset + access.size))

    def bit_weights(self, access: Access, param: str) -> tuple[int, list[tuple[int, str, int]]] | None:
        """(b, [(weight, "cta" or "tid", bit)]) with offset = b + the sum of the weights of the index bits
        that are set, for every thread, proved; None if the offset has no such form. Row layouts take it:
        row * length + lane * vector, with rows and lanes bit fields of the CTA and thread indices."""
        key = (id(access), param)
        if key not in self.weights:
            self.weights[key] = self._bit_weights(access, param)
        return self.weights[key]

    def bit_sum(self, access: Access, param: str) -> z3.BitVecRef:
        """The access's offset, as the sum of its bits' weights where that form is proved (additions
        of constants are far cheaper for the solver than products by a row length), else as is."""
        weights = self.bit_weights(access, param)
        if weights is None:
            return self.offset(access, param)
        return _bit_sum(self.tile, *weights)

    def _bit_weights(self, access: Access, param: str) -> tuple[int, list[tuple[int, str, int]]] | None:
        tile, offset = self.tile, self.offset(access, param)

        def at(cta: int, tid: int) -> int | None:
            value = z3.simplify(z3.substitute(offset, (tile.cta, z3.BitVecVal(cta, 32)),
                                              (tile.tid, z3.BitVecVal(tid, 32))))
            return value.as_long() if z3.is_bv_value(value) else None

        b = at(0, 0)
        if b is None:
            return None
        weights = []
        for name, count in (("cta", tile.launch.ctas), ("tid", tile.launch.threads)):
            for bit in range(max(count - 1, 0).bit_length()):
                value = at(1 << bit, 0) if name == "cta" else at(0, 1 << bit)
                if value is None:
                    return None
                weights.append(((value - b) % 2**64, name, bit))
        result, _ = self.check(tile.assumptions() + [offset != _bit_sum(tile, b, weights)])
        return (b, weights) if result == z3.unsat else None

    def _covers_by_bits(self, access: Access, param: str, byte: z3.BitVecRef, b: int,
                        weights: list[tuple[int, str, int]]) -> z3.BoolRef:
        """`byte` is covered by `access` of the thread that a mixed-radix division of byte - b picks:
        runs of bits of one index whose weights double make a field (a row, a lane), each field's
        value the quotient by its weight, largest weight first (bits of weight 0 left clear). The pick
        is only a candidate: the query checks that this thread exists, makes the access and covers the byte."""
        fields = sorted(_fields(weights), key=lambda f: -f[0])
        picks = [fields]
        if len({f[0] for f in fields}) < len(fields):  # fields of one weight: which takes the quotient is
            picks += [[f for f in fields if f is not left] for left in fields]  # ambiguous; also try each at 0
        # the last CTA's store of a place no CTA index picks: that CTA makes it
        last = LAST_CTA in {str(s) for s in _free_symbols(access.condition, self.tile)} and \
            all(n != "cta" or not w for w, n, _ in weights)
        return z3.Or(*(self._covers_by_pick(access, param, byte, b, pick, last) for pick in picks))

    def _covers_by_pick(self, access: Access, param: str, byte: z3.BitVecRef, b: int,
                        fields: list[tuple[int, str, int, int]], last: bool) -> z3.BoolRef:
        """`byte` is covered by `access` of the thread the division of byte - b by `fields` picks
        (`last`: the CTA index is the last CTA's, as no CTA bit weighs)."""
        tile = self.tile
        width = max(self.sizes[param].bit_length() + 1, 8)  # byte - b < size: the division in this many bits
        rest: z3.BitVecRef = z3.Extract(width - 1, 0, byte - b)
        index = {"cta": tile.last if last else z3.BitVecVal(0, 32), "tid": z3.BitVecVal(0, 32)}
        for weight, name, low, bits in fields:
            if weight >> width:
                continue  # a field this heavy is 0 for every byte of the buffer
            quotient = z3.UDiv(rest, weight)
            value = (z3.ZeroExt(32 - width, quotient) if width < 32 else z3.Extract(31, 0, quotient)) \
                & ((1 << bits) - 1)
            rest = z3.URem(rest, weight)
            index[name] = index[name] | (value << low)
        cta, tid = index["cta"], index["tid"]
        return z3.And(z3.UGE(byte, b), z3.ULT(cta, tile.launch.ctas), z3.ULT(tid, tile.launch.threads),
                      self._thread_covers(access, param, byte, cta, tid))

    def values_equal_the_ir(self, ir: Kernel, approx: bool | None = None,
                            fp32_intermediates: bool = False) -> tuple[str, str]:
        """Every stored element equals the IR's value for that element (NaN equals any NaN); ops
        with no exact meaning are mathlib's formulas for the schedule's form `approx` (None: not
        known, and such ops are left inconclusive); with `fp32_intermediates` (the schedule's),
        half-precision values are rounded to their type only where stored."""
        params = [p.name for p in self.tile.entry.params]
        self.reduction_trees: reductions.Trees | None = None
        unfollowed = self.tile.protocol.unfollowed
        if unfollowed and self.tile.launch.ctas == 1:
            return "inconclusive", (f"line {min(unfollowed)}: a load of the workspace not shown to read the one "
                                    "store a thread of the CTA made there")
        if unfollowed:
            return "inconclusive", (f"line {min(unfollowed)}: a load of the parts {self.tile.launch.ctas} CTAs left "
                                    "in the workspace that is not followed (a vector load, or an address not of the "
                                    "workspace alone)")
        across, threads = self.tile.protocol.across, self.tile.launch.ctas * self.tile.launch.threads
        if across and (threads > THREADS_FOLLOWED["workspace"] or self.tile.launch.cluster_size > 1):
            return "inconclusive", (f"line {min(across)}: the last CTA reads the parts {self.tile.launch.ctas} "
                                    f"CTAs left in the workspace; they are followed thread by thread through "
                                    f"launches of at most {THREADS_FOLLOWED['workspace']} threads without clusters "
                                    f"(this one: {threads})")
        try:
            terms = IrTerms(ir, {p.name: self.tile.bytes_of(params[i]) for i, p in enumerate(ir.inputs)},
                            approx=approx, reductions=True, keep_f32=fp32_intermediates)
            reduced = any(i.op in REDUCTIONS for i in ir.body)
            for index, output in enumerate(ir.outputs):
                for store in self.value_stores(params[len(ir.inputs) + index], reduced):
                    verdict = self._store_values(terms, index, output.type.dtype, store, params[len(ir.inputs) + index])
                    if verdict is not None:
                        return verdict
        except Inexact as err:
            return "inconclusive", str(err)
        except reductions.Open as err:
            return "inconclusive", f"a reduction: {err}"
        except reductions.Wrong as err:
            return "refuted", f"a reduction: {err}"
        detail = "every stored element is bit for bit the IR's value (NaN for NaN)"
        if self.reduction_trees is not None and self.reduction_trees.matched:
            detail += (", each reduction equal to the IR's modulo the order of accumulation (the same terms, "
                       "each once)")
        if terms.formulas:
            form = "approximate" if approx else "accurate"
            detail += (f", with {', '.join(sorted(terms.formulas))} as ptxgen.mathlib's {form} formulas "
                       "(their accuracy tested numerically, not proved)")
        return "proved", detail

    def _store_values(self, terms: IrTerms, index: int, dtype: DType, store: Access,
                      param: str) -> tuple[str, str] | None:
        itemsize, tile = dtype.itemsize, self.tile
        offset = self.offset(store, param)
        assert store.data is not None
        # What the other obligations prove is assumed here: the store is in bounds and aligned.
        placed = [z3.URem(offset, store.size) == 0, z3.ULE(offset, max(self.sizes[param] - store.size, 0))]
        for k in range(store.size // itemsize):
            flat = z3.UDiv(offset, itemsize) + k
            used = len(terms.uses)
            want = terms.output_bits(index, flat, offset + k * itemsize)
            got = _lane(store.data, k, itemsize * 8)
            if terms.uses[used:]:
                stored = reductions.Stored(flat, self.output_shape(terms, param), store.condition)
                got = self.trees(terms).replaced(got, terms.uses[used:], stored)
            facts = tile.assumptions() + self.base_facts() + placed + [store.condition]
            canonical = Canonical()
            got = canonical(decoded(self.specialised(got, facts)))
            want = canonical(decoded(self.specialised(self.unified(want, got, facts), facts)))
            same = z3.Or(got == want, z3.And(is_nan(got, dtype), is_nan(want, dtype))) if dtype.is_float \
                else got == want
            sampled = self.sampled_difference(facts, same, got, want, seed=store.instruction.line * 64 + k)
            if sampled is None and \
                    self.check(facts + [z3.Not(_generalised(same, got, want))], logic=VALUE_LOGIC)[0] == z3.unsat:
                continue
            if sampled is None and equal_by_congruence(got, want, lambda equal: self.check(
                    facts + [z3.Not(equal)], logic=VALUE_LOGIC, limit_ms=CONGRUENCE_MS)[0] == z3.unsat):
                continue
            result, found = (z3.sat, sampled) if sampled is not None else \
                self.decide(facts + [z3.Not(same)], logic=VALUE_LOGIC)
            if result == z3.unsat:
                continue
            if result == z3.unknown:
                return "inconclusive", f"{store.instruction}: the solver gave up on its values ({found})"
            approximate = _uninterpreted_calls(got, want, store.condition)
            if approximate or _rests_on_abstractions(got, want, store.condition):
                what = ", ".join(sorted(approximate)) or "values other threads supply"
                return "inconclusive", (f"{store.instruction}: its values differ from the IR's only where {what} "
                                        "(abstracted: free to be anything here) would; tested numerically instead")
            self.remember(found, [tile.cta], output=param, element=_value(found, flat),
                          got=_value(found, got), want=_value(found, want))
            return "refuted", (f"{store.instruction}: thread {_value(found, tile.tid)} of CTA "
                               f"{_value(found, tile.cta)} stores {describe(_value(found, got), dtype)} as element "
                               f"{_value(found, flat)} of {self.names[param]}; the IR gives "
                               f"{describe(_value(found, want), dtype)}")
        return None

    def value_stores(self, output: str, reduced: bool) -> list[Access]:
        """The stores whose values are compared: merged over the paths (a thread follows the one
        whose condition holds); for a reduction in a kernel of several paths each path's own,
        so that the trees followed for its storing threads are the ones those threads built."""
        if not reduced or self.tile.paths == 1:
            return self.stores_to(output)
        stores = [a for a in self.tile.path_stores if _base_of(self.tile, a.address) == output]
        return [a for a in stores
                if self.check(self.tile.assumptions() + self.base_facts() + [a.condition])[0] != z3.unsat]

    def output_shape(self, terms: IrTerms, param: str) -> tuple[int, ...]:
        return terms.kernel.outputs[self.outputs.index(param)].type.shape

    def trees(self, terms: IrTerms) -> reductions.Trees:
        """The reduction trees of this value obligation (made on first use)."""
        if self.reduction_trees is None:
            itemsizes = {str(array): terms.types[name].dtype.itemsize for name, array in terms.inputs.items()}
            self.reduction_trees = reductions.Trees(self.tile, terms, itemsizes,
                                                    lambda facts, limit_ms=PROOF_TIMEOUT_MS, logic=None:
                                                    self.check(self.base_facts() + facts, logic, limit_ms)[0],
                                                    deadline=self.deadline - TREES_MARGIN_SECONDS)
        return self.reduction_trees

    def sampled_difference(self, facts: list[z3.BoolRef], same: z3.BoolRef, got: z3.ExprRef, want: z3.ExprRef,
                           seed: int) -> z3.ModelRef | None:
        """A model of `facts` where `same` fails, found by testing before searching: a few threads
        picked at random (the buffers at fixed addresses), each input byte they read drawn at
        random, both sides evaluated on those constants. A search for a counterexample can take the
        solver long where a test finds one at once (a wrong column read by half the threads). None
        when no sample differs, which concludes nothing, or when the values rest on abstractions."""
        if _rests_on_abstractions(got, want):
            return None
        tile, rng = self.tile, random.Random(seed)
        reads = _memory_reads(z3.And(got == want))
        placed = [(b, z3.BitVecVal((k + 1) << 40, 64)) for k, b in enumerate(tile.bases.values())]
        for _ in range(SAMPLED_THREADS):
            cta = z3.BitVecVal(rng.randrange(tile.launch.ctas), 32)
            thread = [(tile.cta, cta), (tile.tid, z3.BitVecVal(rng.randrange(tile.launch.threads), 32)),
                      (tile.last, cta)]  # a sample from the CTA that arrives last, where there is a workspace
            constants = thread + placed
            if not z3.is_true(z3.simplify(z3.substitute(z3.And(*facts), *constants))):
                continue  # outside the launch, or a thread that makes no such store
            drawn: dict[tuple[int, int], int] = {}
            values = []
            for read in reads:
                address = z3.simplify(z3.substitute(read.arg(1), *constants))
                if not z3.is_bv_value(address):
                    return None
                values.append((read, z3.BitVecVal(drawn.setdefault((read.arg(0).get_id(), address.as_long()),
                                                                   rng.randrange(256)), 8)))
            differs = z3.substitute(z3.substitute(z3.Not(same), *values) if values else z3.Not(same), *constants)
            if not z3.is_true(z3.simplify(differs)):
                continue
            pinned = [symbol == value for symbol, value in constants + values]
            result, found = self.check(facts + pinned + [z3.Not(same)], logic=VALUE_LOGIC)
            if result == z3.sat:
                return found
        return None

    def unified(self, term: z3.ExprRef, like: z3.ExprRef, facts: list[z3.BoolRef]) -> z3.ExprRef:
        """`term` with each memory read that `like` makes at an address computed another way, but
        equal under `facts` (proved), written as `like` writes it: equal under `facts`, and the
        value query then meets the same reads on both sides."""
        reads, own = _memory_reads(like), _memory_reads(term)
        addresses = [z3.simplify(r.arg(1)) for r in reads + own]  # held, so that equal terms keep one id
        spelled = {(r.arg(0).get_id(), a.get_id()): r for r, a in zip(reads, addresses)}
        keys = [(r.arg(0).get_id(), a.get_id()) for r, a in zip(own, addresses[len(reads):])]
        pairs = [(r, spelled[k]) for r, k in zip(own, keys) if k in spelled]
        missing = [r for r, k in zip(own, keys) if k not in spelled]
        result, model = self.check(facts) if missing else (z3.unknown, None)
        if result != z3.sat:
            missing = []
        for read in missing:
            at = _value(model, read.arg(1))
            for candidate in reads:
                if candidate.arg(0).eq(read.arg(0)) and _value(model, candidate.arg(1)) == at and \
                        self.check(facts + [candidate.arg(1) != read.arg(1)])[0] == z3.unsat:
                    pairs.append((read, candidate))
                    break
        return z3.substitute(term, *pairs) if pairs else term

    def specialised(self, term: z3.ExprRef, facts: list[z3.BoolRef]) -> z3.ExprRef:
        """`term`, simplified, with each condition on indices alone (a tail predicate: no memory,
        no floats) that `facts` decide replaced by its value. Equivalent under `facts`; it spares the
        value query the work of deciding them inside floating-point terms."""
        decided = []
        for condition in _index_conditions(term):
            for value in (True, False):
                claim = condition if value else z3.Not(condition)
                if self.check(facts + [z3.Not(claim)])[0] == z3.unsat:
                    decided.append((condition, z3.BoolVal(value)))
                    break
        return z3.simplify(z3.substitute(term, *decided) if decided else term)

    def _confirm_uncovered(self, param: str, accesses: list[Access], missing: int, kind: str) -> tuple[str, str]:
        """Whether some thread covers byte `missing` after all (the inverse only misses it)."""
        tile, byte = self.tile, z3.BitVecVal(missing, 64)
        covered = [z3.And(a.condition, z3.ULE(self.offset(a, param), byte),
                          z3.ULT(byte, self.offset(a, param) + a.size)) for a in accesses]
        anyone = z3.Or(*covered) if covered else z3.BoolVal(False)
        result, _ = self.check(tile.assumptions() + self.base_facts() + [anyone])
        name, (verb, key, never) = self.names[param], COVERAGE[kind]
        if result != z3.unsat:
            return "inconclusive", (f"{name}: byte {missing} is {verb}, but not by the thread the inverse of the "
                                    f"{kind}'s index points to: coverage needs another argument")
        self.witness = {key: param, "byte": missing, "memory": {}}  # no CTA covers it: every CTA must run
        return "refuted", f"byte {missing} of {name} ({self.sizes[param]} bytes) {never.format(name=name)}"


# access kind -> (what covering does, the witness's key for the buffer, what a refutation says)
COVERAGE = {"store": ("stored", "output", "is never written"),
            "load": ("read", "unread", "is never read, yet every element of {name} enters a reduction of the IR "
                                       "(a NaN there must reach an output)")}


def _bit_sum(tile: Tile, b: int, weights: list[tuple[int, str, int]]) -> z3.BitVecRef:
    """b plus the weight of every set bit of the CTA and thread indices."""
    index = {"cta": tile.cta, "tid": tile.tid}
    return z3.BitVecVal(b, 64) + sum((z3.If(z3.Extract(bit, bit, index[name]) == 1, z3.BitVecVal(w, 64),
                                            z3.BitVecVal(0, 64)) for w, name, bit in weights if w), z3.BitVecVal(0, 64))


def _fields(weights: list[tuple[int, str, int]]) -> list[tuple[int, str, int, int]]:
    """(weight of the lowest bit, index, lowest bit, bits) for each run of consecutive bits of one
    index whose weights double from bit to bit; bits of weight 0 are left out."""
    fields: list[tuple[int, str, int, int]] = []
    for weight, name, bit in weights:
        if not weight:
            continue
        if fields:
            first, last_name, low, bits = fields[-1]
            if last_name == name and low + bits == bit and first << bits == weight:
                fields[-1] = (first, name, low, bits + 1)
                continue
        fields.append((weight, name, bit, 1))
    return fields


def _by_instruction(accesses: list[Access]) -> list[list[Access]]:
    """The accesses grouped by instruction, in the kernel's order, each group by execution."""
    groups: dict[tuple[int, str], list[Access]] = {}
    for access in sorted(accesses, key=lambda a: (a.instruction.line, a.occurrence)):
        groups.setdefault((access.instruction.line, access.kind), []).append(access)
    return list(groups.values())


def verdict(obligations: list[Obligation]) -> str:
    """refuted if any obligation is, proved if all are, else inconclusive."""
    statuses = {o.status for o in obligations}
    return "refuted" if "refuted" in statuses else "proved" if statuses == {"proved"} else "inconclusive"


VALUES = "output values equal the IR's"
WORKSPACE = "the last CTA reads what every CTA stored"
NO_RACE = "no shared-memory race"
UNIFORM_BARRIERS = "no barrier under divergent control"


# IR ops through which a NaN in any operand reaches every element of the result that it feeds
NAN_CARRYING = frozenset({IrOp.NEG, IrOp.ABS, IrOp.EXP, IrOp.EXP2, IrOp.EXPM1, IrOp.LOG, IrOp.LOG2, IrOp.LOG1P,
                          IrOp.SQRT, IrOp.RSQRT, IrOp.RECIP, IrOp.SIN, IrOp.COS, IrOp.TANH, IrOp.ERF, IrOp.SIGMOID,
                          IrOp.FLOOR, IrOp.CEIL, IrOp.ROUND, IrOp.TRUNC, IrOp.ADD, IrOp.SUB, IrOp.MUL, IrOp.DIV,
                          IrOp.MAXIMUM, IrOp.MINIMUM, IrOp.RESHAPE, IrOp.EXPAND, IrOp.CAST})
REDUCTIONS = frozenset({IrOp.SUM, IrOp.MEAN, IrOp.AMAX, IrOp.AMIN, IrOp.ARGMAX, IrOp.ARGMIN})


def inputs_reduced_in_full(ir: Kernel) -> list[int]:
    """Float inputs of which every element reaches the operand of a reduction through ops that
    carry a NaN (not `where`, comparisons, `pow` or casts to integers): a NaN in any element of
    one changes an output, so a kernel must read every element of it."""
    carried: dict[str, set[int]] = {p.name: {i} for i, p in enumerate(ir.inputs) if p.type.dtype.is_float}
    reduced: set[int] = set()
    for instr in ir.body:
        sources = set().union(*(carried.get(a, set()) for a in instr.args)) if instr.args else set()
        if instr.op in REDUCTIONS:
            reduced |= carried.get(instr.args[0], set())
        if instr.op in NAN_CARRYING and instr.type is not None and instr.type.dtype.is_float:
            carried[instr.result] = sources
    return sorted(reduced)


def prove_kernel(ptx: str, launch: Launch, ir: Kernel, approx: bool | None = None,
                 fp32_intermediates: bool = False) -> list[Obligation]:
    """Every obligation of a kernel lowered from `ir`: the memory obligations at the IR's shapes,
    then the output values (`approx`, `fp32_intermediates`: the schedule's form of math and
    precision, see `values_equal_the_ir`)."""
    params = list(ir.inputs) + list(ir.outputs)
    sizes = [math.prod(p.type.shape) * p.type.dtype.itemsize for p in params]
    return prove_memory(ptx, launch, sizes, [p.name for p in params], set(range(len(ir.inputs), len(params))),
                        ir=ir, approx=approx, fp32_intermediates=fp32_intermediates)


def prove_memory(ptx: str, launch: Launch, sizes: list[int], names: list[str], outputs: set[int],
                 kernel: str | None = None, ir: Kernel | None = None, values: bool = True,
                 approx: bool | None = None, fp32_intermediates: bool = False) -> list[Obligation]:
    """The memory obligations of a kernel whose parameters are buffers of `sizes` bytes, known to
    the user as `names`; parameters `outputs` are written. With the IR, also that inputs it reduces
    are read in full, and (with `values`) the output values. Unsupported features give one
    inconclusive obligation naming them."""
    started = time.perf_counter()
    try:
        tile = symbolic_tile(ptx, launch, kernel)
    except NotModelled as err:
        return [Obligation("symbolic execution", "inconclusive", str(err), time.perf_counter() - started)]
    params = [p.name for p in tile.entry.params]
    prover = Prover(tile, dict(zip(params, sizes)) | {name: var.size for name, var in tile.workspace.items()},
                    dict(zip(params, names)) | {name: f"the workspace {name}" for name in tile.workspace},
                    [params[i] for i in sorted(outputs)], deadline=started + KERNEL_SECONDS)
    results = [prover.timed("assumptions are satisfiable", prover.vacuity)]
    for executions in _by_instruction(tile.accesses):
        together = prover.timed(f"in bounds: {executions[0].instruction} (every execution)",
                                lambda e=executions: prover.all_in_bounds(e)) if len(executions) > 1 else None
        if together is not None and together.status == "proved":  # else each execution has its own obligation
            results.append(together)
            continue
        for access in executions:
            trip = f" (execution {access.occurrence + 1} on its path)" if access.occurrence else ""
            results.append(prover.timed(f"in bounds: {access.instruction}{trip}", lambda a=access: prover.in_bounds(a)))
    results.append(prover.timed("inputs unchanged", prover.inputs_unchanged))
    for output in prover.outputs:
        name = prover.names[output]
        results.append(prover.timed(f"{name} written at most once", lambda o=output: prover.written_at_most_once(o)))
        results.append(prover.timed(f"{name} written at least once", lambda o=output: prover.written_at_least_once(o)))
    for buffer in tile.workspace:
        if prover.stores_to(buffer):
            results.append(prover.timed(f"{prover.names[buffer]} written at most once",
                                        lambda b=buffer: prover.written_at_most_once(b)))
    if tile.workspace:
        results.append(prover.timed(WORKSPACE, prover.workspace_protocol))
    results.append(prover.timed(NO_RACE, prover.no_shared_race))
    results.append(prover.timed(UNIFORM_BARRIERS, prover.barriers_uniform))
    if ir is not None:
        for index in inputs_reduced_in_full(ir):
            param = params[index]
            results.append(prover.timed(f"{prover.names[param]} read in full", lambda p=param: prover.read_in_full(p)))
    if ir is not None and values:
        results.append(prover.timed(VALUES, lambda: prover.values_equal_the_ir(ir, approx, fp32_intermediates)))
        if results[-1].status == "inconclusive":
            _search_witness(results[-1], ptx, launch, ir, approx, fp32_intermediates, kernel, prover.deadline)
    replayable = Replayable(ptx, launch, params, sizes, names, outputs, ir, kernel)
    for obligation in results:
        if obligation.status == "refuted" and not obligation.replay:  # a witness's was found on the emulator
            obligation.replay = replay(obligation.name, obligation.witness, replayable)
    return results


def _search_witness(obligation: Obligation, ptx: str, launch: Launch, ir: Kernel, approx: bool | None,
                    fp32_intermediates: bool, kernel: str | None, deadline: float) -> None:
    """An inconclusive value obligation refuted where concrete inputs show a stored value that no
    order of the IR's accumulation gives (`verify.witness`), within the kernel's time left. Not
    where it is open because the kernel combines partial results of a row and the IR has a max and
    a sum of exp(x - max) (online softmax): those rescaled sums equal the IR's over the reals, and
    their last bits are meant to differ."""
    if ONLINE_PARTS in obligation.detail and witness.has_online_pair(ir):
        return
    started = time.perf_counter()
    seconds = min(witness.WITNESS_SECONDS, deadline - started)
    if seconds <= 0:
        return
    found = witness.search(ptx, launch, ir, approx, fp32_intermediates, kernel, seconds)
    obligation.seconds += time.perf_counter() - started
    if found is not None:
        obligation.status = "refuted"
        obligation.detail = f"{found.describe()} (the proof alone: {obligation.detail})"
        obligation.replay = witness.FOUND


@dataclass
class KernelProof:
    kernel: str
    obligations: list[Obligation]

    @property
    def status(self) -> str:
        return verdict(self.obligations)

    def to_dict(self) -> dict[str, Any]:
        seconds = round(sum(o.seconds for o in self.obligations), 3)
        return {"kernel": self.kernel, "status": self.status, "seconds": seconds,
                "obligations": [o.to_dict() for o in self.obligations]}


def prove_manifest(manifest_path: Path, kernel: str | None = None) -> Iterator[KernelProof]:
    """Each lowered kernel of a `ptxgen lower` manifest (or the one named), at its shapes."""
    from verify.against_ir import chosen_kernels, lowered_files

    for entry in chosen_kernels(manifest_path, kernel):
        if not entry.get("lowered"):
            yield KernelProof(entry["name"], [Obligation("lowered", "inconclusive", entry.get("reason", ""))])
            continue
        ir, ptx, launch = lowered_files(manifest_path, entry)
        schedule = entry.get("schedule", {})
        yield KernelProof(entry["name"], prove_kernel(ptx, launch, ir, schedule.get("approx_math"),
                                                      schedule.get("fp32_intermediates", False)))


from verify import reductions  # noqa: E402  (last: it builds on this module's types)
