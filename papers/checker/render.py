"""results.json -> README.md: the empirical checker on the cheat corpus, on every suite problem's
drop-in ModelNew and on every problem's own Model. Every number comes from results.json.

    python papers/checker/render.py [RESULTS_JSON] [OUT_MD]
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHEATS = REPO / "tests" / "cheats"
PROBLEMS = REPO / "datasets" / "problems"
REPEAT_LIMIT = 0.02


def what_it_does(name: str) -> str:
    path = CHEATS / f"{name}.py"
    if not path.exists():
        return "generated: ptxgen's own drop-in with every `bar.sync` deleted from its PTX"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split()).replace("|", "\\|")


def last_line(text: str) -> str:
    """An error's last line (the exception), without the traceback before it."""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def environment_lines(results: dict[str, Any]) -> list[str]:
    envs = results["environments"]
    devices = sorted({e["device"] for e in envs})
    dates = sorted(e["date"] for e in envs)
    return [f"- Device: {', '.join(devices)} (target {envs[0]['target']}); torch {envs[0]['torch']}, CUDA "
            f"{envs[0]['cuda']}; runs from {dates[0]} to {dates[-1]}."]


def corpus_table(rows: list[dict[str, Any]]) -> list[str]:
    caught = sum(r["caught"] for r in rows)
    lines = [f"## The cheat corpus: {caught} of {len(rows)} caught for the expected reasons", "",
             "A cheat is caught when every reason it is expected to be rejected for is among the reasons the "
             "check gives (static reasons come from reading the source, the others from running it).", "",
             "| Cheat | What it does | Problem | Expected | Reasons given | Caught |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['name']}` | {what_it_does(r['name'])} | `{Path(r['reference']).stem}` | "
                     f"{', '.join(r['expected'])} | {', '.join(r['got'])} | {'yes' if r['caught'] else '**no**'} |")
    return lines + [""]


