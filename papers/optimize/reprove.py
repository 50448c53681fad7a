"""On the CPU: the kernels each optimize run chose, proved again with the prover of this checkout
(the proof column of a run is the gate's verdict at the time it ran). The PTX is the one the run
kept: embedded in its model_new.py where the module runs it, else the chosen schedule lowered again
and accepted only if its hash is the one the run recorded. Writes reproof.json beside this file.

    python papers/optimize/reprove.py [--match PARTS]
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import z3

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agents.records import cpu_name, read_attempts, text_hash  # noqa: E402
from ir.frontend import capture, load_problem  # noqa: E402
from ir.kernel import Kernel  # noqa: E402
from ptxgen.lower import lower  # noqa: E402
from ptxgen.schedule import schedule_from_dict  # noqa: E402
from ptxgen.targets import TARGETS  # noqa: E402
from verify.emulate import Launch  # noqa: E402
from verify.prove import prove_kernel, verdict  # noqa: E402

HERE = Path(__file__).resolve().parent
PROBLEMS = REPO / "datasets" / "problems"


def embedded_kernels(module: Path) -> dict[str, dict[str, Any]]:
    """The `_KERNELS` table of a written model_new.py (empty for a module that falls back to PyTorch)."""
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_KERNELS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _recorded_hash(run: Path, region: str, schedule: dict[str, Any]) -> str | None:
    return next((a.ptx_hash for a in read_attempts(run / "attempts.jsonl")
                 if a.region == region and a.schedule == schedule and a.admitted), None)


def lowered_today(best: dict[str, Any], kernel: Kernel, target: str, ptx: str) -> bool:
    """Whether the chosen schedule lowers with this checkout to the PTX the module embeds (a
    proposer's written PTX is its own): False where ptxgen changed since the run, which then ran
    and timed an earlier lowering."""
    if best.get("proposer") == "llm-ptx":
        return True
    return lower(kernel, schedule_from_dict(best["schedule"]), TARGETS[target]).ptx == ptx


def chosen_ptx(run: Path, best: dict[str, Any], kernel: Kernel, target: str) -> tuple[str, Launch] | str:
    """The chosen kernel's PTX and launch, or why it cannot be had."""
    spec = embedded_kernels(run / "model_new.py").get(kernel.name)
    if spec is not None:
        return spec["ptx"], Launch(spec["grid"], spec["block"], (spec["cluster"], 1, 1), spec["shared"])
    lowered = lower(kernel, schedule_from_dict(best["schedule"]), TARGETS[target])
    if text_hash(lowered.ptx) != _recorded_hash(run, kernel.name, best["schedule"]):
        return "the chosen schedule lowers to other PTX than the run checked (ptxgen changed since)"
    return lowered.ptx, Launch.of(lowered.launch)


def reproof(run: Path, problem: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    kernels = {r.kernel.name: r.kernel for r in capture(load_problem(PROBLEMS / f"{problem}.py"),
                                                         shapes_only=True).regions}
    rows = []
    for region in report["regions"]:
        best = region["best"]
        if best is None:
            continue
        chosen = chosen_ptx(run, best, kernels[region["region"]], report["target"])
        if isinstance(chosen, str):
            rows.append({"region": region["region"], "verdict": "not proved", "reason": chosen})
            continue
        started = time.perf_counter()
        obligations = prove_kernel(*chosen, kernels[region["region"]], best["schedule"].get("approx_math"),
                                   best["schedule"].get("fp32_intermediates", False))
        rows.append({"region": region["region"], "verdict": verdict(obligations),
                     "seconds": round(time.perf_counter() - started, 2), "obligations": len(obligations),
                     "unproved": [f"{o.name}: {o.status}: {o.detail}"[:400] for o in obligations
                                  if o.status != "proved"],
                     "lowered_today": lowered_today(best, kernels[region["region"]], report["target"], chosen[0])})
    return rows


def commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return found.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--match", default="", help="comma-separated parts of problem names")
    args = parser.parse_args()
    results = json.loads((HERE / "results.json").read_text())["problems"]
    out_path = HERE / "reproof.json"
    out = json.loads(out_path.read_text()) if out_path.exists() else {"problems": {}}
    earlier = out.get("environment", {}).get("commit")  # what proved the problems not run again here
    commits = out.setdefault("commits", {name: earlier for name in out["problems"]} if earlier else {})
    out["environment"] = {"device": cpu_name(), "cores": os.cpu_count(), "z3": z3.get_version_string(),
                          "commit": commit(),
                          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    names = [n for n in sorted(results) if "failure" not in results[n] and any(m in n for m in args.match.split(","))]
    for index, name in enumerate(names):
        rows = reproof(HERE / "runs" / name.replace("/", "__"), name, results[name])
        out["problems"][name] = rows
        commits[name] = out["environment"]["commit"]
        print(f"[{index + 1}/{len(names)}] {name}: " + "; ".join(f"{r['verdict']} ({r.get('seconds', 0):.1f} s)"
                                                                  for r in rows), flush=True)
        out_path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
