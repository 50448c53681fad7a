"""Bad problems get one clear line (from the library and from the command line), never a
traceback; what the IR does not cover becomes glue with a note."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ir.frontend import ProblemError, capture, load_problem

GOOD = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0


n = 64


def get_inputs():
    return [torch.randn(4, n)]


def get_init_inputs():
    return []
"""


def write(tmp_path: Path, source: str, name: str = "problem.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


BAD_PROBLEMS = [
    (GOOD.replace("class Model", "class NotModel"), "missing: Model"),
    (GOOD.replace("def get_inputs", "def get_inputz"), "missing: get_inputs"),
    (GOOD.replace("return torch.relu(x) * 2.0", "return x @ torch.ones(3, 3)"),
     "Model.forward failed on get_inputs(): RuntimeError"),
    (GOOD.replace("return [torch.randn(4, n)]", "return [torch.randn(4, n) / undefined_name]"),
     "get_inputs() failed: NameError: name 'undefined_name' is not defined (line"),
    (GOOD.replace("n = 64", "n = = 64"), "problem.py:11: syntax error: invalid syntax"),
    (GOOD + "\nraise ValueError('broken at import')\n", "importing failed: ValueError: broken at import"),
    (GOOD.replace("def forward(self, x):\n        return",
                  "def __init__(self):\n        super().__init__()\n        raise RuntimeError('bad init')\n\n"
                  "    def forward(self, x):\n        return"),
     "Model(*get_init_inputs()) failed: RuntimeError: bad init"),
]


@pytest.mark.parametrize("source,message", BAD_PROBLEMS)
def test_bad_problems_raise_problem_error(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ProblemError) as caught:
        capture(load_problem(write(tmp_path, source)))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_and_unknown_size(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="cannot read problem file"):
        load_problem(tmp_path / "absent.py")
    with pytest.raises(ProblemError, match="no size constant named batch; its constants are n"):
        load_problem(write(tmp_path, GOOD), sizes={"batch": 3})


def test_sizes_override_and_shrink(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_problem(path, sizes={"n": 5}).inputs()[0].shape == (4, 5)
    assert load_problem(path, shrink_to=8).inputs()[0].shape == (4, 8)
    assert load_problem(path).inputs()[0].shape == (4, 64)


def test_unsupported_op_becomes_glue_with_a_note(tmp_path: Path) -> None:
    source = GOOD.replace("return torch.relu(x) * 2.0",
                          "y = torch.cumsum(x, dim=1)\n        return torch.relu(y) * 2.0")
    program = capture(load_problem(write(tmp_path, source)))
    (glue,) = program.glue
    assert glue.op_name == "aten.cumsum.default"
    assert glue.note == "no IR rule for aten.cumsum.default"
    (region,) = program.regions
    assert region.inputs == (glue.name,)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptxgen.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_reports_a_bad_problem_in_one_line(tmp_path: Path) -> None:
    result = run_cli("capture", str(write(tmp_path, BAD_PROBLEMS[0][0])))
    assert result.returncode == 2
    assert result.stderr.startswith("ptxgen capture: error: problem.py: a KernelBench problem defines")
    assert "Traceback" not in result.stderr


def test_cli_reports_malformed_ir_with_location(tmp_path: Path) -> None:
    bad = write(tmp_path, "kernel k(%x: f32[4]) -> (%y: f32[4]) {\n  %y = exp(%x, )\n  return %y\n}\n", "bad.ir")
    result = run_cli("ir", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2:16: unexpected ')'" in result.stderr
    assert "Traceback" not in result.stderr
    typed = write(tmp_path, "kernel k(%x: i32[4]) -> (%y: f32[4]) {\n  %y = exp(%x)\n  return %y\n}\n", "t.ir")
    result = run_cli("ir", str(typed))
    assert result.returncode == 2 and "2:3: exp: expected a floating dtype" in result.stderr


def test_cli_capture_prints_parseable_program(tmp_path: Path) -> None:
    from ir import parse_module

    result = run_cli("capture", str(write(tmp_path, GOOD)), "--size", "n=16")
    assert result.returncode == 0, result.stderr
    assert "# program problem: 1 region(s), 0 glue op(s)" in result.stdout
    (kernel,) = parse_module(result.stdout)
    assert kernel.inputs[0].type.shape == (4, 16)
    bad_size = run_cli("capture", str(write(tmp_path, GOOD)), "--size", "n")
    assert bad_size.returncode == 2 and "NAME=INTEGER" in bad_size.stderr


def test_a_rule_that_breaks_leaves_the_op_to_pytorch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ir.frontend import aten

    def broken(call: aten.Call) -> str:
        raise KeyError("surprise")

    monkeypatch.setitem(aten.RULES, "aten.relu.default", broken)
    program = capture(load_problem(write(tmp_path, GOOD)))
    (glue,) = program.glue
    assert glue.note == "the IR rule failed on aten.relu.default: KeyError: 'surprise'"
    assert len(program.regions) == 1
