"""The value of a kernel's argmax or argmin, proved equal to the IR's whatever the shape of its tree.

A kernel keeps, in each thread, a pair: the best value seen and its position along the reduced
extent (32 bits), starting from the start pair (the worst value, -inf for argmax and +inf for
argmin, at position 2^31 - 1). A combine is two selects under one condition, the value's
(selp.f32) and the index's (selp.b32); pairs move between threads as two values, each shuffled or
passed through shared memory on its own.

The order. An element (x, i) counts as the start where x is the worst value, else as itself.
Pairs are ordered: NaN first (the lower position first among NaNs), then the better value
(greater for argmax), then the lower position; the start is last. A tree of combines each of
which returns the better of its two operands in this order (the start pair itself where both
count as the start) computes the best of its elements whatever its shape and whatever order it
takes them in: the start pair where every element is the worst value (PyTorch's answer, and the
IR's, is then 0), otherwise the best element, whose position is the IR's answer (the first NaN,
else the first of the best values).

What is proved, on the tree under an index a stored element uses, followed per thread at CTA 0
as `verify.reductions` follows sums (through shuffles and shared memory to the supplier, choices
on the thread's coordinates decided per thread):
- each combine returns the better operand. One solver query per form of its condition (its
  operands abstracted, the parts that depend on the thread alone decided for the thread) and
  what its operands can be: an element (any value, at a position below n), or a running pair (the
  start pair where its tree holds the start pair, or a value that is NaN or better than the worst
  at a position below n); the two operands' positions all before the other's, all after, or
  interleaved (then one position in both is one element, of one value). A counterexample the
  solver finds there is a combine that picks the worse pair, or the wrong half of one: refuted;
- each element's index is its position in the IR's row, and the elements are the row's, each
  once, each value bit for bit the IR's element (`Trees.pair`);
- the result the stored element uses is then, for result r, the start's index 2^31 - 1 where
  every element of the row is the worst value, else the IR's best position (`arg_result`'s parts
  of the accumulated value of r): what follows (the kernel's last steps, the start read as 0) is
  compared bit for bit with the IR's `arg_result`.
Not modelled (inconclusive): a value and an index chosen under different conditions, a pair of
constants other than the start pair, integer argmax, and a tree that holds an element twice or
misses some where the IR's row has them (a partial tree)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import z3

from ir.dtypes import DType
from ir.kernel import Instr
from ir.ops import Op as IrOp
from verify.ir_symbolic import accumulated, arg_all_worst, arg_position, describe
from verify.symbolic import nodes, to_float
from verify.tree_verdicts import Open, OtherForm, Partial, Wrong

if TYPE_CHECKING:
    from verify.reductions import Trees

START_INDEX = 2**31 - 1
Visit = tuple[z3.ExprRef, z3.ExprRef, int, int, int]  # (value, index, thread, value's id, index's id)
NO_POSITION = 2**62  # a part without elements: its least position, above every other
OperandKind = tuple[bool, bool, bool]  # (an element, may be the start pair, may be an element's pair)
WITNESS_MS = 5_000  # the solver's time for each pair of positions a refuting counterexample is tried at
WORST_BITS = {IrOp.ARGMAX: 0xFF800000, IrOp.ARGMIN: 0x7F800000}  # -inf, +inf
BETTER: dict[IrOp, Callable[[z3.ExprRef, z3.ExprRef], z3.BoolRef]] = {IrOp.ARGMAX: z3.fpGT, IrOp.ARGMIN: z3.fpLT}
VALUE_TYPES = ("f32",)
INDEX_TYPES = ("b32", "u32", "s32")
F32 = z3.Float32()


class PairOpen(Exception):
    """What is not modelled: the obligation stays inconclusive (raised on as `Open`)."""


@dataclass(frozen=True)
class Part:
    """What a subtree of pairs is: its elements (a bag of `Trees`), the least and greatest of their
    positions (none: low > high), whether it holds the start pair, and whether it is one element
    itself rather than a running pair."""

    bag: int
    low: int  # NO_POSITION where there is none
    high: int  # -1 where there is none
    start: bool
    element: bool

    @property
    def empty(self) -> bool:
        return self.low > self.high


def relation(first: Part, second: Part) -> str:
    """How the positions of two operands' elements lie: all before the other's, all after, or
    interleaved ("none" where one has no element)."""
    if first.empty or second.empty:
        return "none"
    if first.high < second.low:
        return "before"
    if first.low > second.high:
        return "after"
    return "interleaved"


def operand_kind(part: Part) -> OperandKind:
    """What a query's operand may be: (an element, a running pair that may be the start pair, one
    that may be an element's pair)."""
    return part.element, part.start, not part.empty


