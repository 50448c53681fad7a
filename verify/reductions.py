"""The value of a kernel's reduction, proved equal to the IR's modulo the order of accumulation.

A reduction tree is what a kernel's float32 adds rounded to nearest (or NaN-propagating maxes,
mins) build from the values its threads load, shuffle and pass through shared memory. On the
symbolic tile each value another thread supplies is an abstract symbol with its provenance
(`verify.prove.Exchange`); here the tree under a stored value is followed through them to the
threads that supplied each part: a shuffle to the lane its mode and operands select (the PTX
ISA's shfl.sync, clamp and member mask included), a shared load to the one thread whose store in
an earlier phase wrote that address. Each thread is concrete (every thread of the CTA in turn),
the CTA symbolic: every lane, shared address and condition met on the way must be the same
constant in every CTA of the launch (decided by evaluation, or by the solver where the CTA
remains).

The tree's leaves, at CTA 0, are compared with the elements the IR accumulates for the element
the thread stores: as multisets, each leaf keyed by the input bytes it reads, every element
exactly once, identities (+-0.0 for a sum, -inf for max, +inf for min) left out; each leaf equal
to its element's value bit for bit (one solver query per distinct pair of formulas, the bytes
read as free variables). Lemmas carry this to every CTA: the elements every storing thread stores
move from CTA 0 to any CTA by the same whole number of results, every place a leaf reads moves by
as many of the IR's rows, and nothing else in a leaf depends on the CTA. The tree is then the
IR's accumulated value (`ir_symbolic.accumulated`): the same terms summed over the reals, rounded
in some order; what follows it is compared bit for bit as for elementwise kernels.

A tree that misses an element or takes one twice is refuted (`Wrong`), naming it. Not modelled
yet (`Open`: the value obligation stays inconclusive, saying why): trees with a term of another
form (an add rounded otherwise, a term of two elements), trees whose terms use another
reduction's result (softmax's exponentials of x - max, layernorm's variance), reductions across
the CTAs of a cluster, online softmax's rescaled sums, argmax and argmin, reductions along other
than the innermost axes, kernels of several paths, and a shared load from an address stored to in
its own phase."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import z3

from ir.kernel import Instr
from ir.ops import Op as IrOp
from verify.bv_eval import NotEvaluable, compiled
from verify.ir_symbolic import At, IrTerms, accumulated
from verify.prove import Combine, Exchange, SharedAccess, Tile, _check, _memory_reads, _nodes
from verify.symbolic import to_bits, to_float

Leaf = tuple[int, int]  # (term id, thread)
# The combining instruction of each IR reduction, and the leaf values that change nothing.
# Sums are float32 adds rounded to nearest (any other rounding, or .ftz, is another operation).
KINDS: dict[IrOp, str] = {IrOp.SUM: "add.f32", IrOp.MEAN: "add.f32", IrOp.AMAX: "max.NaN.f32",
                          IrOp.AMIN: "min.NaN.f32"}
IDENTITIES: dict[str, frozenset[int]] = {
    "add.f32": frozenset({0x00000000, 0x80000000}), "max.NaN.f32": frozenset({0xFF800000}),
    "min.NaN.f32": frozenset({0x7F800000}),
}


ELEMENT = z3.BitVec("reduced element", 64)  # an element of a reduction's input, by its flat index
DECIDE_MS = 2_000  # a condition on a thread that simplifying leaves the CTA in: the solver decides it


class Open(Exception):
    """The reduction is outside what is modelled: the value obligation is inconclusive."""


class Wrong(Exception):
    """The kernel's tree accumulates other elements than the IR's: the value obligation is refuted."""


Reads = tuple[tuple[str, int], ...]  # the places a leaf reads: (buffer, byte) each, in order


class Bags:
    """Multisets of leaves (by the places they read), each made once: a bag is an id, and joining
    two bags is remembered, so that threads whose trees join the same parts share the work."""

    def __init__(self) -> None:
        self.counts: list[Counter[Reads]] = []
        self.joined: dict[tuple[int, int], int] = {}
        self.singles: dict[Reads, int] = {}
        self.empty = self.make(Counter())

    def make(self, counts: Counter[Reads]) -> int:
        self.counts.append(counts)
        return len(self.counts) - 1

    def single(self, reads: Reads) -> int:
        if reads not in self.singles:
            self.singles[reads] = self.make(Counter({reads: 1}))
        return self.singles[reads]

    def join(self, a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in self.joined:
            self.joined[key] = a if b == self.empty else b if a == self.empty else \
                self.make(self.counts[a] + self.counts[b])
        return self.joined[key]


def kind_of(combine: Combine) -> str:
    """The combining instruction, its default rounding left out: add.f32 (add.rn.f32 too),
    max.NaN.f32, or another (max.f32 returns the other operand of a NaN: no IR reduction)."""
    return ".".join(word for word in combine.opcode.split(".") if word != "rn")


def _constant(term: z3.ExprRef) -> int | bool | None:
    simple = z3.simplify(term)
    if z3.is_true(simple) or z3.is_false(simple):
        return z3.is_true(simple)
    return simple.as_long() if z3.is_bv_value(simple) else None


@dataclass
class Expansion:
    """The leaves of reduction trees, per thread, through shuffles and shared memory."""

    tile: Tile
    kind: str
    memo: dict[Leaf, int] = field(default_factory=dict)
    bags: Bags = field(default_factory=lambda: Bags())
    leaf: Callable[[z3.ExprRef, int], int] | None = None  # a leaf (term, thread) as a bag
    terms: dict[int, z3.ExprRef] = field(default_factory=dict)
    writers: dict[int, dict[int, list[int]]] = field(default_factory=dict)  # store index -> address -> threads
    decided: dict[tuple[int, int], int | bool] = field(default_factory=dict)
    functions: dict[int, Callable[[int], int | bool] | None] = field(default_factory=dict)

    def function(self, term: z3.ExprRef) -> Callable[[int], int | bool] | None:
        """A term of the thread's coordinates alone as a Python function of the thread (None where
        it has the CTA or anything else in it)."""
        if term.get_id() not in self.functions:
            try:
                self.functions[term.get_id()] = compiled(term, (str(self.tile.tid),))
            except NotEvaluable:
                self.functions[term.get_id()] = None
        return self.functions[term.get_id()]

    def at(self, term: z3.ExprRef, thread: int) -> int | bool:
        """A term of the thread's coordinates that must be the same constant in every CTA of the
        launch (a condition is decided by the solver where simplifying leaves the CTA in it)."""
        key = (term.get_id(), thread)
        if key not in self.decided:
            function = self.function(term)
            if function is not None:
                self.decided[key] = function(thread)
                return self.decided[key]
            mine = z3.substitute(term, (self.tile.tid, z3.BitVecVal(thread, 32)))
            value = _constant(mine)
            if value is None and z3.is_bool(mine):
                ctas = [z3.ULT(self.tile.cta, self.tile.launch.ctas)]
                value = True if _check(ctas + [z3.Not(mine)], DECIDE_MS)[0] == z3.unsat else \
                    False if _check(ctas + [mine], DECIDE_MS)[0] == z3.unsat else None
            if value is None:
                raise Open(f"{z3.simplify(term)} is not the same in every CTA for thread {thread}")
            self.decided[key] = value
        return self.decided[key]

    def leaves(self, bits: z3.ExprRef, thread: int) -> int:
        """The bag (an id in `bags`) of the leaves of `bits` in thread `thread`."""
        key = (bits.get_id(), thread)
        if key not in self.memo:
            self.terms[bits.get_id()] = bits
            self.memo[key] = self._expand(bits, thread)
        return self.memo[key]

    def _expand(self, bits: z3.ExprRef, thread: int) -> int:
        """`bits` (or the float a combine computed, where a tree starts at one) as a bag of leaves."""
        combine = self.tile.combines.get(bits.get_id())
        if combine is not None and kind_of(combine) == self.kind:
            return self.bags.join(self.leaves(combine.first, thread), self.leaves(combine.second, thread))
        if z3.is_app_of(bits, z3.Z3_OP_ITE) and not z3.is_app_of(bits.arg(0), z3.Z3_OP_FPA_IS_NAN):
            chosen = self.at(bits.arg(0), thread)
            return self.leaves(bits.arg(1) if chosen else bits.arg(2), thread)
        known = self.tile.exchange_ids.get(bits.get_id())
        if known is None:
            assert self.leaf is not None
            return self.leaf(bits, thread)
        exchange = known[1]
        if not self.at(exchange.condition, thread):
            raise Open(f"line {exchange.instruction.line}: thread {thread} uses a value it did not receive")
        follow = SOURCES[exchange.kind](self, exchange, thread)
        return self.leaves(*follow)

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
        if supplier >= self.tile.launch.threads or not self.at(exchange.condition, supplier):
            raise Open(f"line {exchange.instruction.line}: lane {source} does not take part in the shuffle")
        assert exchange.source is not None
        return exchange.source, supplier

    def loaded(self, exchange: Exchange, thread: int) -> tuple[z3.ExprRef, int]:
        """The value of the one store of an earlier phase to the address the thread loads from."""
        if exchange.cluster:
            raise Open(f"line {exchange.instruction.line}: a reduction across the CTAs of a cluster")
        assert exchange.address is not None
        address = self.at(exchange.address, thread)
        same_phase = [s for i, s in enumerate(self.tile.shared) if s.kind == "store" and s.epoch == exchange.epoch
                      and any(o <= address < o + s.size for o in self._written(i, s))]
        if same_phase:
            raise Open(f"line {exchange.instruction.line}: shared offset {address} is stored to in the phase it is "
                       "loaded in")
        stores = [(i, s) for i, s in enumerate(self.tile.shared) if s.kind == "store" and s.epoch < exchange.epoch]
        for epoch in sorted({s.epoch for _, s in stores}, reverse=True):
            found = [(s, w, offset) for i, s in stores if s.epoch == epoch
                     for offset, writers in self._written(i, s).items() if offset <= address < offset + s.size
                     for w in writers]
            if len(found) > 1:
                raise Open(f"line {exchange.instruction.line}: {len(found)} stores to shared offset {address}")
            if found:
                store, writer, offset = found[0]
                if store.data is None or exchange.size > store.size - (address - offset):
                    raise Open(f"line {exchange.instruction.line}: a load across stores")
                low, bits = (address - offset) * 8, exchange.size * 8
                whole = low == 0 and bits == store.data.size()  # the stored term itself, as the tree has it
                return (store.data if whole else z3.Extract(low + bits - 1, low, store.data)), writer
        raise Open(f"line {exchange.instruction.line}: shared offset {address} is loaded before any store")

    def _written(self, index: int, store: SharedAccess) -> dict[int, list[int]]:
        if index not in self.writers:
            table: dict[int, list[int]] = {}
            for w in range(self.tile.launch.threads):
                if self.at(store.condition, w):
                    table.setdefault(int(self.at(store.address, w)), []).append(w)
            self.writers[index] = table
        return self.writers[index]


SOURCES = {"shfl": Expansion.shuffled, "shared": Expansion.loaded}
# shfl.sync's source lane and whether it is in range: (lane, b, minLane, maxLane, segment mask).
SHUFFLE_LANES = {
    "bfly": lambda lane, b, low, high, seg: (lane ^ b, (lane ^ b) <= high),
    "down": lambda lane, b, low, high, seg: (lane + b, lane + b <= high),
    "up": lambda lane, b, low, high, seg: (lane - b, lane - b >= high),
    "idx": lambda lane, b, low, high, seg: (low | (b & ~seg & 0x1F), (low | (b & ~seg & 0x1F)) <= high),
}


@dataclass(frozen=True)
class Formula:
    """A leaf's value with the bytes it reads renamed by place (`reads`: every (buffer, byte) it
    reads; in the template each byte is named by its offset from the first it reads of its buffer)."""

    reads: tuple[tuple[str, int], ...]
    template: z3.ExprRef


@dataclass
class Templates:
    """Formulas of a symbolic term at many values of its symbols: the places it reads evaluated
    in Python (`verify.bv_eval`), its template built once per pattern of places. A term whose
    value depends on the symbols other than through the places it reads gets no template here
    (None: the caller substitutes and simplifies instead)."""

    term: z3.ExprRef
    reads: list[z3.ExprRef] = field(default_factory=list)
    built: dict[tuple[tuple[tuple[str, int], ...], tuple[bool, ...]], Formula | None] = field(default_factory=dict)

    places: list[Callable[..., int | bool]] | None = None  # each read's place, compiled
    buffers: list[str] = field(default_factory=list)
    choices: list[tuple[z3.ExprRef, Callable[..., int | bool]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reads = _memory_reads(self.term)
        self.buffers = [str(read.arg(0)) for read in self.reads]

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
        if self.places is None:
            self._choices(tuple(symbols))
            try:
                self.places = [compiled(z3.simplify(read.arg(1)), tuple(symbols)) for read in self.reads]
            except NotEvaluable:
                self.places = []
        if len(self.places) != len(self.reads):
            return None
        values = tuple(symbols.values())
        decided = tuple(bool(f(*values)) for _, f in self.choices)
        places = [(self.buffers[i], int(f(*values))) for i, f in enumerate(self.places)]
        firsts: dict[str, int] = {}
        for buffer, index in places:
            firsts[buffer] = min(index, firsts.get(buffer, index))
        pattern = tuple((buffer, index - firsts[buffer]) for buffer, index in places)
        if (pattern, decided) not in self.built:
            pairs = [(read, z3.BitVec(f"byte {buffer} +{offset}", 8)) for read, (buffer, offset) in
                     zip(self.reads, pattern)]
            pairs += [(node, node.arg(1) if choice else node.arg(2))
                      for (node, _), choice in zip(self.choices, decided)]
            template = z3.simplify(z3.substitute(self.term, *pairs) if pairs else self.term)
            free = {str(n) for n in _nodes(template) if z3.is_const(n)} & set(symbols)
            self.built[(pattern, decided)] = None if free else Formula((), template)
        found = self.built[(pattern, decided)]
        return None if found is None else Formula(tuple(sorted(set(places))), found.template)


def formula(term: z3.ExprRef) -> Formula:
    """`term` (concrete addresses) with each buffer's bytes renamed by their offset from the first
    one it reads, so that the same computation on other elements has the same template."""
    found = Templates(term).at({})
    if found is None:
        raise Open(f"a leaf reads a place that is not fixed: {term}"[:300])
    return found


@dataclass
class ReductionProof:
    """Matches one reduction tree of a kernel with an IR reduction, for every thread that stores."""

    tile: Tile
    terms: IrTerms
    instr: Instr
    expansion: Expansion
    ir_leaves: dict[int, Counter[tuple[tuple[str, int], ...]]] = field(default_factory=dict)
    ir_formulas: dict[tuple[tuple[str, int], ...], Formula] = field(default_factory=dict)
    kernel_reads: dict[Reads, dict[int, z3.ExprRef]] = field(default_factory=dict)  # reads -> kernel templates
    pairs: dict[tuple[int, int], tuple[z3.ExprRef, z3.ExprRef]] = field(default_factory=dict)
    checked: set[tuple[int, int]] = field(default_factory=set)  # (thread, result) pairs matched
    ir_template: Templates | None = None
    kernel_templates: dict[int, Templates] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.expansion.leaf = self.leaf_bag

    def row(self, reduced: int) -> Counter[tuple[tuple[str, int], ...]]:
        """The IR's accumulated elements of result `reduced`, by the bytes each reads."""
        if reduced not in self.ir_leaves:
            arg, found = self.instr.args[0], Counter()
            shape = self.terms.types[arg].shape
            if self.ir_template is None:
                self.ir_template = Templates(z3.simplify(self.terms.value(arg, At(ELEMENT, shape))))
            for element in self.terms.reduced_elements(self.instr, reduced):
                leaf = self.ir_template.at({str(ELEMENT): element}) or \
                    formula(z3.simplify(self.terms.value(arg, At(z3.BitVecVal(element, 64), shape))))
                self.ir_formulas.setdefault(leaf.reads, leaf)
                found[leaf.reads] += 1
            self.ir_leaves[reduced] = found
        return self.ir_leaves[reduced]

    def leaf_bag(self, bits: z3.ExprRef, thread: int) -> int:
        """A leaf at CTA 0 as a bag: empty for an identity of the reduction."""
        found = self.kernel_formula(bits, thread)
        if found is None:
            return self.expansion.bags.empty
        self.kernel_reads.setdefault(found.reads, {})[found.template.get_id()] = found.template
        return self.expansion.bags.single(found.reads)

    def kernel_formula(self, bits: z3.ExprRef, thread: int) -> Formula | None:
        """The leaf at CTA 0 (None: an identity of the reduction)."""
        tile = self.tile
        if bits.get_id() not in self.kernel_templates:
            if any(n.get_id() in tile.exchange_ids for n in _nodes(bits)):
                raise Open("a reduction whose terms use another reduction's result or other threads' values")
            reads = _memory_reads(bits)
            unread = z3.substitute(bits, *[(r, z3.BitVec(f"read {k}", 8)) for k, r in enumerate(reads)]) \
                if reads else bits
            if any(n.eq(tile.cta) for n in _nodes(unread)):  # the lemmas carry only the places read across CTAs
                raise Open("a term of the reduction depends on the CTA other than through the places it reads")
            self.kernel_templates[bits.get_id()] = Templates(z3.simplify(to_float(bits, "f32")))  # drops unread bytes
        found = self.kernel_templates[bits.get_id()].at({str(tile.tid): thread, str(tile.cta): 0})
        if found is None:
            concrete = z3.simplify(z3.substitute(bits, (tile.tid, z3.BitVecVal(thread, 32)),
                                                 (tile.cta, z3.BitVecVal(0, 32))))
            found = formula(to_float(concrete, "f32"))
        return None if _is_identity(found, self.expansion.kind) else found

    def check_thread(self, root: z3.ExprRef, thread: int, reduced: int) -> None:
        """Thread `thread`'s tree at CTA 0 accumulates exactly the IR's elements of result `reduced`."""
        bag = self.expansion.leaves(root, thread)
        if (bag, reduced) in self.checked:
            return
        self.checked.add((bag, reduced))
        want, got = self.row(reduced), self.expansion.bags.counts[bag]
        if got != want:
            # Elements missed or taken twice: wrong. A term of another form (two elements, a rounding
            # the sum does not have): not modelled here.
            raise (Wrong if set(got) <= set(want) else Open)(_difference(got, want, thread, reduced))
        for reads in want:
            theirs = self.ir_formulas[reads].template
            for mine in self.kernel_reads.get(reads, {}).values():
                self.pairs.setdefault((mine.get_id(), theirs.get_id()), (mine, theirs))

    @staticmethod
    def formulas_agree_on(pairs: Iterable[tuple[z3.ExprRef, z3.ExprRef]],
                          check: Callable[[list[z3.BoolRef]], z3.CheckSatResult]) -> None:
        """Each kernel leaf's formula equals its element's in the IR, bit for bit (NaN for NaN)."""
        for mine, theirs in pairs:
            same = z3.Or(z3.fpToIEEEBV(mine) == z3.fpToIEEEBV(theirs), z3.And(z3.fpIsNaN(mine), z3.fpIsNaN(theirs)))
            result = check([z3.Not(same)])
            if result == z3.sat:
                raise Wrong(f"a term the kernel accumulates is not the IR's element: {mine} where the IR has "
                            f"{theirs}")
            if result != z3.unsat:
                raise Open(f"the solver gave up on a term of the reduction ({result})")


