"""On the CPU: every suite kernel, lowered at its default schedule for sm_90a at the problem's own
shapes, put through `verify.prove` (memory obligations and output values on a symbolic tile, Z3),
one kernel at a time, each in a fresh process, with each obligation's verdict and solver time.
Writes results.json after every kernel.

    python papers/proofs/run.py [--out DIR] [--match PARTS]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import z3

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agents.records import cpu_name  # noqa: E402
from ir.frontend import capture, load_problem  # noqa: E402
from ptxgen.lower import default_schedule, lower  # noqa: E402
from ptxgen.targets import TARGETS  # noqa: E402
from verify.emulate import Launch  # noqa: E402
from verify.prove import prove_kernel, verdict  # noqa: E402

TARGET = TARGETS["sm_90a"]


def proof_of(kernel: Any) -> dict[str, Any]:
    lowered = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    started = time.perf_counter()
    approx = getattr(lowered.schedule, "approx_math", None)
    keep_f32 = getattr(lowered.schedule, "fp32_intermediates", False)
    obligations = prove_kernel(lowered.ptx, Launch.of(lowered.launch), kernel, approx, keep_f32)
    return {"kernel": kernel.name, "schedule": lowered.schedule.to_dict(), "verdict": verdict(obligations),
            "seconds": time.perf_counter() - started, "obligations": [o.to_dict() for o in obligations]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--match", default="", help="comma-separated parts of problem paths to prove")
    args = parser.parse_args()
    problems = REPO / "datasets" / "problems"
    parts = args.match.split(",")
    paths = [p for p in sorted(problems.rglob("*.py")) if any(m in str(p.relative_to(problems)) for m in parts)]
    results: dict[str, Any] = {
        "environment": {"device": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "z3": z3.get_version_string(), "target": TARGET.name,
                        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
        "kernels": []}
    args.out.mkdir(parents=True, exist_ok=True)
    # each kernel proved in a fresh process (forked: nothing to import again), as the search's gate
    # proves in its workers: a proof's time is its own, not slowed by what earlier proofs left behind
    pool = multiprocessing.get_context("fork").Pool(1, maxtasksperchild=1)
    for index, path in enumerate(paths):
        problem = str(path.relative_to(problems).with_suffix(""))
        for region in capture(load_problem(path), shapes_only=True).regions:
            row = {"problem": problem, **pool.apply(proof_of, (region.kernel,))}
            results["kernels"].append(row)
            print(f"[{index + 1}/{len(paths)}] {row['kernel']}: {row['verdict']} ({row['seconds']:.2f} s)", flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