def suite_table(rows: list[dict[str, Any]]) -> list[str]:
    checked = [r for r in rows if r["verdict"] in ("accepted", "rejected")]
    accepted = [r for r in checked if r["verdict"] == "accepted"]
    timed = [r for r in accepted if "median_ms" in r["report"].get("timing", {}).get("candidate", {})]
    deltas = [r["report"]["timing"]["candidate"]["repeat_delta"] for r in timed]
    within = sum(d <= REPEAT_LIMIT for d in deltas)
    fewest = min((len([t for t in r["report"]["trials"] if "passed" in t]) for r in checked), default=0)
    lines = [f"## ptxgen's drop-ins: {len(accepted)} of {len(checked)} accepted", "",
             f"Every suite problem lowered at default schedules (`ptxgen lower`) and its `model_new.py` checked "
             f"whole: static checks, at least {fewest} trials, timing beside eager PyTorch, the speed-of-light "
             "floor. The speed-of-light column is the floor's time over ours: the floor moves every byte once at "
             "the copy bandwidth, so kernels that mostly read can pass 100%; the check rejects below "
             "80% of the floor's time (above 125% here).", ""]
    if deltas:
        lines += [f"Repeatability: the candidate's median in the first and the second timing round agree within "
                  f"{REPEAT_LIMIT:.0%} for {within} of {len(deltas)} problems (largest difference "
                  f"{max(deltas):.2%}).", ""]
    call_by_call = sum("round_sm_clock_mhz" in r["report"] for r in timed)
    if timed:
        lines += [f"{call_by_call} of {len(timed)} were timed with candidate and baselines interleaved call by call "
                  "within each round and the SM clock read at the start and the end of each round (the SM clock "
                  "column, MHz, blank where NVML could not be read); the others, from an earlier run, ran each "
                  "function's calls of a round as a block.", ""]
    other = [r for r in rows if r not in checked]
    if other:
        lines += ["Not checked: " + "; ".join(f"`{r['name']}` ({r['verdict']}: {cell(row_error(r))[:200]})"
                                             for r in other), ""]
    lines += ["| Problem | Verdict | Ours (us) | Eager (us) | Speedup | torch.compile (us) | Speedup | Speed of "
              "light | Rounds differ | SM clock | Notes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in checked:
        report = r["report"]
        timing = report.get("timing", {})
        ours, eager, compiled = (timing.get(n, {}) for n in ("candidate", "eager", "torch.compile"))
        speedup = report.get("speedup", {})
        sol = report.get("speed_of_light", {})
        notes = [f"{x['code']}: {x['message']}" for x in report["reasons"]] + report.get("flags", [])
        lines.append(
            f"| `{r['name']}` | {r['verdict']} | {fmt(ours.get('median_ms'), 1e3, '.1f')} | "
            f"{fmt(eager.get('median_ms'), 1e3, '.1f')} | {fmt(speedup.get('eager'), 1, '.2f')} | "
            f"{fmt(compiled.get('median_ms'), 1e3, '.1f') or cell(compiled.get('error', ''))[:80]} | "
            f"{fmt(speedup.get('torch.compile'), 1, '.2f')} | "
            f"{fmt(sol.get('fraction'), 100, '.0f')}{'%' if sol else ''} | "
            f"{fmt(ours.get('repeat_delta'), 100, '.2f')}{'%' if ours else ''} | {clocks(report)} | "
            f"{cell('; '.join(notes))[:300]} |")
    return lines + [""]


def clocks(report: dict[str, Any]) -> str:
    """The SM clock at the start and the end of each timing round, e.g. "1980-1980, 1980-1755"."""
    rounds = report.get("round_sm_clock_mhz", [])
    if not rounds or any(v is None for pair in rounds for v in pair):
        return ""
    return ", ".join(f"{a}-{b}" for a, b in rounds)


def row_error(row: dict[str, Any]) -> str:
    text = row.get("error") or row.get("report", {}).get("error") or "; ".join(map(str, row.get("reasons", [])))
    return last_line(text)


def fmt(value: float | None, scale: float, spec: str) -> str:
    return "" if value is None else format(value * scale, spec)


def models_table(rows: list[dict[str, Any]]) -> list[str]:
    accepted = [r for r in rows if r["verdict"] == "accepted"]
    lines = [f"## Each problem's own Model as the candidate: {len(accepted)} of {len(rows)} accepted", "",
             "`ModelNew = Model`, checked without static checks (it runs the reference's ops by definition) and "
             "without timing: no runtime check may reject the reference itself.", ""]
    rejected = [r for r in rows if r["verdict"] != "accepted"]
    for r in rejected:
        reasons = r.get("report", {}).get("reasons") or [{"code": r["verdict"], "message": r.get("error", "")}]
        lines.append(f"- `{r['name']}`: {r['verdict']}: " + cell("; ".join(f"{x['code']}: {last_line(x['message'])}"
                                                                           for x in reasons))[:400])
    flagged = [(r["name"], f) for r in accepted for f in r["report"].get("flags", [])]
    if flagged:
        lines += ["", "Notes on accepted ones:", ""] + [f"- `{name}`: {flag}" for name, flag in flagged]
    return lines + [""]


def not_run(rows: list[dict[str, Any]]) -> list[str]:
    """Suite problems with no row in a part: not checked by any run in results.json."""
    names = sorted(str(p.relative_to(PROBLEMS).with_suffix("")) for p in PROBLEMS.rglob("*.py"))
    lines = []
    for part, title in (("suite", "drop-ins"), ("models", "own Models")):
        seen = {r["name"] for r in rows if r["part"] == part}
        missing = [n for n in names if n not in seen]
        if missing:
            groups = sorted({n.split("/")[0] for n in missing})
            lines.append(f"- Not run yet ({title}): {len(missing)} of {len(names)} problems, in "
                         + ", ".join(f"{g}/ ({sum(n.startswith(g + '/') for n in missing)})" for g in groups) + ".")
    sys.path.insert(0, str(CHEATS))
    from corpus import CHEATS as CORPUS

    seen = {r["name"] for r in rows if r["part"] == "corpus"}
    missing = [c.name for c in CORPUS if c.name not in seen]
    if missing:
        lines.append(f"- Not run yet (cheat corpus): {', '.join(f'`{m}`' for m in missing)}.")
    return lines + ([""] if lines else [])


def render(results: dict[str, Any]) -> str:
    rows = results["rows"]
    parts = {p: [r for r in rows if r["part"] == p] for p in ("corpus", "suite", "models")}
    lines = ["# The empirical checker: cheats caught, legitimate kernels accepted", "",
             "Generated by `papers/checker/render.py` from `results.json` (written by `papers/checker/run.py`); "
             "no number here is typed by hand.", ""]
    lines += environment_lines(results)
    lines += ["- Each check runs in a process of its own (`ptxgen check`, verify/check.py): five trials or more "
              "with fresh inputs (the problem's own distribution, a wide one with negatives and outliers, one "
              "crowded at the op's breakpoints), the allocator poisoned before each run, inputs in guard bands at "
              "fixed addresses and written behind a sleep on the current stream, two runs per trial with different "
              "poison, float64 references; then timing interleaved with eager PyTorch (and torch.compile where its "
              "column has a figure), input contents rotated under fixed addresses, every timed output checked, the L2 "
              "flushed before each run, and a speed-of-light floor from the measured copy bandwidth.", ""]
    lines += not_run(rows)
    if parts["corpus"]:
        lines += corpus_table(parts["corpus"])
    if parts["suite"]:
        lines += suite_table(parts["suite"])
    if parts["models"]:
        lines += models_table(parts["models"])
    return "\n".join(lines)


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "README.md"
    target.write_text(render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
