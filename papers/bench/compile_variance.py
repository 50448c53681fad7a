"""On the GPU: how much torch.compile's own time varies from one compilation to the next. Each
problem is compiled in several fresh processes, each with an empty inductor cache (so each makes
its own autotuning choices, alone on the GPU), and with the cache a bench run left (`--cache`);
each compiled model is timed like `ptxgen bench` times it.

    python papers/bench/compile_variance.py PROBLEM ... [--trials N] [--cache DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = REPO / "datasets" / "problems"
ONE = """
import json, sys, torch
sys.path.insert(0, {repo!r})
from ir.frontend import load_problem
from verify.timing import flush_buffer, summary, time_ms
problem = load_problem({path!r})
with torch.device("cuda"):
    model, inputs = problem.model(), problem.inputs(7)
flush = flush_buffer("cuda")
fast = torch.compile(model)
with torch.no_grad():
    fast(*inputs)
    print(json.dumps(summary(time_ms(lambda: fast(*inputs), "cuda", 30, flush))))
"""


def timed(path: Path, cache: str) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", ONE.format(repo=str(REPO), path=str(path))], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--cache", help="the inductor cache of a bench run, timed as well")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    rows = []
    for name in args.problems:
        path = PROBLEMS / f"{name}.py"
        fresh = [timed(path, tempfile.mkdtemp(prefix="inductor-")) for _ in range(args.trials)]
        row = {"problem": name, "fresh": fresh}
        if args.cache:
            row["bench_cache"] = timed(path, args.cache)
        rows.append(row)
        medians = [t.get("median_ms") for t in fresh]
        print(name, "fresh:", medians, "bench cache:", row.get("bench_cache", {}).get("median_ms"), flush=True)
    result = {"device": torch.cuda.get_device_name(), "problems": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
