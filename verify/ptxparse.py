"""PTX text -> a module of kernels. The grammar (ptx.lark) is the spec of what is read; `ToModule`
turns its parse tree into the dataclasses below. Opcodes stay whole strings split at their dots:
deciding what an instruction means is the semantics tables' job, so an instruction they do not
model parses and is reported by name later instead of failing here."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args

GRAMMAR = Path(__file__).with_name("ptx.lark")


class PtxSyntaxError(ValueError):
    """PTX text outside the subset the grammar reads; says where and quotes the line."""


@dataclass(frozen=True)
class Reg:
    name: str


@dataclass(frozen=True)
class Imm:
    """An immediate: an integer, or a float given as its bits (`bits` set) or in decimal."""

    value: int | float
    bits: int | None = None  # for 0fXXXXXXXX (32 bits) and 0dXXXXXXXXXXXXXXXX (64 bits)
    width: int | None = None


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Vec:
    regs: tuple[str | None, ...]  # None for a "_" sink


@dataclass(frozen=True)
class Addr:
    base: Reg | Sym | int
    offset: int = 0


Operand = Reg | Imm | Sym | Vec | Addr


@dataclass(frozen=True)
class Guard:
    reg: str
    negated: bool


@dataclass(frozen=True)
class Instruction:
    opcode: str
    operands: tuple[Operand, ...]
    guard: Guard | None
    line: int

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.opcode.split("."))

    def __str__(self) -> str:
        return f"line {self.line}: {self.opcode}"


@dataclass(frozen=True)
class Var:
    """A declared variable (.global, .shared, .local, .param): `count` elements of `type`."""

    name: str
    type: str
    align: int | None = None
    count: int | None = None  # None: a scalar; 0: an unsized array
    init: tuple[int | float, ...] = ()

    @property
    def element_bytes(self) -> int:
        return type_bytes(self.type)

    @property
    def size(self) -> int:
        return self.element_bytes * (1 if self.count is None else self.count)


@dataclass
class Entry:
    name: str
    params: tuple[Var, ...]
    performance: dict[str, tuple[int, ...]]
    registers: dict[str, str]  # name -> type, for single names and for each of name<N>
    shared: tuple[Var, ...]
    local: tuple[Var, ...]
    body: tuple[Instruction, ...]
    labels: dict[str, int]  # label -> index in body of the instruction it precedes


@dataclass
class Module:
    version: str
    target: str
    address_size: int
    globals: tuple[Var, ...]
    entries: dict[str, Entry] = field(default_factory=dict)
    shared: tuple[Var, ...] = ()  # module-scope shared variables (.extern: dynamic shared memory)


TYPE_BYTES = {"b8": 1, "u8": 1, "s8": 1, "b16": 2, "u16": 2, "s16": 2, "f16": 2, "bf16": 2, "b32": 4,
              "u32": 4, "s32": 4, "f32": 4, "f16x2": 4, "bf16x2": 4, "b64": 8, "u64": 8, "s64": 8, "f64": 8,
              "b128": 16, "pred": 1}


def type_bytes(type_: str) -> int:
    return TYPE_BYTES[type_.lstrip(".")]


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _int(token: str) -> int:
    text = token.rstrip("U")
    return int(text, 16) if text.lstrip("-")[:2].lower() == "0x" else int(text)


def _float_bits(bits: int, width: int) -> float:
    packed = bits.to_bytes(width // 8, "big")
    return struct.unpack(">f" if width == 32 else ">d", packed)[0]


@v_args(inline=True)
class ToModule(Transformer[Token, Module]):
    """Parse tree -> Module. Statements are flattened; declarations inside nested blocks join
    the kernel's scope."""

    def start(self, *items: Any) -> Module:
        module = Module(version="", target="", address_size=64, globals=())
        globals_: list[Var] = []
        shared: list[Var] = []
        for kind, value in items:
            if kind == "global":
                globals_.append(value)
            elif kind == "shared":
                shared.append(value)
            elif kind == "entry":
                module.entries[value.name] = value
            else:
                setattr(module, kind, value)
        module.globals, module.shared = tuple(globals_), tuple(shared)
        return module

    def version(self, number: Token) -> tuple[str, str]:
        return "version", str(number)

    def target(self, *names: Token) -> tuple[str, str]:
        return "target", ",".join(str(n) for n in names)

    def address_size(self, bits: Token) -> tuple[str, int]:
        return "address_size", int(bits)

    def align(self, value: Token) -> tuple[str, int]:
        return "align", int(value)

    def array(self, count: Token | None) -> tuple[str, int]:
        return "count", 0 if count is None else int(count)

    def linkage(self, token: Token) -> str:
        return str(token)

    def initializer(self, *values: Any) -> tuple[str, tuple[int | float, ...]]:
        return "init", tuple(v.value for v in values if v is not None)

    def global_var(self, *parts: Any) -> tuple[str, Var]:
        return "global", _var(parts)

    def param(self, *parts: Any) -> Var:
        return _var(parts)

    def shared_decl(self, *parts: Any) -> tuple[str, Var]:
        return "shared", _var(parts)

    def local_decl(self, *parts: Any) -> tuple[str, Var]:
        return "local", _var(parts)

    def performance(self, name: Token, *values: Token | None) -> tuple[str, tuple[str, tuple[int, ...]]]:
        return "performance", (str(name), tuple(int(v) for v in values if v is not None))

    def reg_name(self, name: Token, count: Token | None) -> list[str]:
        return [str(name)] if count is None else [f"{name}{i}" for i in range(int(count))]

    def reg_names(self, *groups: list[str]) -> list[str]:
        return [name for group in groups for name in group]

    def reg_decl(self, type_: Token, names: list[str]) -> tuple[str, dict[str, str]]:
        return "registers", {name: str(type_)[1:] for name in names}

    def label(self, token: Token) -> tuple[str, str]:
        return "label", str(token)[:-1]

    def block(self, *statements: Any) -> tuple[str, list[Any]]:
        return "block", list(statements)

    def guard(self, negate: Token | None, reg: Token) -> Guard:
        return Guard(str(reg), negate is not None)

    def register(self, token: Token) -> Reg:
        return Reg(str(token))

    def symbol(self, token: Token) -> Sym:
        return Sym(str(token))

    def vector(self, *regs: Token) -> Vec:
        return Vec(tuple(None if r == "_" else str(r) for r in regs))

    def offset(self, token: Token) -> int:
        return int(str(token).replace(" ", "").replace("+", ""))

    def address(self, base: Token, offset: int | None) -> Addr:
        start: Reg | Sym | int = (Reg(str(base)) if base.type == "REG" else
                                  int(base) if base.type == "INT" else Sym(str(base)))
        return Addr(start, offset or 0)

    def f32_literal(self, token: Token) -> Imm:
        bits = int(str(token)[2:], 16)
        return Imm(_float_bits(bits, 32), bits, 32)

    def f64_literal(self, token: Token) -> Imm:
        bits = int(str(token)[2:], 16)
        return Imm(_float_bits(bits, 64), bits, 64)

    def hex_literal(self, token: Token) -> Imm:
        return Imm(_int(str(token)))

    def int_literal(self, token: Token) -> Imm:
        return Imm(_int(str(token)))

    def decimal_literal(self, token: Token) -> Imm:
        return Imm(float(str(token)))

    @v_args(meta=True, inline=False)
    def instruction(self, meta: Any, children: list[Any]) -> tuple[str, Instruction]:
        guard = children[0] if isinstance(children[0], Guard) else None
        rest = children[1:] if guard is not None or children[0] is None else children
        opcode, *operands = rest
        return "instruction", Instruction(str(opcode), tuple(o for o in operands if o is not None), guard, meta.line)

    def entry(self, *parts: Any) -> tuple[str, Entry]:
        name = next(str(p) for p in parts if isinstance(p, Token) and p.type == "NAME")
        params = tuple(p for p in parts if isinstance(p, Var))
        tagged = [p for p in parts if isinstance(p, tuple)]
        performance = dict(value for kind, value in tagged if kind == "performance")
        statements = [p for p in tagged if p[0] != "performance"]
        return "entry", _entry(name, params, performance, statements)


