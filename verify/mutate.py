"""Single-instruction mutations of PTX text, for measuring how many wrong kernels the checks
catch (mutation testing). Each operator is a table entry: which lines it applies to and how it
rewrites one; a mutant is the kernel with exactly one line rewritten."""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

SWAPS = {  # opcode words swapped with a sibling that means something else
    "add": "sub", "sub": "add", "max": "min", "min": "max", "lt": "le", "le": "lt", "gt": "ge", "ge": "gt",
    "eq": "ne", "ne": "eq", "and": "or", "or": "and", "shl": "shr", "shr": "shl", "mul": "add", "ex2": "lg2",
    "rn": "rz", "lo": "hi", "bfly": "down",
}
INSTRUCTION = re.compile(r"^(\s*)(@!?%\w+\s+)?([a-z][\w.:]*)(.*)$")
INTEGER = re.compile(r"(?<![\w.%$+])(-?\d+)(?![\w.])")
FLOAT = re.compile(r"0f([0-9A-Fa-f]{8})")


@dataclass(frozen=True)
class Mutant:
    operator: str
    line: int  # 1-based line of the PTX text that was rewritten
    before: str
    after: str
    ptx: str


def _instruction(line: str) -> re.Match[str] | None:
    found = INSTRUCTION.match(line)
    return found if found and not line.strip().startswith(("//", ".")) and not line.strip().endswith(":") else None


def _swap_opcode(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found:
        return None
    words = found.group(3).split(".")
    choices = [i for i, w in enumerate(words) if w in SWAPS and not (i == 0 and w in ("and", "or") and "pred" in words)]
    if not choices:
        return None
    index = rng.choice(choices)
    words[index] = SWAPS[words[index]]
    return f"{found.group(1)}{found.group(2) or ''}{'.'.join(words)}{found.group(4)}"


def _nudge_integer(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found or found.group(3).startswith(("ld.param", "bar", "barrier", "shfl")):
        return None
    operands = found.group(4)
    numbers = list(INTEGER.finditer(operands))
    if not numbers:
        return None
    number = rng.choice(numbers)
    value = int(number.group(1)) + rng.choice((-1, 1))
    return f"{found.group(1)}{found.group(2) or ''}{found.group(3)}{operands[:number.start(1)]}{value}" \
           f"{operands[number.end(1):]}"


def _scale_float(line: str, rng: random.Random) -> str | None:
    found = FLOAT.search(line) if _instruction(line) else None
    if not found:
        return None
    value = struct.unpack(">f", bytes.fromhex(found.group(1)))[0]
    scaled = struct.pack(">f", value * 1.5 if value not in (0.0,) and value == value else 1.0).hex().upper()
    return line[:found.start(1)] + scaled + line[found.end(1):]


def _drop_instruction(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found or found.group(3).split(".")[0] in ("ret", "exit", "bra", "ld"):
        return None
    return f"{found.group(1)}// dropped: {line.strip()}"


def _drop_guard(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found or not found.group(2) or found.group(3).startswith(("bra", "ret")):
        return None
    return f"{found.group(1)}{found.group(3)}{found.group(4)}"


def _negate_guard(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found or not found.group(2):
        return None
    guard = found.group(2)
    flipped = guard.replace("@!", "@") if guard.startswith("@!") else guard.replace("@", "@!", 1)
    return f"{found.group(1)}{flipped}{found.group(3)}{found.group(4)}"


def _swap_sources(line: str, rng: random.Random) -> str | None:
    found = _instruction(line)
    if not found or found.group(3).split(".")[0] not in ("sub", "div", "setp", "selp", "shl", "shr", "rem", "copysign"):
        return None
    parts = [p.strip() for p in found.group(4).rstrip(";").split(",")]
    if len(parts) < 3 or parts[1] == parts[2]:
        return None
    parts[1], parts[2] = parts[2], parts[1]
    return f"{found.group(1)}{found.group(2) or ''}{found.group(3)} {', '.join(parts)};"


OPERATORS: dict[str, Callable[[str, random.Random], str | None]] = {
    "swap_opcode": _swap_opcode,
    "nudge_integer": _nudge_integer,
    "scale_float_constant": _scale_float,
    "drop_instruction": _drop_instruction,
    "drop_guard": _drop_guard,
    "negate_guard": _negate_guard,
    "swap_sources": _swap_sources,
}


def mutants(ptx: str, rng: random.Random, count: int) -> Iterator[Mutant]:
    """Up to `count` distinct mutants, each one operator applied to one line."""
    lines = ptx.splitlines()
    seen: set[tuple[int, str]] = set()
    for _ in range(count * 20):
        if len(seen) >= count:
            return
        operator = rng.choice(sorted(OPERATORS))
        index = rng.randrange(len(lines))
        rewritten = OPERATORS[operator](lines[index], rng)
        if rewritten is None or rewritten == lines[index] or (index, rewritten) in seen:
            continue
        seen.add((index, rewritten))
        changed = lines[:index] + [rewritten] + lines[index + 1:]
        yield Mutant(operator, index + 1, lines[index].strip(), rewritten.strip(), "\n".join(changed) + "\n")
