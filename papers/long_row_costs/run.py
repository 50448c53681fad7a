"""On the GPU: the three builds of papers/long_row_costs/builds.py side by side. Each problem's
modules are timed in turn with eager PyTorch, twice (papers/exp_formula/run.py's timing: median ms
of one call, L2 flushed), with the copy bandwidth measured in the same run; each is checked against
Model in float64 (only "default" computes the right values: the other two are edits for timing).
Writes results.json after every problem.

    python papers/long_row_costs/run.py --builds DIR --out DIR [--match PARTS]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("exp_formula_run", REPO / "papers" / "exp_formula" / "run.py")
side_by_side = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(side_by_side)  # type: ignore[union-attr]

from ptxgen.bench import environment, require_gpu  # noqa: E402
from ptxgen.emit import load_model_new  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer  # noqa: E402

BUILDS = ("default", "nosync", "nocluster")


def modules(folder: str, builds: Path, model: torch.nn.Module, init: list[Any]) -> dict[str, Any]:
    built = {}
    for build in BUILDS:
        source = (builds / build / folder / "model_new.py").read_text()
        with torch.device("cuda"):
            new = load_model_new(source, f"model_new_{build}").ModelNew(*init)
        new.reference.load_state_dict(model.state_dict())
        built[build] = new
    return built


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    parts = [m for m in args.match.split(",") if m]
    folders = sorted(p.name for p in (args.builds / "default").iterdir()
                     if not parts or any(m in p.name for m in parts))
    flush = flush_buffer("cuda")
    results: dict[str, Any] = {"environment": environment(require_gpu()),
                               "copy": copy_bandwidth("cuda", 20, flush, 2**30), "problems": {}}
    side_by_side.measure_each(folders, lambda folder, model, init: modules(folder, args.builds, model, init),
                              args.out, results, flush)
    return 0


if __name__ == "__main__":
    sys.exit(main())
