"""z3 bit-vector and boolean terms compiled to Python functions of a few symbols (a thread's
coordinates), for terms evaluated at many values: many times faster than substituting and
simplifying with z3 each time. A term with anything else (floats, arrays, other symbols) raises
`NotEvaluable`; callers then fall back to z3."""

from __future__ import annotations

import functools
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
    z3.Z3_OP_AND: lambda a, w, cw: "(" + " and ".join(a) + ")" if a else "True",  # And() of nothing holds
    z3.Z3_OP_OR: lambda a, w, cw: "(" + " or ".join(a) + ")" if a else "False",
    z3.Z3_OP_NOT: lambda a, w, cw: f"(not {a[0]})",
    z3.Z3_OP_EQ: lambda a, w, cw: f"({a[0]} == {a[1]})",
    z3.Z3_OP_IMPLIES: lambda a, w, cw: f"((not {a[0]}) or {a[1]})",
    z3.Z3_OP_ITE: lambda a, w, cw: f"({a[1]} if {a[0]} else {a[2]})",
}
WRAPS = frozenset({z3.Z3_OP_BADD, z3.Z3_OP_BSUB, z3.Z3_OP_BMUL, z3.Z3_OP_BNOT, z3.Z3_OP_BNEG, z3.Z3_OP_BSHL,
                   z3.Z3_OP_BASHR, z3.Z3_OP_SIGN_EXT})  # results to reduce modulo 2**width


def compiled(term: z3.ExprRef, symbols: tuple[str, ...]) -> Callable[..., int | bool]:
    """`term` as a Python function of `symbols` (by name, in order): NotEvaluable where it has a
    node this module does not know. Each shared subterm is computed once. Terms that differ in
    their constants alone (a loop's trips) share one compiled body: the constants are bound
    afterwards, so that each shape of term is compiled once."""
    return _compiled([term], symbols, "{0}")


def compiled_all(terms: list[z3.ExprRef], symbols: tuple[str, ...]) -> Callable[..., tuple[int | bool, ...]]:
    """`compiled` for several terms at once (their shared subterms computed once): a function
    of `symbols` that returns each term's value, in order."""
    return _compiled(terms, symbols, "(" + "".join(f"{{{i}}}, " for i in range(len(terms))) + ")")


def _compiled(terms: list[z3.ExprRef], symbols: tuple[str, ...], returned: str) -> Callable[..., Any]:
    lines: list[str] = []
    names: dict[int, str] = {}
    constants: list[int] = []

    def emit(node: z3.ExprRef) -> str:
        key = node.get_id()
        if key in names:
            return names[key]
        if z3.is_bv_value(node):
            names[key] = f"k{len(constants)}"
            constants.append(node.as_long())
            return names[key]
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
        lines.append(f"        {name} = {source}")
        names[key] = name
        return name

    results = [emit(term) for term in terms]
    arguments = ", ".join(f"s{i}" for i in range(len(symbols)))
    code = (f"def _make({', '.join(f'k{i}' for i in range(len(constants)))}):\n"
            f"    def _f({arguments}):\n" + "\n".join(lines) + f"\n        return {returned.format(*results)}\n"
            "    return _f\n")
    return _factory(code)(*constants)


@functools.lru_cache(maxsize=4096)
def _factory(code: str) -> Callable[..., Callable[..., Any]]:
    """The compiled body of `compiled`'s code (one per shape of term)."""
    scope: dict[str, Any] = {"_udiv": _udiv, "_urem": _urem, "_signed": _signed}
    exec(compile(code, "<bv_eval>", "exec"), scope)  # noqa: S102 - source built above from z3 terms alone
    return scope["_make"]
