"""Fusion regions: what one kernel can do stays together; what it cannot is split, in an order
that runs; parameters become kernel inputs; views alone are not kernels."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch

from ir.frontend import Program, capture, load_problem, run_program
from ir.ops import Op

TEMPLATE = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(16) * 0.1 + 1.0)

    def forward(self, x):
{body}


def get_inputs():
    return [torch.randn(8, 16)]
"""


def captured(tmp_path: Path, body: str) -> tuple[Program, Path]:
    path = tmp_path / "p.py"
    path.write_text(TEMPLATE.format(body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8)))
    return capture(load_problem(path)), path


def assert_runs_like_model(program: Program, path: Path) -> None:
    problem = load_problem(path)
    model = problem.model().double()
    x = problem.inputs(seed=3)
    want = model(*[t.double() for t in x])
    got = run_program(program, x)
    wants = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, wants):
        torch.testing.assert_close(g.to(w.dtype), w, rtol=1e-9, atol=1e-12)


def ops(program: Program, index: int = 0) -> list[Op]:
    return [i.op for i in program.regions[index].kernel.body]


def test_softmax_is_one_region(tmp_path: Path) -> None:
    program, path = captured(tmp_path, "return torch.softmax(x, dim=-1)")
    assert len(program.regions) == 1 and not program.glue
    assert ops(program) == [Op.AMAX, Op.SUB, Op.EXP, Op.SUM, Op.DIV]
    assert_runs_like_model(program, path)


def test_norm_with_parameter_is_one_region_and_the_parameter_an_input(tmp_path: Path) -> None:
    program, path = captured(tmp_path, """
        rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return x * rms * self.weight
    """)
    (region,) = program.regions
    assert region.inputs == ("x", "p_weight")
    assert [p.type.shape for p in region.kernel.inputs] == [(8, 16), (16,)]
    assert_runs_like_model(program, path)


def test_reductions_over_different_axes_are_split(tmp_path: Path) -> None:
    program, path = captured(tmp_path, "return torch.exp(x).sum(dim=1).sum(dim=0)")
    assert len(program.regions) == 2
    assert ops(program, 0) == [Op.EXP, Op.SUM]
    assert ops(program, 1) == [Op.SUM]
    assert program.regions[1].inputs == program.regions[0].outputs
    assert_runs_like_model(program, path)


def test_no_cycle_through_glue(tmp_path: Path) -> None:
    """y feeds both cumsum (glue) and the add: the add cannot join y's region."""
    program, path = captured(tmp_path, """
        y = torch.relu(x)
        z = torch.cumsum(y, dim=1)
        return y + z
    """)
    kinds = ["region" if s in program.regions else "glue" for s in program.steps]
    assert kinds == ["region", "glue", "region"]
    assert_runs_like_model(program, path)


def test_values_and_indices_from_one_region(tmp_path: Path) -> None:
    program, path = captured(tmp_path, """
        values, indices = torch.max(x * 2.0, dim=1)
        return values, indices
    """)
    (region,) = program.regions
    assert {i.op for i in region.kernel.body} >= {Op.AMAX, Op.ARGMAX}
    assert len(region.outputs) == 2
    assert_runs_like_model(program, path)


def test_constants_are_inlined_into_the_region(tmp_path: Path) -> None:
    program, path = captured(tmp_path, "return x + torch.full((8, 16), 3.0)")
    (region,) = program.regions
    assert region.inputs == ("x",)
    assert Op.CONST in {i.op for i in region.kernel.body}
    assert_runs_like_model(program, path)


def test_views_alone_stay_in_pytorch(tmp_path: Path) -> None:
    program, path = captured(tmp_path, "return x.unsqueeze(0)")
    assert not program.regions
    (glue,) = program.glue
    assert glue.note == "views only (no arithmetic): left to PyTorch"
    assert_runs_like_model(program, path)


def test_a_regrouping_reshape_splits_regions(tmp_path: Path) -> None:
    program, path = captured(tmp_path, "return torch.exp(x).reshape(4, 32).softmax(dim=1)")
    assert [g.note for g in program.glue] == ["a reshape that regroups dimensions is left to PyTorch (a view)"]
    assert len(program.regions) == 2
    assert_runs_like_model(program, path)


def test_bf16_softmax_computes_in_float32(tmp_path: Path) -> None:
    path = tmp_path / "p.py"
    path.write_text(TEMPLATE.format(body="        return torch.softmax(x, dim=-1)")
                    .replace("torch.randn(8, 16)]", "torch.randn(8, 16, dtype=torch.bfloat16)]"))
    (region,) = capture(load_problem(path)).regions
    body = region.kernel.body
    assert body[0].op == Op.CAST and str(body[0].type) == "f32[8, 16]"
    assert body[-1].op == Op.CAST and str(body[-1].type) == "bf16[8, 16]"
    assert all(str(i.type).startswith("f32") for i in body[1:-1])
