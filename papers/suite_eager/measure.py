"""Time eager PyTorch on every suite problem at its default size, beside the device's measured
copy bandwidth. Writes results.json (every figure with device, date and library versions).

    python papers/suite_eager/measure.py --out DIR            # on a CUDA machine
    python papers/suite_eager/measure.py --out DIR --device cpu --shrink 32 --limit 3   # dry run
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend.problem import load_problem  # noqa: E402
from ir.frontend.program import flatten_tensors  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer, summary, time_ms  # noqa: E402

COPY_BYTES = 2 * 2**30



def measure_problem(path: Path, device: str, reps: int, flush: torch.Tensor, shrink: int | None) -> dict[str, Any]:
    problem = load_problem(path, shrink_to=shrink)
    with torch.device(device):
        model, inputs = problem.model(), problem.inputs()
    with torch.no_grad():
        outputs = flatten_tensors(model(*inputs))
        stats = summary(time_ms(lambda: model(*inputs), device, reps, flush))
    tensors = flatten_tensors(inputs) + outputs + list(model.parameters()) + list(model.buffers())
    io_bytes = sum(t.numel() * t.element_size() for t in tensors)
    return {"problem": str(path.relative_to(REPO / "datasets" / "problems").with_suffix("")),
            "sizes": problem.size_constants(), "io_bytes": io_bytes,
            "dtype": str(next(t.dtype for t in flatten_tensors(inputs) if t.is_floating_point())).replace("torch.", ""),
            "eager": stats}


def environment(device: str) -> dict[str, Any]:
    return {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--shrink", type=int)
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument("--match", default="", help="only problems whose path contains this")
    args = parser.parse_args()
    paths = [p for p in sorted((REPO / "datasets" / "problems").rglob("*.py")) if args.match in str(p)]
    paths = paths[: args.limit] if args.limit else paths
    flush = flush_buffer(args.device)
    copy_bytes = COPY_BYTES if args.device == "cuda" else 64 * 2**20
    results: dict[str, Any] = {"environment": environment(args.device),
                               "copy": copy_bandwidth(args.device, args.reps, flush, copy_bytes),
                               "problems": [], "failures": []}
    for index, path in enumerate(paths):
        try:
            row = measure_problem(path, args.device, args.reps, flush, args.shrink)
            row["eager"]["gb_per_s"] = row["io_bytes"] / (row["eager"]["median_ms"] * 1e-3) / 1e9
            results["problems"].append(row)
            print(f"[{index + 1}/{len(paths)}] {row['problem']}: {row['eager']['median_ms']:.3f} ms", flush=True)
        except Exception as err:  # one failing problem is recorded; the run goes on
            results["failures"].append({"problem": str(path), "error": f"{type(err).__name__}: {err}",
                                        "traceback": traceback.format_exc()})
            print(f"[{index + 1}/{len(paths)}] {path.name}: FAILED {type(err).__name__}: {err}", flush=True)
        if args.device == "cuda":
            torch.cuda.empty_cache()
    results["copy"]["after"] = copy_bandwidth(args.device, args.reps, flush, copy_bytes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"copy: {results['copy']['gb_per_s']:.0f} GB/s before, {results['copy']['after']['gb_per_s']:.0f} after; "
          f"{len(results['problems'])} timed, {len(results['failures'])} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
