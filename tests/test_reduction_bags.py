"""The pieces the reduction proof counts leaves with: bags of leaves (hash-consed Patricia tries,
one id per multiset) and leaf templates (a term's formula at many values of the thread)."""

from __future__ import annotations

from collections import Counter

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.reductions import Bags, Templates, formula

# A program over bags: ("single", key) or ("join", i, j) of earlier results (indices mod their count).
STEPS = st.lists(st.one_of(st.tuples(st.just("single"), st.integers(0, 40)),
                           st.tuples(st.just("join"), st.integers(0, 10**6), st.integers(0, 10**6))),
                 min_size=1, max_size=80)


def _key(number: int) -> tuple:
    return ((("x", number),), 0)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_a_bag_holds_exactly_what_was_joined_and_equal_bags_are_one_id(steps: list[tuple]) -> None:
    bags = Bags()
    made: list[tuple[int, Counter]] = []
    for step in steps:
        if step[0] == "single" or not made:
            number = step[1] if step[0] == "single" else 0
            made.append((bags.single(_key(number)), Counter({_key(number): 1})))
        else:
            (a, counts_a), (b, counts_b) = made[step[1] % len(made)], made[step[2] % len(made)]
            made.append((bags.join(a, b), counts_a + counts_b))
    ids: dict[frozenset, int] = {}
    for bag, counts in made:
        assert bags.counts(bag) == counts
        assert ids.setdefault(frozenset(counts.items()), bag) == bag, "two ids for one multiset"


def test_joining_in_another_order_gives_the_same_bag() -> None:
    bags = Bags()
    singles = [bags.single(_key(n)) for n in range(64)]
    left = singles[0]
    for bag in singles[1:]:
        left = bags.join(left, bag)
    pairs = [bags.join(singles[i], singles[i ^ 1]) for i in range(0, 64, 2)]
    while len(pairs) > 1:
        pairs = [bags.join(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
    assert left == pairs[0]
    assert bags.join(left, singles[5]) != left  # a leaf twice is another multiset
    assert bags.counts(bags.join(left, singles[5]))[_key(5)] == 2


TID = z3.BitVec("tid", 32)
MEMORY = z3.Array("memory x", z3.BitVecSort(64), z3.BitVecSort(8))


def _byte(index: z3.BitVecRef) -> z3.BitVecRef:
    return z3.Select(MEMORY, z3.ZeroExt(32, index))


def test_a_templates_reads_are_those_of_the_branch_its_condition_takes() -> None:
    """A value chosen by a condition on the thread (a tail, or one of two stores forwarded) reads
    only the places of the branch taken; its formula is the one of the term at that thread."""
    near, far = _byte(4 * TID), _byte(4 * TID + 4096)
    term = z3.simplify(z3.If(z3.ULT(TID, 100), z3.Concat(near, far), z3.Concat(far, far)))
    templates = Templates(term)
    for thread in (0, 7, 99, 100, 101, 250):
        found = templates.at({"tid": thread})
        want = formula(z3.simplify(z3.substitute(term, (TID, z3.BitVecVal(thread, 32)))))
        assert found is not None
        assert found.reads == want.reads, thread
        assert z3.simplify(found.template).eq(z3.simplify(want.template)), thread
    assert templates.at({"tid": 100}).reads == (("memory x", 4096 + 400),)
