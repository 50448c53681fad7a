"""results.json (written on the GPU by `ptxgen bench` without --schedules: every kernel at the
default schedule its target's machine model gives, before any search) -> README.md, speedup.svg
and speed_of_light.svg, through ptxgen/bench_report.py; no number is typed by hand.

    python papers/bench_defaults/render.py [RESULTS_JSON] [OUT_DIR]

The measurement (on the GPU, about three minutes for the whole suite on an H100):

    ptxgen bench datasets/problems --out DIR --fresh
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from ptxgen import bench_report  # noqa: E402


def render(results: dict[str, Any]) -> str:
    return bench_report.render(results)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else HERE / "results.json"
    out = Path(argv[1]) if len(argv) > 1 else HERE
    bench_report.write_report(json.loads(source.read_text()), out)
    (out / "results.md").replace(out / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
