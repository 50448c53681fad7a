"""On the GPU: two builds of the same problems side by side, each problem's drop-in modules
(model_new.py, written by `ptxgen lower` from two source trees) checked against Model in float64 and
timed in turn with eager PyTorch, twice, with the copy bandwidth measured in the same run. Writes
results.json after every problem.

    python papers/exp_formula/run.py --before DIR --after DIR --out DIR [--match PARTS]

DIR holds one folder per problem (its path below datasets/problems with '/' as '__'), each with
the model_new.py that `ptxgen lower PROBLEM --out FOLDER` wrote. The folders are made on the CPU:

    ptxgen lower datasets/problems/rowsweep/softmax_f32_262144.py --out before/rowsweep__softmax_f32_262144
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend.problem import load_problem  # noqa: E402
from ir.frontend.program import flatten_tensors  # noqa: E402
from ptxgen.bench import environment, max_error, require_gpu, tolerance_for  # noqa: E402
from ptxgen.emit import load_model_new  # noqa: E402
from verify.timing import copy_bandwidth, flush_buffer, summary, tensor_bytes, time_queued_ms  # noqa: E402

SUITE = REPO / "datasets" / "problems"
BUILDS = ("before", "after")
REPS = 30


def problem_path(folder: str) -> Path:
    return SUITE / (folder.replace("__", "/", 1) + ".py")


def loaded(path: Path, name: str, model: torch.nn.Module, init: list[Any]) -> Any:
    """The ModelNew of a model_new.py on the GPU, holding Model's parameters."""
    with torch.device("cuda"):
        new = load_model_new(path.read_text(), f"model_new_{name}").ModelNew(*init)
    new.reference.load_state_dict(model.state_dict())
    return new


def modules(folder: str, dirs: dict[str, Path], model: torch.nn.Module, init: list[Any]) -> dict[str, Any]:
    return {build: loaded(dirs[build] / folder / "model_new.py", build, model, init) for build in BUILDS}


def errors(problem: Any, model: torch.nn.Module, built: dict[str, Any]) -> dict[str, Any]:
    with torch.device("cuda"):
        inputs = problem.inputs(11)
    wide = [x.double() if x.is_floating_point() else x for x in inputs]
    with torch.no_grad():
        reference = flatten_tensors(copy.deepcopy(model).double()(*wide))
        eager = max(max_error(o, r) for o, r in zip(flatten_tensors(model(*inputs)), reference))
        found = {b: max(max_error(o, r) for o, r in zip(flatten_tensors(m(*inputs)), reference))
                 for b, m in built.items()}
    dtype = next(t.dtype for t in inputs if t.is_floating_point())
    tolerance = tolerance_for(dtype, eager)
    return {"eager": eager, "tolerance": tolerance, **found, "passed": all(e <= tolerance for e in found.values())}


def timing(problem: Any, model: torch.nn.Module, built: dict[str, Any], flush: torch.Tensor) -> dict[str, Any]:
    with torch.device("cuda"):
        inputs = problem.inputs(7)
    candidates = {**{b: (lambda m=m: m(*inputs)) for b, m in built.items()}, "eager": lambda: model(*inputs)}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    with torch.no_grad():
        outputs = flatten_tensors(model(*inputs))
        for _ in range(2):  # interleaved: each timed in turn, twice
            for name, fn in candidates.items():
                times[name] += time_queued_ms(fn, REPS, flush)
    io_bytes = tensor_bytes(flatten_tensors(inputs) + outputs + list(model.parameters()))
    rows = {name: summary(t) for name, t in times.items()}
    for stats in rows.values():
        stats["gb_per_s"] = io_bytes / (stats["median_ms"] * 1e-3) / 1e9
    return {"io_bytes": io_bytes, "times": rows}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    parser.add_argument("--note", default="", help="what differs between the two builds")
    args = parser.parse_args()
    dirs = {"before": args.before, "after": args.after}
    folders = sorted(p.name for p in args.before.iterdir() if (args.after / p.name / "model_new.py").exists())
    parts = [m for m in args.match.split(",") if m]
    folders = [f for f in folders if not parts or any(m in f for m in parts)]
    flush = flush_buffer("cuda")
    results: dict[str, Any] = {"environment": environment(require_gpu()), "note": args.note,
                               "copy": copy_bandwidth("cuda", 20, flush, 2**30), "problems": {}}
    measure_each(folders, lambda folder, model, init: modules(folder, dirs, model, init), args.out, results, flush)
    return 0


def measure_each(folders: list[str], build: Callable[[str, torch.nn.Module, list[Any]], dict[str, Any]],
                 out: Path, results: dict[str, Any], flush: torch.Tensor) -> None:
    """Each folder's problem: its modules (`build(folder, model, init_inputs)`, by name) checked
    and timed beside eager, OUT/results.json written after every problem, then the copy
    bandwidth measured again."""
    out.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        problem = load_problem(problem_path(folder))
        with torch.device("cuda"):
            model = problem.model()
        built = build(folder, model, problem.init_inputs())
        row = {"check": errors(problem, model, built), **timing(problem, model, built, flush)}
        results["problems"][folder] = row
        times = ", ".join(f"{name} {stats['median_ms']:.3f} ms" for name, stats in row["times"].items())
        print(f"{folder}: {times}; passed {row['check']['passed']}", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    results["copy_after"] = copy_bandwidth("cuda", 20, flush, 2**30)
    (out / "results.json").write_text(json.dumps(results, indent=1))


def built_modules(folder: str, builds: Path, names: tuple[str, ...], model: torch.nn.Module,
                  init: list[Any]) -> dict[str, Any]:
    """The problem's module of each named build that has one (BUILDS/NAME/FOLDER/model_new.py)."""
    paths = {name: builds / name / folder / "model_new.py" for name in names}
    return {name: loaded(path, name, model, init) for name, path in paths.items() if path.exists()}


def measure_builds(builds: Path, names: tuple[str, ...], out: Path, match: str) -> None:
    """Every problem folder of the first build (those `match`'s comma-separated parts name, if
    any) timed in each named build beside eager, with the copy bandwidth before and after."""
    parts = [m for m in match.split(",") if m]
    folders = sorted(p.name for p in (builds / names[0]).iterdir()
                     if p.is_dir() and (not parts or any(m in p.name for m in parts)))
    flush = flush_buffer("cuda")
    results: dict[str, Any] = {"environment": environment(require_gpu()),
                               "copy": copy_bandwidth("cuda", 20, flush, 2**30), "problems": {}}
    measure_each(folders, lambda folder, model, init: built_modules(folder, builds, names, model, init), out,
                 results, flush)


if __name__ == "__main__":
    sys.exit(main())
