"""The meaning the prover gives IR ops that have no exact IEEE one (exp, erf, tanh, x**y, and the
fast division of approximate schedules): the formula of `ptxgen.mathlib` that a schedule's form
names, evaluated in z3 with the PTX semantics of the instructions the formula is written in.

A formula is written once over mathlib's primitives; `PtxMath` turns it into PTX lines, which are
parsed back here and run through `verify.semantics` in the z3 domain. The hardware approximations
inside a formula (ex2.approx, lg2.approx, tanh.approx, div.full, ...) stay uninterpreted functions,
the same ones the symbolic executor gives a kernel's own instructions. A kernel proved against these
terms computes the formula bit for bit; how close the formula is to the real function is what
tests/test_mathlib.py measures, and it is not part of the proof."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from ptxgen import mathlib
from ptxgen.ptx import PtxWriter
from verify.emulate import immediate_bits
from verify.ptxparse import Entry, Imm, Reg, parse_ptx
from verify.semantics import SEMANTICS, NotModelled, decode
from verify.symbolic import APPROXIMATE, Z3Domain, to_bits, to_float

HEADER = (".version 8.0", ".target sm_90a", ".address_size 64", ".visible .entry recipe()", "{")


class NoRecipe(Exception):
    """No formula of that name exists in the asked form (e.g. sin has only an approximate one)."""


@dataclass(frozen=True)
class Program:
    """A formula as parsed PTX: its argument registers and the register holding its result."""

    entry: Entry
    arguments: tuple[str, ...]
    result: str


@functools.cache
def program(name: str, approx: bool, arity: int, exponent: float | None = None) -> Program:
    """The formula `name` (mathlib's `power` for "pow", with its constant exponent if any)."""
    w = PtxWriter()
    arguments = tuple(w.reg("f32") for _ in range(arity))
    math = mathlib.PtxMath(w)
    if name == "pow":
        result = mathlib.power(math, *arguments, exponent)
    else:
        formula = mathlib.recipe(name, approx)
        if formula is None:
            raise NoRecipe(f"{name} has no {'approximate' if approx else 'accurate'} formula in ptxgen.mathlib")
        result = formula(math, *arguments)
    text = "\n".join([*HEADER, *w.declarations(), *w.lines, "\tret;", "}"])
    entry = next(iter(parse_ptx(text).entries.values()))
    return Program(entry, arguments, str(result))


def evaluate(formula: Program, arguments: list[z3.FPRef]) -> z3.FPRef:
    """The formula's float32 result for float32 `arguments` (z3 FP terms)."""
    registers: dict[str, z3.ExprRef] = {r: _bits(a) for r, a in zip(formula.arguments, arguments)}
    return to_float(run(formula, Z3Domain(), registers), "f32")


def run(formula: Program, domain: Any, registers: dict[str, Any]) -> Any:
    """The formula's result bits in either domain of the PTX semantics, from its argument
    registers' bits (`registers` is filled in as it runs)."""
    for ins in formula.entry.body:
        op = decode(ins.opcode)
        if op.base == "ret":
            break
        if ins.guard is not None or op.base not in SEMANTICS:
            raise NotModelled(f"recipe instruction {ins.opcode}")
        types = SEMANTICS[op.base].operands(op)
        sources = [_operand(registers, domain, o, t) for o, t in zip(ins.operands[1:], types[1:])]
        destination = ins.operands[0]
        assert isinstance(destination, Reg)
        registers[destination.name] = SEMANTICS[op.base].meaning(domain, op, sources)
    return registers[formula.result]


def approximations(formula: Program) -> frozenset[str]:
    """The approximate instructions the formula runs, named as `evaluate` names their functions."""
    return frozenset(f"{spelling}.f32" for ins in formula.entry.body for spelling, _ in APPROXIMATE.values()
                     if ins.opcode.startswith(spelling + "."))


@functools.cache
def instruction_form(opcode: str, arity: int, definition: Callable[..., z3.FPRef]) -> Callable[..., z3.FPRef] | None:
    """`definition` (a float32 function of the IR, such as its NaN-propagating maximum) as the one
    PTX instruction `opcode` computes, where z3 proves the two equal for every operand bit pattern
    (NaN payloads included): the same op then gives the same term in a kernel and in the IR, and
    the value queries need not prove them equal again inside larger terms. None where not proved."""
    operands = [z3.BitVec(f"operand{k}", 32) for k in range(arity)]
    claim = _instruction(opcode, operands) == definition(*[z3.fpBVToFP(o, z3.Float32()) for o in operands])
    solver = z3.Solver()
    solver.set("timeout", 10_000)
    solver.add(z3.Not(claim))
    if solver.check() != z3.unsat:
        return None
    return lambda *arguments: _instruction(opcode, [_bits(a) for a in arguments])


def _instruction(opcode: str, operands: list[z3.BitVecRef]) -> z3.FPRef:
    op = decode(opcode)
    return to_float(SEMANTICS[op.base].meaning(Z3Domain(), op, operands), "f32")


def _bits(value: z3.FPRef) -> z3.BitVecRef:
    """A float32 argument's bits: those it was decoded from, where it was (a kernel computes on the
    bits it loads, NaN payload and all), else its encoding with the canonical NaN."""
    if z3.is_app_of(value, z3.Z3_OP_FPA_TO_FP) and value.num_args() == 1 and z3.is_bv(value.arg(0)):
        return value.arg(0)
    return to_bits(value, "f32")


def _operand(registers: dict[str, Any], domain: Any, source: object, type_: str) -> Any:
    """An instruction's source in either domain: a register's value, or an immediate's."""
    if isinstance(source, Reg):
        return registers[source.name]
    if isinstance(source, Imm):
        return domain.constant(immediate_bits(source, type_), type_)
    raise NotModelled(f"recipe operand {source}")
