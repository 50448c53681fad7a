"""Evaluation of z3 bit-vector and boolean terms on Python integers, for terms over a few symbols
(a thread's coordinates) that are evaluated for many values: many times faster than substituting
and simplifying with z3. A term with anything else (floats, arrays, other symbols) raises
`NotEvaluable`; callers then fall back to z3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3


class NotEvaluable(Exception):
    """The term has a node this evaluator does not know."""


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def _udiv(a: int, b: int, bits: int) -> int:
    return (1 << bits) - 1 if b == 0 else a // b


def _urem(a: int, b: int, bits: int) -> int:
    return a if b == 0 else a % b


def _shift(bits: int, amount: int) -> int:
    return min(amount, bits)


# Z3 kind -> (node, evaluated children, the node's width) -> value.
BINARY: dict[int, Callable[[list[int], int], int]] = {
    z3.Z3_OP_BADD: lambda a, w: sum(a),
    z3.Z3_OP_BSUB: lambda a, w: a[0] - a[1],
    z3.Z3_OP_BMUL: lambda a, w: _product(a),
    z3.Z3_OP_BUDIV: lambda a, w: _udiv(a[0], a[1], w),
    z3.Z3_OP_BUDIV_I: lambda a, w: _udiv(a[0], a[1], w),
    z3.Z3_OP_BUREM: lambda a, w: _urem(a[0], a[1], w),
    z3.Z3_OP_BUREM_I: lambda a, w: _urem(a[0], a[1], w),
    z3.Z3_OP_BAND: lambda a, w: _fold(a, lambda x, y: x & y),
    z3.Z3_OP_BOR: lambda a, w: _fold(a, lambda x, y: x | y),
    z3.Z3_OP_BXOR: lambda a, w: _fold(a, lambda x, y: x ^ y),
    z3.Z3_OP_BNOT: lambda a, w: ~a[0],
    z3.Z3_OP_BNEG: lambda a, w: -a[0],
    z3.Z3_OP_BSHL: lambda a, w: a[0] << _shift(w, a[1]),
    z3.Z3_OP_BLSHR: lambda a, w: a[0] >> _shift(w, a[1]),
    z3.Z3_OP_BASHR: lambda a, w: _signed(a[0], w) >> _shift(w, a[1]),
}
COMPARE: dict[int, Callable[[int, int, int], bool]] = {
    z3.Z3_OP_ULEQ: lambda a, b, w: a <= b, z3.Z3_OP_ULT: lambda a, b, w: a < b,
    z3.Z3_OP_UGEQ: lambda a, b, w: a >= b, z3.Z3_OP_UGT: lambda a, b, w: a > b,
    z3.Z3_OP_SLEQ: lambda a, b, w: _signed(a, w) <= _signed(b, w),
    z3.Z3_OP_SLT: lambda a, b, w: _signed(a, w) < _signed(b, w),
    z3.Z3_OP_SGEQ: lambda a, b, w: _signed(a, w) >= _signed(b, w),
    z3.Z3_OP_SGT: lambda a, b, w: _signed(a, w) > _signed(b, w),
}


def _product(values: list[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _fold(values: list[int], fn: Callable[[int, int], int]) -> int:
    result = values[0]
    for v in values[1:]:
        result = fn(result, v)
    return result


class Evaluator:
    """Values of terms for one assignment of symbols (by name), memoised per node."""

    def __init__(self, symbols: dict[str, int]) -> None:
        self.symbols = symbols
        self.memo: dict[int, Any] = {}

    def __call__(self, term: z3.ExprRef) -> int | bool:
        key = term.get_id()
        if key not in self.memo:
            self.memo[key] = self._eval(term)
        return self.memo[key]

    def _eval(self, term: z3.ExprRef) -> int | bool:
        kind = term.decl().kind() if z3.is_app(term) else None
        if z3.is_bv_value(term):
            return term.as_long()
        if z3.is_true(term) or z3.is_false(term):
            return z3.is_true(term)
        if kind == z3.Z3_OP_UNINTERPRETED and term.num_args() == 0:
            name = str(term)
            if name not in self.symbols:
                raise NotEvaluable(name)
            return self.symbols[name]
        children = term.children()
        if kind == z3.Z3_OP_ITE:
            return self(children[1]) if self(children[0]) else self(children[2])
        if kind in (z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_NOT, z3.Z3_OP_EQ, z3.Z3_OP_DISTINCT, z3.Z3_OP_IMPLIES):
            return _logic(kind, [self(c) for c in children])
        if kind in COMPARE:
            return COMPARE[kind](self(children[0]), self(children[1]), children[0].size())
        if not z3.is_bv(term):
            raise NotEvaluable(str(term.decl()))
        bits, mask = term.size(), (1 << term.size()) - 1
        if kind == z3.Z3_OP_EXTRACT:
            high, low = term.params()
            return (self(children[0]) >> low) & ((1 << (high - low + 1)) - 1)
        if kind == z3.Z3_OP_CONCAT:
            value = 0
            for child in children:
                value = (value << child.size()) | self(child)
            return value
        if kind == z3.Z3_OP_ZERO_EXT:
            return self(children[0])
        if kind == z3.Z3_OP_SIGN_EXT:
            return _signed(self(children[0]), children[0].size()) & mask
        if kind in BINARY:
            return BINARY[kind]([self(c) for c in children], bits) & mask
        raise NotEvaluable(str(term.decl()))


def _logic(kind: int, values: list[Any]) -> bool:
    if kind == z3.Z3_OP_AND:
        return all(values)
    if kind == z3.Z3_OP_OR:
        return any(values)
    if kind == z3.Z3_OP_NOT:
        return not values[0]
    if kind == z3.Z3_OP_IMPLIES:
        return (not values[0]) or values[1]
    if kind == z3.Z3_OP_EQ:
        return values[0] == values[1]
    return len(set(values)) == len(values)  # distinct


# Python source for each kind, from the children's source and the node's width.
SOURCE: dict[int, Callable[[list[str], int, list[int]], str]] = {
    z3.Z3_OP_BADD: lambda a, w, cw: "(" + " + ".join(a) + ")",
    z3.Z3_OP_BSUB: lambda a, w, cw: f"({a[0]} - {a[1]})",
    z3.Z3_OP_BMUL: lambda a, w, cw: "(" + " * ".join(a) + ")",
    z3.Z3_OP_BUDIV: lambda a, w, cw: f"_udiv({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUDIV_I: lambda a, w, cw: f"_udiv({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUREM: lambda a, w, cw: f"_urem({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BUREM_I: lambda a, w, cw: f"_urem({a[0]}, {a[1]}, {w})",
    z3.Z3_OP_BAND: lambda a, w, cw: "(" + " & ".join(a) + ")",
    z3.Z3_OP_BOR: lambda a, w, cw: "(" + " | ".join(a) + ")",
    z3.Z3_OP_BXOR: lambda a, w, cw: "(" + " ^ ".join(a) + ")",
    z3.Z3_OP_BNOT: lambda a, w, cw: f"(~{a[0]})",
    z3.Z3_OP_BNEG: lambda a, w, cw: f"(-{a[0]})",
    z3.Z3_OP_BSHL: lambda a, w, cw: f"({a[0]} << min({a[1]}, {w}))",
    z3.Z3_OP_BLSHR: lambda a, w, cw: f"({a[0]} >> min({a[1]}, {w}))",
    z3.Z3_OP_BASHR: lambda a, w, cw: f"(_signed({a[0]}, {w}) >> min({a[1]}, {w}))",
    z3.Z3_OP_ZERO_EXT: lambda a, w, cw: a[0],
    z3.Z3_OP_SIGN_EXT: lambda a, w, cw: f"_signed({a[0]}, {cw[0]})",
    z3.Z3_OP_ULEQ: lambda a, w, cw: f"({a[0]} <= {a[1]})", z3.Z3_OP_ULT: lambda a, w, cw: f"({a[0]} < {a[1]})",
    z3.Z3_OP_UGEQ: lambda a, w, cw: f"({a[0]} >= {a[1]})", z3.Z3_OP_UGT: lambda a, w, cw: f"({a[0]} > {a[1]})",
    z3.Z3_OP_SLEQ: lambda a, w, cw: f"(_signed({a[0]}, {cw[0]}) <= _signed({a[1]}, {cw[0]}))",
    z3.Z3_OP_SLT: lambda a, w, cw: f"(_signed({a[0]}, {cw[0]}) < _signed({a[1]}, {cw[0]}))",
    z3.Z3_OP_SGEQ: lambda a, w, cw: f"(_signed({a[0]}, {cw[0]}) >= _signed({a[1]}, {cw[0]}))",
    z3.Z3_OP_SGT: lambda a, w, cw: f"(_signed({a[0]}, {cw[0]}) > _signed({a[1]}, {cw[0]}))",
    z3.Z3_OP_AND: lambda a, w, cw: "(" + " and ".join(a) + ")",
    z3.Z3_OP_OR: lambda a, w, cw: "(" + " or ".join(a) + ")",
    z3.Z3_OP_NOT: lambda a, w, cw: f"(not {a[0]})",
    z3.Z3_OP_EQ: lambda a, w, cw: f"({a[0]} == {a[1]})",
    z3.Z3_OP_IMPLIES: lambda a, w, cw: f"((not {a[0]}) or {a[1]})",
    z3.Z3_OP_ITE: lambda a, w, cw: f"({a[1]} if {a[0]} else {a[2]})",
}
WRAPS = frozenset({z3.Z3_OP_BADD, z3.Z3_OP_BSUB, z3.Z3_OP_BMUL, z3.Z3_OP_BNOT, z3.Z3_OP_BNEG, z3.Z3_OP_BSHL,
                   z3.Z3_OP_BASHR, z3.Z3_OP_SIGN_EXT})  # results to reduce modulo 2**width


def compiled(term: z3.ExprRef, symbols: tuple[str, ...]) -> Callable[..., int | bool]:
    """`term` as a Python function of `symbols` (by name, in order): NotEvaluable where it has a
    node this module does not know. Each shared subterm is computed once."""
    lines: list[str] = []
    names: dict[int, str] = {}

    def emit(node: z3.ExprRef) -> str:
        key = node.get_id()
        if key in names:
            return names[key]
        if z3.is_bv_value(node):
            return str(node.as_long())
        if z3.is_true(node) or z3.is_false(node):
            return str(z3.is_true(node))
        kind = node.decl().kind()
        if kind == z3.Z3_OP_UNINTERPRETED and node.num_args() == 0:
            if str(node) not in symbols:
                raise NotEvaluable(str(node))
            return f"s{symbols.index(str(node))}"
        children = node.children()
        parts = [emit(c) for c in children]
        widths = [c.size() if z3.is_bv(c) else 0 for c in children]
        width = node.size() if z3.is_bv(node) else 0
        if kind == z3.Z3_OP_EXTRACT:
            high, low = node.params()
            source = f"(({parts[0]} >> {low}) & {(1 << (high - low + 1)) - 1})"
        elif kind == z3.Z3_OP_CONCAT:
            source, shift = "0", 0
            for part, bits in reversed(list(zip(parts, widths))):
                source, shift = f"({source} | ({part} << {shift}))", shift + bits
        elif kind == z3.Z3_OP_DISTINCT:
            source = f"(len({{{', '.join(parts)}}}) == {len(parts)})"
        elif kind in SOURCE:
            source = SOURCE[kind](parts, width, widths)
            if kind in WRAPS:
                source = f"({source} & {(1 << width) - 1})"
        else:
            raise NotEvaluable(str(node.decl()))
        name = f"v{len(lines)}"
        lines.append(f"    {name} = {source}")
        names[key] = name
        return name

    result = emit(term)
    code = f"def _f({', '.join(f's{i}' for i in range(len(symbols)))}):\n" + "\n".join(lines) + \
        f"\n    return {result}\n"
    scope: dict[str, Any] = {"_udiv": _udiv, "_urem": _urem, "_signed": _signed}
    exec(compile(code, "<bv_eval>", "exec"), scope)  # noqa: S102 - source built above from z3 terms alone
    return scope["_f"]
