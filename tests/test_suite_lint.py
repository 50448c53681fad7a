"""The problem suite itself: one dtype per problem, non-trivial parameters, a deterministic
forward that leaves its inputs alone, finite outputs, and default sizes that fit one GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import PROBLEMS, problem_files

from ir.frontend import load_problem
from ir.frontend.program import flatten_tensors

PATHS = problem_files()
MAX_IO_BYTES = 8 * 10**9
SUITE_DTYPES = {torch.float32, torch.bfloat16}



def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(PROBLEMS).with_suffix("")) for p in paths]


@pytest.mark.parametrize("path", PATHS, ids=_ids(PATHS))
def test_problem_is_well_formed(path: Path) -> None:
    problem = load_problem(path, shrink_to=32)
    model, inputs = problem.model(), problem.inputs()
    floats = {t.dtype for t in flatten_tensors(inputs) if t.is_floating_point()}
    floats |= {p.dtype for p in model.parameters()}
    assert len(floats) == 1 and floats <= SUITE_DTYPES, f"one of fp32/bf16 per problem, got {floats}"
    for name, p in model.named_parameters():
        assert p.numel() <= 1 or p.float().std() > 0, f"{name}: all-equal values hide bugs"
    before = [t.clone() for t in flatten_tensors(inputs)]
    with torch.no_grad():
        first, second = model(*inputs), model(*inputs)
    assert all(torch.equal(a, b) for a, b in zip(before, flatten_tensors(inputs))), "forward mutated an input"
    assert all(torch.equal(a, b) for a, b in zip(flatten_tensors(first), flatten_tensors(second))), "nondeterministic"
    for out in flatten_tensors(first):
        assert not out.is_floating_point() or (out.dtype in floats and torch.isfinite(out).all())


@pytest.mark.parametrize("path", PATHS, ids=_ids(PATHS))
def test_default_sizes_fit_one_gpu(path: Path) -> None:
    """Built on the meta device: shapes only, nothing allocated."""
    problem = load_problem(path)
    with torch.device("meta"):
        model, inputs = problem.model(), problem.inputs()
        with torch.no_grad():
            outputs = model(*inputs)
    total = sum(t.numel() * t.element_size() for t in flatten_tensors(inputs) + flatten_tensors(outputs))
    assert total <= MAX_IO_BYTES, f"inputs + outputs take {total / 1e9:.1f} GB"


def test_rowsweep_files_match_their_generator() -> None:
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run([sys.executable, str(REPO / "datasets" / "make_rowsweep.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
