"""Errors that users see: each says where (line and column) and what was expected."""

from __future__ import annotations

from ir.kernel import Loc


class IRError(Exception):
    """Base of every error about IR text or IR kernels."""


class IRSyntaxError(IRError):
    """IR text that does not match the grammar."""

    def __init__(self, message: str, loc: Loc, context: str = "") -> None:
        self.loc = loc
        self.context = context
        super().__init__(f"{loc}: {message}" + (f"\n{context}" if context else ""))


class IRTypeError(IRError):
    """A well-formed kernel whose operands, attributes or annotations do not fit its ops."""

    def __init__(self, message: str, loc: Loc | None) -> None:
        self.loc = loc
        super().__init__(f"{loc}: {message}" if loc else message)
