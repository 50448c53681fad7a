"""The gather rule: a gather of a (log-)softmax reads the input at the gathered positions and the
rows' statistics, so no region writes the whole (log-)softmax; the result is the same bit for bit
as without the rule (IR interpreter at native precision) and matches the model in float64; where
the rule does not apply (another reader, another axis, a narrower index), nothing changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from ir.frontend import Program, capture, format_program, load_problem, run_program
from ir.interp import Precision

TEMPLATE = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, t):
{body}


def get_inputs():
    return [(torch.randn(12, 40) * 4).to(torch.{dtype}), torch.randint(0, 40, (12,))]
"""

CROSS_ENTROPY = "return F.cross_entropy(x, t)"
GATHERED_SOFTMAX = "return torch.softmax(x, dim=1).gather(1, t.unsqueeze(1))"


def problem_path(tmp_path: Path, body: str, dtype: str = "float32") -> Path:
    path = tmp_path / "p.py"
    path.write_text(TEMPLATE.format(body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8), dtype=dtype))
    return path


def written_shapes(program: Program) -> list[tuple[int, ...]]:
    return [p.type.shape for r in program.regions for p in r.kernel.outputs]


def gathers(program: Program) -> list[str]:
    return [str(g.args[0]) for g in program.glue if g.op_name == "aten.gather.default"]


def assert_same_as_unrewritten(path: Path) -> None:
    problem = load_problem(path)
    inputs = problem.inputs(seed=5)
    rewritten, plain = capture(problem), capture(problem, rewrite=False)
    native = [run_program(program, inputs, Precision.NATIVE) for program in (rewritten, plain)]
    for got, want in zip(*native):
        assert torch.equal(torch.as_tensor(got), torch.as_tensor(want)), (got, want)
    want = problem.model().double()(*[t.double() if t.is_floating_point() else t for t in inputs])
    for got, w in zip(run_program(rewritten, inputs), want if isinstance(want, tuple) else (want,)):
        torch.testing.assert_close(torch.as_tensor(got).to(w.dtype), w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cross_entropy_reads_the_logits_once_and_writes_no_row(tmp_path: Path, dtype: str) -> None:
    path = problem_path(tmp_path, CROSS_ENTROPY, dtype)
    program, plain = capture(load_problem(path)), capture(load_problem(path), rewrite=False)
    assert (12, 40) in written_shapes(plain) and gathers(plain) == ["%_log_softmax"]
    assert (12, 40) not in written_shapes(program)
    assert gathers(program) == ["%x"]
    assert len(program.rewrites) == 1 and "# rewrite: " + program.rewrites[0] in format_program(program)
    assert not plain.rewrites
    readers = [r.kernel.name for r in program.regions if "x" in r.inputs]
    assert len(readers) == 1  # one kernel reads the logits: the rows' statistics and the loss
    assert_same_as_unrewritten(path)


def test_a_gathered_softmax_is_the_gathered_input_over_the_rows_statistics(tmp_path: Path) -> None:
    path = problem_path(tmp_path, GATHERED_SOFTMAX)
    program = capture(load_problem(path))
    assert (12, 40) not in written_shapes(program) and gathers(program) == ["%x"]
    assert_same_as_unrewritten(path)


@pytest.mark.parametrize("body", [
    "s = torch.log_softmax(x, dim=1)\nreturn s.gather(1, t.unsqueeze(1)), s",  # the whole row is an output too
    "return torch.log_softmax(x, dim=0).gather(1, t.unsqueeze(1))",  # statistics along another axis
    "return torch.log_softmax(x, dim=1).gather(1, t[:6].unsqueeze(1))",  # an index narrower than the rows
], ids=["another reader", "another axis", "narrower index"])
def test_the_rule_leaves_other_gathers_alone(tmp_path: Path, body: str) -> None:
    path = problem_path(tmp_path, body)
    program = capture(load_problem(path))
    assert gathers(program) == ["%_log_softmax"] and not program.rewrites
    assert_same_as_unrewritten(path)