@dataclass
class Operand:
    """A combine's operand in the query: its value's bits and its index, as free constants."""

    value: z3.BitVecRef
    index: z3.BitVecRef

    @property
    def float(self) -> z3.FPRef:
        return z3.fpBVToFP(self.value, F32)


def _domain(op: IrOp, x: Operand, kind: OperandKind, n: int) -> z3.BoolRef:
    """What an operand can be: an element, any value at a position below n; a running pair, the
    start pair (where its tree holds it) or (where its tree holds elements) a value that is NaN or
    better than the worst at a position below n."""
    element, start, elements = kind
    placed = z3.ULT(x.index, n)
    if element:
        return placed
    worst = z3.fpBVToFP(z3.BitVecVal(WORST_BITS[op], 32), F32)
    real = z3.And(placed, z3.Or(z3.fpIsNaN(x.float), BETTER[op](x.float, worst)))
    first = z3.And(x.value == WORST_BITS[op], x.index == START_INDEX)
    return z3.Or(*[case for case, holds in ((first, start), (real, elements)) if holds])


def _positions(first: Operand, second: Operand, how: str, n: int) -> z3.BoolRef:
    both = z3.And(z3.ULT(first.index, n), z3.ULT(second.index, n))
    if how == "before":
        return z3.Implies(both, z3.ULT(first.index, second.index))
    if how == "after":
        return z3.Implies(both, z3.UGT(first.index, second.index))
    return z3.Implies(first.index == second.index, first.value == second.value)


def combine_claim(op: IrOp, condition: z3.BoolRef, first: Operand, second: Operand,
                  kinds: tuple[OperandKind, OperandKind], how: str, n: int) -> list[z3.BoolRef]:
    """The query whose unsat proves that If(condition, first, second), on both halves of the pair,
    is the better of the two in the order of the module docstring (the start pair where both count
    as the start)."""
    (first_element, first_start, _), (second_element, second_start, _) = kinds
    worst = WORST_BITS[op]
    starts = [x.value == worst for x in (first, second)]
    # The start pair itself: a running pair's (an element of the worst value counts as the start but is not it)
    kept = [z3.And(s, z3.BoolVal(not element and start)) for s, element, start in
            ((starts[0], first_element, first_start), (starts[1], second_element, second_start))]
    nan = [z3.fpIsNaN(x.float) for x in (first, second)]
    earlier = z3.ULT(first.index, second.index)
    first_better = z3.And(z3.Not(starts[0]), z3.Or(
        starts[1],
        z3.And(nan[0], z3.Or(z3.Not(nan[1]), earlier)),
        z3.And(z3.Not(nan[0]), z3.Not(nan[1]),
               z3.Or(BETTER[op](first.float, second.float), z3.And(z3.fpEQ(first.float, second.float), earlier)))))
    both_start = z3.And(*starts)
    valid = z3.Or(z3.Not(both_start), *kept)
    take_first = z3.If(both_start, kept[0], first_better)
    claim = z3.And(valid, z3.If(condition, first.value, second.value) == z3.If(take_first, first.value, second.value),
                   z3.If(condition, first.index, second.index) == z3.If(take_first, first.index, second.index))
    return [_domain(op, first, kinds[0], n), _domain(op, second, kinds[1], n),
            _positions(first, second, how, n), z3.Not(claim)]


