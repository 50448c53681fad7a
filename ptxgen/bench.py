"""`ptxgen bench SUITE_DIR --out DIR`: every problem of a suite lowered to PTX (default schedules,
or the fastest admitted schedule each region's search recorded), emitted as a drop-in ModelNew,
checked against Model in float64 and timed beside eager PyTorch and torch.compile.

Two phases, so that the whole suite fits in one GPU session:
1. a pool of spawned processes captures, lowers, emits and checks each problem and compiles its
   torch.compile baseline into a shared inductor cache (the baselines compile in parallel);
2. this process alone on the GPU times ours, eager and torch.compile in turn for each problem (the
   compiled baselines load from the cache; their autotuning choices, made under a shared GPU in
   phase 1, are dropped so that they are made again here, alone).
A problem whose module, device and library versions were measured before (OUT/cache/rows) is not
measured again unless `fresh`. results.json is written after every problem."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import gc
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import torch

from agents.records import read_attempts, text_hash, versions
from ir.frontend import capture, load_problem
from ir.frontend.problem import Problem
from ir.frontend.program import flatten_tensors
from ir.printer import format_kernel
from ptxgen.emit import emit_model_new, load_model_new
from ptxgen.lower import LoweringError, default_schedule, lower_all
from ptxgen.schedule import Schedule, ScheduleError, schedule_from_dict
from ptxgen.targets import Target, default_target
from verify.trials import EAGER_SLACK, TOLERANCE

ODD_SIZES = (37, 1003, 5)  # given to the problem's size constants in turn: tails and broadcasts
CHECK_SEEDS = {"odd": 11, "full": 12}
TIMING_SEED = 7
COPY_BYTES = 2 * 2**30
MATMUL_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
RESULTS_FILE = "results.json"
RETRIED_ALONE = ("its process died", "OutOfMemoryError", "out of memory")  # failures that may be the neighbours' doing


class BenchError(RuntimeError):
    """The bench cannot run (no GPU, nothing to run)."""


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    suite: Path
    out: Path
    match: tuple[str, ...] = ()
    reps: int = 15
    workers: int = 6
    compile: bool = True
    schedules: Path | None = None  # folders of `ptxgen optimize` runs, one per problem
    optimize_s: float = 0.0  # > 0: search each problem this long first (resumed from OUT/runs), then use its schedules
    fresh: bool = False
    log: Callable[[str], None] = print


# ---- checking one problem (also used by papers/ptx_suite)

def max_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / (|want| + 1): relative for large values, absolute near zero."""
    if not want.is_floating_point():
        return float((got.to(want.dtype) != want).sum())
    diff = (got.double() - want).abs() / (want.abs() + 1)
    nan_mismatch = torch.isnan(got.double()) != torch.isnan(want)
    return float("inf") if nan_mismatch.any() else float(diff.nan_to_num(0).max())


def size_key(sizes: dict[str, int] | None) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((sizes or {}).items()))


@functools.lru_cache(maxsize=4)
def captured(path: Path, sizes: tuple[tuple[str, int], ...]) -> tuple[Problem, Any]:
    """The problem and its captured program (traced on the GPU), reused across schedule variants."""
    problem = load_problem(path, sizes=dict(sizes))
    with torch.device("cuda"):
        return problem, capture(problem)


Chooser = Callable[[Any, Target], Schedule]


@dataclasses.dataclass
class Built:
    problem: Problem
    model: torch.nn.Module
    new: torch.nn.Module
    kernels: dict[str, Any]
    source: str  # model_new.py
    glue: int


def build(path: Path, sizes: dict[str, int] | None = None, choose: Chooser | None = None) -> Built:
    """Model and ModelNew on the GPU; ModelNew holds Model's parameters."""
    target = default_target()
    problem, program = captured(path, size_key(sizes))
    with torch.device("cuda"):
        model = problem.model()
    kernels = lower_all([r.kernel for r in program.regions], target, choose)
    source = emit_model_new(path, program, kernels, target.name, problem.overrides)
    module = load_model_new(source)
    with torch.device("cuda"):
        new = module.ModelNew(*problem.init_inputs())
    new.reference.load_state_dict(model.state_dict())
    return Built(problem, model, new, kernels, source, len(program.glue))


