"""Golden PTX: the code generated for a few kernels is kept in tests/golden/, so that a refactoring
that changes it is seen. After an intended change, regenerate with PTXGEN_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os

import pytest
from conftest import PROBLEMS, REPO

from ir.frontend import capture, load_problem
from ptxgen.lower import default_schedule, lower
from ptxgen.targets import TARGETS

GOLDEN = REPO / "tests" / "golden"
CASES = {  # problem, size overrides
    "relu_f32": ("elementwise/relu_f32.py", {"batch_size": 64, "dim": 1000}),
    "affine_broadcast_bf16": ("elementwise/affine_broadcast_bf16.py", {"batch_size": 16, "dim": 64}),
    "gelu_erf_f32": ("elementwise/gelu_erf_f32.py", {"batch_size": 8, "dim": 33}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_ptx_matches_golden(name: str) -> None:
    problem, sizes = CASES[name]
    (region,) = capture(load_problem(PROBLEMS / problem, sizes=sizes)).regions
    target = TARGETS["sm_90a"]
    ptx = lower(region.kernel, default_schedule(region.kernel, target), target).ptx
    path = GOLDEN / f"{name}.sm_90a.ptx"
    if os.environ.get("PTXGEN_UPDATE_GOLDEN"):
        path.write_text(ptx)
    assert ptx == path.read_text(), f"generated PTX for {name} changed; see {path}"
