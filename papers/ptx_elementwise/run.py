"""On the GPU: every suite problem whose regions are all elementwise, lowered to PTX at default
schedules. Checks each against Model in float64 (fresh inputs, odd reduced shapes and the default
shapes) and times it beside eager PyTorch and torch.compile, with the copy bandwidth measured in
the same run. Writes results.json.

    python papers/ptx_elementwise/run.py --out DIR [--match NAME] [--no-compile]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend import capture, load_problem  # noqa: E402
from ir.frontend.problem import Problem  # noqa: E402
from ptxgen.execute import compile_program  # noqa: E402
from ptxgen.lower import default_schedule  # noqa: E402
from ptxgen.schedule import ElementwiseSchedule  # noqa: E402
from ptxgen.runtime import Runtime  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer, summary, time_ms  # noqa: E402

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1.6e-2, torch.float16: 2e-3}
ODD_SIZES = (37, 1003, 5)  # given to the problem's size constants in turn: tails and broadcasts


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flatten(item)]
    return [value] if isinstance(value, torch.Tensor) else []


def max_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / (|want| + 1): relative for large values, absolute near zero."""
    if not want.is_floating_point():
        return float((got.to(want.dtype) != want).sum())
    diff = (got.double() - want).abs() / (want.abs() + 1)
    nan_mismatch = torch.isnan(got.double()) != torch.isnan(want)
    return float("inf") if nan_mismatch.any() else float(diff.nan_to_num(0).max())


def check(problem: Problem, runtime: Runtime, seed: int) -> dict[str, Any]:
    """Our outputs and eager's against Model in float64, on fresh inputs drawn with `seed`."""
    target = default_target()
    with torch.device("cuda"):  # capture and model draw their parameters from the same generator
        program = capture(problem)
        model, inputs = problem.model(), problem.inputs(seed)
    compiled = compile_program(program, target)
    with torch.no_grad():
        ours = _flatten(compiled(runtime, inputs))
        eager = _flatten(model(*inputs))
        reference = _flatten(model.double()(*[x.double() if x.is_floating_point() else x for x in inputs]))
    dtype = next(t.dtype for t in inputs if t.is_floating_point())
    errors = [max_error(o, r) for o, r in zip(ours, reference)]
    eager_errors = [max_error(e, r) for e, r in zip(eager, reference)]
    return {"shapes": problem.size_constants(), "error": max(errors), "eager_error": max(eager_errors),
            "tolerance": TOLERANCE[dtype], "passed": max(errors) <= TOLERANCE[dtype],
            "kernels": {name: {"schedule": k.schedule.to_dict(), "grid": k.launch.grid, "block": k.launch.block}
                        for name, k in compiled.kernels.items()}}


def odd_sizes(problem_path: Path) -> dict[str, int]:
    constants = load_problem(problem_path).size_constants()
    large = [k for k, v in constants.items() if v > 32]
    return {k: ODD_SIZES[i % len(ODD_SIZES)] for i, k in enumerate(large)}


def timing(problem: Problem, runtime: Runtime, flush: torch.Tensor, reps: int, with_compile: bool) -> dict[str, Any]:
    target = default_target()
    with torch.device("cuda"):
        program = capture(problem)
        model, inputs = problem.model(), problem.inputs(7)
    compiled = compile_program(program, target)
    rows: dict[str, Any] = {}
    candidates = {"ours": lambda: compiled(runtime, inputs), "eager": lambda: model(*inputs)}
    if with_compile:
        fast = torch.compile(model)
        candidates["torch.compile"] = lambda: fast(*inputs)
    with torch.no_grad():
        outputs = _flatten(model(*inputs))
        for name, fn in candidates.items():  # interleaved: each timed in turn, twice
            rows[name] = time_ms(fn, "cuda", reps, flush)
        for name, fn in candidates.items():
            rows[name] += time_ms(fn, "cuda", reps, flush)
    tensors = _flatten(inputs) + outputs + list(model.parameters())
    io_bytes = sum(t.numel() * t.element_size() for t in tensors)
    result = {name: summary(times) for name, times in rows.items()}
    for stats in result.values():
        stats["gb_per_s"] = io_bytes / (stats["median_ms"] * 1e-3) / 1e9
    return {"io_bytes": io_bytes, "times": result}


