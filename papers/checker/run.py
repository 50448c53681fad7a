"""On the GPU: the empirical checker (verify/check.py, `ptxgen check`) on
1. the cheat corpus (tests/cheats/corpus.py): each candidate at its GPU sizes, caught when every
   reason it is expected to be rejected for is among the check's reasons;
2. every suite problem's drop-in ModelNew from `ptxgen lower` at default schedules: the whole check,
   timing included (eager PyTorch always; torch.compile with --compile);
3. every suite problem's own Model as a candidate (`ModelNew = Model`), static checks off (it runs
   the reference's ops by definition), without timing: the runtime checks must accept it.
Each check runs in a process of its own; OUT/results.json is written after every one.

    python papers/checker/run.py --out DIR [--parts corpus,suite,models] [--match PARTS] [--jobs N] [--compile]
    python papers/checker/run.py --out papers/checker --merge A.json B.json ...
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "cheats")]

from corpus import CHEATS, Cheat, candidate_path  # noqa: E402

from ir.frontend import capture, load_problem  # noqa: E402
from ptxgen.manifest import unlowered, write_lowered  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402
from verify.check import CheckOptions, check, reason_codes  # noqa: E402

PROBLEMS = REPO / "datasets" / "problems"
PARTS = ("corpus", "suite", "models")


def problem_name(path: Path) -> str:
    return str(path.relative_to(PROBLEMS).with_suffix(""))


def corpus_row(cheat: Cheat, folder: Path) -> dict[str, Any]:
    candidate = candidate_path(cheat, cheat.gpu_sizes, folder, default_target().name)
    report = check(candidate, cheat.reference, CheckOptions(sizes=cheat.gpu_sizes, compile=False, timeout_s=300))
    got = reason_codes(report)
    return {"part": "corpus", "name": cheat.name, "reference": str(cheat.reference.relative_to(REPO)),
            "expected": sorted(cheat.expected), "got": sorted(got), "caught": cheat.expected <= got,
            "verdict": report["verdict"], "report": report}


def suite_row(path: Path, folder: Path, with_compile: bool) -> dict[str, Any]:
    name = problem_name(path)
    row: dict[str, Any] = {"part": "suite", "name": name}
    problem = load_problem(path)
    out = folder / name.replace("/", "__")
    with torch.device("cuda"):
        program = capture(problem)
    manifest = write_lowered(program, default_target(), out, path, problem.overrides)
    missing = unlowered(manifest)
    if missing or "model_new" not in manifest:
        return {**row, "verdict": "not lowered", "reasons": [m["reason"] for m in missing]}
    report = check(out / "model_new.py", path, CheckOptions(compile=with_compile, timeout_s=600))
    return {**row, "verdict": report["verdict"], "report": report}


def model_row(path: Path, folder: Path) -> dict[str, Any]:
    name = problem_name(path)
    candidate = folder / f"model_{name.replace('/', '__')}.py"
    candidate.write_text(path.read_text() + "\n\nModelNew = Model\n")
    report = check(candidate, path, CheckOptions(timing=False, timeout_s=600), static=False)
    return {"part": "models", "name": name, "verdict": report["verdict"], "report": report}


def environment() -> dict[str, Any]:
    return {"device": torch.cuda.get_device_name(), "target": default_target().name,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "cuda": torch.version.cuda}


def write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


def merge(files: list[Path]) -> dict[str, Any]:
    """Rows of several runs, keyed by part and name (a later file's row replaces an earlier one's)."""
    runs = [json.loads(f.read_text()) for f in files]
    rows = {(r["part"], r["name"]): r for run in runs for r in run["rows"]}
    return {"environments": [e for run in runs for e in run.get("environments", [run.get("environment")]) if e],
            "rows": sorted(rows.values(), key=lambda r: (PARTS.index(r["part"]), r["name"]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--merge", type=Path, nargs="+", help="merge these results files into OUT/results.json")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--match", default="", help="comma-separated parts of problem paths or cheat names")
    parser.add_argument("--jobs", type=int, default=2, help="checks of Model candidates run at once (one that "
                        "ends in error is run again alone)")
    parser.add_argument("--compile", action="store_true", help="time torch.compile too in the suite part")
    parser.add_argument("--resume", type=Path, help="a results file of an earlier run: its rows are kept, not rerun")
    args = parser.parse_args()
    if args.merge:
        write(args.out, merge(args.merge))
        return 0
    parts = args.parts.split(",")
    matches = args.match.split(",")
    paths = [p for p in sorted(PROBLEMS.rglob("*.py")) if any(m in str(p.relative_to(PROBLEMS)) for m in matches)]
    cheats = [c for c in CHEATS if any(m in c.name for m in matches)]
    results: dict[str, Any] = {"environments": [environment()], "rows": []}
    if args.resume:
        earlier = json.loads(args.resume.read_text())
        results = {"environments": earlier["environments"] + results["environments"], "rows": earlier["rows"]}
    done = {(r["part"], r["name"]) for r in results["rows"] if r["verdict"] != "error"}
    results["rows"] = [r for r in results["rows"] if (r["part"], r["name"]) in done]
    cheats = [c for c in cheats if ("corpus", c.name) not in done]
    suite_paths = [p for p in paths if ("suite", problem_name(p)) not in done]
    paths = [p for p in paths if ("models", problem_name(p)) not in done]
    folder = Path(tempfile.mkdtemp(prefix="ptxgen-checker-"))

    def record(row: dict[str, Any], started: float) -> None:
        row["seconds"] = round(time.monotonic() - started, 2)
        results["rows"].append(row)
        print(f"[{len(results['rows'])}] {row['part']} {row['name']}: {row['verdict']}"
              + (f" caught={row['caught']} got={row['got']}" if "caught" in row else "")
              + "".join(f"\n    {r['code']}: {r['message'][:300]}" for r in row.get("report", {}).get("reasons", [])
                        if row["part"] != "corpus"), flush=True)
        write(args.out, results)

    jobs: list[tuple[Any, tuple[Any, ...]]] = []
    if "corpus" in parts:
        jobs += [(corpus_row, (c, folder)) for c in cheats]
    if "suite" in parts:
        jobs += [(suite_row, (p, folder, args.compile)) for p in suite_paths]
    for fn, fn_args in jobs:
        started = time.monotonic()
        try:
            record(fn(*fn_args), started)
        except Exception as err:  # one problem's failure is a row, not the end of the run
            record({"part": fn.__name__.removesuffix("_row"), "name": str(fn_args[0]), "verdict": "error",
                    "error": f"{type(err).__name__}: {err}"}, started)
    if "models" in parts:
        def timed(path: Path) -> tuple[dict[str, Any], float]:
            started = time.monotonic()
            return model_row(path, folder), started

        with ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(timed, paths))
        for path, (row, started) in zip(paths, rows):  # one that failed beside others (memory) is run alone
            record(timed(path)[0] if row["verdict"] == "error" else row, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
