"""On the CPU: the builds that papers/vocab_rows times. Each problem's modules with its row
kernels lowered under one variant of their default schedule (the other kernels at their defaults):
the knobs a variant names replace the default's. Every build computes the right values (each is a
valid schedule, lowered as any other; a variant that is not valid for a problem is left out and
listed); which walks a long row fastest is what the GPU run shows. "default" is the schedule
`ptxgen lower` picks at the commit the builds were made from (in variants.json).

    python papers/vocab_rows/builds.py --out DIR

writes DIR/VARIANT/FOLDER/model_new.py (FOLDER: the problem's path below datasets/problems with
'/' as '__') and DIR/variants.json (each variant's knobs, and each build's row launches and ptxas
registers, or why the variant is not valid there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend import capture, load_problem  # noqa: E402
from ptxgen.emit import emit_model_new  # noqa: E402
from ptxgen.lower import default_schedule, lower_all  # noqa: E402
from ptxgen.ptxas import assemble  # noqa: E402
from ptxgen.schedule import RowSchedule, ScheduleError  # noqa: E402
from ptxgen.targets import TARGETS  # noqa: E402

TARGET = TARGETS["sm_90a"]
PROBLEMS = ("loss/cross_entropy_vocab_bf16", "rowsweep/logsumexp_bf16_65536", "rowsweep/logsumexp_bf16_262144")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "cached cluster 4": {"cache_row": True, "cluster": 4, "unroll": 1},
    "cached cluster 8": {"cache_row": True, "cluster": 8, "unroll": 1},
    "streamed cluster 4": {"cache_row": False, "cluster": 4, "unroll": 4},
    "streamed cluster 2": {"cache_row": False, "cluster": 2, "unroll": 4},
    "streamed cluster 1": {"cache_row": False, "cluster": 1, "unroll": 4},
    "streamed cluster 1, unroll 2": {"cache_row": False, "cluster": 1, "unroll": 2},
}


def folder_name(variant: str) -> str:
    return variant.replace(" ", "_").replace(",", "")


def chooser(knobs: dict[str, Any]):  # type: ignore[no-untyped-def]
    def choose(kernel: Any, target: Any) -> Any:
        schedule = default_schedule(kernel, target)
        return dataclasses.replace(schedule, **knobs) if isinstance(schedule, RowSchedule) else schedule
    return choose


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    listed: dict[str, Any] = {"commit": commit.stdout.strip(), "variants": VARIANTS, "builds": {}}
    for problem in PROBLEMS:
        path = REPO / "datasets" / "problems" / f"{problem}.py"
        loaded = load_problem(path)
        program = capture(loaded)
        folder = problem.replace("/", "__")
        for variant, knobs in VARIANTS.items():
            try:
                kernels = lower_all([r.kernel for r in program.regions], TARGET, chooser(knobs))
            except ScheduleError as err:
                listed["builds"].setdefault(folder, {})[variant] = {"not valid": str(err)}
                continue
            rows = {name: {"launch": k.launch, "registers": assemble(k.ptx, TARGET.name)[1].registers}
                    for name, k in kernels.items() if isinstance(k.schedule, RowSchedule)}
            out = args.out / folder_name(variant) / folder
            out.mkdir(parents=True, exist_ok=True)
            (out / "model_new.py").write_text(emit_model_new(path, program, kernels, TARGET.name, loaded.overrides))
            listed["builds"].setdefault(folder, {})[variant] = rows
            print(f"{folder} {variant}: {rows}", flush=True)
    (args.out / "variants.json").write_text(json.dumps(listed, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
