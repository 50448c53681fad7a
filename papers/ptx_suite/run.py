"""On the GPU: every suite problem whose regions all lower, lowered to PTX at default schedules and
emitted as a drop-in ModelNew (model_new.py). Checks each ModelNew against Model in float64 (fresh
inputs, odd reduced shapes and the default shapes) and times it beside eager PyTorch and
torch.compile, with the copy bandwidth measured in the same run. Problems with a region that does
not lower yet are listed with the reason. Writes results.json after every problem.

    python papers/ptx_suite/run.py --out DIR [--match PATH_PART] [--no-compile] [--sweep]
"""

from __future__ import annotations

import argparse
import copy
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
from ir.frontend.program import flatten_tensors  # noqa: E402
from ptxgen.emit import emit_model_new, load_model_new  # noqa: E402
from ptxgen.lower import LoweringError, default_schedule, lower_all  # noqa: E402
from ptxgen.schedule import ElementwiseSchedule, ScheduleError  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer, summary, time_ms  # noqa: E402

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1.6e-2, torch.float16: 2e-3}
ODD_SIZES = (37, 1003, 5)  # given to the problem's size constants in turn: tails and broadcasts



def max_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / (|want| + 1): relative for large values, absolute near zero."""
    if not want.is_floating_point():
        return float((got.to(want.dtype) != want).sum())
    diff = (got.double() - want).abs() / (want.abs() + 1)
    nan_mismatch = torch.isnan(got.double()) != torch.isnan(want)
    return float("inf") if nan_mismatch.any() else float(diff.nan_to_num(0).max())


def build(path: Path, sizes: dict[str, int] | None = None, choose: Any = None) -> tuple[Problem, Any, Any, Any]:
    """(problem, Model, ModelNew, lowered kernels) on the GPU; ModelNew holds Model's parameters."""
    target = default_target()
    problem = load_problem(path, sizes=sizes)
    with torch.device("cuda"):
        program = capture(problem)
        model = problem.model()
    kernels = lower_all([r.kernel for r in program.regions], target, choose)
    module = load_model_new(emit_model_new(path, program, kernels, target.name, problem.overrides))
    with torch.device("cuda"):
        new = module.ModelNew(*problem.init_inputs())
    new.reference.load_state_dict(model.state_dict())
    return problem, model, new, kernels


def check(path: Path, sizes: dict[str, int] | None, seed: int) -> dict[str, Any]:
    """ModelNew's outputs and eager's against Model in float64, on fresh inputs drawn with `seed`."""
    problem, model, new, kernels = build(path, sizes)
    with torch.device("cuda"):
        inputs = problem.inputs(seed)
    with torch.no_grad():
        ours = flatten_tensors(new(*inputs))
        eager = flatten_tensors(model(*inputs))
        reference = flatten_tensors(copy.deepcopy(model).double()(*[x.double() if x.is_floating_point() else x
                                                              for x in inputs]))
    dtype = next(t.dtype for t in inputs if t.is_floating_point())
    errors = [max_error(o, r) for o, r in zip(ours, reference)]
    eager_errors = [max_error(e, r) for e, r in zip(eager, reference)]
    return {"shapes": problem.size_constants(), "error": max(errors), "eager_error": max(eager_errors),
            "tolerance": TOLERANCE[dtype], "passed": max(errors) <= TOLERANCE[dtype],
            "kernels": {name: {"schedule": k.schedule.to_dict(), "grid": k.launch.grid, "block": k.launch.block}
                        for name, k in kernels.items()}}


def odd_sizes(problem_path: Path) -> dict[str, int]:
    constants = load_problem(problem_path).size_constants()
    large = [k for k, v in constants.items() if v > 32]
    return {k: ODD_SIZES[i % len(ODD_SIZES)] for i, k in enumerate(large)}


def timing(path: Path, flush: torch.Tensor, reps: int, with_compile: bool) -> dict[str, Any]:
    problem, model, new, _ = build(path)
    with torch.device("cuda"):
        inputs = problem.inputs(7)
    rows: dict[str, Any] = {}
    candidates = {"ours": lambda: new(*inputs), "eager": lambda: model(*inputs)}
    if with_compile:
        fast = torch.compile(model)
        candidates["torch.compile"] = lambda: fast(*inputs)
    with torch.no_grad():
        outputs = flatten_tensors(model(*inputs))
        for name, fn in candidates.items():  # interleaved: each timed in turn, twice
            rows[name] = time_ms(fn, "cuda", reps, flush)
        for name, fn in candidates.items():
            rows[name] += time_ms(fn, "cuda", reps, flush)
    tensors = flatten_tensors(inputs) + outputs + list(model.parameters())
    io_bytes = sum(t.numel() * t.element_size() for t in tensors)
    result = {name: summary(times) for name, times in rows.items()}
    for stats in result.values():
        stats["gb_per_s"] = io_bytes / (stats["median_ms"] * 1e-3) / 1e9
    return {"io_bytes": io_bytes, "times": result}


SWEEP_PROBLEMS = ("relu_f32", "clamp_bf16", "gelu_erf_f32", "gelu_tanh_bf16", "affine_broadcast_bf16")
SWEEP = [dict(ctas_per_sm=c, unroll=u, block_size=b) for c in (0, 2, 4, 8, 16) for u in (1, 2, 4)
         for b in (128, 256, 512)]


def sweep(path: Path, flush: torch.Tensor, reps: int) -> list[dict[str, Any]]:
    """ModelNew under schedule variants (knobs beside the default's), timed in one process."""
    target = default_target()
    rows = []
    for knobs in SWEEP:
        def choose(kernel: Any, t: Any, knobs: dict[str, int] = knobs) -> ElementwiseSchedule:
            return ElementwiseSchedule(**{**default_schedule(kernel, t).to_dict(), **knobs})

        schedule = ElementwiseSchedule(**knobs)
        if not schedule.fits(target):
            continue
        problem, _, new, kernels = build(path, choose=choose)
        with torch.device("cuda"):
            inputs = problem.inputs(3)
        with torch.no_grad():
            stats = summary(time_ms(lambda: new(*inputs), "cuda", reps, flush))
        (lowered,) = kernels.values()
        rows.append({"schedule": lowered.schedule.to_dict(), **stats})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="also time schedule variants of a few problems")
    args = parser.parse_args()
    flush = flush_buffer("cuda")
    problems = REPO / "datasets" / "problems"
    paths = [p for p in sorted(problems.rglob("*.py")) if args.match in str(p.relative_to(problems))]
    results: dict[str, Any] = {
        "environment": {"device": torch.cuda.get_device_name(), "target": default_target().name,
                        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "torch": torch.__version__, "cuda": torch.version.cuda},
        "copy": copy_bandwidth("cuda", args.reps, flush, 2 * 2**30), "problems": []}
    for index, path in enumerate(paths):
        row: dict[str, Any] = {"problem": str(path.relative_to(problems).with_suffix(""))}
        try:
            row["odd"] = check(path, odd_sizes(path), seed=11)
        except (LoweringError, ScheduleError) as err:
            row["not_lowered"] = str(err)
            results["problems"].append(row)
            print(f"[{index + 1}/{len(paths)}] {row['problem']}: not lowered: {err}", flush=True)
            continue
        try:
            row["full"] = check(path, None, seed=12)
            row.update(timing(path, flush, args.reps, not args.no_compile))
            t = row["times"]
            print(f"[{index + 1}/{len(paths)}] {row['problem']}: ok={row['odd']['passed'] and row['full']['passed']} "
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
            results["sweep"][name] = sweep(path, flush, args.reps)
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