def tolerance_for(dtype: torch.dtype, eager_error: float) -> float:
    """The dtype's tolerance, never below EAGER_SLACK times eager PyTorch's own error on the same
    inputs (the checker's rule): where eager errs more than the dtype's tolerance (a float32 sum of
    thousands of terms, a convolution in TF32), its error sets the scale."""
    return max(TOLERANCE[dtype], EAGER_SLACK * eager_error)


def check_built(built: Built, seed: int) -> dict[str, Any]:
    """ModelNew's outputs and eager's against Model in float64, on fresh inputs drawn with `seed`."""
    with torch.device("cuda"):
        inputs = built.problem.inputs(seed)
    with torch.no_grad():
        ours = flatten_tensors(built.new(*inputs))
        eager = flatten_tensors(built.model(*inputs))
        wide = [x.double() if x.is_floating_point() else x for x in inputs]
        reference = flatten_tensors(copy.deepcopy(built.model).double()(*wide))
    dtype = next(t.dtype for t in inputs if t.is_floating_point())
    errors = [max_error(o, r) for o, r in zip(ours, reference)]
    eager_errors = [max_error(e, r) for e, r in zip(eager, reference)]
    tolerance = tolerance_for(dtype, max(eager_errors))
    return {"shapes": built.problem.size_constants(), "glue": built.glue, "error": max(errors),
            "eager_error": max(eager_errors), "tolerance": tolerance, "passed": max(errors) <= tolerance,
            "kernels": {name: {"schedule": k.schedule.to_dict(), "grid": k.launch.grid, "block": k.launch.block}
                        for name, k in built.kernels.items()}}


def check(path: Path, sizes: dict[str, int] | None, seed: int, choose: Chooser | None = None) -> dict[str, Any]:
    return check_built(build(path, sizes, choose), seed)


def odd_sizes(problem_path: Path) -> dict[str, int]:
    constants = load_problem(problem_path).size_constants()
    large = [k for k, v in constants.items() if v > 32]
    return {k: ODD_SIZES[i % len(ODD_SIZES)] for i, k in enumerate(large)}


# ---- schedules a search found

def run_folder(schedules: Path, name: str) -> Path:
    """Where `ptxgen optimize` runs of the suite keep a problem's records (its path, '/' as '__')."""
    return schedules / name.replace("/", "__")


def searched_chooser(schedules: Path | None, name: str, device: str) -> tuple[Chooser, dict[str, str]]:
    """A chooser giving each region the fastest schedule its search admitted on this device (the
    default where none), and which regions it found one for."""
    found: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
    if schedules is not None:
        for attempt in read_attempts(run_folder(schedules, name) / "attempts.jsonl"):
            usable = attempt.admitted and attempt.median_ms is not None and not attempt.written_ptx
            if usable and attempt.device == device:  # written PTX's time is not its schedule's
                key = (attempt.region, attempt.ir_hash, attempt.target)
                if key not in found or attempt.median_ms < found[key][0]:
                    found[key] = (attempt.median_ms, attempt.schedule)
    used: dict[str, str] = {}

    def choose(kernel: Any, target: Target) -> Schedule:
        hit = found.get((kernel.name, text_hash(format_kernel(kernel)), target.name))
        if hit is None:
            return default_schedule(kernel, target)
        used[kernel.name] = "search"
        return schedule_from_dict(hit[1])

    return choose, used


# ---- phase 1: in a pool

def _versions() -> dict[str, str]:
    """The attempt records' library versions, and triton's (torch.compile's code generator)."""
    found = versions()
    with contextlib.suppress(ImportError):
        import triton

        found["triton"] = triton.__version__
    return found


