"""results.json -> README.md: the obligations of every suite kernel (memory, output values), proved
with Z3 on a symbolic tile at production shapes. Every number comes from results.json.

    python papers/proofs/render.py [RESULTS_JSON] [OUT_MD]
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VALUES = "Output values: each stored element is compared, bit for bit (any NaN for any NaN), with the IR's " \
         "value for that element, computed in z3's IEEE arithmetic at the interpreter's precision. Ops with no " \
         "exact IEEE meaning (exp, tanh, erf, sigmoid, x**y, and the division of " \
         "approximate schedules) are the formulas of `ptxgen/mathlib.py` for the schedule's form, evaluated with " \
         "the PTX semantics, their approximate instructions uninterpreted: such a proof says the kernel computes " \
         "the formula bit for bit, and the formula's accuracy is tested numerically (`tests/test_mathlib.py`), " \
         "not proved. A reduction's value is proved modulo the order of accumulation (`verify/reductions.py`): its " \
         "tree of float32 adds (or NaN-propagating max, min), followed through shuffles and shared memory to the " \
         "threads that supplied each part, accumulates every element the IR does exactly once, each term bit for " \
         "bit the IR's; the IR's accumulated value is then one uninterpreted value per result, and the rest of " \
         "the kernel is compared bit for bit. A term that uses another reduction's result (softmax's " \
         "exponentials of x - max, layernorm's squares of x - mean) holds that result's accumulated value, the " \
         "inner tree proved the same way first. A tree across the CTAs of a cluster is followed through their " \
         "shared memory rank by rank, for clusters of up to 8192 threads; a thread's shared load of what it stored " \
         "itself (a row kept in shared memory) reads that store where no other thread's store can reach it in " \
         "between. Reductions along a middle axis are proved the same way, each row named by its first element. " \
         "In a kernel of several paths each path's stores are followed on their own. Values the last CTA " \
         "reads from a workspace are followed to the CTA whose part each is (the launch's CTAs followed thread " \
         "by thread as one group, each CTA taken in turn as the last), for launches of up to 32768 threads. " \
         "Where the IR's elements are sums of two inputs (a " \
         "residual added before a norm), the kernel's add of one element's two values is that element, a leaf. " \
         "An argmax or argmin is a tree of (value, index) pairs: each distinct combine is proved to take the " \
         "better pair, each index to be its element's position in the row. Not modelled yet (inconclusive): the " \
         "values of a workspace that more CTAs fill, reductions across larger clusters and online softmax."


def _first_open(row: dict[str, Any]) -> str:
    for status in ("refuted", "inconclusive"):
        found = next((o for o in row["obligations"] if o["status"] == status), None)
        if found:
            return f"{found['obligation']}: {found['detail']}".replace("|", "\\|")
    return ""


def _reason(obligation: dict[str, Any]) -> str:
    """An inconclusive obligation's reason, without the line numbers that make each one unique."""
    detail = obligation["detail"]
    if "not affine" in detail or "neither affine" in detail:
        return "coverage: an access whose offset is neither affine nor a sum of weighted index bits"
    if "left in the workspace" in detail and "thread by thread" in detail:
        return "a workspace that many CTAs fill: its values are followed for launches of up to 32768 threads"
    if ("workspace" in detail and "not followed" in detail) or "not shown to read the one store" in detail:
        return "a workspace load not followed to the store that holds its bytes"
    if "through the cluster window" in detail:
        return "races: accesses to other CTAs' shared memory (a cluster's) are not modelled; none among the CTA's own"
    detail = re.sub(r"a reduction \((\w+)\)", r"a reduction of \1", re.sub(r"line \d+: ", "", detail))
    return detail.split(" (")[0][:120]


def _kinds(rows: list[dict[str, Any]]) -> list[str]:
    reasons = Counter(_reason(o) for r in rows for o in r["obligations"] if o["status"] == "inconclusive")
    return [f"- {n} × {reason}" for reason, n in reasons.most_common()]


def render(results: dict[str, Any]) -> str:
    env, rows = results["environment"], results["kernels"]
    verdicts = Counter(r["verdict"] for r in rows)
    times = [r["seconds"] for r in rows]
    obligations = [o for r in rows for o in r["obligations"]]
    statuses = Counter(o["status"] for o in obligations)
    lines = [
        "# The suite's kernels proved with Z3: memory obligations and output values", "",
        "Generated by `papers/proofs/render.py` from `results.json` (written by `papers/proofs/run.py`); "
        "no number here is typed by hand.", "",
        f"- Machine: {env['device']}, {env['cores']} cores; Python {env['python']}, z3 {env['z3']}; "
        f"kernels lowered for {env['target']} at their default schedules and the problems' own shapes; "
        f"run {env['date']}.",
        "- Each kernel's PTX is parsed back from text and executed symbolically for one thread of one CTA, "
        "both symbolic (so a proof covers every thread of the launch); each obligation is one solver query: "
        "every global load and store in bounds and aligned (every execution of one instruction on its paths, "
        "such as a loop's trips, in one query; each on its own where that is not proved), inputs never stored to, "
        "every output byte "
        "written at most once (two symbolic threads) and at least once, no shared-memory race between two "
        "threads (of a CTA, ordered by its barriers; of a cluster through distributed shared memory, by cluster "
        "barriers; a load between a thread's cluster arrival and its wait meets the accesses of the epochs on "
        "both sides of that wait), no barrier that only some threads of a CTA reach; for a workspace shared by "
        "CTAs (a full "
        "reduction's parts), the last-CTA protocol (every part released by a fence of the arriving thread, the "
        "last CTA's loads after its acquire, the counter set back to 0, no unordered load meeting another CTA's "
        "store) and no two workspace stores overlapping; then the output values.",
        f"- {len(rows)} kernels: {verdicts['proved']} proved on every obligation, "
        f"{verdicts['refuted']} refuted, {verdicts['inconclusive']} inconclusive. "
        f"{len(obligations)} obligations: {statuses['proved']} proved, {statuses['refuted']} refuted, "
        f"{statuses['inconclusive']} inconclusive.",
        f"- Time per kernel (parse, symbolic execution, all queries): median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s.",
        f"- {VALUES}", "",
        "Why obligations were left inconclusive:", "", *_kinds(rows), "",
        "| kernel | problem | verdict | obligations proved | s | first open obligation |",
        "|---|---|---|---:|---:|---|",
    ]
    for row in rows:
        proved = sum(o["status"] == "proved" for o in row["obligations"])
        count = f"{proved}/{len(row['obligations'])}"
        lines.append(f"| `{row['kernel']}` | `{row['problem']}` | {row['verdict']} | {count} "
                     f"| {row['seconds']:.2f} | {_first_open(row)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else HERE / "results.json"
    target = Path(argv[2]) if len(argv) > 2 else HERE / "README.md"
    target.write_text(render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