def _is_identity(found: Formula, kind: str) -> bool:
    """A leaf that reads nothing and is the reduction's identity (adding it changes nothing)."""
    if found.reads:
        return False
    bits = z3.simplify(z3.fpToIEEEBV(found.template))
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


def _bytes(reads: tuple[tuple[str, int], ...]) -> str:
    firsts: dict[str, int] = {}
    for buffer, byte in reads:
        firsts.setdefault(buffer, byte)
    return ", ".join(f"{b.removeprefix('memory ')} from byte {first}" for b, first in firsts.items()) or "nothing"


def roots(tile: Tile, term: z3.ExprRef) -> list[z3.ExprRef]:
    """The largest reduction trees in `term`: combine nodes that are no operand of a combine of
    their kind, whose tree reaches a value another thread supplied."""
    nodes = [n for n in _nodes(term) if n.get_id() in tile.combines]
    combines = [tile.combines[n.get_id()] for n in nodes]
    inner = {(kind_of(c), o.get_id()) for c in combines for o in (c.first, c.second)}
    return [n for n, c in zip(nodes, combines) if (kind_of(c), c.result.get_id()) not in inner and
            any(x.get_id() in tile.exchange_ids for x in _tree_leaves(tile, c))]


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


def _contiguous(terms: IrTerms, instr: Instr) -> int:
    """The count of elements per result, where result r accumulates elements r * count + j."""
    count = terms.reduced_count(instr)
    for reduced in (0, 1):
        if terms.reduced_elements(instr, reduced) != list(range(reduced * count, (reduced + 1) * count)):
            raise Open(f"a reduction ({instr.op.value}) along other than the innermost axes")
    return count