def row_key(problem_source: str, module_source: str, device: str, reps: int, compiled: bool) -> str:
    """What a measurement depends on: the problem, our module (its PTX, launcher and glue), the
    project's code (the checks and the timing), the device, the library versions and how it was
    timed."""
    parts = [problem_source, module_source, sources_hash(), device, json.dumps(_versions(), sort_keys=True),
             str(reps), str(compiled)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Capture, lower, emit and check one problem; compile its baseline into the shared cache.
    Returns its row (with `cached` where it was measured before)."""
    path, name, out = Path(job["path"]), job["name"], Path(job["out"])
    row: dict[str, Any] = {"problem": name}
    device = torch.cuda.get_device_name()
    try:
        choose, used = searched_chooser(Path(job["schedules"]) if job["schedules"] else None, name, device)
        full = build(path, None, choose)
    except (LoweringError, ScheduleError) as err:
        return {**row, "not_lowered": str(err)}
    row["schedules"] = {k: used.get(k, "default") for k in full.kernels}
    key = row_key(path.read_text(), full.source, device, job["reps"], job["compile"])
    module = out / "cache" / "modules" / f"{name.replace('/', '__')}.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(full.source)
    cached = out / "cache" / "rows" / f"{key}.json"
    if cached.exists() and not job["fresh"]:
        return {**json.loads(cached.read_text()), "cached": True}
    row.update(key=key, module=str(module))
    row["odd"] = check(path, odd_sizes(path), CHECK_SEEDS["odd"])  # default schedules: tails and broadcasts
    row["full"] = check_built(full, CHECK_SEEDS["full"])
    if job["compile"]:
        _warm_compile(full)
    return row


def _warm_compile(built: Built) -> None:
    """Compiled code into the shared cache; no autotuning choice made here (on a shared GPU) is
    kept (the cache key ignores this setting, so the timing process still finds the code)."""
    import torch._inductor.config

    torch._inductor.config.autotune_local_cache = False
    with torch.device("cuda"):
        inputs = built.problem.inputs(TIMING_SEED)
    with torch.no_grad():
        torch.compile(built.model)(*inputs)
    torch.cuda.synchronize()


def _prepare_guarded(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return prepare(job)
    except Exception as err:  # recorded; the suite goes on
        return {"problem": job["name"], "failure": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    finally:
        captured.cache_clear()
        torch.cuda.empty_cache()


def _pool(workers: int) -> futures.ProcessPoolExecutor:
    return futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def prepare_all(jobs: list[dict[str, Any]], workers: int, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Each job's row. A job whose process dies, or which runs out of GPU memory beside the others,
    is tried once more alone; what fails then is recorded as failed."""
    rows: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    pending, alone = list(jobs), False
    while pending:
        again: list[dict[str, Any]] = []
        with _pool(1 if alone else workers) as pool:
            running = {pool.submit(_prepare_guarded, job): job for job in pending}
            for done in futures.as_completed(running):
                job = running[done]
                try:
                    row = done.result()
                except futures.process.BrokenProcessPool:
                    row = {"problem": job["name"], "failure": "its process died"}
                if not alone and any(sign in row.get("failure", "") for sign in RETRIED_ALONE):
                    again.append(job)
                    log(f"[prepare] {job['name']}: {row['failure'][:80]}; tried again alone")
                    continue
                rows[job["name"]] = row
                log(f"[prepared {len(rows)}/{len(jobs)}, {time.perf_counter() - started:.0f} s] {job['name']}: "
                    f"{_prepared_status(row)}")
        pending, alone = (again, True) if not alone else ([], True)
    return rows


def _prepared_status(row: dict[str, Any]) -> str:
    if "not_lowered" in row:
        return "not lowered: " + row["not_lowered"][:200]
    if "failure" in row:
        return "FAILED: " + row["failure"][:300]
    if row.get("cached"):
        return "measured before (cached)"
    return f"check {'pass' if row['odd']['passed'] and row['full']['passed'] else 'FAIL'}"


# ---- phase 2: timing, alone on the GPU

def ceilings(flush: torch.Tensor, reps: int) -> dict[str, Any]:
    """The measured ceilings: device-to-device copy, and matrix products per dtype (cuBLAS)."""
    from verify.timing import copy_bandwidth, matmul_rate

    rates = {label: matmul_rate("cuda", flush, dtype, reps) / 1e12 for label, dtype in MATMUL_DTYPES.items()}
    return {"copy": copy_bandwidth("cuda", reps, flush, COPY_BYTES), "matmul_tflops": rates}


def time_problem(row: dict[str, Any], path: Path, flush: torch.Tensor, reps: int, compiled: bool) -> dict[str, Any]:
    from verify.timing import flops_of, summary, tensor_bytes, time_queued_ms

    problem = load_problem(path)
    module = load_model_new(Path(row["module"]).read_text())
    with torch.device("cuda"):
        model = problem.model()
        new = module.ModelNew(*problem.init_inputs())
        inputs = problem.inputs(TIMING_SEED)
    new.reference.load_state_dict(model.state_dict())
    candidates: dict[str, Callable[[], Any]] = {"ours": lambda: new(*inputs), "eager": lambda: model(*inputs)}
    if compiled:
        fast = torch.compile(model)
        candidates["torch.compile"] = lambda: fast(*inputs)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    with torch.no_grad(), _without_gc():
        outputs = flatten_tensors(model(*inputs))
        for _ in range(2):  # interleaved: each timed in turn, twice
            for name, fn in candidates.items():
                times[name] += time_queued_ms(fn, reps, flush)
    io_bytes = tensor_bytes(flatten_tensors(inputs) + outputs + [*model.parameters(), *model.buffers()])
    result = {name: summary(values) for name, values in times.items()}
    for stats in result.values():
        stats["gb_per_s"] = io_bytes / (stats["median_ms"] * 1e-3) / 1e9
    dtype = next(str(t.dtype).removeprefix("torch.") for t in flatten_tensors(inputs) if t.is_floating_point())
    return {"io_bytes": io_bytes, "flops": flops_of(model, inputs), "dtype": dtype, "times": result}


@contextlib.contextmanager
def _without_gc() -> Any:
    """No garbage collection pause inside a timed call (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def speed_of_light(row: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, Any]:
    """The least time the problem can take at the measured ceilings (bytes moved once at the copy
    bandwidth, FLOPs at the matrix rate of its dtype), which of the two binds, and each
    candidate's fraction of it."""
    memory_ms = row["io_bytes"] / (ceiling["copy"]["gb_per_s"] * 1e9) * 1e3
    rate = ceiling["matmul_tflops"].get(row["dtype"], ceiling["matmul_tflops"]["bfloat16"])
    compute_ms = row["flops"] / (rate * 1e12) * 1e3
    floor = max(memory_ms, compute_ms)
    return {"floor_ms": floor, "bound": "compute" if compute_ms > memory_ms else "memory",
            "fraction": {name: floor / stats["median_ms"] for name, stats in row["times"].items()}}


# ---- the whole suite

def problem_paths(suite: Path, match: tuple[str, ...]) -> list[Path]:
    if not suite.is_dir():
        raise BenchError(f"{suite}: not a folder of problems")
    paths = [p for p in sorted(suite.rglob("*.py"))
             if not match or any(m in str(p.relative_to(suite)) for m in match)]
    if not paths:
        raise BenchError(f"{suite}: no problem file (*.py){' matches ' + ', '.join(match) if match else ''}")
    return paths


def require_gpu() -> str:
    try:
        available = torch.cuda.is_available()
    except Exception as err:  # a driver that cannot be loaded
        raise BenchError(f"ptxgen bench needs a CUDA GPU: {err}") from None
    if not available:
        raise BenchError("ptxgen bench needs a CUDA GPU, and torch sees none (lowering, proofs and emulation "
                         "work without one: ptxgen lower, prove, emulate)")
    return torch.cuda.get_device_name()


def environment(device: str) -> dict[str, Any]:
    return {"device": device, "target": default_target().name, "host": platform.node(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(), "sources": sources_hash()}


@functools.lru_cache(maxsize=1)
def sources_hash() -> str:
    """A hash of the project's own sources (ir, ptxgen, verify, agents): which code measured."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in ("ir", "ptxgen", "verify", "agents"):
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".lark") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\x00" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_bench(options: BenchOptions) -> dict[str, Any]:
    device = require_gpu()
    paths = problem_paths(options.suite, options.match)
    cache = options.out / "cache"
    (cache / "rows").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((cache / "inductor").resolve()))
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # the pool is the parallelism
    started = time.perf_counter()
    names = {p: str(p.relative_to(options.suite).with_suffix("")) for p in paths}
    schedules = options.schedules
    if options.optimize_s > 0:
        schedules = search_all(paths, names, options)
    jobs = [{"path": str(p), "name": names[p], "out": str(options.out), "reps": options.reps,
             "compile": options.compile, "fresh": options.fresh,
             "schedules": str(schedules) if schedules else ""} for p in paths]
    options.log(f"{device}: {len(jobs)} problems; preparing in {options.workers} processes")
    prepared = prepare_all(jobs, options.workers, options.log)
    _forget_autotuning(Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]))
    from verify.timing import flush_buffer

    flush = flush_buffer("cuda")
    results: dict[str, Any] = {"environment": environment(device), "options": {
        "reps": options.reps, "compile": options.compile, "workers": options.workers,
        "schedules": str(schedules) if schedules else None, "optimize_s": options.optimize_s,
        "eager_slack": EAGER_SLACK},
        "ceilings": ceilings(flush, options.reps), "problems": [],
        "load_average": {"timing_start": os.getloadavg()}}  # other work on the host shows as noisy times
    options.log(f"copy {results['ceilings']['copy']['gb_per_s']:,.0f} GB/s; matrix products "
                + ", ".join(f"{k} {v:,.0f} TFLOP/s" for k, v in results["ceilings"]["matmul_tflops"].items()))
    for index, path in enumerate(paths):
        row = _timed_row(prepared[names[path]], path, flush, options, results["ceilings"], cache)
        results["problems"].append(row)
        options.log(f"[timed {index + 1}/{len(paths)}, {time.perf_counter() - started:.0f} s] {_timed_status(row)}")
        write_results(options.out, results)
    from verify.timing import copy_bandwidth

    results["ceilings"]["copy_after"] = copy_bandwidth("cuda", options.reps, flush, COPY_BYTES)
    results["load_average"]["timing_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - started
    write_results(options.out, results)
    return results


def search_all(paths: list[Path], names: dict[Path, str], options: BenchOptions) -> Path:
    """`ptxgen optimize` on each problem for `optimize_s` seconds, into OUT/runs (a run there is
    resumed: nothing recorded is evaluated again); returns the folder of runs."""
    from agents import OptimizeError
    from agents.supervisor import OptimizeOptions, Supervisor

    runs = options.out / "runs"
    search = OptimizeOptions(default_target(), budget_s=options.optimize_s, final_check=False,
                             log=lambda line: None)
    for index, path in enumerate(paths):
        try:
            report = Supervisor(path, run_folder(runs, names[path]), search).run()
            found = ", ".join(f"{r['region']}: {r['attempts']} tried" for r in report["regions"])
        except (OptimizeError, LoweringError, ScheduleError) as err:
            found = f"not searched: {err}"
        options.log(f"[searched {index + 1}/{len(paths)}] {names[path]}: {found}")
    return runs


def _timed_row(row: dict[str, Any], path: Path, flush: torch.Tensor, options: BenchOptions,
               ceiling: dict[str, Any], cache: Path) -> dict[str, Any]:
    if "not_lowered" in row or "failure" in row or row.get("cached"):
        return row
    try:
        row.update(time_problem(row, path, flush, options.reps, options.compile))
        row["speed_of_light"] = speed_of_light(row, ceiling)
        row["measured"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        row["copy_gb_per_s"] = ceiling["copy"]["gb_per_s"]
    except Exception as err:  # recorded; the suite goes on
        return {**row, "failure": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    finally:
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    (cache / "rows" / f"{row['key']}.json").write_text(json.dumps(row))
    return row


def _timed_status(row: dict[str, Any]) -> str:
    if "times" not in row:
        return f"{row['problem']}: {_prepared_status(row)}"
    t = row["times"]
    line = f"{row['problem']}: ours {t['ours']['median_ms']:.3f} ms, eager {t['eager']['median_ms']:.3f}"
    if "torch.compile" in t:
        line += f", compile {t['torch.compile']['median_ms']:.3f}"
    return line + (" (cached)" if row.get("cached") else "")


def _forget_autotuning(inductor_cache: Path) -> None:
    """Drop the autotuning choices phase 1 made on a shared GPU: the timing process makes them
    again alone (the compiled code stays cached)."""
    for found in inductor_cache.rglob("*.best_config"):
        found.unlink(missing_ok=True)


def write_results(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n")


def main_bench(options: BenchOptions) -> int:
    from ptxgen.bench_report import write_report

    try:
        results = run_bench(options)
    except BenchError as err:
        print(f"ptxgen bench: {err}", file=sys.stderr)
        return 2
    write_report(results, options.out)
    options.log(f"{options.out / RESULTS_FILE}, results.md, speedup.svg, speed_of_light.svg")
    return 0