@dataclass
class ArgTrees:
    """The pair trees of one kernel's argmax and argmin results (the IR's `instrs`), followed with
    the help of the value trees' `Trees` (threads, exchanges, leaves, bags)."""

    trees: Trees
    instrs: list[Instr]
    data: dict[int, tuple[z3.ExprRef, bool]] = field(default_factory=dict)  # term id -> (term, reads data)
    walked: dict[tuple[int, int, int, str], Part] = field(default_factory=dict)
    pairs: dict[tuple[int, int], tuple] = field(default_factory=dict)  # (value, index) ids -> `shape`'s
    shapes: dict[tuple, tuple] = field(default_factory=dict)  # a choice's key -> condition, operands, decidable parts
    forms: dict[tuple, z3.BoolRef | bool] = field(default_factory=dict)  # (condition, operands, decided) -> form
    choices: dict[int, tuple[z3.ExprRef, list[z3.ExprRef]]] = field(default_factory=dict)  # `chosen`'s conditions
    chosen_values: dict[tuple[int, tuple[bool, ...]], z3.ExprRef] = field(default_factory=dict)
    checked: dict[tuple, z3.BoolRef] = field(default_factory=dict)  # combine queries proved, with their form
    positions: dict[tuple[str, tuple], int] = field(default_factory=dict)  # (result, element's reads) -> index
    rows: dict[tuple[str, int], dict[tuple, int]] = field(default_factory=dict)  # (reduction, result) -> positions
    checked_bags: set[int] = field(default_factory=set)  # trees whose elements' positions were checked
    placeholders: tuple[Operand, Operand] = field(default_factory=lambda: (
        Operand(z3.BitVec("first value", 32), z3.BitVec("first index", 32)),
        Operand(z3.BitVec("second value", 32), z3.BitVec("second index", 32))))

    # Pairs.

    def value_of(self, index: z3.ExprRef) -> z3.ExprRef | None:
        """The value selected beside an index select (the one f32 selp under its condition)."""
        if not z3.is_app_of(index, z3.Z3_OP_ITE):
            return None
        entry = self.trees.tile.selects.get(index.arg(0).get_id())
        if entry is None or not any(t in INDEX_TYPES and r.eq(index) for t, r in entry[1]):
            return None
        values = [r for t, r in entry[1] if t in VALUE_TYPES]
        return values[0] if len(values) == 1 else None

    def is_root(self, node: z3.ExprRef) -> bool:
        return self.value_of(node) is not None

    def reads_data(self, term: z3.ExprRef) -> bool:
        """Whether a term depends on data (a float, memory, a value another thread supplied), not
        on the thread's coordinates alone; each node asked once for the whole proof."""
        exchanges, pending = self.trees.tile.exchange_ids, [term]
        while pending:
            node = pending[-1]
            key = node.get_id()
            if key in self.data:
                pending.pop()
                continue
            if key in exchanges or z3.is_select(node) or z3.is_fp(node) or z3.is_array(node) or _unset(node):
                self.data[key] = (node, True)
                pending.pop()
                continue
            children = [c for c in node.children() if c.get_id() not in self.data]
            if children:
                pending.extend(children)
                continue
            pending.pop()
            self.data[key] = (node, any(self.data[c.get_id()][1] for c in node.children()))
        return self.data[term.get_id()][1]

    # The tree under an index.

    def walk(self, instr: Instr, value: z3.ExprRef, index: z3.ExprRef, thread: int) -> Part:
        """The part that (value, index) in thread `thread` at CTA 0 is, every combine under it checked
        (iterative: a thread's chain of steps is as long as its elements; terms carried with their
        ids, which z3 is slow to give)."""
        name = instr.result
        root = (value.get_id(), index.get_id(), thread, name)
        pending: list[Visit] = [(value, index, thread, root[0], root[1])]
        while pending:
            v, i, t, vid, iid = pending[-1]
            key = (vid, iid, t, name)
            if key in self.walked:
                pending.pop()
                continue
            step = self.step(instr, v, i, t, vid, iid)
            if step[0] == "part":
                self.walked[key] = step[1]
                pending.pop()
                continue
            below = [visit for visit in step[1] if (visit[3], visit[4], visit[2], name) not in self.walked]
            if below:
                pending.extend(below)
                continue
            pending.pop()
            parts = [self.walked[(visit[3], visit[4], visit[2], name)] for visit in step[1]]
            self.walked[key] = parts[0] if step[0] == "same" else self.combined(instr, step[2], parts, t)
        return self.walked[root]

    def step(self, instr: Instr, value: z3.ExprRef, index: z3.ExprRef, thread: int, value_id: int,
             index_id: int) -> tuple:
        """What (value, index) is: ("part", Part) for a leaf; ("same", [visit]) for a pair another
        thread supplied or a choice decided for the thread; ("combine", [first, second], form) for a
        combine."""
        shape = self.shape(value, index, value_id, index_id)
        if shape[0] == "supplied":
            source_value, source_index, supplier = self.supplied(value, index, thread)
            return "same", [(source_value, source_index, supplier, source_value.get_id(), source_index.get_id())]
        if shape[0] == "leaf":
            return "part", self.leaf(instr, value, index, thread)
        if shape[0] == "apart":
            raise PairOpen(f"thread {thread}: a value and an index chosen under different conditions")
        _, key, operands, ids = shape
        form = self.form(key, operands, thread)
        first = (operands[0], operands[1], thread, ids[0], ids[1])
        second = (operands[2], operands[3], thread, ids[2], ids[3])
        if isinstance(form, bool):
            return "same", [first if form else second]
        return "combine", [first, second], form

    def shape(self, value: z3.ExprRef, index: z3.ExprRef, value_id: int, index_id: int) -> tuple:
        """What `step` does with a pair of terms, found once (every thread asks): a pair supplied,
        a choice of two pairs under one condition ("choose", its key in `shapes`, the operands and
        their ids), one under two conditions ("apart"), or a leaf."""
        key = (value_id, index_id)
        if key not in self.pairs:
            exchanges = self.trees.tile.exchange_ids
            if index_id in exchanges or value_id in exchanges:
                shape: tuple = ("supplied",)
            elif z3.is_app_of(index, z3.Z3_OP_ITE) and z3.is_app_of(value, z3.Z3_OP_ITE) \
                    and not z3.is_app_of(value.arg(0), z3.Z3_OP_FPA_IS_NAN):  # not a float's encoding
                condition = index.arg(0)
                if not condition.eq(value.arg(0)):
                    shape = ("apart",)
                else:
                    operands = (value.arg(1), index.arg(1), value.arg(2), index.arg(2))
                    ids = tuple(o.get_id() for o in operands)
                    condition_key = (condition.get_id(), ids)
                    if condition_key not in self.shapes:
                        self.shapes[condition_key] = (condition, operands, self.decidable(condition, operands))
                    shape = ("choose", condition_key, operands, ids)
            else:
                shape = ("leaf",)
            self.pairs[key] = (value, index, shape)  # the terms held: the key's ids stay theirs
        return self.pairs[key][2]

    def supplied(self, value: z3.ExprRef, index: z3.ExprRef, thread: int) -> tuple[z3.ExprRef, z3.ExprRef, int]:
        """A pair another thread supplied: both halves from one supplier."""
        exchanges, probe = self.trees.tile.exchange_ids, self.trees.expansion("")
        found = [exchanges.get(term.get_id()) for term in (value, index)]
        if any(f is None for f in found):
            raise PairOpen(f"thread {thread}: half of a pair another thread supplied, the other half its own")
        (_, value_exchange), (_, index_exchange) = found  # type: ignore[misc]
        source_value, supplier = probe.followed(value_exchange, thread)
        source_index, other = probe.followed(index_exchange, thread)
        if supplier != other:
            raise PairOpen(f"line {index_exchange.instruction.line}: thread {thread} takes a pair's value from "
                           f"thread {supplier} and its index from thread {other}")
        return source_value, source_index, supplier

    def leaf(self, instr: Instr, value: z3.ExprRef, index: z3.ExprRef, thread: int) -> Part:
        """An element (a value of the input at its position in the IR's row) or the start pair."""
        probe, op, n = self.trees.expansion(""), instr.op, self.trees.terms.reduced_count(instr)
        if self.reads_data(index):
            raise PairOpen(f"thread {thread}: an index that is no position of the thread's own: {index}"[:300])
        position = int(probe.at(index, thread))
        found = self.trees.kernel_formula(self.chosen(value, thread), thread, "max.NaN.f32")
        bits = z3.simplify(self.chosen(value, thread)) if not found.reads else None
        if bits is not None and z3.is_bv_value(bits):
            if bits.as_long() == WORST_BITS[op] and position == START_INDEX:
                return Part(self.trees.bags.empty, NO_POSITION, -1, True, False)
            raise PairOpen(f"thread {thread}: a pair of constants that is not the start ({hex(bits.as_long())}, "
                           f"{position})")
        if position >= n:  # an element, or a register never written (any value): it can be the best
            raise Wrong(f"thread {thread} of CTA 0: a pair at position {position} enters a combine, past the row's "
                        f"{n} elements")
        if bits is not None:
            raise PairOpen(f"thread {thread}: a pair whose value reads no memory at position {position}")
        seen = self.positions.setdefault((instr.result, found.reads), position)
        if seen != position:
            raise PairOpen(f"thread {thread}: one element taken at positions {seen} and {position}")
        self.trees.templates[found.template.get_id()] = found.template
        return Part(self.trees.bags.single((found.reads, found.template.get_id())), position, position, False, True)

    def check_positions(self, instr: Instr, reads: list[tuple], whole: bool = False) -> None:
        """Each element's index in the kernel is its position in its IR row (`whole`: the elements
        are one tree's, of one row; a read no element of the IR's reduction makes is left to the
        row's match)."""
        proof = self.trees.proof_of(instr)
        try:
            row = proof.guess(Counter(reads)) if whole else None
        except OtherForm:
            return
        for element in reads:
            try:
                result = proof.guess(Counter({element: 1})) if row is None else row
            except OtherForm:
                continue
            if (instr.result, result) not in self.rows:
                elements = proof.row(result)  # in the row's order, each once where they read apart
                if len(elements) != self.trees.terms.reduced_count(instr):
                    raise PairOpen(f"result {result}: elements of the row read the same places")
                self.rows[(instr.result, result)] = {reads: k for k, reads in enumerate(elements)}
            want, mine = self.rows[(instr.result, result)].get(element), self.positions[(instr.result, element)]
            if want is not None and want != mine:
                raise Wrong(f"for result {result}: the kernel pairs the element at position {want} of its row with "
                            f"index {mine}")

    def chosen(self, value: z3.ExprRef, thread: int) -> z3.ExprRef:
        """An element's value with each choice on the thread's coordinates alone decided for the
        thread (a load under a tail's or a row's guard is the load)."""
        if value.get_id() not in self.choices:
            conditions = {n.arg(0).get_id(): n.arg(0) for n in nodes(value)
                          if z3.is_app_of(n, z3.Z3_OP_ITE) and not self.reads_data(n.arg(0))}
            self.choices[value.get_id()] = (value, list(conditions.values()))
        _, conditions = self.choices[value.get_id()]
        if not conditions:
            return value
        probe = self.trees.expansion("")
        decided = tuple(bool(probe.at(c, thread)) for c in conditions)
        key = (value.get_id(), decided)
        if key not in self.chosen_values:  # the value held in `choices`: its id stays its
            self.chosen_values[key] = z3.simplify(z3.substitute(value, *[(c, z3.BoolVal(d))
                                                                         for c, d in zip(conditions, decided)]))
        return self.chosen_values[key]

    # Combines.

    def form(self, key: tuple, operands: tuple[z3.ExprRef, ...], thread: int) -> z3.BoolRef | bool:
        """The combine's condition with its operands as the query's constants and each part of it
        that depends on the thread alone decided for the thread (True/False: the choice does not
        depend on data)."""
        condition, _, parts = self.shapes[key]
        probe = self.trees.expansion("")
        decided = tuple(probe.at(part, thread) for part in parts)
        if key + (decided,) not in self.forms:
            first, second = self.placeholders
            pairs = [(operands[0], first.value), (operands[1], first.index), (operands[2], second.value),
                     (operands[3], second.index)]
            for term, placeholder in ((operands[0], first), (operands[2], second)):
                as_float = to_float(term, "f32")
                if not as_float.eq(z3.fpBVToFP(term, F32)):
                    pairs.append((as_float, placeholder.float))
            pairs += [(part, z3.BoolVal(bool(v)) if z3.is_bool(part) else z3.BitVecVal(int(v), part.size()))
                      for part, v in zip(parts, decided)]
            form = z3.simplify(z3.substitute(condition, *pairs))
            placeholders = {p.get_id() for x in self.placeholders for p in (x.value, x.index)}
            if z3.is_true(form) or z3.is_false(form):
                self.forms[key + (decided,)] = z3.is_true(form)
            elif any(z3.is_const(n) and n.get_id() not in placeholders and n.decl().kind() == z3.Z3_OP_UNINTERPRETED
                     and not _unset(n) for n in nodes(form)):  # a register never written: any value
                raise PairOpen(f"thread {thread}: a pair chosen on other values than the two pairs': {form}"[:300])
            else:
                self.forms[key + (decided,)] = form
        return self.forms[key + (decided,)]

    def decidable(self, condition: z3.BoolRef, operands: tuple[z3.ExprRef, ...]) -> list[z3.ExprRef]:
        """The largest parts of a condition that depend on the thread alone (not on data, not an
        operand of the combine)."""
        floats = [to_float(operands[k], "f32") for k in (0, 2)]
        own = {o.get_id() for o in (*operands, *floats)}
        found: dict[int, z3.ExprRef] = {}
        pending, seen = [condition], set()
        while pending:
            node = pending.pop()
            if node.get_id() in seen or node.get_id() in own:
                continue
            seen.add(node.get_id())
            if (z3.is_bool(node) or z3.is_bv(node)) and not self.reads_data(node) and not z3.is_bv_value(node) \
                    and not z3.is_true(node) and not z3.is_false(node):
                found[node.get_id()] = node
            else:
                pending.extend(node.children())
        return list(found.values())

    def combined(self, instr: Instr, form: z3.BoolRef, parts: list[Part], thread: int) -> Part:
        """The part a combine is, once it is proved to return the better operand."""
        first, second = parts
        how = relation(first, second)
        kinds = (operand_kind(first), operand_kind(second))
        op, n = instr.op, self.trees.terms.reduced_count(instr)
        key = (form.get_id(), kinds, how, op, n)
        if key not in self.checked:
            result = self.trees.check(combine_claim(op, form, *self.placeholders, kinds, how, n))
            if result == z3.sat:
                raise self.wrong_combine(instr, form, parts, thread)
            if result != z3.unsat:
                raise PairOpen(f"thread {thread}: the solver gave up on whether a combine of pairs takes the "
                               f"better ({result})")
            self.checked[key] = form  # held: the key's id stays its
        return Part(self.trees.bags.join(first.bag, second.bag), min(first.low, second.low),
                    max(first.high, second.high), first.start or second.start, False)

    def wrong_combine(self, instr: Instr, form: z3.BoolRef, parts: list[Part], thread: int) -> Exception:
        """A combine the solver finds taking the worse pair (or halves of two) where its operands are
        abstracted: refuted where two pairs its operands' trees do hold (positions of their own
        elements, values their elements can take, the rest of each tree the worst value) show it;
        left open otherwise."""
        op, n = instr.op, self.trees.terms.reduced_count(instr)
        self.check_positions(instr, [reads for part in parts for reads, _ in self.trees.bags.counts(part.bag)])
        held = [self.held_positions(instr, part) for part in parts]
        if set(held[0]) & set(held[1]):
            return PairOpen(f"thread {thread}: a combine of pairs whose trees share an element")
        kinds = (operand_kind(parts[0]), operand_kind(parts[1]))
        query = combine_claim(op, form, *self.placeholders, kinds, relation(*parts), n)
        values = [self.realizable(instr, part, x, name) for part, x, name in zip(parts, self.placeholders,
                                                                                  ("first", "second"))]
        for i1 in _candidates(held[0], parts[0]):
            for i2 in _candidates(held[1], parts[1]):
                solver = z3.Solver()
                solver.set("timeout", WITNESS_MS)
                solver.add(*query, *values, self.placeholders[0].index == i1, self.placeholders[1].index == i2)
                if solver.check() == z3.sat:
                    model = solver.model()
                    shown = ", ".join(f"({describe(model.eval(x.value, True).as_long(), DType.F32)}, {i})"
                                      for x, i in zip(self.placeholders, (i1, i2)))
                    unset = sorted({n.decl().name().removeprefix("unset ") for n in nodes(form) if _unset(n)})
                    where = f", with {', '.join(unset)} (never written) any value" if unset else ""
                    return Wrong(f"thread {thread} of CTA 0: a combine of {op.value} pairs does not take the better "
                                 f"of {shown} (value, position; in its select's order{where})")
        return PairOpen(f"thread {thread}: a combine of pairs not shown to take the better (the solver's pairs "
                        "are none its operands' trees hold)")

    def held_positions(self, instr: Instr, part: Part) -> list[int]:
        """The positions of a part's elements."""
        return sorted(self.positions[(instr.result, reads)] for reads, _ in self.trees.bags.counts(part.bag))

    def realizable(self, instr: Instr, part: Part, x: Operand, name: str) -> z3.BoolRef:
        """A value the part's best pair can hold: the start's, or one of its elements' formula (its
        bytes free)."""
        templates = [self.trees.templates[t] for _, t in self.trees.bags.counts(part.bag)]
        cases = [x.value == WORST_BITS[instr.op]] if part.start else []
        if templates:
            template = templates[0]
            symbols = {n.get_id(): n for n in nodes(template) if z3.is_const(n)
                       and n.decl().kind() == z3.Z3_OP_UNINTERPRETED}
            renamed = z3.substitute(template, *[(c, z3.Const(f"{c} ({name})", c.sort())) for c in symbols.values()]) \
                if symbols else template
            cases.append(x.float == renamed)
        return z3.Or(*cases) if cases else z3.BoolVal(False)

    # The result.

    def reduced(self, node: z3.ExprRef, thread: int) -> z3.ExprRef:
        """An index select at the root of a pair tree: the IR's result it is, as a 32-bit index."""
        value = self.value_of(node)
        assert value is not None
        errors: list[Exception] = []
        for instr in self.instrs:
            try:
                return self.result_of(instr, value, node, thread)
            except PairOpen as err:
                errors.append(Open(str(err)))
            except Partial as err:
                err.node = node
                errors.append(err)
            except (Open, Wrong) as err:
                errors.append(err)
        wrong = next((e for e in errors if isinstance(e, Wrong)), None)
        raise wrong or errors[0]

    def result_of(self, instr: Instr, value: z3.ExprRef, index: z3.ExprRef, thread: int) -> z3.ExprRef:
        if not self.trees.terms.types[instr.args[0]].dtype.is_float:
            raise PairOpen(f"an {instr.op.value} of integers: not modelled")
        n = self.trees.terms.reduced_count(instr)
        if n >= START_INDEX:
            raise PairOpen(f"an {instr.op.value} of rows of {n} elements: positions reach the start's index")
        root = self.walk(instr, value, index, thread)
        proof = self.trees.proof_of(instr)
        got = self.trees.projection(root.bag)
        if any(count > 1 for count in got.values()):
            raise Open(f"thread {thread}: an {instr.op.value} tree that takes an element more than once")
        if root.bag not in self.checked_bags:  # every thread that stores the result asks
            self.check_positions(instr, list(got), whole=True)
            self.checked_bags.add(root.bag)
        result = proof.match(root.bag, got, thread)
        self.trees.matched[instr.result] = instr
        self.trees.pair(root.bag, proof)
        best = accumulated(instr)(z3.BitVecVal(result, 64))
        if root.element:  # a row of one element, taken as it is
            return z3.BitVecVal(root.low, 32)
        if not root.start:  # its first combine of two elements fails before this: left open, not refuted
            raise PairOpen(f"thread {thread}: an {instr.op.value} tree without the start pair")
        return z3.If(arg_all_worst(best), z3.BitVecVal(START_INDEX, 32), arg_position(best, n))


def _candidates(held: list[int], part: Part) -> list[int]:
    """Positions to try a counterexample at: the first and last a part holds, and the start's."""
    return sorted(set(held[:1] + held[-1:])) + ([START_INDEX] if part.start else [])


def _unset(node: z3.ExprRef) -> bool:
    """A register read before any write (`verify.prove`): any value at all, in any thread."""
    return z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED and \
        node.decl().name().startswith("unset ")
