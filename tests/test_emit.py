"""model_new.py: a self-contained drop-in for Model that carries the PTX, the problem and the
launcher; it builds on the CPU, holds Model's parameters, and checks the shapes it was lowered for."""

from __future__ import annotations

import ast

import pytest
import torch
from conftest import PROBLEMS

from ir.frontend import capture, load_problem
from ptxgen.emit import EmitError, emit_model_new, load_model_new
from ptxgen.lower import lower_all
from ptxgen.targets import TARGETS

PATH = PROBLEMS / "fused" / "linear_gelu_f32.py"


def emitted(path=PATH, shrink: int = 48) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    problem = load_problem(path, shrink_to=shrink)
    program = capture(problem)
    kernels = lower_all([r.kernel for r in program.regions], TARGETS["sm_90a"])
    return emit_model_new(path, program, kernels, "sm_90a", problem.overrides), problem


def test_model_new_is_self_contained_and_builds_like_model() -> None:
    source, problem = emitted()
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"torch", "numpy", "cuda", "re", "typing", "__future__", "math"}, imported
    assert ".entry linear_gelu_f32_0(" in source
    module = load_model_new(source)
    torch.manual_seed(0)
    new = module.ModelNew(*module.get_init_inputs())
    reference = problem.model()  # type: ignore[attr-defined]
    assert {k.removeprefix("reference."): v.shape for k, v in new.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    assert [tuple(x.shape) for x in module.get_inputs()] == [(48, 48)]


def test_model_new_refuses_shapes_it_was_not_lowered_for() -> None:
    source, _ = emitted()
    module = load_model_new(source)
    new = module.ModelNew(*module.get_init_inputs())
    with pytest.raises(ValueError, match=r"lowered for x of shape \[48, 48\], got \[3, 3\]"):
        new(torch.randn(3, 3))


def test_regions_that_are_not_lowered_cannot_be_emitted() -> None:
    path = PROBLEMS / "reduction" / "sum_dim1_f32.py"
    program = capture(load_problem(path, shrink_to=8))
    with pytest.raises(EmitError, match="regions not lowered: sum_dim1_f32_0"):
        emit_model_new(path, program, {}, "sm_90a")
