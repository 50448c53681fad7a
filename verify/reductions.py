"""The value of a kernel's reduction, proved equal to the IR's modulo the order of accumulation.

A reduction tree is what a kernel's float32 adds rounded to nearest (or NaN-propagating maxes,
mins; for an i64 sum, 64-bit integer adds, whose result is then exact in any order) build from the
values its threads load, shuffle and pass through shared memory. On the symbolic tile each value
another thread supplies is an abstract symbol with its provenance (`verify.prove.Exchange`); here
the tree under a stored value is followed through them to the threads that supplied each part: a
shuffle to the lane its mode and operands select (the PTX ISA's shfl.sync, clamp and member mask
included), a shared load to the one thread whose store in an earlier phase wrote that address (of
its own CTA's memory, or through the cluster window of the CTA mapa named; phases end at barriers,
and for the cluster window at cluster barriers). A lane that follows another path (after a loop
whose trips differ by thread) supplies the value its own path holds at that execution of the
shuffle; a 64-bit value shuffled as two 32-bit halves is followed where the halves are the bits of
one value of one lane. A full reduction's last CTA reads the parts the CTAs left in a workspace
(the last-CTA protocol): a load there is followed to the one thread of the launch whose store holds
those bytes, the CTAs of the launch then one group (below) whose every CTA is taken in turn as
the last one. Each thread is concrete (every thread of the CTA in turn; in a kernel of
clusters, every thread of a cluster, rank by rank; through a workspace, every thread of the
launch), the CTA (the cluster) symbolic: every lane,
shared address and condition met on the way must be the same constant in every CTA (in that rank's
CTA of every cluster) of the launch (decided by evaluation, or by the solver where the CTA remains).

The tree's leaves, at CTA 0, are compared with the elements the IR accumulates: as multisets,
each leaf keyed by the places it reads (input bytes, and other reductions' results), every
element exactly once, identities (+-0.0 for a sum, 0 for an integer sum, -inf for max, +inf for
min) left out; each leaf equal to its element's value bit for bit (one solver query per distinct pair of formulas,
the places read as free variables; first in one canonical form, then by congruence on the
subterms where they differ, then whole). The result the tree computes is the one whose elements
its leaves are. Where the IR's elements read more than one input (x + r summed for a norm), a
combine of two loaded values that reads exactly one element's places is that element, a leaf (its
formula then compared as any leaf's), not a node of the tree. A leaf that uses another
reduction's result (softmax's exponentials of x - max, layernorm's squares of x - mean) or a
value another thread supplied is resolved the same way
first: the inner tree, in the thread that computed it, into the IR's accumulated value of its
result (`ir_symbolic.accumulated`), a shuffled or shared-loaded value into its supplier's. The
values a stored element uses are resolved so in every thread that stores, and must be the same
function of the IR's results for the element each stores.

Lemmas carry this to every CTA (from the CTA of the same rank in the first cluster): the elements
every storing thread stores move from CTA 0 to any CTA by the same whole number of results (alike
in every CTA of a cluster), every storing thread's row then moves by the same number of the IR's
elements (along the innermost axes, as many rows; along others, such as a middle axis, the rows'
first elements must move alike), every place a leaf reads moves by that many elements (the
reductions all take the same elements for each result), and nothing else in a leaf or a supplied
value depends on the CTA (on the cluster, where there are clusters). The tree is then the IR's
accumulated value: the same terms summed over the reals, rounded in some order; what follows it
is compared bit for bit as for elementwise kernels.

A sub, or an add rounded otherwise than to nearest, whose operand's leaves are all identities in
that thread (a partial of lanes that hold no element, or the accumulator's +0.0) is its other
operand (for a sub, only a subtrahend that is the identity): its result is exact, the same in
every rounding, up to the sign of a zero, which the leaves ignore anyway.

A sum's tree that takes an element twice is refuted (`Wrong`), naming it (a max or min may: that
changes nothing). A tree that misses elements (`Partial`) is refuted only where the stored
element uses it directly and its trees of that reduction together miss part of the row; a part
of a row is what online softmax's rescaled partial sums mean, and is otherwise left open. A leaf that
differs from the IR's element only where it uses another reduction's result is not refuted (that
result is free in the query; the real one is not: a row's maximum is at least each element).
Not modelled yet (`Open`: the value obligation stays inconclusive, saying why): trees with a term
of another form (an add rounded otherwise, a term of elements the IR keeps apart), reductions
across groups of CTAs of more threads than THREADS_FOLLOWED gives (each thread followed in turn
takes too long), online softmax's rescaled sums, reductions of different row lengths or axes in
one kernel, a leaf whose condition depends on the CTA other than through its row, and a shared
load from an address stored to in its own phase. An argmax's or argmin's pairs are followed by
`verify.arg_reductions` with this module's threads, exchanges and bags. In a kernel of several
paths each path's stores are followed on their own (`Prover.value_stores`): a phase is the count
of barriers a path passed, one numbering for every thread of a CTA where the barriers are uniform
(an obligation of its own)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import z3

from ir.dtypes import DType
from ir.kernel import Instr
from ir.ops import INDEX_REDUCTIONS
from ir.ops import Op as IrOp
from verify.arg_reductions import ArgTrees
from verify.bv_eval import NotEvaluable, compiled, compiled_all
from verify.ir_symbolic import At, IrTerms, accumulated
from verify.prove import (
    CLUSTER_FLAG,
    CONGRUENCE_MS,
    OFFSET_MASK,
    RANK_SHIFT,
    THREADS_FOLLOWED,
    VALUE_LOGIC,
    Access,
    Canonical,
    Combine,
    Exchange,
    SharedAccess,
    Tile,
    _base_of,
    _check,
    _generalised,
    _memory_reads,
    _nodes,
    equal_by_congruence,
)
from verify.symbolic import decoded, to_bits, to_float
from verify.tree_verdicts import ONLINE_PARTS, Open, OtherForm, Partial, Wrong

Leaf = tuple[int, int]  # (term id, thread)
# The combining instruction of each IR reduction, and the leaf values that change nothing.
# Sums are float32 adds rounded to nearest (any other rounding, or .ftz, is another operation).
# An integer sum's are 64-bit adds (.s64 and .u64 the same bits), whose result is exact in any order.
KINDS: dict[IrOp, str] = {IrOp.SUM: "add.f32", IrOp.MEAN: "add.f32", IrOp.AMAX: "max.NaN.f32",
                          IrOp.AMIN: "min.NaN.f32"}
INTEGER_KINDS: dict[tuple[IrOp, DType], str] = {(IrOp.SUM, DType.I64): "add.s64"}
SAME_KIND = {"add.u64": "add.s64"}
IDEMPOTENT = {IrOp.AMAX, IrOp.AMIN}  # taking an element twice changes nothing
# Combines that are their first operand where the second is the kind's identity (and, for adds,
# their second where the first is): an exact result is the same in every rounding. Not .ftz:
# flushing a subnormal operand changes it.
SIBLINGS: dict[str, frozenset[str]] = {
    "add.f32": frozenset({"add.rz.f32", "add.rm.f32", "add.rp.f32", "sub.f32", "sub.rz.f32", "sub.rm.f32",
                          "sub.rp.f32"}),
    "add.s64": frozenset({"sub.s64", "sub.u64"}),
}
IDENTITIES: dict[str, frozenset[int]] = {
    "add.f32": frozenset({0x00000000, 0x80000000}), "max.NaN.f32": frozenset({0xFF800000}),
    "min.NaN.f32": frozenset({0x7F800000}), "add.s64": frozenset({0}),
}


def kind_for(instr: Instr) -> str | None:
    """The combining instruction of an IR reduction (None: none is modelled, as for an integer max)."""
    dtype = instr.type.dtype  # type: ignore[union-attr]
    if dtype.is_float:
        return KINDS.get(instr.op)
    return INTEGER_KINDS.get((instr.op, dtype))


def is_integer(kind: str) -> bool:
    return kind in INTEGER_KINDS.values()


def leaf_value(bits: z3.ExprRef, kind: str) -> z3.ExprRef:
    """A leaf as its value: a float's bits as the float; an integer's as they are."""
    return bits if is_integer(kind) else to_float(bits, "f32")


ELEMENT = z3.BitVec("reduced element", 64)  # an element of a reduction's input, by its flat index
ELEMENT_NAME = ELEMENT.decl().name()
ELEMENT_BYTES = 8  # at most this many bytes of memory in each value a combine of one element's two values adds
DECIDE_MS = 2_000  # a condition on a thread that simplifying leaves the CTA in: the solver decides it


Reads = tuple[tuple[str, int], ...]  # the places a leaf reads: (buffer, index) each, in order
Check = Callable[..., z3.CheckSatResult]  # a query of constraints (and `limit_ms`): its result
Key = tuple[Reads, int]  # a kernel leaf in a bag: the places it reads and its template's id


def _prefix(key: int, bit: int) -> int:
    """The bits of `key` above `bit` (big-endian Patricia tries)."""
    return key & ~((bit << 1) - 1)


def _branching_bit(a: int, b: int) -> int:
    """The highest bit in which two prefixes differ."""
    return 1 << ((a ^ b).bit_length() - 1)


class Bags:
    """Multisets of leaves (by the places they read and their formula), as hash-consed big-endian
    Patricia tries over the leaves' numbers (Okasaki and Gill, "Fast mergeable integer maps"): a
    trie is canonical for its multiset, so equal bags are one id however a thread's tree joined
    them (threads of a cluster add the same partial sums in other orders), and joining bags of
    disjoint runs of leaves takes time in the depth of the trie rather than their size. Joins are
    remembered; a bag's counts are written out only where asked (`counts`)."""

    def __init__(self) -> None:
        # id -> ("leaf", number, count) or ("branch", prefix, bit, left, right); id 0 is the empty bag
        self.nodes: list[tuple] = [("empty",)]
        self.index: dict[tuple, int] = {}
        self.numbers: dict[Key, int] = {}
        self.keys: list[Key] = []
        self.joined: dict[tuple[int, int], int] = {}
        self.written: dict[int, Counter[Key]] = {}
        self.empty = 0

    def _node(self, shape: tuple) -> int:
        found = self.index.get(shape)
        if found is None:
            found = self.index[shape] = len(self.nodes)
            self.nodes.append(shape)
        return found

    def single(self, key: Key) -> int:
        number = self.numbers.get(key)
        if number is None:
            number = self.numbers[key] = len(self.keys)
            self.keys.append(key)
        return self._node(("leaf", number, 1))

    def join(self, a: int, b: int) -> int:
        if a == self.empty or b == self.empty:
            return b if a == self.empty else a
        pair = (a, b) if a < b else (b, a)
        found = self.joined.get(pair)
        if found is None:
            found = self.joined[pair] = self._union(a, b)
        return found

    def _link(self, p: int, s: int, q: int, t: int) -> int:
        """Two tries of prefixes that differ, under one branch."""
        bit = _branching_bit(p, q)
        low, high = (s, t) if p & bit == 0 else (t, s)
        return self._node(("branch", _prefix(p, bit), bit, low, high))

    def _union(self, s: int, t: int) -> int:
        first, second = self.nodes[s], self.nodes[t]
        if first[0] == "leaf":
            return self._insert(t, first[1], first[2])
        if second[0] == "leaf":
            return self._insert(s, second[1], second[2])
        _, p, m, s0, s1 = first
        _, q, n, t0, t1 = second
        if m == n and p == q:
            return self._node(("branch", p, m, self.join(s0, t0), self.join(s1, t1)))
        if m > n and _prefix(q, m) == p:
            return self._node(("branch", p, m, self.join(s0, t), s1) if q & m == 0 else
                              ("branch", p, m, s0, self.join(s1, t)))
        if n > m and _prefix(p, n) == q:
            return self._node(("branch", q, n, self.join(s, t0), t1) if p & n == 0 else
                              ("branch", q, n, t0, self.join(s, t1)))
        return self._link(p, s, q, t)

    def _insert(self, bag: int, number: int, count: int) -> int:
        node = self.nodes[bag]
        if node[0] == "leaf":
            if node[1] == number:
                return self._node(("leaf", number, node[2] + count))
            return self._link(number, self._node(("leaf", number, count)), node[1], bag)
        _, p, m, low, high = node
        if _prefix(number, m) != p:
            return self._link(number, self._node(("leaf", number, count)), p, bag)
        return self._node(("branch", p, m, self._insert(low, number, count), high) if number & m == 0 else
                          ("branch", p, m, low, self._insert(high, number, count)))

    def counts(self, bag: int) -> Counter[Key]:
        """The bag's leaves with their multiplicities."""
        if bag not in self.written:
            found: Counter[Key] = Counter()
            pending = [bag]
            while pending:
                node = self.nodes[pending.pop()]
                if node[0] == "leaf":
                    found[self.keys[node[1]]] += node[2]
                elif node[0] == "branch":
                    pending += [node[3], node[4]]
            self.written[bag] = found
        return self.written[bag]


