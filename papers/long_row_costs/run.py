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

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("exp_formula_run", REPO / "papers" / "exp_formula" / "run.py")
side_by_side = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(side_by_side)  # type: ignore[union-attr]

BUILDS = ("default", "nosync", "nocluster")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    side_by_side.measure_builds(args.builds, BUILDS, args.out, args.match)
    return 0


if __name__ == "__main__":
    sys.exit(main())