SWEEP_PROBLEMS = ("relu_f32", "clamp_bf16", "gelu_erf_f32", "gelu_tanh_bf16", "affine_broadcast_bf16")
SWEEP = [dict(ctas_per_sm=c, unroll=u, block_size=b) for c in (0, 2, 4, 8, 16) for u in (1, 2, 4)
         for b in (128, 256, 512)]


def sweep(path: Path, runtime: Runtime, flush: torch.Tensor, reps: int) -> list[dict[str, Any]]:
    """Our kernel under schedule variants (knobs beside the default's), timed in one process."""
    target = default_target()
    with torch.device("cuda"):
        program = capture(load_problem(path))
        inputs = load_problem(path).inputs(3)
    rows = []
    for knobs in SWEEP:
        base = default_schedule(program.regions[0].kernel, target)
        schedule = ElementwiseSchedule(**{**base.to_dict(), **knobs})
        if not schedule.fits(target):
            continue
        compiled = compile_program(program, target, lambda k, t: schedule)
        stats = summary(time_ms(lambda: compiled(runtime, inputs), "cuda", reps, flush))
        rows.append({"schedule": schedule.to_dict(), **stats})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="also time schedule variants of a few problems")
    args = parser.parse_args()
    runtime, flush = Runtime(), flush_buffer("cuda")
    paths = [p for p in sorted((REPO / "datasets" / "problems" / "elementwise").glob("*.py")) if args.match in p.name]
    results: dict[str, Any] = {
        "environment": {"device": torch.cuda.get_device_name(), "target": default_target().name,
                        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "torch": torch.__version__, "cuda": torch.version.cuda},
        "copy": copy_bandwidth("cuda", args.reps, flush, 2 * 2**30), "problems": []}
    for index, path in enumerate(paths):
        row: dict[str, Any] = {"problem": f"elementwise/{path.stem}"}
        try:
            row["odd"] = check(load_problem(path, sizes=odd_sizes(path)), runtime, seed=11)
            row["full"] = check(load_problem(path), runtime, seed=12)
            row.update(timing(load_problem(path), runtime, flush, args.reps, not args.no_compile))
            t = row["times"]
            print(f"[{index + 1}/{len(paths)}] {path.stem}: ok={row['odd']['passed'] and row['full']['passed']} "
                  f"err={row['full']['error']:.2e} ours {t['ours']['median_ms']:.3f} ms, eager "
                  f"{t['eager']['median_ms']:.3f}" + (f", compile {t['torch.compile']['median_ms']:.3f}"
                                                      if "torch.compile" in t else ""), flush=True)
        except Exception as err:  # recorded; the run goes on
            row["failure"] = f"{type(err).__name__}: {err}"
            row["traceback"] = traceback.format_exc()
            print(f"[{index + 1}/{len(paths)}] {path.stem}: FAILED {row['failure'][:2000]}", flush=True)
        results["problems"].append(row)
        write(args.out, results)  # after every problem: a run cut short keeps what it measured
        torch.cuda.empty_cache()
    if args.sweep:
        results["sweep"] = {}
        for name in SWEEP_PROBLEMS:
            path = REPO / "datasets" / "problems" / "elementwise" / f"{name}.py"
            results["sweep"][name] = sweep(path, runtime, flush, args.reps)
            best = min(results["sweep"][name], key=lambda r: r["median_ms"])
            print(f"sweep {name}: best {best['median_ms']:.3f} ms with {best['schedule']}", flush=True)
    results["copy"]["after"] = copy_bandwidth("cuda", args.reps, flush, 2 * 2**30)
    write(args.out, results)
    return 0


def write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
