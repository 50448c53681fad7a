"""On the GPU: `ptxgen optimize` on suite problems, each with its own search budget. Each problem's
run directory (attempt records, report, model_new.py) is kept under runs/, and its report merged
into results.json (problems run in earlier calls are kept).

    python papers/optimize/run.py PROBLEM ... [--budget S] [--max-trials N] [--out DIR]

PROBLEM is a path under datasets/problems without .py (elementwise/mish_f32).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agents.supervisor import OptimizeOptions, Supervisor  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402

PROBLEMS = REPO / "datasets" / "problems"


def environments(problems: dict[str, dict]) -> list[dict[str, str]]:
    """Where and when each problem ran, as its report says, in time order."""
    found = [{"device": r["device"], "date": r["date"], "torch": r["versions"].get("torch", ""),
              "cuda": r["versions"].get("cuda", "")} for r in problems.values() if "device" in r]
    return sorted(found, key=lambda e: e["date"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--max-trials", type=int, default=24)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"problems": {}}
    for name in args.problems:
        history = sorted((args.out / "runs").glob("*/attempts.jsonl")) + [REPO / "papers" / "search_efficiency" /
                                                                           "attempts.jsonl"]
        options = OptimizeOptions(default_target(), budget_s=args.budget, max_trials=args.max_trials,
                                  history=[h for h in history if h.exists()])
        run_dir = args.out / "runs" / name.replace("/", "__")
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            report = Supervisor(PROBLEMS / f"{name}.py", run_dir, options).run()
        except Exception as err:  # one problem's failure is recorded; the others still run
            report = {"failure": f"{type(err).__name__}: {err}"}
        results["problems"][name] = report
        results["environments"] = environments(results["problems"])
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
