"""On the GPU: Nsight Compute's view of each problem's default kernel (papers/long_row_costs).

    python papers/long_row_costs/profile.py --builds DIR --out DIR [--match PARTS]

runs `ncu` once per problem on a process that calls the default module three times, profiling
the last call's kernel (--csv --page details; --clock-control none: the clocks the timed runs
have, not ncu's locked base clock), and writes DIR/FOLDER.csv; render.py reads them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

SECTIONS = ("SpeedOfLight", "LaunchStats", "Occupancy", "WarpStateStats", "SchedulerStats", "ComputeWorkloadAnalysis")
CALLS = 3


def call(builds: Path, folder: str) -> None:
    """The default module of `folder` called CALLS times (the process ncu profiles)."""
    from ir.frontend.problem import load_problem
    from ptxgen.emit import load_model_new

    problem = load_problem(REPO / "datasets" / "problems" / (folder.replace("__", "/", 1) + ".py"))
    with torch.device("cuda"):
        model = problem.model()
        new = load_model_new((builds / "default" / folder / "model_new.py").read_text(), "model_new").ModelNew(
            *problem.init_inputs())
        new.reference.load_state_dict(model.state_dict())
        inputs = problem.inputs(3)
    with torch.no_grad():
        for _ in range(CALLS):
            new(*inputs)
    torch.cuda.synchronize()


def kernel_names(builds: Path, folder: str) -> list[str]:
    return re.findall(r"\.entry (\w+)\(", (builds / "default" / folder / "model_new.py").read_text())


def profile(builds: Path, folder: str, out: Path) -> None:
    names = kernel_names(builds, folder)
    command = ["ncu", "--csv", "--page", "details", "--clock-control", "none",
               "-k", "regex:^(" + "|".join(names) + ")$",
               "--launch-skip", str(len(names) * (CALLS - 1)), "--launch-count", str(len(names))]
    for section in SECTIONS:
        command += ["--section", section]
    command += [sys.executable, __file__, "--builds", str(builds), "--call", folder]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith('"')]
    (out / f"{folder}.csv").write_text("\n".join(lines) + "\n")
    print(f"{folder}: ncu exit {done.returncode}, {len(lines)} rows", done.stderr[-500:] if done.returncode else "",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--match", default="")
    parser.add_argument("--call", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.call:
        call(args.builds, args.call)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    parts = [m for m in args.match.split(",") if m]
    for folder in sorted(p.name for p in (args.builds / "default").iterdir()):
        if not parts or any(m in folder for m in parts):
            profile(args.builds, folder, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