def _var(parts: tuple[Any, ...]) -> Var:
    type_ = next(str(p)[1:] for p in parts if isinstance(p, Token) and p.type == "TYPE")
    name = next(str(p) for p in parts if isinstance(p, Token) and p.type == "NAME")
    tagged = dict(p for p in parts if isinstance(p, tuple))
    return Var(name, type_, tagged.get("align"), tagged.get("count"), tagged.get("init", ()))


def _entry(name: str, params: tuple[Var, ...], performance: dict[str, tuple[int, ...]],
           statements: list[tuple[str, Any]]) -> Entry:
    entry = Entry(name, params, performance, {}, (), (), (), {})
    body: list[Instruction] = []
    shared: list[Var] = []
    local: list[Var] = []
    pending = list(reversed(statements))
    while pending:
        kind, value = pending.pop()
        if kind == "block":
            pending.extend(reversed(value))
        elif kind == "registers":
            entry.registers.update(value)
        elif kind == "label":
            entry.labels[value] = len(body)
        elif kind == "instruction":
            body.append(value)
        else:
            (shared if kind == "shared" else local).append(value)
    entry.body, entry.shared, entry.local = tuple(body), tuple(shared), tuple(local)
    return entry


def parse_ptx(text: str) -> Module:
    """Parse a PTX module; PtxSyntaxError says where the text leaves the subset."""
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as err:
        lines = text.splitlines()
        line = lines[err.line - 1].strip() if 0 < err.line <= len(lines) else ""
        expected = getattr(err, "expected", None) or getattr(err, "allowed", None) or set()
        hint = f" (expected one of: {', '.join(sorted(expected)[:8])})" if expected else ""
        raise PtxSyntaxError(f"line {err.line}, column {err.column}: cannot read PTX here{hint}\n"
                             f"    {line}") from None
    return ToModule().transform(tree)