def kind_of(combine: Combine) -> str:
    """The combining instruction, its default rounding left out: add.f32 (add.rn.f32 too),
    max.NaN.f32, add.s64 (add.u64 too), or another (max.f32 returns the other operand of a NaN:
    no IR reduction)."""
    kind = ".".join(word for word in combine.opcode.split(".") if word != "rn")
    return SAME_KIND.get(kind, kind)


def _constant(term: z3.ExprRef) -> int | bool | None:
    simple = z3.simplify(term)
    if z3.is_true(simple) or z3.is_false(simple):
        return z3.is_true(simple)
    return simple.as_long() if z3.is_bv_value(simple) else None


def _function(cache: dict[int, Callable[..., int | bool] | None], term: z3.ExprRef,
              symbols: tuple[str, ...], key: int | None = None) -> Callable[..., int | bool] | None:
    """`term` compiled to a Python function of `symbols`, once (None: it has anything else in it).
    The caller holds its terms, so that their ids stay theirs; `key`: the term's id, where known."""
    key = term.get_id() if key is None else key
    if key not in cache:
        try:
            cache[key] = compiled(term, symbols)
        except NotEvaluable:
            cache[key] = None
    return cache[key]


def _symbols_below(term: z3.ExprRef, symbols: tuple[int, ...]) -> dict[int, frozenset[int]]:
    """For each node of `term` (by id), which of `symbols` (constants, by id) occur under it."""
    found: dict[int, frozenset[int]] = {}
    pending: list[tuple[z3.ExprRef, bool]] = [(term, False)]
    while pending:
        node, children_done = pending.pop()
        key = node.get_id()
        if key in found:
            continue
        children = node.children()
        if children_done or not children:
            below = frozenset(k for k in (key,) if k in symbols).union(*(found[c.get_id()] for c in children))
            found[key] = below
        else:
            pending.append((node, True))
            pending.extend((c, False) for c in children if c.get_id() not in found)
    return found


