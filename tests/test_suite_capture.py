"""Every suite problem captures; its regions (on the IR interpreter) composed with its glue (on
PyTorch) reproduce Model.forward in float64 to 1e-6 relative, at reduced sizes; every region
round-trips through text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import PROBLEMS, problem_files

from ir import format_kernel, parse
from ir.frontend import capture, load_problem, run_program
from ir.frontend.capture import RULE_FAILED

SHRINK_TO = 32  # every integer size constant above this is set to it
RTOL = 1e-6
SEEDS = (1, 2)
PATHS = problem_files()


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(PROBLEMS).with_suffix("")) for p in paths]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flatten(item)]
    return [value]


def _as_float64(value: Any) -> Any:
    return value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def assert_matches(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    if not want.is_floating_point():
        assert torch.equal(got.to(want.dtype), want)
        return
    scale = want.abs().max().item() if want.numel() else 0.0
    torch.testing.assert_close(got.double(), want, rtol=RTOL, atol=RTOL * scale + 1e-300)


def test_suite_is_large_enough() -> None:
    counts = {folder: len(list((PROBLEMS / folder).glob("*.py")))
              for folder in ("elementwise", "reduction", "loss", "fused", "rowsweep")}
    assert counts["elementwise"] >= 12
    assert counts["reduction"] >= 8
    assert counts["loss"] >= 4
    assert counts["fused"] >= 6
    assert counts["rowsweep"] == 40
    assert sum(counts.values()) - counts["rowsweep"] >= 30


@pytest.mark.parametrize("path", PATHS, ids=_ids(PATHS))
def test_problem_matches_forward_in_float64(path: Path) -> None:
    problem = load_problem(path, shrink_to=SHRINK_TO)
    program = capture(problem)
    assert program.regions, "every suite problem has at least one fusion region"
    for region in program.regions:
        assert parse(format_kernel(region.kernel)) == region.kernel
    for glue in program.glue:
        assert not glue.note.startswith(("no IR rule", RULE_FAILED)), f"{glue.op_name}: {glue.note}"
    model = problem.model().double()
    for seed in SEEDS:
        inputs = problem.inputs(seed)
        with torch.no_grad():
            want = _flatten(model(*[_as_float64(x) for x in inputs]))
        got = _flatten(run_program(program, inputs))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_matches(g, w)