def row_shift_lemmas(tile: Tile, terms: IrTerms, instr: Instr, store: Stored, first: int,
                     leaves: list[z3.ExprRef], itemsizes: dict[str, int],
                     lemma: Callable[[list[z3.BoolRef]], z3.CheckSatResult]) -> None:
    """What carries the match at CTA 0 to every CTA: from CTA 0 to any CTA, the element every
    thread that stores stores moves by the same number Delta of elements as thread `first`'s,
    Delta a multiple of the output elements per result (so that the result moves by Delta / that
    many), and every address the tree's leaves read (in any thread) moves by that many results'
    worth of the IR's elements."""
    count, zero = _contiguous(terms, instr), z3.BitVecVal(0, 32)
    per_result = _per_result(terms, instr, store)
    flat = _offset_alone(tile, store.flat)
    moved = z3.simplify(flat - z3.substitute(flat, (tile.cta, zero)))
    delta = z3.simplify(z3.substitute(moved, (tile.tid, z3.BitVecVal(first, 32))))  # a term of the CTA alone
    ctas = [z3.ULT(tile.cta, tile.launch.ctas)]
    if (verdict := lemma(tile.assumptions() + [store.condition, moved != delta])) != z3.unsat:
        raise Open(f"the elements the threads of a CTA store move differently from CTA to CTA ({verdict})")
    if (verdict := lemma(ctas + [z3.URem(delta, per_result) != 0])) != z3.unsat:
        raise Open(f"the stored elements do not move by whole results from CTA to CTA ({verdict})")
    results = z3.UDiv(delta, per_result)
    shifts: dict[int, tuple[z3.ExprRef, z3.ExprRef, int, str]] = {}
    for read in {r.get_id(): r for leaf in leaves for r in _memory_reads(leaf)}.values():
        size = itemsizes.get(str(read.arg(0)))
        if size is None:
            raise Open(f"the reduction reads {read.arg(0)}, no input of the IR's reduction")
        index = _offset_alone(tile, read.arg(1))
        shift = z3.simplify(index - z3.substitute(index, (tile.cta, zero)))  # the same for a vector's bytes
        shifts.setdefault(shift.get_id() * 16 + size, (shift, index, size, str(read.arg(0))))
    for shift, index, size, buffer in shifts.values():
        if (verdict := lemma(tile.assumptions() + [shift != results * (count * size)])) != z3.unsat:
            raise Open(f"the reduction reads byte {index} of {buffer.removeprefix('memory ')}"
                       f", which does not move with the IR's row from CTA to CTA ({verdict})")


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


