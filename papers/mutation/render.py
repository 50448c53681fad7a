"""results.json -> README.md: random single-instruction mutants of suite kernels and the first
check that caught each. Every number comes from results.json.

    python papers/mutation/render.py [RESULTS_JSON] [OUT_MD]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GATES = ("ptxas", "z3 memory obligations", "emulator (error)", "emulator (mismatch)", "emulator (inconclusive)",
         "z3 output values", "output values: a concrete witness", "proved equivalent", "survived")
# Why a survivor's value proof is open, by a phrase of the prover's reason.
OPEN_BECAUSE = (
    ("values of reductions are not modelled", "the reduction's value is not proved (reductions are not modelled)"),
    ("another reduction's result", "the reduction's terms use another reduction's result (not modelled yet)"),
    ("other than the innermost axes", "a reduction along a middle axis (not modelled yet)"),
    ("across the CTAs of a cluster", "a reduction across the CTAs of a cluster (not modelled yet)"),
    ("its values are not modelled yet", "an argmax or argmin, whose values are not modelled"),
    ("chosen under different conditions", "an argmax's value and index chosen under different conditions (one of "
     "its selects dropped or changed): not modelled"),
    ("not the start", "an argmax's start pair made other constants: not modelled"),
    ("none its operands' trees hold", "a combine of argmax pairs that the solver faults only at pairs its "
     "operands cannot hold: not refuted"),
    ("whose trees share an element", "a combine of argmax pairs whose trees share an element: not refuted"),
    ("no position of the thread's own", "an argmax's index computed from data: not modelled"),
    ("module-scope globals", "the kernel is outside the prover (a workspace shared by CTAs)"),
    ("through a workspace only where", "a workspace that several CTAs fill (its values followed for one CTA only)"),
    ("abstracted", "the change reaches the output only through an approximate instruction the prover leaves free"),
    ("gave up", "the solver gave up on the values"),
    ("is not shown to be the IR's element (sat)", "a term of the tree differs from the IR's element where another "
     "reduction's result, free in the query, takes some value; the real result may never take it (a row's max is at "
     "least each element), so nothing is refuted"),
    ("is not shown to be the IR's element (unknown)", "the solver gave up on a term of the tree"),
    ("terms of another form", "the tree has a term or an add of another form than the sum's (a rounding other "
     "than to nearest, a sub): not a sum of the IR's terms in some order, and not refuted either"),
    ("that no reduction computed", "a value shuffled or passed through shared memory is no tree of the sum (an add "
     "of another rounding or a sub made it): not followed"),
    ("misses", "a tree holds part of a row, which a kernel that combines partial results may mean: not refuted"),
    ("depends on data", "whether a thread loads or stores depends on data: coverage is not decided"),
    ("neither affine", "a store's offset is of a form the coverage proof does not follow"),
)


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if whole else "0"


CAUGHT = frozenset({"ptxas", "z3 memory obligations", "emulator (error)", "emulator (mismatch)", "z3 output values",
                    "output values: a concrete witness"})
EQUIVALENT = "proved equivalent"


def _by_operator(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| operator | mutants | caught | proved equivalent | caught of the rest | not checked (emulator: not "
             "modelled) | survived, line ran | survived, line never ran |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for operator in sorted({r["operator"] for r in rows}):
        mine = [r for r in rows if r["operator"] == operator]
        caught = sum(r["gate"] in CAUGHT for r in mine)
        equivalent = sum(r["gate"] == EQUIVALENT for r in mine)
        unchecked = sum(r["gate"] == "emulator (inconclusive)" for r in mine)
        survived = [r for r in mine if r["gate"] == "survived"]
        ran = sum(r["line_ran"] for r in survived)
        lines.append(f"| {operator} | {len(mine)} | {caught} | {equivalent} | "
                     f"{_share(caught, len(mine) - equivalent)} | {unchecked} | {ran} | {len(survived) - ran} |")
    return lines


def _open_because(reason: str) -> str:
    return next((why for phrase, why in OPEN_BECAUSE if phrase in reason), reason or "(no reason recorded)")


def _change(row: dict[str, Any]) -> str:
    change = row.get("change")
    if not change:
        return "not measured"
    if "error" in change:
        return f"not measured: {change['error']}"
    if not change["elements_changed"]:
        return "the same bits as the unmutated kernel on every output of both input sets"
    return (f"{change['elements_changed']} of {change['elements']} output elements change, by at most "
            f"{change['largest_relative_change']:.1e} relative: inside the emulator check's tolerance")


def _survivor(row: dict[str, Any]) -> str:
    ran = "" if row["line_ran"] else " No thread runs the line with its guard true at these shapes."
    return (f"| `{row['kernel']}` | {row['line']} | `{row['before']}` | `{row['after']}` | "
            f"{_open_because(row['reason'])}; emulator: {_change(row)}.{ran} |")


def _survivor_summary(survived: list[dict[str, Any]]) -> list[str]:
    why = Counter(_open_because(r["reason"]) for r in survived)
    same = sum(1 for r in survived if r.get("change", {}).get("elements_changed") == 0)
    return [f"- {count} × {reason}" for reason, count in why.most_common()] + [
        f"- of all {len(survived)}: {same} give the same bits as the unmutated kernel on both input sets (equal "
        f"there, whether or not equal everywhere); {len(survived) - same} change outputs within the tolerance"]


def render(results: dict[str, Any]) -> str:
    env, rows = results["environment"], results["mutants"]
    gates = Counter(r["gate"] for r in rows)
    survived = [r for r in rows if r["gate"] == "survived"]
    caught = sum(r["gate"] in CAUGHT for r in rows)
    equivalent = gates.get(EQUIVALENT, 0)
    wrong = len(rows) - equivalent
    lines = [
        "# Mutation testing: what the checks catch", "",
        "Generated by `papers/mutation/render.py` from `results.json` (written by `papers/mutation/run.py`); "
        "no number here is typed by hand.", "",
        f"- Run {env['date']} on {env['device']}, Python {env['python']}, z3 {env['z3']}; kernels of "
        f"{len({r['problem'] for r in rows})} suite problems lowered for {env['target']} at default schedules, "
        f"size constants capped at {env['shrink']}; up to {env['per_kernel']} random single-instruction mutants "
        "per kernel (`verify/mutate.py`: an opcode swapped for a sibling, an integer nudged by one, a float "
        "constant scaled, an instruction or a guard dropped, a guard negated, two sources swapped).",
        "- Gates in order: ptxas; the Z3 memory obligations at these shapes (bounds, overlap, coverage, races, "
        "barriers, and every element of an input the IR reduces read); the CPU emulator against the IR "
        "interpreter in float64 (random inputs, then inputs with infinities, NaN and huge values), within the "
        "output dtype's tolerance; then the Z3 proof that every output value is bit for bit the IR's, and where "
        "that proof is left open, a search for a concrete witness (`verify/witness.py`: inputs on which the "
        "emulator stores a value that no order of the IR's accumulation gives, each reduction there having one "
        "value in every order; the approximate instructions, which the proof leaves free, taken as the emulator "
        "computes them, accurately rounded to float32, in the kernel and in the IR alike: one of the functions the "
        "proof's claim must hold for; bfloat16 inputs also run through all 65,536 values in turn). A mutant "
        "counts for the first gate that rejects it. One that passes every gate with every obligation proved, "
        "values included, is a right kernel at these shapes: *proved equivalent*, not a wrong kernel missed.",
        f"- {len(rows)} mutants: {equivalent} proved equivalent; of the other {wrong}, {_share(caught, wrong)} "
        f"caught, {len(survived)} survived, {gates.get('emulator (inconclusive)', 0)} not checked (the emulator "
        "does not model what the edit made). Without leaving out the proved equivalent: "
        f"{_share(caught, len(rows))} caught.", "",
        "| first gate that rejected | mutants |", "|---|---:|",
        *[f"| {gate} | {_share(gates.get(gate, 0), len(rows))} |" for gate in GATES if gates.get(gate)], "",
        *_by_operator(rows), "",
        "## Survivors", "",
        "Why each survived: the obligation its proof left open (a survivor is never proved), and what the "
        "emulator saw beside the unmutated kernel on the same inputs.", "",
        *_survivor_summary(survived), "",
        "| kernel | line | before | after | why it survived |", "|---|---:|---|---|---|",
        *[_survivor(r) for r in survived], "",
        "## Proved equivalent", "",
        "| kernel | line | before | after |", "|---|---:|---|---|",
        *[f"| `{r['kernel']}` | {r['line']} | `{r['before']}` | `{r['after']}` |" for r in rows
          if r["gate"] == EQUIVALENT],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else HERE / "results.json"
    target = Path(argv[2]) if len(argv) > 2 else HERE / "README.md"
    target.write_text(render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