@dataclass
class Expansion:
    """The leaves of reduction trees, per thread, through shuffles and shared memory."""

    tile: Tile
    kind: str
    memo: dict[Leaf, int] = field(default_factory=dict)
    bags: Bags = field(default_factory=lambda: Bags())
    leaf: Callable[[z3.ExprRef, int], int] | None = None  # a leaf (term, thread) as a bag
    element: Callable[[z3.ExprRef, int], bool] | None = None  # a combine of two loaded values is one IR element
    byte_reads: dict[int, tuple[frozenset[int] | None, z3.ExprRef]] = field(default_factory=dict)  # `_bytes_read`'s
    terms: dict[int, z3.ExprRef] = field(default_factory=dict)  # the terms `memo` keys on, held: ids stay theirs
    writers: dict[int, dict[int, list[int]]] = field(default_factory=dict)  # store index -> address -> threads
    evaluators: dict[int, tuple[z3.ExprRef, Callable[[int], int | bool]]] = field(default_factory=dict)  # `at`'s
    functions: dict[int, Callable[[int], int | bool] | None] = field(default_factory=dict)
    deadline: float = math.inf  # time.perf_counter() past which nothing more is decided
    ranks: dict[tuple[int, int], tuple[z3.ExprRef, z3.ExprRef]] = field(default_factory=dict)  # (term, rank): its
    solved: dict[int, tuple[z3.BoolRef, bool | None]] = field(default_factory=dict)  # conditions the solver decided
    shapes: dict[int, tuple] = field(default_factory=dict)  # term id -> what `_expand` does with it
    freed_terms: dict[int, tuple[z3.ExprRef, z3.ExprRef | None]] = field(default_factory=dict)  # `freed`'s
    loads: dict[tuple[bool, int, int, int, int], tuple[z3.ExprRef, int]] = field(default_factory=dict)  # `loaded`'s
    executions: dict[tuple[int, int], dict[int, Exchange]] = field(default_factory=dict)  # `supplying`'s index
    parts: dict[tuple[str, int, int], tuple[z3.ExprRef, int]] = field(default_factory=dict)  # `from_workspace`'s
    workspace_writers: dict[str, list[tuple[Access, dict[int, list[int]]]]] = field(default_factory=dict)

    def function(self, term: z3.ExprRef) -> Callable[[int], int | bool] | None:
        """A term of the thread's coordinates alone as a Python function of the thread (None where
        it has the CTA or anything else in it)."""
        return _function(self.functions, term, (self.tile.tid.decl().name(),))

    def ranked(self, term: z3.ExprRef, rank: int) -> z3.ExprRef:
        """`term` in the CTA of rank `rank` of a symbolic cluster (simplified: a rank's terms are
        often free of the cluster, and then evaluate as functions of the thread alone)."""
        key = (term.get_id(), rank)
        if key not in self.ranks:  # the term held beside its form: ids stay theirs
            self.ranks[key] = (term, z3.simplify(z3.substitute(term, *_ranked(self.tile, rank))))
        return self.ranks[key][1]

    def at(self, term: z3.ExprRef, thread: int) -> int | bool:
        """A term of the thread's coordinates that must be the same constant in every CTA of the
        launch (a condition is decided by the solver where simplifying leaves the CTA in it). In a
        kernel of clusters `thread` counts the threads of a cluster (rank by rank), and the term
        must be the same in that rank's CTA of every cluster."""
        key = term.get_id()
        if key not in self.evaluators:  # the term held: its id stays its
            self.evaluators[key] = (term, self._evaluator(term))
        return self.evaluators[key][1](thread)

    def _evaluator(self, term: z3.ExprRef) -> Callable[[int], int | bool]:
        """`at` for one term: each thread's value computed once, by the term's compiled function
        in the thread's rank (found once per rank), else by z3."""
        threads, group = self.tile.launch.threads, self.tile.group
        functions: dict[int, tuple[z3.ExprRef, Callable[[int], int | bool] | None]] = {}  # rank -> (term, its)
        values: dict[int, int | bool] = {}

        def value(thread: int) -> int | bool:
            found = values.get(thread)
            if found is not None:
                return found
            rank, tid = divmod(thread, threads)
            if rank not in functions:
                ranked = self.ranked(term, rank) if group > 1 else term
                function = self.function(ranked)
                if function is None:  # conditions on the cluster alone decided once, for every thread
                    freed = self.freed(ranked)
                    function = self.function(freed) if freed is not None else None
                functions[rank] = (ranked, function)
            ranked, function = functions[rank]
            values[thread] = function(tid) if function is not None else self._solved(ranked, tid, thread)
            return values[thread]
        return value

    def _solved(self, ranked: z3.ExprRef, tid: int, thread: int) -> int | bool:
        """`at` where the term (in the thread's rank) is no function of the thread alone:
        simplified at the thread, and a condition left with the CTA in it decided by the solver."""
        mine = z3.simplify(z3.substitute(ranked, (self.tile.tid, z3.BitVecVal(tid, 32))))
        value = _constant(mine)
        if value is None and z3.is_bool(mine):
            value = self.decide(mine)
        if value is None:
            raise Open(f"thread {thread}: a lane, shared address or condition that is not the same in every CTA: "
                       f"{z3.simplify(ranked)}"[:300])
        return value

    def freed(self, term: z3.ExprRef) -> z3.ExprRef | None:
        """`term` (of a rank's CTA) with each condition on the CTA (the cluster) alone replaced by
        its value, the same in every CTA (cluster) of the launch (`decide`): a term of the thread
        alone then, or None where a condition has no such value or the CTA stays in it otherwise."""
        if term.get_id() not in self.freed_terms:  # the term held: its id stays its
            self.freed_terms[term.get_id()] = (term, self._freed(term))
        return self.freed_terms[term.get_id()][1]

    def _freed(self, term: z3.ExprRef) -> z3.ExprRef | None:
        cta, tid = self.tile.cta.get_id(), self.tile.tid.get_id()
        has = _symbols_below(term, (cta, tid))
        pairs, pending, seen = [], [term], set()
        while pending:
            node = pending.pop()
            if node.get_id() in seen or cta not in has[node.get_id()]:
                continue
            seen.add(node.get_id())
            if z3.is_bool(node) and tid not in has[node.get_id()]:
                value = self.decide(node)
                if value is None:
                    return None
                pairs.append((node, z3.BoolVal(value)))
            else:
                pending.extend(node.children())
        freed = z3.simplify(z3.substitute(term, *pairs)) if pairs else term
        return None if any(n.eq(self.tile.cta) for n in _nodes(freed)) else freed

    def decide(self, condition: z3.BoolRef) -> bool | None:
        """A condition left with the CTA in it, true or false in every CTA (or cluster) of the
        launch, by the solver (None: neither); many threads share one, each asked once."""
        if condition.get_id() not in self.solved:  # the condition held: its id stays its
            if time.perf_counter() > self.deadline:
                raise Open("the kernel's time is spent deciding the threads' conditions")
            ctas = [z3.ULT(self.tile.cta, self.tile.launch.ctas // self.tile.group)]
            value = True if _check(ctas + [z3.Not(condition)], DECIDE_MS)[0] == z3.unsat else \
                False if _check(ctas + [condition], DECIDE_MS)[0] == z3.unsat else None
            self.solved[condition.get_id()] = (condition, value)
        return self.solved[condition.get_id()][1]

    def leaves(self, bits: z3.ExprRef, thread: int) -> int:
        """The bag (an id in `bags`) of the leaves of `bits` in thread `thread`."""
        return self._leaves(bits, bits.get_id(), thread)

    def _leaves(self, bits: z3.ExprRef, key: int, thread: int) -> int:
        if (key, thread) not in self.memo:
            self.terms[key] = bits
            self.memo[(key, thread)] = self._expand(bits, key, thread)
        return self.memo[(key, thread)]

    def _shape(self, bits: z3.ExprRef, key: int) -> tuple:
        """What `_expand` does with a term, found once per term (every thread asks): a combine of
        this kind, a choice, a value another thread supplied, or a leaf, with its parts' ids."""
        if key not in self.shapes:
            combine = self.tile.combines.get(key)
            known = self.tile.exchange_ids.get(key)
            halves = _halves(self.tile, bits)
            if combine is not None and kind_of(combine) == self.kind:
                parts = (combine.first, combine.second)
                self.shapes[key] = ("join", *[(p, p.get_id()) for p in parts])
            elif combine is not None and kind_of(combine) in SIBLINGS.get(self.kind, ()):
                parts = (combine.first, combine.second)
                self.shapes[key] = ("sibling", combine.opcode.startswith("sub"), *[(p, p.get_id()) for p in parts])
            elif z3.is_app_of(bits, z3.Z3_OP_ITE) and not z3.is_app_of(bits.arg(0), z3.Z3_OP_FPA_IS_NAN) \
                    and not _memory_reads(bits.arg(0)):  # a choice on data (selp of a compare) is a leaf's
                self.shapes[key] = ("choose", bits.arg(0), (bits.arg(1), bits.arg(1).get_id()),
                                    (bits.arg(2), bits.arg(2).get_id()))
            elif known is not None:
                self.shapes[key] = ("supplied", known[1])
            elif halves is not None:
                self.shapes[key] = ("halves", halves)
            else:
                self.shapes[key] = ("leaf",)
        return self.shapes[key]

    def _expand(self, bits: z3.ExprRef, key: int, thread: int) -> int:
        """`bits` (or the float a combine computed, where a tree starts at one) as a bag of leaves."""
        shape = self._shape(bits, key)
        if shape[0] == "join":
            if self.element is not None and self._of_loads(shape) and self.element(bits, thread):
                assert self.leaf is not None
                return self.leaf(bits, thread)
            return self.bags.join(self._leaves(*shape[1], thread), self._leaves(*shape[2], thread))
        if shape[0] == "choose":
            return self._leaves(*(shape[2] if self.at(shape[1], thread) else shape[3]), thread)
        if shape[0] == "sibling":
            return self._sibling(bits, shape, thread)
        if shape[0] == "leaf":
            assert self.leaf is not None
            return self.leaf(bits, thread)
        if shape[0] == "halves":
            return self.leaves(*self.put_together(shape[1], thread))
        return self.leaves(*self.followed(shape[1], thread))

    def _sibling(self, bits: z3.ExprRef, shape: tuple, thread: int) -> int:
        """A sub, or an add rounded otherwise, in this thread: the bag of one operand where the
        other's is empty (the identity: the result is exact, whatever the rounding; for a sub,
        only where the subtrahend is); else a leaf, of another form than the reduction's."""
        _, is_sub, first, second = shape
        try:
            if self._leaves(*second, thread) == self.bags.empty:
                return self._leaves(*first, thread)
            if not is_sub and self._leaves(*first, thread) == self.bags.empty:
                return self._leaves(*second, thread)
        except Open:
            pass  # an operand not followed: the node stays a leaf
        assert self.leaf is not None
        return self.leaf(bits, thread)

    def _of_loads(self, shape: tuple) -> bool:
        """A combine of two values that each read a few bytes of memory (one element's) and neither
        combines nor was supplied (a leaf, or a choice such as a tail's guard): where the IR's
        elements are such sums (a residual added before a norm), possibly one element; `element`
        decides by the places it reads."""
        return all(self._shape(part, key)[0] in ("leaf", "choose") and 0 < self._bytes_read(part) <= ELEMENT_BYTES
                   for part, key in shape[1:])

    def _bytes_read(self, term: z3.ExprRef) -> int:
        """How many distinct bytes of memory `term` reads, counted up to ELEMENT_BYTES + 1 (more is
        a partial of many elements), each subterm once for every term asked (iterative: chains of
        partial sums are deep)."""
        found, pending = self.byte_reads, [term]
        while pending:
            node = pending[-1]
            if node.get_id() in found:
                pending.pop()
                continue
            children = [c for c in node.children() if c.get_id() not in found]
            if children:
                pending.extend(children)
                continue
            pending.pop()
            mine = frozenset((node.get_id(),)) if z3.is_select(node) else frozenset()
            union = mine.union(*(found[c.get_id()][0] for c in node.children() if found[c.get_id()][0] is not None))
            many = any(found[c.get_id()][0] is None for c in node.children()) or len(union) > ELEMENT_BYTES
            found[node.get_id()] = (None if many else union, node)  # the node held: its id stays its
        reads = found[term.get_id()][0]
        return ELEMENT_BYTES + 1 if reads is None else len(reads)

    def followed(self, exchange: Exchange, thread: int) -> tuple[z3.ExprRef, int]:
        """The value the thread received through `exchange`, as its supplier holds it, and the supplier."""
        if not self.at(exchange.condition, thread):
            raise Open(f"line {exchange.instruction.line}: thread {thread} uses a value it did not receive")
        return SOURCES[exchange.kind](self, exchange, thread)

    def put_together(self, exchanges: list[Exchange], thread: int) -> tuple[z3.ExprRef, int]:
        """A value supplied in parts: the one value whose bits the parts' sources are, in order,
        all from one supplier."""
        found = [self.followed(exchange, thread) for exchange in exchanges]
        whole = _whole([source for source, _ in found])
        if whole is None or len({supplier for _, supplier in found}) != 1:
            raise Open(f"line {exchanges[0].instruction.line}: a value supplied in parts that are not the bits of "
                       "one value of one thread")
        return whole, found[0][1]

    def shuffled(self, exchange: Exchange, thread: int) -> tuple[z3.ExprRef, int]:
        """The PTX ISA's shfl.sync: the lane read, or the thread's own value where it is out of range."""
        assert exchange.lane is not None and exchange.clamp is not None and exchange.mask is not None
        lane, b, c, mask = thread % 32, self.at(exchange.lane, thread), self.at(exchange.clamp, thread), \
            self.at(exchange.mask, thread)
        segment, clamp = (c >> 8) & 0x1F, c & 0x1F
        high, low = (lane & segment) | (clamp & ~segment & 0x1F), lane & segment
        source, valid = SHUFFLE_LANES[exchange.mode](lane, int(b) & 0x1F, low, high, segment)  # b[4:0]
        source = source if valid else lane
        supplier = thread - lane + source
        if not (int(mask) >> lane) & 1 or not (int(mask) >> source) & 1:
            raise Open(f"line {exchange.instruction.line}: a lane outside the shuffle's member mask")
        threads = self.tile.launch.threads
        supplying = self.supplying(exchange, supplier) if supplier // threads == thread // threads else None
        if supplying is None:
            raise Open(f"line {exchange.instruction.line}: lane {source} does not take part in the shuffle")
        assert supplying.source is not None
        return supplying.source, supplier

    def supplying(self, exchange: Exchange, supplier: int) -> Exchange | None:
        """The supplier's record of the same execution of the shuffle: this one where the supplier
        follows the same path, else the one of the path it follows (the same instruction, as many
        times executed before; after a loop whose trips differ by thread, the paths differ)."""
        if self.at(exchange.condition, supplier):
            return exchange
        key = (exchange.instruction.line, exchange.occurrence)
        if not self.executions:
            for _, other in self.tile.exchange_ids.values():
                if other.kind == "shfl":
                    self.executions.setdefault((other.instruction.line, other.occurrence), {})[id(other)] = other
        return next((other for other in self.executions.get(key, {}).values()
                     if other is not exchange and self.at(other.condition, supplier)), None)

    def loaded(self, exchange: Exchange, thread: int) -> tuple[z3.ExprRef, int]:
        """The value of the one store of an earlier phase to the shared byte the thread loads: of
        its own CTA's memory, phases end at its barriers; through the cluster window (another CTA's,
        or its own), at cluster barriers."""
        assert exchange.address is not None
        rank, address = self._reached(exchange.address, exchange.cluster, thread)
        loading = exchange.cluster_epoch if exchange.cluster else exchange.epoch
        key = (exchange.cluster, loading, exchange.size, rank, address)
        if key not in self.loads:  # the same for every thread that loads those bytes in that phase
            self.loads[key] = self._stored_at(exchange, loading, rank, address)
        return self.loads[key]

    def _stored_at(self, exchange: Exchange, loading: int, rank: int, address: int) -> tuple[z3.ExprRef, int]:
        """`loaded`'s value and supplier, for the bytes at `address` of rank `rank`'s shared memory."""
        if any(s.kind == "store" and s.cluster for s in self.tile.shared):
            raise Open(f"line {exchange.instruction.line}: stores through the cluster window")
        phase: Callable[[SharedAccess], int] = (lambda s: s.cluster_epoch) if exchange.cluster else \
            (lambda s: s.epoch)

        def stored(i: int, s: SharedAccess) -> list[tuple[int, int]]:  # the stores that start at most s.size before
            written = self._written(i, s)
            return [(offset, w) for offset in range(max(address - s.size + 1, 0), address + 1)
                    for w in written.get((rank, offset), ())]
        same_phase = [s for i, s in enumerate(self.tile.shared) if s.kind == "store" and phase(s) == loading
                      and stored(i, s)]
        if same_phase:
            raise Open(f"line {exchange.instruction.line}: shared offset {address} is stored to in the phase it is "
                       "loaded in")
        stores = [(i, s) for i, s in enumerate(self.tile.shared) if s.kind == "store" and phase(s) < loading]
        for epoch in sorted({phase(s) for _, s in stores}, reverse=True):
            found = [(s, w, offset) for i, s in stores if phase(s) == epoch for offset, w in stored(i, s)]
            if len(found) > 1:
                raise Open(f"line {exchange.instruction.line}: {len(found)} stores to shared offset {address}")
            if found:
                store, writer, offset = found[0]
                return _loaded_part(exchange, store.data, store.size, address - offset), writer
        raise Open(f"line {exchange.instruction.line}: shared offset {address} is loaded before any store")

    def _reached(self, term: z3.ExprRef, window: bool, thread: int) -> tuple[int, int]:
        """(CTA rank, offset) of the shared byte an address reaches: the thread's own CTA's, or
        through the cluster window the rank mapa named."""
        value = int(self.at(term, thread))
        own = thread // self.tile.launch.threads
        if not window or not value & CLUSTER_FLAG:
            return own, value
        rank = (value >> RANK_SHIFT) & 0x7F
        if rank >= self.tile.launch.cluster_size:
            raise Open(f"thread {thread}: a shared address of CTA rank {rank}, outside its cluster")
        return rank, value & OFFSET_MASK

    def from_workspace(self, exchange: Exchange, thread: int) -> tuple[z3.ExprRef, int]:
        """The bytes the last CTA's thread loads from a workspace: the part the one store of an
        earlier CTA (or its own) that holds them put there, and the thread of the launch (rank by
        rank) that made it. That the load comes after every part's release, and that no two stores
        meet, are obligations of their own (the protocol; the workspace written at most once)."""
        assert exchange.address is not None
        address = int(self.at(exchange.address, thread))
        key = (exchange.buffer, exchange.size, address)
        if key not in self.parts:
            found = [(store, writer, offset) for store, table in self._parts(exchange.buffer)
                     for offset in range(max(address - store.size + 1, 0), address + 1)
                     for writer in table.get(offset, ())]
            if len(found) != 1:
                raise Open(f"line {exchange.instruction.line}: {len(found)} stores to byte {address} of the "
                           f"workspace {exchange.buffer}")
            store, writer, offset = found[0]
            self.parts[key] = (_loaded_part(exchange, store.data, store.size, address - offset), writer)
        return self.parts[key]

    def _parts(self, buffer: str) -> list[tuple[Access, dict[int, list[int]]]]:
        """The stores to a workspace, each with who stores where: offset -> the threads of the launch
        (rank by rank) that make it."""
        if buffer not in self.workspace_writers:
            base = self.tile.bases[buffer]
            stores = [a for a in self.tile.accesses if a.kind == "store" and _base_of(self.tile, a.address) == buffer]
            offsets = [z3.simplify(store.address - base) for store in stores]
            self.workspace_writers[buffer] = [
                (store, self._who_stores(store.condition, lambda w, offset=offset: int(self.at(offset, w))))
                for store, offset in zip(stores, offsets)]
        return self.workspace_writers[buffer]

    def _written(self, index: int, store: SharedAccess) -> dict[tuple[int, int], list[int]]:
        """Who stores where: (CTA rank, offset) -> the threads (of the cluster) whose store it is."""
        if index not in self.writers:
            self.writers[index] = self._who_stores(store.condition,
                                                   lambda w: self._reached(store.address, store.cluster, w))
        return self.writers[index]

    def _who_stores(self, condition: z3.BoolRef, place: Callable[[int], Any]) -> dict[Any, list[int]]:
        """place -> the threads of the group (rank by rank) whose store, made where `condition`
        holds, is there."""
        table: dict[Any, list[int]] = {}
        for w in range(self.tile.launch.threads * self.tile.group):
            if self.at(condition, w):
                table.setdefault(place(w), []).append(w)
        return table


def _loaded_part(exchange: Exchange, data: z3.BitVecRef | None, size: int, start: int) -> z3.ExprRef:
    """The bytes a load takes of one store (of `size` bytes, `data`) from byte `start` of it: the
    stored term itself where it takes all of it, as a tree has it."""
    if data is None or exchange.size > size - start:
        raise Open(f"line {exchange.instruction.line}: a load across stores")
    low, bits = start * 8, exchange.size * 8
    return data if low == 0 and bits == data.size() else z3.Extract(low + bits - 1, low, data)


def _integer_parts(term: z3.ExprRef, cta: z3.ExprRef) -> list[z3.ExprRef]:
    """The largest subterms of `term` with the CTA in them and no float in them: whatever of the
    term depends on the CTA depends on it through these."""
    floats: dict[int, bool] = {}

    def has_float(node: z3.ExprRef) -> bool:
        if node.get_id() not in floats:
            floats[node.get_id()] = z3.is_fp(node) or z3.is_fprm(node) or any(has_float(c) for c in node.children())
        return floats[node.get_id()]
    found: dict[int, z3.ExprRef] = {}
    seen: set[int] = set()
    pending = [term]
    while pending:
        node = pending.pop()
        if node.get_id() in seen:
            continue
        seen.add(node.get_id())
        if not has_float(node):
            if any(n.eq(cta) for n in _nodes(node)):
                found[node.get_id()] = node
        else:
            pending.extend(node.children())
    return list(found.values())


def _ranked(tile: Tile, rank: int) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """Substitutions that put a term in the CTA of rank `rank` of a group of CTAs (`Tile.group`),
    the group left symbolic: the CTA becomes rank + group size times the group's index (the rank
    itself where the group is the whole launch). Where the group is the launch because the last
    CTA reads the others' parts (`Protocol.across`), each CTA is also taken as the last one: the
    last CTA's terms hold `cta == last`, which then holds in every CTA, and the parts, stored before
    the arrival, do not hold the last CTA; so a proof over every thread covers each CTA being last."""
    group = tile.group
    cta = z3.BitVecVal(rank, 32) if group == tile.launch.ctas else tile.cta * group + rank
    return [(tile.cta, cta)] + ([(tile.last, cta)] if tile.protocol.across else [])


def _at_cluster0(tile: Tile, thread: int) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """Substitutions that put a term at thread `thread` of the first group of CTAs (the first CTA
    without groups)."""
    threads = tile.launch.threads
    cta = z3.BitVecVal(thread // threads, 32)
    return [(tile.tid, z3.BitVecVal(thread % threads, 32)), (tile.cta, cta)] + \
        ([(tile.last, cta)] if tile.protocol.across else [])


def _home(tile: Tile) -> z3.BitVecRef:
    """The CTA of the first group that holds the same rank as the tile's CTA (CTA 0 without
    groups): what the lemmas carry from."""
    group = tile.group
    return z3.BitVecVal(0, 32) if group == 1 else z3.URem(tile.cta, group)


SOURCES = {"shfl": Expansion.shuffled, "shared": Expansion.loaded, "workspace": Expansion.from_workspace}
# shfl.sync's source lane and whether it is in range: (lane, b, minLane, maxLane, segment mask).
SHUFFLE_LANES = {
    "bfly": lambda lane, b, low, high, seg: (lane ^ b, (lane ^ b) <= high),
    "down": lambda lane, b, low, high, seg: (lane + b, lane + b <= high),
    "up": lambda lane, b, low, high, seg: (lane - b, lane - b >= high),
    "idx": lambda lane, b, low, high, seg: (low | (b & ~seg & 0x1F), (low | (b & ~seg & 0x1F)) <= high),
}


@dataclass(frozen=True)
class Formula:
    """A leaf's value with the places it reads renamed (`reads`: every (buffer, index) it reads,
    a byte of an input or a reduction's accumulated result; in the template each is named by its
    offset from the first it reads of its buffer)."""

    reads: Reads
    template: z3.ExprRef


def _is_accumulated(node: z3.ExprRef) -> bool:
    """An IR reduction's accumulated value (`ir_symbolic.accumulated`) of one result."""
    return z3.is_app(node) and node.num_args() == 1 and node.decl().kind() == z3.Z3_OP_UNINTERPRETED and \
        node.decl().name().startswith("accumulated ")


def _places(term: z3.ExprRef) -> list[z3.ExprRef]:
    """The places `term` reads: bytes of buffers and accumulated results of reductions."""
    return [n for n in _nodes(term) if z3.is_select(n) or _is_accumulated(n)]


def _place(node: z3.ExprRef) -> tuple[str, z3.ExprRef]:
    """A place's buffer (an input's bytes, or a reduction's results) and its index there."""
    return (node.arg(0).decl().name(), node.arg(1)) if z3.is_select(node) else (node.decl().name(), node.arg(0))


@dataclass
class Templates:
    """Formulas of a symbolic term at many values of its symbols: the places it reads evaluated
    in Python (`verify.bv_eval`), its template built once per pattern of places. A term whose
    value depends on the symbols other than through the places it reads gets no template here
    (None: the caller substitutes and simplifies instead)."""

    term: z3.ExprRef
    reads: list[z3.ExprRef] = field(default_factory=list)
    built: dict[tuple[Reads, tuple[bool, ...]], Formula | None] = field(default_factory=dict)

    places: Callable[..., tuple[int | bool, ...]] | None = None  # the reads' places, compiled
    placeable: bool = True  # the places are functions of the symbols alone
    buffers: list[str] = field(default_factory=list)
    indices: list[z3.ExprRef] = field(default_factory=list)
    choices: list[tuple[z3.ExprRef, Callable[..., int | bool]]] = field(default_factory=list)
    chosen: dict[tuple[bool, ...], tuple[z3.ExprRef, list[int]] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reads = _places(self.term)
        self.buffers = [_place(read)[0] for read in self.reads]
        self.indices = [_place(read)[1] for read in self.reads]

    def _choices(self, symbols: tuple[str, ...]) -> None:
        """The if-then-else nodes whose condition is a function of the symbols alone (a tail
        predicate): decided per value of the symbols before the template is built."""
        for node in _nodes(self.term):
            if z3.is_app_of(node, z3.Z3_OP_ITE) and not z3.is_app_of(node.arg(0), z3.Z3_OP_FPA_IS_NAN):
                try:
                    self.choices.append((node, compiled(node.arg(0), symbols)))
                except NotEvaluable:
                    continue

    def at(self, symbols: dict[str, int]) -> Formula | None:
        if self.places is None and self.placeable:
            self._choices(tuple(symbols))
            try:
                self.places = compiled_all([z3.simplify(index) for index in self.indices], tuple(symbols))
            except NotEvaluable:
                self.placeable = False
        if self.places is None:
            return None
        values = tuple(symbols.values())
        decided = tuple(bool(f(*values)) for _, f in self.choices)
        chosen = self._chosen(decided)
        if chosen is None:
            return None
        term, kept = chosen
        found = self.places(*values)
        places = [(self.buffers[i], int(found[i])) for i in kept]
        firsts: dict[str, int] = {}
        for buffer, index in places:
            firsts[buffer] = min(index, firsts.get(buffer, index))
        pattern = tuple((buffer, index - firsts[buffer]) for buffer, index in places)
        if (pattern, decided) not in self.built:
            pairs = [(self.reads[i], z3.Const(f"byte {buffer} +{offset}" if z3.is_select(self.reads[i]) else
                                              f"{buffer} +{offset}", self.reads[i].sort()))
                     for i, (buffer, offset) in zip(kept, pattern)]
            template = z3.simplify(z3.substitute(term, *pairs) if pairs else term)
            free = {n.decl().name() for n in _nodes(template) if z3.is_const(n)} & set(symbols)
            self.built[(pattern, decided)] = None if free else Formula((), template)
        found = self.built[(pattern, decided)]
        return None if found is None else Formula(tuple(sorted(set(places))), found.template)

    def _chosen(self, decided: tuple[bool, ...]) -> tuple[z3.ExprRef, list[int]] | None:
        """The term with its choices decided (their conditions replaced, so that the branch taken
        keeps its own places) and which of `reads` it still reads; None where simplifying made a
        place anew (the caller substitutes and simplifies instead)."""
        if decided not in self.chosen:
            pairs = [(node.arg(0), z3.BoolVal(choice)) for (node, _), choice in zip(self.choices, decided)]
            if not pairs:  # nothing to decide: the term reads what it reads
                self.chosen[decided] = (self.term, list(range(len(self.reads))))
                return self.chosen[decided]
            term = z3.simplify(z3.substitute(self.term, *pairs))
            ids = {read.get_id(): i for i, read in enumerate(self.reads)}
            kept = [ids.get(place.get_id()) for place in _places(term)]
            self.chosen[decided] = None if None in kept else (term, sorted(k for k in kept if k is not None))
        return self.chosen[decided]


def formula(term: z3.ExprRef) -> Formula:
    """`term` (concrete places) with each buffer's places renamed by their offset from the first
    one it reads, so that the same computation on other elements has the same template."""
    found = Templates(term).at({})
    if found is None:
        raise Open(f"a leaf reads a place that is not fixed: {term}"[:300])
    return found


@dataclass
class ReductionProof:
    """One IR reduction's rows (the elements each result accumulates, as formulas of the places
    they read), matched against the bags of leaves of the kernel's trees."""

    terms: IrTerms
    instr: Instr
    ir_leaves: dict[int, Counter[Reads]] = field(default_factory=dict)
    ir_formulas: dict[Reads, Formula] = field(default_factory=dict)
    ir_template: Templates | None = None
    matched: dict[int, int] = field(default_factory=dict)  # bag -> result
    other_form: dict[int, OtherForm] = field(default_factory=dict)  # bags of terms of another form than the IR's

    @property
    def rows(self) -> Rows:
        """Which of the input's elements each result accumulates."""
        return _rows(self.terms, self.instr)

    def row(self, reduced: int) -> Counter[Reads]:
        """The IR's accumulated elements of result `reduced`, by the places each reads."""
        if reduced not in self.ir_leaves:
            found: Counter[Reads] = Counter()
            for element in self.terms.reduced_elements(self.instr, reduced):
                leaf = self.leaf(element)
                self.ir_formulas.setdefault(leaf.reads, leaf)
                found[leaf.reads] += 1
            self.ir_leaves[reduced] = found
        return self.ir_leaves[reduced]

    def leaf(self, element: int) -> Formula:
        """The IR's element `element` of the reduction's input as a formula of the places it reads."""
        arg = self.instr.args[0]
        shape = self.terms.types[arg].shape
        if self.ir_template is None:
            self.ir_template = Templates(z3.simplify(self.terms.value(arg, At(ELEMENT, shape))))
        return self.ir_template.at({ELEMENT_NAME: element}) or \
            formula(z3.simplify(self.terms.value(arg, At(z3.BitVecVal(element, 64), shape))))

    @property
    def results(self) -> int:
        return math.prod(self.instr.type.shape)  # type: ignore[union-attr]

    def guess(self, got: Counter[Reads]) -> int:
        """The result whose row a bag of leaves would be: the result of the element whose place in
        the first buffer the IR's first element reads is the bag's lowest there (places and
        elements in steps of one element's place; along the innermost axes, in steps of a row)."""
        first = self.leaf(0).reads
        buffers = {b for b, _ in first}
        if not got or buffers != {b for reads in got for b, _ in reads}:
            raise OtherForm(f"the kernel's tree has terms of another form than the IR's {self.instr.op.value}")
        buffer = min(buffers)
        base = min(i for b, i in first if b == buffer)
        low = min(i for reads in got for b, i in reads if b == buffer)
        rows = self.rows
        if self.results == 1:
            return 0
        if rows.contiguous:
            stride = min(i for b, i in self.leaf(rows.count).reads if b == buffer) - base
            return min(max((low - base) // stride, 0), self.results - 1) if stride > 0 else 0
        step = min(i for b, i in self.leaf(1).reads if b == buffer) - base
        element = min(max((low - base) // step, 0), math.prod(rows.shape) - 1) if step > 0 else 0
        return rows.result_of(element)

    def match(self, bag: int, got: Counter[Reads], thread: int) -> int:
        """The result whose elements the bag holds, each exactly once (a max or min: each at least
        once, taking one twice changes nothing); Wrong where a sum holds one twice, Partial where it
        misses elements (part of a row, which online softmax's rescaled sums mean), Open where it
        holds terms of another form."""
        if bag in self.other_form:  # the same for every thread that holds the bag: asked once
            raise OtherForm(str(self.other_form[bag]))
        if bag not in self.matched:
            try:
                reduced = self.guess(got)
            except OtherForm as err:
                self.other_form[bag] = err
                raise
            want = self.row(reduced)
            same = set(got) == set(want) if self.instr.op in IDEMPOTENT else got == want
            if not same:
                if not set(got) <= set(want):
                    raise Open(_difference(got, want, thread, reduced))
                if any(got[k] > want[k] for k in got) and self.instr.op not in IDEMPOTENT:
                    raise Wrong(_difference(got, want, thread, reduced))
                raise Partial(_difference(got, want, thread, reduced), self.instr, reduced, thread)
            self.matched[bag] = reduced
        return self.matched[bag]


def formulas_agree(pairs: Iterable[tuple[z3.ExprRef, z3.ExprRef]], check: Check) -> None:
    """Each kernel leaf's formula equals its element's in the IR, bit for bit (NaN for NaN): the
    same term once both are written in one canonical form, else by the solver (the subterms both
    share abstracted). Where the formulas use another reduction's result (a free value here, which
    the real one is not: a row's maximum is at least each of its elements), a difference refutes
    nothing."""
    canonical = Canonical()
    for mine, theirs in pairs:
        mine, theirs = canonical(decoded(mine)), canonical(decoded(theirs))
        if mine.eq(theirs):
            continue
        same = mine == theirs if z3.is_bv(mine) else \
            z3.Or(z3.fpToIEEEBV(mine) == z3.fpToIEEEBV(theirs), z3.And(z3.fpIsNaN(mine), z3.fpIsNaN(theirs)))
        result = check([z3.Not(_generalised(same, mine, theirs))], logic=VALUE_LOGIC)
        if result != z3.unsat and equal_by_congruence(mine, theirs, lambda equal: check(
                [z3.Not(equal)], limit_ms=CONGRUENCE_MS, logic=VALUE_LOGIC) == z3.unsat):
            continue
        if result != z3.unsat:
            result = check([z3.Not(same)], logic=VALUE_LOGIC)
        if result == z3.sat and not any(n.decl().name().startswith("accumulated ") for n in _nodes(mine, theirs)
                                         if z3.is_const(n)):
            raise Wrong(f"a term the kernel accumulates is not the IR's element: {mine} where the IR has "
                        f"{theirs}")
        if result != z3.unsat:
            raise Open(f"a term the kernel accumulates is not shown to be the IR's element ({result}): {mine} "
                       f"where the IR has {theirs}"[:400])


def _is_identity(found: Formula, kind: str) -> bool:
    """A leaf that reads nothing and is the reduction's identity (adding it changes nothing)."""
    if found.reads:
        return False
    bits = z3.simplify(found.template if is_integer(kind) else z3.fpToIEEEBV(found.template))
    return z3.is_bv_value(bits) and bits.as_long() in IDENTITIES[kind]


def _difference(got: Counter, want: Counter, thread: int, reduced: int) -> str:
    missing, extra = want - got, got - want
    say = []
    if missing:
        say.append(f"misses {sum(missing.values())} of the IR's elements (one reads {_bytes(next(iter(missing)))})")
    if extra:
        reads = next(iter(extra))
        twice = " more than once" if reads in want else ""
        say.append(f"accumulates {sum(extra.values())} term(s) the IR does not{twice} (one reads {_bytes(reads)})")
    return f"thread {thread} of CTA 0, for result {reduced}: the kernel's reduction {' and '.join(say)}"


def _bytes(reads: Reads) -> str:
    firsts: dict[str, int] = {}
    for buffer, byte in reads:
        firsts.setdefault(buffer, byte)
    return ", ".join(f"{b.removeprefix('memory ')} from {'byte ' if b.startswith('memory ') else 'result '}{first}"
                     for b, first in firsts.items()) or "nothing"


def _tree_leaves(tile: Tile, root: Combine) -> Iterator[z3.ExprRef]:
    """The operands of a tree of combines of one kind that are no such combine."""
    kind, pending, seen = kind_of(root), [root.first, root.second], set()
    while pending:
        term = pending.pop()
        if term.get_id() in seen:
            continue
        seen.add(term.get_id())
        combine = tile.combines.get(term.get_id())
        if combine is not None and kind_of(combine) == kind:
            pending += [combine.first, combine.second]
        else:
            yield term


def _halves(tile: Tile, term: z3.ExprRef) -> list[Exchange] | None:
    """The exchanges of a value supplied in parts (a 64-bit value shuffled as two 32-bit halves and
    put back together: a concatenation of shuffled values, the highest first); None otherwise."""
    if not z3.is_app_of(term, z3.Z3_OP_CONCAT):
        return None
    found = [tile.exchange_ids.get(part.get_id()) for part in term.children()]
    return None if any(f is None for f in found) else [f[1] for f in found]  # type: ignore[index]


def _whole(parts: list[z3.ExprRef]) -> z3.ExprRef | None:
    """The term whose bits `parts` (highest first) are, in order and each once; None otherwise."""
    if not parts or not all(z3.is_app_of(p, z3.Z3_OP_EXTRACT) for p in parts):
        return None
    whole = parts[0].arg(0)
    top = whole.size() - 1
    for part in parts:
        high, low = part.params()
        if not part.arg(0).eq(whole) or high != top:
            return None
        top = low - 1
    return whole if top == -1 else None


@dataclass(frozen=True)
class Rows:
    """Which elements of a reduction's input each result accumulates: result r (a flat index over
    the kept axes) takes the elements base(r) + offset, the same offsets for every result (the
    reduced axes' strides). Along the innermost axes base(r) = r * count."""

    shape: tuple[int, ...]
    axes: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.shape[a] for a in self.axes)

    @property
    def results(self) -> int:
        return math.prod(n for d, n in enumerate(self.shape) if d not in self.axes)

    @property
    def contiguous(self) -> bool:
        return set(self.axes) == set(range(len(self.shape) - len(self.axes), len(self.shape)))

    @property
    def key(self) -> tuple:
        """Reductions with one key take the same elements for each result."""
        return ("rows", self.count, self.results) if self.contiguous else (self.shape, self.axes)

    def _kept(self) -> list[tuple[int, int]]:
        """Each kept axis's (size, stride in the input), outermost first."""
        return [(n, math.prod(self.shape[d + 1:])) for d, n in enumerate(self.shape) if d not in self.axes]

    def base(self, result: z3.BitVecRef) -> z3.BitVecRef:
        """The flat index of result `result`'s first element (its reduced coordinates 0)."""
        if self.contiguous:
            return result * self.count
        total, inner = z3.BitVecVal(0, result.size()), 1
        for n, stride in reversed(self._kept()):
            total = total + z3.URem(z3.UDiv(result, inner), n) * stride
            inner *= n
        return total

    def result_of(self, element: int) -> int:
        """The result whose row holds input element `element`."""
        result = 0
        for n, stride in self._kept():
            result = result * n + element // stride % n
        return result


def _rows(terms: IrTerms, instr: Instr) -> Rows:
    return Rows(tuple(terms.types[instr.args[0]].shape),  # type: ignore[union-attr]
                tuple(sorted(instr.attr("axes"))))  # type: ignore[arg-type]


# How far a read moves from CTA 0, its offset, size, buffer, and the range the offset's constant
# (a loop trip's, held as ROW_CONSTANT in the first two) takes over the reads it stands for.
Shift = tuple[z3.ExprRef, z3.ExprRef, int, str, tuple[int, int] | None]
ROW_CONSTANT = z3.BitVec("a read's constant", 32)


def read_shifts(tile: Tile, reads: list[z3.ExprRef], itemsizes: dict[str, int]) -> dict[int, Shift]:
    """How far each of a term's `reads` (bytes of buffers) moves from CTA 0 to any CTA (a vector's
    bytes move alike). Reads whose offsets differ only in the constant of a 32-bit sum (a loop's
    trips along a column) share one shift, the constant held as ROW_CONSTANT over its range."""
    shifts: dict[int, Shift] = {}
    seen: set[tuple[int, str]] = set()
    for read in reads:
        buffer = read.arg(0).decl().name()
        size = itemsizes.get(buffer)
        if size is None:
            raise Open(f"the reduction reads {buffer}, no input of the IR's reduction")
        moving = _less_constant(read.arg(1))  # an element's bytes (index + 1, + 2, ...) move as its first
        if (moving.get_id(), buffer) in seen:
            continue
        seen.add((moving.get_id(), buffer))
        index, constant = _constant_held(_offset_alone(tile, moving))
        shift = z3.simplify(index - z3.substitute(index, (tile.cta, _home(tile))))
        bounds = None if constant is None else (constant, constant)
        merge_shifts(shifts, {shift.get_id() * 16 + size: (shift, index, size, buffer, bounds)})
    return shifts


def merge_shifts(into: dict[int, Shift], more: dict[int, Shift]) -> None:
    """`more` into `into`, the ranges of a shared shift's constant joined."""
    for key, shift in more.items():
        held = into.get(key)
        if held is not None and held[4] is not None and shift[4] is not None:
            shift = (*shift[:4], (min(held[4][0], shift[4][0]), max(held[4][1], shift[4][1])))
        into[key] = shift


def _constant_held(index: z3.BitVecRef) -> tuple[z3.BitVecRef, int | None]:
    """`index` with the one constant of a 32-bit sum it zero-extends replaced by ROW_CONSTANT, and
    that constant (unchanged, None: no such sum, or several)."""
    sums = [n for n in _nodes(index) if z3.is_app_of(n, z3.Z3_OP_CONCAT) and n.num_args() == 2
            and z3.is_bv_value(n.arg(0)) and n.arg(0).as_long() == 0 and z3.is_app_of(n.arg(1), z3.Z3_OP_BADD)
            and n.arg(1).size() == 32]
    constants = [c for n in sums for c in n.arg(1).children() if z3.is_bv_value(c)]
    if len(sums) != 1 or len(constants) != 1:
        return index, None
    return z3.substitute(index, (constants[0], ROW_CONSTANT)), constants[0].as_long()


def _less_constant(index: z3.BitVecRef) -> z3.BitVecRef:
    """A sum less its constant term (x + 3 -> x): both move alike from CTA to CTA, modulo 2**64."""
    if z3.is_app_of(index, z3.Z3_OP_BADD) and any(z3.is_bv_value(c) for c in index.children()):
        rest = [c for c in index.children() if not z3.is_bv_value(c)]
        return rest[0] if len(rest) == 1 else z3.Sum(*rest)
    return index


def row_shift_lemmas(tile: Tile, store: Stored, first: int, rows: Rows, uses: Uses, shifts: list[Shift],
                     lemma: Callable[[list[z3.BoolRef]], z3.CheckSatResult], proved: set[tuple],
                     held: list[z3.ExprRef]) -> None:
    """What carries the match at CTA 0 to every CTA: from CTA 0 to any CTA, the result every
    thread that stores uses (`uses`: the output element's result) moves by the same number R of
    results as thread `first`'s (alike in every CTA of a cluster; where each result has a run of
    output elements, this is: the stored element moves by the same number of elements, a whole
    number of runs), every storing thread's row then moves by the same number S of the IR's
    elements (its first element base(r) to base(r + R); along the innermost axes S = R * count),
    and every address the trees' leaves read (in any thread: `shifts`) moves by S elements (each
    shift asked once for each S: `proved`, its terms kept in `held` so that their ids stay theirs)."""
    flat = _offset_alone(tile, store.flat)
    at_home = z3.substitute(flat, (tile.cta, _home(tile)))
    first_tid = (tile.tid, z3.BitVecVal(first % tile.launch.threads, 32))
    ctas = [z3.ULT(tile.cta, tile.launch.ctas)]
    if uses.per_result is not None:
        moved = z3.simplify(flat - at_home)
        delta = z3.simplify(z3.substitute(moved, first_tid))
        if (verdict := lemma(tile.assumptions() + [store.condition, moved != delta])) != z3.unsat:
            raise Open(f"the elements the threads of a CTA store move differently from CTA to CTA ({verdict})")
        if (verdict := lemma(ctas + [z3.URem(delta, uses.per_result) != 0])) != z3.unsat:
            raise Open(f"the stored elements do not move by whole results from CTA to CTA ({verdict})")
        results, carried = z3.UDiv(delta, uses.per_result), delta
    else:
        moved = z3.simplify(uses.result(flat) - uses.result(at_home))
        results = z3.simplify(z3.substitute(moved, first_tid))
        if (verdict := lemma(tile.assumptions() + [store.condition, moved != results])) != z3.unsat:
            raise Open(f"the results the threads of a CTA use move differently from CTA to CTA ({verdict})")
        carried = results
    group = tile.group
    if group > 1:  # and alike in every CTA of a group: a group's tree moves as one
        leader = z3.substitute(carried, (tile.cta, tile.cta - z3.URem(tile.cta, group)))
        if (verdict := lemma(ctas + [carried != leader])) != z3.unsat:
            raise Open(f"the elements the CTAs of a cluster store move differently from cluster to cluster "
                       f"({verdict})")
    if rows.contiguous:
        moves = results * rows.count
    else:  # base(r + R) - base(r) need not be one number for every r: the storing threads' must be
        own = uses.result(at_home)
        firsts = z3.substitute(own, first_tid)
        moves = z3.simplify(rows.base(firsts + results) - rows.base(firsts))
        if (verdict := lemma(tile.assumptions() + [store.condition,
                                                   rows.base(own + results) - rows.base(own) != moves])) != z3.unsat:
            raise Open(f"the rows of the results the threads of a CTA store move differently from CTA to CTA "
                       f"({verdict})")
    moves = z3.simplify(moves)
    fresh = [s for s in shifts if (s[0].get_id(), s[2], moves.get_id(), s[4]) not in proved]
    if len(fresh) > 1 and lemma(tile.assumptions() + [z3.Or(*[z3.And(*_ranged(bounds), shift != moves * size)
                                                               for shift, _, size, _, bounds in fresh])]) == z3.unsat:
        fresh = []  # every place moves with the row: asked at once (one query, not one per place)
    for shift, index, size, buffer, bounds in fresh:
        if (verdict := lemma(tile.assumptions() + _ranged(bounds) + [shift != moves * size])) != z3.unsat:
            raise Open(f"the reduction reads byte {index} of {buffer.removeprefix('memory ')}"
                       f", which does not move with the IR's row from CTA to CTA ({verdict})")
    proved.update((shift.get_id(), size, moves.get_id(), bounds) for shift, _, size, _, bounds in shifts)
    held.append(moves)


def _ranged(bounds: tuple[int, int] | None) -> list[z3.BoolRef]:
    """A shift's constant within the range its reads take (nothing where it holds none)."""
    return [] if bounds is None else [z3.ULE(bounds[0], ROW_CONSTANT), z3.ULE(ROW_CONSTANT, bounds[1])]


def _offset_alone(tile: Tile, term: z3.BitVecRef) -> z3.BitVecRef:
    """An offset into a buffer (an address less the buffer's base), simplified so that the bases
    cancel: where they do not, the lemmas do not apply."""
    simple = z3.simplify(term)
    bases = {str(b) for b in tile.bases.values()}
    if any(z3.is_const(n) and str(n) in bases for n in _nodes(simple)):
        raise Open(f"an offset that depends on where buffers lie: {simple}")
    return simple


@dataclass(frozen=True)
class Stored:
    """An element a thread stores: its flat index in its output (of `shape`), under `condition`."""

    flat: z3.BitVecRef
    shape: tuple[int, ...]
    condition: z3.BoolRef


@dataclass(frozen=True)
class Uses:
    """Which result of a reduction each output element uses: in runs of `per_result` consecutive
    elements (element x uses result x // per_result), or else as broadcasting reads it (a result
    kept along a middle axis, say: None)."""

    shape: tuple[int, ...]  # the output's
    reduced: tuple[int, ...]  # the reduction's results'
    per_result: int | None

    def result(self, element: z3.BitVecRef) -> z3.BitVecRef:
        if self.per_result is not None:
            return z3.UDiv(element, self.per_result)
        return At(element, self.shape).of(self.reduced).flat


def _uses(terms: IrTerms, instr: Instr, store: Stored) -> Uses:
    """How the output's elements use the reduction's results: in runs where the IR's broadcast
    is that for every element (checked), else as the broadcast."""
    reduced_shape = tuple(instr.type.shape)  # type: ignore[union-attr]
    per_result = math.prod(store.shape) // max(math.prod(reduced_shape), 1)
    x = z3.BitVec("output element", 64)
    broadcast = At(x, store.shape).of(reduced_shape).flat
    if per_result >= 1 and _check([z3.ULT(x, math.prod(store.shape)), broadcast != z3.UDiv(x, per_result)])[0] \
            == z3.unsat:
        return Uses(store.shape, reduced_shape, per_result)
    return Uses(store.shape, reduced_shape, None)


@dataclass(frozen=True)
class KernelLeaf:
    """A leaf term of the kernel's trees, its values other threads supply and reductions' results
    (`nested`) held by placeholders (`holders`) in its templates."""

    term: z3.ExprRef  # held: `Trees.leaves` keys on its id
    held: z3.ExprRef
    nested: tuple[z3.ExprRef, ...]
    holders: tuple[z3.ExprRef, ...]
    templates: Templates


@dataclass
class Trees:
    """The reduction trees of one kernel's value obligation. A value a stored element uses that
    another thread supplied, or a tree reaching such values, is resolved per thread at CTA 0 into
    the IR's accumulated results it is a function of (`resolve`): a tree into the one result whose
    elements its leaves are (each leaf resolved likewise, so that softmax's exponentials of x - max
    hold the max's result); a shuffled or shared-loaded value into its supplier's. The stored
    element's use is then the IR's result for that element (the same function of it for every
    thread), and lemmas carry the match to every CTA."""

    tile: Tile
    terms: IrTerms
    itemsizes: dict[str, int]
    check: Check
    proofs: dict[str, ReductionProof] = field(default_factory=dict)  # IR reduction -> its rows
    matched: dict[str, Instr] = field(default_factory=dict)  # IR reductions a tree was matched with
    expansions: dict[str, Expansion] = field(default_factory=dict)  # combining instruction -> its trees
    bags: Bags = field(default_factory=Bags)
    leaves: dict[int, KernelLeaf] = field(default_factory=dict)
    templates: dict[int, z3.ExprRef] = field(default_factory=dict)  # kernel leaf template id -> it
    nested: dict[int, tuple[z3.ExprRef, tuple[z3.ExprRef, ...]]] = field(default_factory=dict)
    reaches: dict[int, bool] = field(default_factory=dict)
    resolved: dict[tuple[int, int], tuple[z3.ExprRef, int]] = field(default_factory=dict)  # with the value's id
    composed: dict[tuple[int, tuple[int, ...]], tuple[z3.ExprRef, Formula]] = field(default_factory=dict)
    projected: dict[int, Counter[Reads]] = field(default_factory=dict)
    pairs: dict[tuple[int, int], tuple[z3.ExprRef, z3.ExprRef]] = field(default_factory=dict)
    agreed: set[tuple[int, int]] = field(default_factory=set)
    paired: set[tuple[int, str]] = field(default_factory=set)
    applications: dict[int, list[tuple[z3.ExprRef, int, int, str]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    general_forms: dict[tuple[int, tuple[tuple[int, int], ...]], tuple[z3.ExprRef, int]] = field(default_factory=dict)
    shifts: dict[int, Shift] = field(default_factory=dict)  # the places leaves read, by how they move
    shifted: set[int] = field(default_factory=set)  # leaves whose places are in `shifts`
    shifts_proved: set[tuple] = field(default_factory=set)  # (shift, size, S, range) `row_shift_lemmas` proved
    shifts_held: list[z3.ExprRef] = field(default_factory=list)  # the S terms `shifts_proved` keys on
    memory_reads: dict[int, tuple[z3.ExprRef, list[z3.ExprRef]]] = field(default_factory=dict)  # `reads_of`'s
    lemmas: dict[int, tuple[z3.ExprRef, z3.CheckSatResult]] = field(default_factory=dict)
    functions: dict[int, Callable[..., int | bool] | None] = field(default_factory=dict)
    caches: dict[str, dict] = field(default_factory=lambda: {"writers": {}, "evaluators": {}, "functions": {},
                                                             "ranks": {}, "solved": {}, "freed_terms": {},
                                                             "loads": {}, "parts": {}, "workspace_writers": {}})
    deadline: float = math.inf  # time.perf_counter() past which the proof stops, inconclusive

    def __post_init__(self) -> None:
        self.symbols = (self.tile.tid.decl().name(), self.tile.cta.decl().name())
        self.by_kind: dict[str, list[Instr]] = {}  # the IR's reductions by their combining instruction
        for instr in self.terms.kernel.body:
            kind = kind_for(instr) if instr.op in KINDS else None
            if kind is not None:
                self.by_kind.setdefault(kind, []).append(instr)
        arg_instrs = [instr for instr in self.terms.kernel.body if instr.op in INDEX_REDUCTIONS]
        self.args = ArgTrees(self, arg_instrs) if arg_instrs else None  # argmax, argmin: pairs

    def expansion(self, kind: str) -> Expansion:
        if kind not in self.expansions:
            sums = self.sums_of_inputs(kind)
            element = partial(self.is_element, kind, sums) if sums else None
            self.expansions[kind] = Expansion(self.tile, kind, bags=self.bags, leaf=partial(self.leaf_bag, kind),
                                              element=element, deadline=self.deadline, **self.caches)
        return self.expansions[kind]

    # What a stored element uses.

    def replaced(self, got: z3.ExprRef, uses: list[tuple[Instr, z3.BitVecRef]], store: Stored) -> z3.ExprRef:
        """`got` with each value other threads supplied and each reduction tree replaced by the IR's
        accumulated results of the element the thread stores, the same function of them for every
        thread that makes the store; Open or Wrong otherwise."""
        nested = self.nested_in(got)
        if not nested:
            return got
        followed = self.tile.launch.threads * self.tile.group
        if self.tile.launch.cluster_size > 1 and followed > THREADS_FOLLOWED["cluster"]:
            raise Open(f"a reduction across the CTAs of a cluster of {followed} threads (the trees are followed "
                       f"through clusters of at most {THREADS_FOLLOWED['cluster']})")
        probe = self.expansion("")
        storing = [t for t in range(followed) if probe.at(store.condition, t)]
        if not storing:
            return got
        used: dict[tuple[str, int], tuple[Instr, z3.BitVecRef]] = {}
        general, errors = [], []
        for node in nested:  # each in turn: a wrong tree refutes whichever other is part of a row first
            try:
                general.append((node, self.general(node, storing, uses, used)))
            except (Open, Wrong) as err:
                errors.append(err)
                if not isinstance(err, Partial):  # settled: Wrong refutes, and an Open leaves it open
                    break
        if errors:
            raise self.verdict_of(errors, nested)
        self.settle()
        self.carried(store, storing[0], list(used.values()))
        return decoded(z3.substitute(got, *general))

    def verdict_of(self, errors: list[Open | Wrong], nested: tuple[z3.ExprRef, ...]) -> Open | Wrong:
        """What the failures of a stored element's uses say. A tree the element uses directly that
        holds part of a row refutes only where the element's trees of that reduction together
        miss some of the row in that thread (no other use left open that could hold the rest)."""
        wrong = next((e for e in errors if isinstance(e, Wrong)), None)
        if wrong is not None:
            return wrong
        partial = errors[0]
        if not all(isinstance(e, Partial) and e.node is not None and any(e.node.eq(n) for n in nested)
                   for e in errors) or not isinstance(partial, Partial):
            return Open(f"{partial}: {ONLINE_PARTS}") if isinstance(partial, Partial) else partial
        kind, held = kind_for(partial.instr), set()
        for node in nested:
            if self.is_tree(node) and kind_of(self.tile.combines[node.get_id()]) == kind:
                held |= set(self.projection(self.expansion(kind).leaves(node, partial.thread)))
        missing = set(self.proofs[partial.instr.result].row(partial.result)) - held
        if missing:
            return Wrong(f"{partial}; no other use of the reduction holds them")
        return Open(f"{partial}: {ONLINE_PARTS}")

    def general(self, node: z3.ExprRef, storing: list[int], uses: list[tuple[Instr, z3.BitVecRef]],
                used: dict[tuple[str, int], tuple[Instr, z3.BitVecRef]]) -> z3.ExprRef:
        """The value `node` resolves to in every storing thread, as the same function of the IR's
        results of the element each stores (ids computed once: every thread of a cluster asks)."""
        node_id = node.get_id()
        prepared = [(instr, flat, self.name_of(instr), flat.get_id()) for instr, flat in uses]
        found: tuple[z3.ExprRef, int] | None = None
        for thread in storing:
            mine = self.generalised(*self._resolved(node, node_id, thread), thread, prepared, used)
            if found is None:
                found = mine
            elif found[1] != mine[1]:
                raise Open(f"threads {storing[0]} and {thread} use other functions of the reductions' results: "
                           f"{found[0]} and {mine[0]}"[:400])
        assert found is not None
        return found[0]

    def generalised(self, value: z3.ExprRef, value_id: int, thread: int,
                    uses: list[tuple[Instr, z3.BitVecRef, str, int]],
                    used: dict[tuple[str, int], tuple[Instr, z3.BitVecRef]]) -> tuple[z3.ExprRef, int]:
        """`value` (thread `thread`'s, at CTA 0) with each accumulated result it uses written as the
        IR's result of the element the thread stores (`uses`: each use with its result's name and
        its id), and that form's id."""
        if value_id not in self.applications:  # values are held in `resolved`: their ids stay theirs
            self.applications[value_id] = [(n, n.get_id(), n.arg(0).as_long(), n.decl().name()) for n in
                                           {n.get_id(): n for n in _nodes(value)}.values() if _is_accumulated(n)]
        pairs, ids = [], []
        for app, app_id, result, name in self.applications[value_id]:
            found = next(((instr, flat, flat_id) for instr, flat, its, flat_id in uses
                          if its == name and self.at_cta0(flat, thread, flat_id) == result), None)
            if found is None:
                raise Open(f"thread {thread} of CTA 0 uses result {result} of {name[12:]}, which the "
                           "element it stores does not use in the IR")
            instr, flat, flat_id = found
            used[(instr.result, flat_id)] = (instr, flat)
            pairs.append((app, instr, flat))
            ids.append((app_id, flat_id))
        key = (value_id, tuple(ids))
        if key not in self.general_forms:  # the flats are held in `uses`, the value in `resolved`: ids stay theirs
            form = z3.substitute(value, *[(app, accumulated(instr)(flat)) for app, instr, flat in pairs]) \
                if pairs else value
            self.general_forms[key] = (form, form.get_id())
        return self.general_forms[key]

    def name_of(self, instr: Instr) -> str:
        """The name of the IR reduction's accumulated results."""
        if instr.result not in self.names:
            self.names[instr.result] = accumulated(instr).name()
        return self.names[instr.result]

    def at_cta0(self, term: z3.ExprRef, thread: int, key: int | None = None) -> int | None:
        """A term of the thread's coordinates at CTA 0, or in a kernel of clusters at the first
        cluster (None: not a constant there)."""
        threads = self.tile.launch.threads
        function = _function(self.functions, term, self.symbols, key)
        if function is not None:
            return int(function(thread % threads, thread // threads))
        simple = z3.simplify(z3.substitute(term, *_at_cluster0(self.tile, thread)))
        return simple.as_long() if z3.is_bv_value(simple) else None

    # Values other threads supply and reductions' results, per thread at CTA 0.

    def nested_in(self, term: z3.ExprRef) -> tuple[z3.ExprRef, ...]:
        """The outermost values in `term` that other threads supplied or that reduction trees
        reaching such values computed."""
        if term.get_id() not in self.nested:
            found: dict[int, z3.ExprRef] = {}
            seen: set[int] = set()
            pending = [term]
            while pending:
                node = pending.pop()
                if node.get_id() in seen:
                    continue
                seen.add(node.get_id())
                if node.get_id() in self.tile.exchange_ids or self.is_tree(node) or self.is_pair(node):
                    found[node.get_id()] = node
                else:
                    pending.extend(node.children())
            self.nested[term.get_id()] = (term, tuple(found.values()))  # the term held: its id stays its
        return self.nested[term.get_id()][1]

    def is_tree(self, node: z3.ExprRef) -> bool:
        """A reduction's combine whose tree reaches a value another thread supplied (an integer
        add's only where the IR has a sum of that kind: other integer adds compute indices)."""
        combine = self.tile.combines.get(node.get_id())
        if combine is None or kind_of(combine) not in IDENTITIES:
            return False
        if is_integer(kind_of(combine)) and kind_of(combine) not in self.by_kind:
            return False
        if combine.result.get_id() not in self.reaches:
            self.reaches[combine.result.get_id()] = any(
                x.get_id() in self.tile.exchange_ids or _halves(self.tile, x) is not None
                for x in _tree_leaves(self.tile, combine))
        return self.reaches[combine.result.get_id()]

    def is_pair(self, node: z3.ExprRef) -> bool:
        """The index of an argmax's or argmin's pair (`verify.arg_reductions`)."""
        return self.args is not None and self.args.is_root(node)

    def resolve(self, node: z3.ExprRef, thread: int) -> z3.ExprRef:
        """`node` in thread `thread` at CTA 0, in terms of the IR's accumulated results alone."""
        return self._resolved(node, node.get_id(), thread)[0]

    def _resolved(self, node: z3.ExprRef, node_id: int, thread: int) -> tuple[z3.ExprRef, int]:
        """`resolve`, with the value's id (the value held here: its id stays its)."""
        key = (node_id, thread)
        if key not in self.resolved:
            if time.perf_counter() > self.deadline:
                raise Open("the kernel's time is spent following its reductions")
            value = self.received(node, thread) if node_id in self.tile.exchange_ids else \
                self.args.reduced(node, thread) if self.args is not None and self.is_pair(node) else \
                self.reduced(node, thread)
            self.resolved[key] = (value, value.get_id())
        return self.resolved[key]

    def received(self, node: z3.ExprRef, thread: int) -> z3.ExprRef:
        """A shuffled or shared-loaded value: its supplier's, resolved there."""
        exchange, probe = self.tile.exchange_ids[node.get_id()][1], self.expansion("")
        if not probe.at(exchange.condition, thread):
            raise Open(f"line {exchange.instruction.line}: thread {thread} uses a value it did not receive")
        source, supplier = SOURCES[exchange.kind](probe, exchange, thread)
        nested = self.nested_in(source)
        if not nested:
            raise Open(f"line {exchange.instruction.line}: a value another thread supplies that no reduction "
                       "computed")
        self.cta_free(source, nested)
        value = z3.simplify(z3.substitute(source, *_at_cluster0(self.tile, supplier),
                                          *[(n, self.resolve(n, supplier)) for n in nested]))
        if _memory_reads(value):
            raise Open(f"line {exchange.instruction.line}: a value another thread supplies reads memory besides "
                       "a reduction's result")
        return value

    def reduced(self, node: z3.ExprRef, thread: int) -> z3.ExprRef:
        """A tree: the accumulated result of the IR reduction whose elements its leaves are."""
        kind = kind_of(self.tile.combines[node.get_id()])
        candidates = self.by_kind.get(kind, [])
        if not candidates:
            raise Open(f"a reduction tree of {kind} where the IR has no such reduction")
        bag = self.expansion(kind).leaves(node, thread)
        errors: list[Open | Wrong] = []
        for instr in candidates:
            proof = self.proof_of(instr)
            try:
                result = proof.match(bag, self.projection(bag), thread)
            except (Open, Wrong) as err:
                errors.append(err)
                continue
            self.matched[instr.result] = instr
            self.pair(bag, proof)
            value = accumulated(instr)(z3.BitVecVal(result, 64))
            return value if z3.is_fp(node) or is_integer(kind) else to_bits(value, "f32")
        mine = [e for e in errors if not isinstance(e, OtherForm)]  # those of the reductions this tree could be
        error = mine[0] if len(mine) == 1 else errors[0] if len(errors) == 1 else \
            Open("; ".join(str(e) for e in errors)[:600])
        if isinstance(error, Partial) and error.node is None:
            error.node = node
        raise error

    def proof_of(self, instr: Instr) -> ReductionProof:
        """The IR reduction's rows, matched against the kernel's trees (made on first use)."""
        return self.proofs.setdefault(instr.result, ReductionProof(self.terms, instr))

    def sums_of_inputs(self, kind: str) -> list[ReductionProof]:
        """The IR reductions of this kind whose elements read more than one input (x + r summed for
        a norm; another reduction's result does not count)."""
        proofs = [self.proof_of(i) for i in self.by_kind.get(kind, [])]
        return [p for p in proofs if len({b for b, _ in p.leaf(0).reads if not b.startswith("accumulated ")}) > 1]

    def is_element(self, kind: str, sums: list[ReductionProof], node: z3.ExprRef, thread: int) -> bool:
        """Whether a combine of two loaded values reads exactly the places of one element of an IR
        reduction of this kind whose elements read more than one input (`sums`, found once per
        kind): then it is that element, a leaf, not a node of the tree."""
        reads = self.kernel_formula(node, thread, kind).reads
        for proof in sums:
            try:
                result = proof.guess(Counter({reads: 1}))
            except OtherForm:
                continue
            if reads in proof.row(result):
                return True
        return False

    def projection(self, bag: int) -> Counter[Reads]:
        """A bag's leaves by the places they read alone."""
        if bag not in self.projected:
            counts: Counter[Reads] = Counter()
            for (reads, _), n in self.bags.counts(bag).items():
                counts[reads] += n
            self.projected[bag] = counts
        return self.projected[bag]

    def pair(self, bag: int, proof: ReductionProof) -> None:
        """Each kernel leaf formula of a matched bag, paired with its element's in the IR."""
        if (bag, proof.instr.result) in self.paired:
            return
        self.paired.add((bag, proof.instr.result))
        for reads, template in self.bags.counts(bag):
            theirs = proof.ir_formulas[reads].template
            self.pairs.setdefault((template, theirs.get_id()), (self.templates[template], theirs))

    def settle(self) -> None:
        """The formulas paired so far agree (each pair asked once)."""
        fresh = {k: v for k, v in self.pairs.items() if k not in self.agreed}
        formulas_agree(fresh.values(), self.check)
        self.agreed |= set(fresh)

    # Leaves.

    def leaf_bag(self, kind: str, bits: z3.ExprRef, thread: int) -> int:
        """A leaf at CTA 0 as a bag: empty for an identity of the reduction."""
        if time.perf_counter() > self.deadline:
            raise Open("the kernel's time is spent following its reductions")
        found = self.kernel_formula(bits, thread, kind)
        if _is_identity(found, kind):
            return self.bags.empty
        self.templates[found.template.get_id()] = found.template
        return self.bags.single((found.reads, found.template.get_id()))

    def kernel_formula(self, bits: z3.ExprRef, thread: int, kind: str) -> Formula:
        """The leaf of a tree of `kind` in thread `thread` at CTA 0, the values it uses resolved."""
        tile = self.tile
        if bits.get_id() not in self.leaves:
            nested = self.nested_in(bits)
            holders = tuple(z3.Const(f"nested {k}", n.sort()) for k, n in enumerate(nested))
            held = z3.substitute(bits, *zip(nested, holders)) if nested else bits
            self.cta_free(held, ())
            templates = Templates(z3.simplify(leaf_value(held, kind)))  # simplified: drops unread bytes
            self.leaves[bits.get_id()] = KernelLeaf(bits, held, nested, holders, templates)
        leaf = self.leaves[bits.get_id()]
        threads = tile.launch.threads
        found = leaf.templates.at({self.symbols[0]: thread % threads, self.symbols[1]: thread // threads})
        if found is None:
            concrete = z3.simplify(z3.substitute(leaf.held, *_at_cluster0(tile, thread)))
            found = formula(leaf_value(concrete, kind))
        if not leaf.nested:
            return found
        values = tuple(self.resolve(n, thread) for n in leaf.nested)
        key = (found.template.get_id(), tuple(v.get_id() for v in values))
        if key not in self.composed:  # the template held with it: its id stays its
            self.composed[key] = (found.template, formula(decoded(z3.simplify(z3.substitute(
                found.template, *zip(leaf.holders, values))))))
        composed = self.composed[key][1]
        return Formula(tuple(sorted(set(found.reads) | set(composed.reads))), composed.template)

    def reads_of(self, term: z3.ExprRef) -> list[z3.ExprRef]:
        """The bytes of buffers `term` reads (each leaf asks twice: `cta_free`, `read_shifts`)."""
        if term.get_id() not in self.memory_reads:  # the term held: its id stays its
            self.memory_reads[term.get_id()] = (term, _memory_reads(term))
        return self.memory_reads[term.get_id()][1]

    def cta_free(self, term: z3.ExprRef, nested: tuple[z3.ExprRef, ...]) -> None:
        """Nothing in `term` but the places it reads (and the `nested` values) depends on the CTA:
        the lemmas carry only those across CTAs."""
        pairs = [(r, z3.Const(f"read {k}", r.sort())) for k, r in enumerate(self.reads_of(term))]
        pairs += [(n, z3.Const(f"nested {k}", n.sort())) for k, n in enumerate(nested)]
        rest = z3.substitute(term, *pairs) if pairs else term
        if not any(n.eq(self.tile.cta) for n in _nodes(rest)):
            return
        group = self.tile.group
        if group > 1:  # the rank may matter (the lemmas carry each rank's CTA): the group may not
            other = z3.BitVec("another cta", 32)
            facts = self.tile.assumptions() + [z3.ULT(other, self.tile.launch.ctas),
                                               z3.URem(other, group) == z3.URem(self.tile.cta, group)]
            parts = _integer_parts(rest, self.tile.cta)  # the float work between them has no CTA in it
            if all(self.lemma(facts + [part != z3.substitute(part, (self.tile.cta, other))]) == z3.unsat
                   for part in parts):
                return
        raise Open("a term of the reduction depends on the CTA other than through the places it reads")

    # Every CTA.

    def carried(self, store: Stored, first: int, used: list[tuple[Instr, z3.BitVecRef]]) -> None:
        """The lemmas that carry what was matched at CTA 0 to every CTA: the reductions have rows of
        one length and as many results, each use is the stored element's broadcast, and the rows'
        places move together (`row_shift_lemmas`)."""
        instrs = list(self.matched.values())
        rows = {r.key: r for r in (self.proofs[i.result].rows for i in instrs)}
        if len(rows) != 1:
            raise Open("reductions of rows of different lengths, counts or axes in one kernel")
        uses = _uses(self.terms, instrs[0], store)
        for instr, flat in used:
            if (verdict := self.lemma(self.tile.assumptions() + [store.condition,
                                                                 flat != uses.result(store.flat)])) != z3.unsat:
                raise Open(f"the stored element reaches the reduction through more than a broadcast ({verdict})")
        for key, leaf in self.leaves.items():  # a leaf's own reads: those of the values it uses are other leaves'
            if key not in self.shifted:
                self.shifted.add(key)
                merge_shifts(self.shifts, read_shifts(self.tile, self.reads_of(leaf.held), self.itemsizes))
        row_shift_lemmas(self.tile, store, first, rows.popitem()[1], uses, list(self.shifts.values()), self.lemma,
                         self.shifts_proved, self.shifts_held)

    def lemma(self, constraints: list[z3.BoolRef]) -> z3.CheckSatResult:
        """A query of the lemmas, each asked once (the lanes of a vector store ask the same)."""
        claim = z3.simplify(z3.And(*constraints))
        if claim.get_id() not in self.lemmas:
            if time.perf_counter() > self.deadline:
                raise Open("the kernel's time is spent on the lemmas that carry CTA 0 to every CTA")
            self.lemmas[claim.get_id()] = (claim, self.check(constraints))  # the claim held: its id stays its
        return self.lemmas[claim.get_id()][1]
