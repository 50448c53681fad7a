"""On the GPU: every suite problem whose regions all lower, lowered to PTX at default schedules and
emitted as a drop-in ModelNew (model_new.py). Checks each ModelNew against Model in float64 (fresh
inputs, odd reduced shapes and the default shapes) and times it beside eager PyTorch and
torch.compile, with the copy bandwidth measured in the same run. Problems with a region that does
not lower yet are listed with the reason. Writes results.json after every problem.

    python papers/ptx_suite/run.py --out DIR [--match PARTS] [--no-compile] [--sweep | --sweep-only]
    python papers/ptx_suite/run.py --out papers/ptx_suite --merge PART.json ...   (runs of parts of the suite)
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

from ir.frontend.program import flatten_tensors  # noqa: E402
from ptxgen.bench import build, check, odd_sizes  # noqa: E402
from ptxgen.lower import LoweringError, default_schedule  # noqa: E402
from ptxgen.schedule import Schedule, ScheduleError, schedule_from_dict  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer, summary, time_ms  # noqa: E402


def timing(path: Path, flush: torch.Tensor, reps: int, with_compile: bool) -> dict[str, Any]:
    built = build(path)
    problem, model, new = built.problem, built.model, built.new
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


ELEMENTWISE_KNOBS = [dict(ctas_per_sm=c, unroll=u, block_size=b) for c in (0, 2, 4, 8, 16) for u in (1, 2, 4)
                     for b in (128, 256, 512)]
ROW_KNOBS = ([dict(threads_per_row=t, block_size=max(t, 256), cache_row=c, cluster=1, unroll=1 if c else 4)
              for t in (32, 64, 128, 256, 512, 1024) for c in (True, False)]
             + [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=c, unroll=1 if c else 4)
                for t in (256, 512, 1024) for k in (2, 4, 8) for c in (True, False)])
SHARED_ROW_KNOBS = [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=False, shared_row=True, unroll=u,
                         online=False) for t in (256, 512, 1024) for k in (1, 2, 4, 8, 16) for u in (2, 4)]
COLUMN_KNOBS = [dict(threads_along_reduction=a, block_size=b, unroll=u) for a in (1, 4, 8, 16, 32)
                for b in (128, 256, 512) for u in (2, 4)]
SWEEPS = {**{f"elementwise/{name}": ELEMENTWISE_KNOBS for name in ("relu_f32", "gelu_tanh_bf16")},
          **{f"rowsweep/{kind}_{n}": ROW_KNOBS for kind in ("softmax_bf16", "layernorm_f32")
             for n in (1024, 4096, 16384, 65536, 262144)},
          **{name: ROW_KNOBS for name in ("reduction/softmax_f32", "rowsweep/rmsnorm_bf16_65536",
                                          "rowsweep/logsumexp_bf16_65536", "reduction/argmin_lastdim_bf16")},
          "reduction/mean_dim1_bf16": COLUMN_KNOBS}
# Rows kept in shared memory between walks, for the long rows of every kind.
SHARED_ROW_SWEEPS = {f"rowsweep/{kind}_{dtype}_{n}": SHARED_ROW_KNOBS for kind in ("softmax", "layernorm", "rmsnorm")
                     for dtype in ("bf16", "f32") for n in (65536, 262144)}
# Long rows read once (logsumexp): one online pass or two passes over cached rows, a row split over a cluster.
ONCE_KNOBS = [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=c, online=o, unroll=1 if c else 4)
              for o in (True, False) for t in (64, 128, 256, 512, 1024) for k in (1, 2, 4, 8, 16) for c in (True, False)
              if t >= 256 and k <= 8 or t <= 256 and k >= 2]
ONCE_SWEEPS = {f"rowsweep/logsumexp_{dtype}_{n}": ONCE_KNOBS for dtype in ("bf16", "f32") for n in (65536, 262144)}
# Rows copied into shared memory by cp.async (every vector in flight at once) beside the same rows copied by loads.
ASYNC_KNOBS = [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=False, shared_row=True, async_copy=a,
                    unroll=2, online=False) for t in (256, 512, 1024) for k in (4, 8, 16) for a in (False, True)]
ASYNC_SWEEPS = {f"rowsweep/{kind}_{dtype}_{n}": ASYNC_KNOBS for kind in ("softmax", "layernorm", "rmsnorm")
                for dtype in ("bf16", "f32") for n in (65536, 262144)}
# Approximate transcendentals (ex2.approx, rcp/rsqrt approx) beside the accurate library, on float32 long rows.
APPROX_KNOBS = [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=False, shared_row=True, async_copy=True,
                     unroll=2, online=False, approx_math=a)
                for t in (256, 512) for k in (4, 8, 16) for a in (False, True)]
APPROX_SWEEPS = {f"rowsweep/{kind}_f32_{n}": APPROX_KNOBS for kind in ("softmax", "layernorm", "rmsnorm")
                 for n in (65536, 262144)}
# Reductions along a middle axis whose inputs are read by more than one phase: each thread's part of
# the column kept in registers (read once) beside the same split re-read in every phase.
CACHED_COLUMN_KNOBS = ([dict(threads_along_reduction=a, vector_bytes=v, block_size=b, unroll=u, cache_column=True)
                        for a in (8, 16, 32) for v in (4, 8, 16) for b in (128, 256, 512) for u in (1, 4)]
                       + [dict(threads_along_reduction=a, vector_bytes=v, block_size=256, unroll=4, cache_column=False)
                          for a in (8, 16, 32) for v in (4, 16)])
CACHED_COLUMN_SWEEPS = {name: CACHED_COLUMN_KNOBS for name in ("reduction/softmax_dim1_f32",
                                                               "reduction/rmsnorm_channel_f32")}
# The precision knobs alone over the default schedule, on the problems whose defaults stay below 85% of
# the copy bandwidth (papers/bench_defaults): approximate transcendentals, float32 kept between ops.
PRECISION_KNOBS = [dict(approx_math=a, fp32_intermediates=f) for a in (False, True) for f in (False, True)]
PRECISION_SWEEPS = {name: PRECISION_KNOBS for name in (
    "elementwise/mish_f32", "loss/bce_with_logits_bf16", "loss/cosine_similarity_loss_bf16",
    "loss/kl_div_batchmean_f32",
    *(f"rowsweep/{kind}_{n}" for kind in ("layernorm_bf16", "layernorm_f32", "logsumexp_bf16", "logsumexp_f32",
                                          "rmsnorm_bf16", "rmsnorm_f32", "softmax_bf16", "softmax_f32")
      for n in (65536, 262144)), "rowsweep/logsumexp_bf16_16384")}
SWEEP_SETS = {"default": SWEEPS, "shared_row": SHARED_ROW_SWEEPS, "read_once": ONCE_SWEEPS, "async_copy": ASYNC_SWEEPS,
              "approx": APPROX_SWEEPS, "cached_column": CACHED_COLUMN_SWEEPS, "precision": PRECISION_SWEEPS}


def sweep(path: Path, knob_sets: list[dict[str, Any]], flush: torch.Tensor, reps: int) -> list[dict[str, Any]]:
    """ModelNew under schedule variants (knobs over the default's, for every kernel of the problem;
    those the kernel or target rule out are skipped), timed in one process."""
    rows: list[dict[str, Any]] = []
    for knobs in [{}] + knob_sets:  # the default schedule first
        def choose(kernel: Any, t: Any, knobs: dict[str, Any] = knobs) -> Schedule:
            return schedule_from_dict({**default_schedule(kernel, t).to_dict(), **knobs})

        try:
            built = build(path, choose=choose)
            problem, new, kernels = built.problem, built.new, built.kernels
        except ScheduleError:
            continue
        with torch.device("cuda"):
            inputs = problem.inputs(3)
        with torch.no_grad():
            stats = summary(time_ms(lambda: new(*inputs), "cuda", reps, flush))
        schedules = [lowered.schedule.to_dict() for lowered in kernels.values()]  # the first kernel's names the row
        if rows and any(r.get("schedules", [r["schedule"]]) == schedules for r in rows):
            continue
        rows.append({"schedule": schedules[0], **({"schedules": schedules} if len(schedules) > 1 else {}),
                     "default": not knobs, **stats})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--merge", type=Path, nargs="+", help="merge these results files into OUT/results.json")
    parser.add_argument("--match", default="", help="comma-separated parts of problem paths to run")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="also time schedule variants of a few problems")
    parser.add_argument("--sweep-only", action="store_true", help="time the schedule variants, nothing else")
    parser.add_argument("--sweep-set", choices=sorted(SWEEP_SETS), default="default",
                        help="which problems and schedule variants to sweep")
    args = parser.parse_args()
    if args.merge:
        write(args.out, merge(args.merge))
        return 0
    flush = flush_buffer("cuda")
    problems = REPO / "datasets" / "problems"
    parts = args.match.split(",")
    paths = [p for p in sorted(problems.rglob("*.py")) if any(m in str(p.relative_to(problems)) for m in parts)]
    paths = [] if args.sweep_only else paths
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
    if args.sweep or args.sweep_only:
        results["sweep"] = {}
        for name, knob_sets in SWEEP_SETS[args.sweep_set].items():
            if not any(m in name for m in parts):
                continue
            key = name if args.sweep_set == "default" else f"{name} [{args.sweep_set}]"
            results["sweep"][key] = sweep(problems / f"{name}.py", knob_sets, flush, args.reps)
            best = min(results["sweep"][key], key=lambda r: r["median_ms"])
            print(f"sweep {name}: best {best['median_ms']:.3f} ms with {best['schedule']}", flush=True)
            write(args.out, results)
    results["copy"]["after"] = copy_bandwidth("cuda", args.reps, flush, 2 * 2**30)
    write(args.out, results)
    return 0


def _unmerged(results: dict[str, Any]) -> list[dict[str, Any]]:
    """A results file as the runs it came from: itself, or the parts an earlier merge kept."""
    if "parts" not in results:
        return [results]
    return [{**part, "problems": [{k: v for k, v in row.items() if k != "part"} for row in results["problems"]
                                  if row["part"] == index],
             "sweep": {name: entry["rows"] for name, entry in results.get("sweep", {}).items()
                       if entry["part"] == index}}
            for index, part in enumerate(results["parts"])]


def merge(parts: list[Path]) -> dict[str, Any]:
    """Results of several runs (parts of the suite, each timed side by side within itself) as one:
    each problem keeps the index of its part, whose device, date and copy bandwidth it was measured
    with; where parts measured the same problem (or sweep), the later part's figures are kept. A
    file of clusters held at once (clusters.py's output, or an earlier merge's) is kept beside them."""
    files = [json.loads(p.read_text()) for p in parts]
    clusters = [f.get("clusters", f) for f in files if "clusters" in f or "problems" not in f]
    loaded = [part for f in files if "problems" in f for part in _unmerged(f)]
    devices = {r["environment"]["device"] for r in loaded}
    if len(devices) != 1:
        raise SystemExit(f"parts were measured on different devices: {sorted(devices)}")
    merged: dict[str, Any] = {"environment": loaded[0]["environment"],
                              "parts": [{"environment": r["environment"], "copy": r["copy"]} for r in loaded],
                              "problems": [], "sweep": {}}
    problems: dict[str, dict[str, Any]] = {}
    for index, results in enumerate(loaded):  # a problem measured again in a later part: the later one
        problems.update({row["problem"]: {**row, "part": index} for row in results["problems"]})
        merged["sweep"].update({name: {"part": index, "rows": rows} for name, rows in results.get("sweep", {}).items()})
    merged["problems"] = [problems[name] for name in sorted(problems)]
    if clusters:
        merged["clusters"] = clusters[-1]
    return merged


def write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
