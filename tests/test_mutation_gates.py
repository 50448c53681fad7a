"""The mutation campaign's gates (`papers/mutation/run.py`): a mutant the emulator's tolerance lets
through is caught by the Z3 proof of the output values, bit for bit; an edit that leaves the kernel
right (every obligation proved) is classed as proved equivalent, not as a wrong kernel missed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from ir.frontend import capture, load_problem
from ptxgen.lower import default_schedule, lower
from verify.emulate import Launch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", REPO / "papers" / "mutation" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lowered(problem: str, target: object) -> tuple[object, list[str], Launch, bool | None]:
    kernel = capture(load_problem(REPO / "datasets" / "problems" / f"{problem}.py", shrink_to=16),
                     shapes_only=True).regions[0].kernel
    result = lower(kernel, default_schedule(kernel, target), target)
    return kernel, result.ptx.splitlines(), Launch.of(result.launch), getattr(result.schedule, "approx_math", None)


def edited(lines: list[str], index: int, old: str, new: str) -> str:
    assert old in lines[index]
    return "\n".join(lines[:index] + [lines[index].replace(old, new, 1)] + lines[index + 1:])


def test_a_one_ulp_change_the_emulator_tolerates_is_refuted_by_the_value_proof() -> None:
    run = campaign()
    kernel, lines, launch, approx = lowered("elementwise/sq_diff_f32", run.TARGET)
    index = next(i for i, line in enumerate(lines) if "sub.rn.f32" in line)
    gate, reason = run.first_rejection(kernel, edited(lines, index, "sub.rn", "sub.rz"), launch, approx)
    assert gate == "z3 output values"
    assert "the IR gives" in reason


def test_rounding_an_exact_value_toward_zero_is_proved_equivalent() -> None:
    """cvt.rz of a float that came from bf16 is exact: the same bits as cvt.rn."""
    run = campaign()
    kernel, lines, launch, approx = lowered("elementwise/hardswish_bf16", run.TARGET)
    widened = {found.group(1) for line in lines if (found := re.search(r"cvt\.f32\.bf16 (%f\d+)", line))}
    index = next(i for i, line in enumerate(lines)
                 if "cvt.rn.bf16.f32" in line and line.split(",")[-1].strip(" ;") in widened)
    assert run.first_rejection(kernel, edited(lines, index, "cvt.rn", "cvt.rz"), launch, approx) == \
        ("proved equivalent", "")


def test_the_unmutated_kernel_is_proved_equivalent_and_a_dropped_store_is_caught() -> None:
    run = campaign()
    kernel, lines, launch, approx = lowered("elementwise/relu_f32", run.TARGET)
    assert run.first_rejection(kernel, "\n".join(lines), launch, approx) == ("proved equivalent", "")
    index = next(i for i, line in enumerate(lines) if "st.global" in line)
    gate, _ = run.first_rejection(kernel, edited(lines, index, "st.global", "// st.global"), launch, approx)
    assert gate == "z3 memory obligations"
