"""On the GPU: the pools the search-efficiency replay draws from. For each problem's regions, a
seeded sample of valid schedules (the default among them) is lowered, assembled with ptxas (its
resource report is a feature of the cost model) and checked and timed on the GPU by the same
worker `ptxgen optimize` uses; every attempt is recorded in attempts.jsonl with its features.
No proof here: the replay asks how fast search finds the fastest, not whether kernels are right
(the GPU check still rejects wrong results).

    python papers/search_efficiency/run.py PROBLEM ... [--per-region N] [--out DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agents.cost_model import kernel_features  # noqa: E402
from agents.gate import CpuJob, cpu_stages  # noqa: E402
from agents.records import Attempt, Records, text_hash, versions  # noqa: E402
from agents.supervisor import check_regions  # noqa: E402
from agents.workers import Worker  # noqa: E402
from ir.frontend import capture, load_problem  # noqa: E402
from ir.printer import format_kernel  # noqa: E402
from ptxgen.lower import default_schedule, sample_schedules  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402

PROBLEMS = REPO / "datasets" / "problems"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--per-region", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    target, records = default_target(), Records(args.out)
    worker = Worker(0)
    device = worker.evaluate({"describe": True})["device"]
    pool = futures.ProcessPoolExecutor(16, mp_context=multiprocessing.get_context("spawn"))
    for name in args.problems:
        path = PROBLEMS / f"{name}.py"
        program = capture(load_problem(path))
        checks = check_regions(path, program, {}, lambda line: None)
        for index, region in enumerate(program.regions):
            kernel, text = region.kernel, format_kernel(region.kernel)
            schedules = [default_schedule(kernel, target)]
            schedules += [s for s in sample_schedules(kernel, target, args.per_region, random.Random(name))
                          if s != schedules[0]][:args.per_region - 1]
            jobs = [CpuJob(text, None, s.to_dict(), target.name, prove=False) for s in schedules]
            features = kernel_features(kernel, target)
            for schedule, cpu in zip(schedules, pool.map(cpu_stages, jobs)):
                attempt = Attempt(name, kernel.name, text_hash(text), schedule.to_dict(), target.name, device, "sweep",
                                  verdict=cpu["verdict"], ptx_hash=text_hash(cpu.get("ptx", "")), stages=cpu["stages"],
                                  resources=cpu.get("resources", {}), feedback=cpu["feedback"], versions=versions(),
                                  kernel_features=features)
                if cpu["verdict"] == "passed":
                    run = worker.evaluate({"kernel": text, "ptx": cpu["ptx"], "launch": cpu["launch"],
                                           "params": cpu["params"], "target": target.name,
                                           "schedule": schedule.to_dict(), "check_kernel": checks.get(index)})
                    attempt.stages["gpu"] = run
                    passed = run.get("status") == "passed"
                    attempt.verdict = "admitted" if passed else "gpu"
                    attempt.median_ms = run["timing"]["median_ms"] if passed else None
                records.add(attempt)
            print(f"{name} {kernel.name}: {len(schedules)} schedules", file=sys.stderr, flush=True)
    worker.close()
    pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
