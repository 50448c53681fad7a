"""Writing PTX text: virtual registers by kind, labels, and instructions, one per line."""

from __future__ import annotations

import struct
from collections import Counter

# Register kinds: PTX declaration type and name prefix.
REGISTER_KINDS = {
    "f32": (".f32", "%f"),
    "b16": (".b16", "%h"),
    "b32": (".b32", "%r"),
    "b64": (".b64", "%rd"),
    "pred": (".pred", "%p"),
}


def f32_literal(value: float) -> str:
    """A float as PTX's exact hexadecimal single-precision literal (0fXXXXXXXX)."""
    return "0f" + struct.pack(">f", value).hex().upper()


class PtxWriter:
    """Accumulates the body of one kernel; declares exactly the registers it used."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()
        self._labels = 0

    def reg(self, kind: str) -> str:
        prefix = REGISTER_KINDS[kind][1]
        name = f"{prefix}{self.counts[kind]}"
        self.counts[kind] += 1
        return name

    def emit(self, instruction: str, guard: str | None = None) -> None:
        self.lines.append(f"\t{'@' + guard + ' ' if guard else ''}{instruction};")

    def comment(self, text: str) -> None:
        self.lines.append(f"\t// {text}")

    def label(self, hint: str) -> str:
        self._labels += 1
        return f"$L_{hint}_{self._labels}"

    def place(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def declarations(self) -> list[str]:
        return [f"\t.reg {REGISTER_KINDS[k][0]} {REGISTER_KINDS[k][1]}<{n}>;"
                for k, n in sorted(self.counts.items())]

    # Small helpers used everywhere ---------------------------------------------------------

    def op(self, kind: str, template: str, *operands: str) -> str:
        """A fresh register of `kind` = template formatted with it and `operands`."""
        dest = self.reg(kind)
        self.emit(template.format(dest, *operands))
        return dest

    def const_f32(self, value: float) -> str:
        return self.op("f32", "mov.f32 {}, {}", f32_literal(value))

    def fma(self, a: str, b: str, c: str) -> str:
        return self.op("f32", "fma.rn.f32 {}, {}, {}, {}", a, b, c)

    def mul(self, a: str, b: str) -> str:
        return self.op("f32", "mul.rn.f32 {}, {}, {}", a, b)

    def add(self, a: str, b: str) -> str:
        return self.op("f32", "add.rn.f32 {}, {}, {}", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("f32", "sub.rn.f32 {}, {}, {}", a, b)

    def select(self, pred: str, if_true: str, if_false: str) -> str:
        return self.op("f32", "selp.f32 {}, {}, {}, {}", if_true, if_false, pred)

    def setp(self, comparison: str, a: str, b: str) -> str:
        return self.op("pred", f"setp.{comparison}.f32 {{}}, {{}}, {{}}", a, b)