def _per_result(terms: IrTerms, instr: Instr, store: Stored) -> int:
    """How many consecutive output elements use each result of the reduction: the output's element
    x uses result x // that many (checked: the IR's broadcast is that, for every element)."""
    reduced_shape = instr.type.shape  # type: ignore[union-attr]
    per_result = math.prod(store.shape) // max(math.prod(reduced_shape), 1)
    x = z3.BitVec("output element", 64)
    broadcast = At(x, store.shape).of(reduced_shape).flat
    if per_result < 1 or _check([z3.ULT(x, math.prod(store.shape)), broadcast != z3.UDiv(x, per_result)])[0] \
            != z3.unsat:
        raise Open(f"the output's elements do not use the reduction's results in runs of {per_result}")
    return per_result


@dataclass
class Trees:
    """The reduction trees of one kernel's value obligation: each (tree, IR reduction) pair's
    proof, built up over the stores and vector lanes that use it."""

    tile: Tile
    terms: IrTerms
    itemsizes: dict[str, int]
    check: Callable[[list[z3.BoolRef]], z3.CheckSatResult]
    proofs: dict[tuple[int, str], ReductionProof] = field(default_factory=dict)
    verdicts: dict[tuple[int, str, int], str] = field(default_factory=dict)  # "" where proved
    agreed: set[tuple[int, int]] = field(default_factory=set)
    lemmas: dict[int, z3.CheckSatResult] = field(default_factory=dict)

    def replaced(self, got: z3.ExprRef, uses: list[tuple[Instr, z3.BitVecRef]], store: Stored) -> z3.ExprRef:
        """`got` with each reduction tree proved equal to the IR's accumulated value of the element
        the thread stores replaced by that value; Open or Wrong otherwise."""
        candidates = [(instr, flat) for instr, flat in uses if instr.op in KINDS]
        for root in roots(self.tile, got):
            kind = kind_of(self.tile.combines[root.get_id()])
            mine = [(instr, flat) for instr, flat in candidates if KINDS[instr.op] == kind]
            if not mine:
                raise Open(f"a reduction tree of {kind} where the IR has no such reduction")
            reasons = []
            for instr, flat in mine:
                reason = self.verdict(root, instr, flat, store)
                if not reason:
                    value = accumulated(instr)(flat)
                    got = z3.substitute(got, (root, value if z3.is_fp(root) else to_bits(value, "f32")))
                    break
                reasons.append(reason)
            else:
                kind_, _, reason = reasons[0].partition(": ")
                raise (Wrong if kind_ == "Wrong" and len(mine) == 1 else Open)(reason)
        return got

    def verdict(self, root: z3.ExprRef, instr: Instr, reduced: z3.BitVecRef, store: Stored) -> str:
        key = (root.get_id(), instr.result, reduced.get_id())
        if key not in self.verdicts:
            try:
                self.prove(root, instr, reduced, store)
                self.verdicts[key] = ""
            except (Open, Wrong) as err:
                self.verdicts[key] = f"{type(err).__name__}: {err}"
        return self.verdicts[key]

    def prove(self, root: z3.ExprRef, instr: Instr, reduced: z3.BitVecRef, store: Stored) -> None:
        """The tree `root` equals the IR's accumulated value of result `reduced` for every thread
        that makes the store, in every CTA; Open or Wrong otherwise."""
        tile = self.tile
        if tile.paths != 1:  # shared accesses and their phases are recorded per path
            raise Open(f"a kernel of {tile.paths} paths")
        if not reduced.eq(At(store.flat, store.shape).of(instr.type.shape).flat):  # type: ignore[union-attr]
            raise Open("the stored element reaches the reduction through more than a broadcast")
        proof = self.proofs.setdefault((root.get_id(), instr.result), ReductionProof(
            tile, self.terms, instr, Expansion(tile, KINDS[instr.op])))
        storing = [t for t in range(tile.launch.threads) if proof.expansion.at(store.condition, t)]
        if not storing:
            return
        for thread in storing:
            result = _constant(z3.substitute(reduced, (tile.tid, z3.BitVecVal(thread, 32)),
                                             (tile.cta, z3.BitVecVal(0, 32))))
            if result is None:
                raise Open(f"the result thread {thread} stores is not a fixed element at CTA 0")
            proof.check_thread(root, thread, int(result))
        fresh = {k: v for k, v in proof.pairs.items() if k not in self.agreed}
        ReductionProof.formulas_agree_on(fresh.values(), self.check)
        self.agreed |= set(fresh)
        leaves = [proof.expansion.terms[leaf_id] for leaf_id in proof.kernel_templates]
        row_shift_lemmas(tile, self.terms, instr, store, storing[0], leaves, self.itemsizes, self.lemma)

    def lemma(self, constraints: list[z3.BoolRef]) -> z3.CheckSatResult:
        """A query of the lemmas, each asked once (the lanes of a vector store ask the same)."""
        key = z3.simplify(z3.And(*constraints)).get_id()
        if key not in self.lemmas:
            self.lemmas[key] = self.check(constraints)
        return self.lemmas[key]
