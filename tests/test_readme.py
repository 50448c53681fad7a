"""The README's worked example is real output, and its IR example parses."""

from __future__ import annotations

import re

from conftest import REPO

from ir import parse
from ir.frontend import capture, format_program, load_problem


def _blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks."""
    return re.findall(r"^```[a-z]*\n(.*?)^```$", text, flags=re.S | re.M)


def test_worked_example_is_what_capture_prints() -> None:
    readme = (REPO / "README.md").read_text()
    example = next(b for b in _blocks(readme) if b.startswith("$ ptxgen capture "))
    command, _, printed = example.partition("\n")
    problem = REPO / command.split()[-1]
    assert printed == format_program(capture(load_problem(problem)))


def test_ir_example_parses() -> None:
    readme = (REPO / "README.md").read_text()
    example = next(b for b in _blocks(readme) if b.startswith("kernel softmax"))
    assert parse(example).name == "softmax"
