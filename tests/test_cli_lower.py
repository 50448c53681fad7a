"""`ptxgen lower`: the manifest, IR and PTX files; what is not lowered is named, with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PROBLEMS

from ir import parse


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptxgen.cli", *args], capture_output=True, text=True, timeout=300)


def test_lower_writes_manifest_ir_and_ptx(tmp_path: Path) -> None:
    problem = PROBLEMS / "elementwise" / "affine_broadcast_bf16.py"
    result = run_cli("lower", str(problem), "--out", str(tmp_path), "--target", "sm_80", "--shrink", "64")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["target"] == "sm_80"
    (step,) = manifest["steps"]
    kernel = step["kernel"]
    assert kernel["lowered"] and kernel["program_inputs"] == ["x", "p_scale", "p_shift"]
    assert kernel["inputs"][0] == {"name": "%x", "dtype": "bf16", "shape": [64, 64]}
    assert kernel["params"] == ["%x", "%p_scale", "%p_shift", "%add"]
    assert kernel["launch"]["block"] == [256, 1, 1]
    assert parse((tmp_path / kernel["ir"]).read_text()).name == kernel["name"]
    assert (tmp_path / kernel["ptx"]).read_text().startswith(".version 7.1\n.target sm_80")


VARIANCE_TO_A_SCALAR = """import torch


class Model(torch.nn.Module):
    def forward(self, x):
        return ((x - x.mean()) ** 2).sum()


def get_inputs():
    return [torch.randn(64, 64)]
"""


def test_lower_names_what_it_cannot_lower(tmp_path: Path) -> None:
    problem = tmp_path / "variance.py"
    problem.write_text(VARIANCE_TO_A_SCALAR)
    result = run_cli("lower", str(problem), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "not lowered: variance_0: kernel variance_0:" in result.stderr
    assert "depends on another reduction to a scalar; that needs a grid-wide barrier" in result.stderr
    kernel = json.loads((tmp_path / "out" / "manifest.json").read_text())["steps"][0]["kernel"]
    assert not kernel["lowered"] and (tmp_path / "out" / kernel["ir"]).exists()


def test_lower_rejects_an_unknown_target(tmp_path: Path) -> None:
    problem = PROBLEMS / "elementwise" / "relu_f32.py"
    result = run_cli("lower", str(problem), "--out", str(tmp_path), "--target", "sm_70")
    assert result.returncode == 2
    assert "unknown target 'sm_70'; known targets: sm_80" in result.stderr
    assert "Traceback" not in result.stderr
