"""results.json (written on an NVIDIA H200 by `ptxgen bench` without --schedules: every kernel at
the default schedule of the sm_90a machine model, the H100's, before any search) -> README.md,
speedup.svg and speed_of_light.svg, as papers/bench_defaults renders its H100 run; no number is
typed by hand.

    python papers/bench_defaults_h200/render.py [RESULTS_JSON] [OUT_DIR]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("render_bench_defaults", HERE.parent / "bench_defaults" / "render.py")
assert _spec is not None and _spec.loader is not None
_defaults = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_defaults)


def render(results: dict[str, Any]) -> str:
    return _defaults.render(results)


def main(argv: list[str]) -> int:
    return _defaults.main([argv[0] if argv else str(HERE / "results.json"), argv[1] if len(argv) > 1 else str(HERE)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
