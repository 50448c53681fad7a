"""What following a kernel's reduction trees concludes short of a proof: `Open` (not modelled: the
value obligation is inconclusive, saying why) and `Wrong` (refuted). Shared by the value trees
(`verify.reductions`) and the argmax pairs (`verify.arg_reductions`)."""

from __future__ import annotations

import z3

from ir.kernel import Instr

# What an open value obligation says where a kernel combines partial results of a row (online
# softmax's rescaled partial sums): equal to the IR's over the reals, not bit for bit.
ONLINE_PARTS = "part of a row, as a kernel that combines partial results (online softmax) uses; not modelled"


class Open(Exception):
    """The reduction is outside what is modelled: the value obligation is inconclusive."""


class OtherForm(Open):
    """The kernel's tree reads other buffers than the IR reduction's elements: another reduction's."""


class Partial(Open):
    """A tree that holds some of a result's elements, each once, and misses the others: wrong where
    it stands for the whole result, meant where a kernel combines partial results (online softmax)."""

    def __init__(self, message: str, instr: Instr, result: int, thread: int) -> None:
        super().__init__(message)
        self.instr, self.result, self.thread = instr, result, thread
        self.node: z3.ExprRef | None = None  # the tree, once known


class Wrong(Exception):
    """The kernel's tree accumulates other elements than the IR's: the value obligation is refuted."""
