"""On the GPU: the builds of papers/vocab_rows/builds.py side by side. Each problem's modules are
timed in turn with eager PyTorch, twice (papers/exp_formula/run.py's timing: median ms of one call,
L2 flushed), with the copy bandwidth measured in the same run, and each is checked against Model in
float64. Writes results.json after every problem.

    python papers/vocab_rows/run.py --builds DIR --out DIR [--match PARTS]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("exp_formula_run", REPO / "papers" / "exp_formula" / "run.py")
side_by_side = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(side_by_side)  # type: ignore[union-attr]
_builds = importlib.util.spec_from_file_location("vocab_rows_builds", HERE / "builds.py")
builds = importlib.util.module_from_spec(_builds)  # type: ignore[arg-type]
_builds.loader.exec_module(builds)  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    variants = json.loads((args.builds / "variants.json").read_text())["variants"]
    names = tuple(builds.folder_name(v) for v in variants)
    side_by_side.measure_builds(args.builds, names, args.out, args.match)
    return 0


if __name__ == "__main__":
    sys.exit(main())
