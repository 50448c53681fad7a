"""The paper "Verified PTX for fused operators on H100", generated from the results files of the
other papers and of the training data (each named with its sha256 in results.json); no number in
it is typed by hand.

    python papers/verified_ptx_h100/render.py            # collect the figures again, then write README.md
    python papers/verified_ptx_h100/render.py --render   # README.md from results.json as it is
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from ptxgen import bench_report  # noqa: E402

SOURCES = {"bench": "papers/bench/results.json", "proofs": "papers/proofs/results.json",
           "checker": "papers/checker/results.json", "mutation": "papers/mutation/results.json",
           "optimize": "papers/optimize/results.json", "search": "papers/search_efficiency/results.json",
           "reproof": "papers/optimize/reproof.json", "datasets": "datasets/training/card.json"}
LONG_ROWS = 65536  # the row lengths where torch.compile falls behind the copy bandwidth
PARITY = 0.97  # below this fraction of torch.compile's speed a problem is listed as slower


def _renderer(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"render_{name}", REPO / "papers" / name / "render.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _geomean(values: list[float]) -> float | None:
    return statistics.geometric_mean(values) if values else None


# ---- the figures, from each source

def _row_length(problem: str) -> int:
    """The row length of a row-sweep problem (its name ends with it); 0 for the others."""
    return int(problem.rsplit("_", 1)[-1]) if problem.startswith("rowsweep/") else 0


def bench_figures(results: dict[str, Any]) -> dict[str, Any]:
    rows = bench_report.timed(results)
    categories: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        categories.setdefault(row["problem"].split("/")[0], []).append(row)
    by_category = {name: {"problems": len(mine), "passed": sum(bench_report.passed(r) for r in mine),
                          "vs_eager": _geomean([bench_report.speedups(r)["eager"] for r in mine]),
                          "vs_compile": _geomean([bench_report.speedups(r)["torch.compile"] for r in mine]),
                          "sol_ours": statistics.median(r["speed_of_light"]["fraction"]["ours"] for r in mine),
                          "sol_compile": statistics.median(r["speed_of_light"]["fraction"]["torch.compile"]
                                                           for r in mine)}
                   for name, mine in sorted(categories.items())}
    long_rows = [{"problem": r["problem"], "ours": r["speed_of_light"]["fraction"]["ours"],
                  "compile": r["speed_of_light"]["fraction"]["torch.compile"],
                  "vs_compile": bench_report.speedups(r)["torch.compile"]}
                 for r in rows if _row_length(r["problem"]) >= LONG_ROWS]
    slower = sorted(({"problem": r["problem"], "vs_compile": bench_report.speedups(r)["torch.compile"]}
                     for r in rows if bench_report.speedups(r)["torch.compile"] < PARITY),
                    key=lambda x: x["vs_compile"])
    memory = [r for r in rows if bench_report.ours_alone(r) and r["speed_of_light"]["bound"] == "memory"]
    below = sorted(({"problem": r["problem"], "ours": r["speed_of_light"]["fraction"]["ours"]} for r in memory
                    if r["speed_of_light"]["fraction"]["ours"] < bench_report.BANDWIDTH_TARGET),
                   key=lambda x: x["ours"])
    searched = sum("search" in r.get("schedules", {}).values() for r in rows)
    failed_checks = [{"problem": r["problem"], "error": r["full"]["error"], "eager_error": r["full"]["eager_error"],
                      "tolerance": r["full"]["tolerance"]} for r in rows if not bench_report.passed(r)]
    return {"environment": results["environment"], "copy_gb_per_s": results["ceilings"]["copy"]["gb_per_s"],
            "matmul_tflops": results["ceilings"]["matmul_tflops"], "summary": bench_report.summary(results),
            "by_category": by_category, "long_rows": long_rows, "slower_than_compile": slower,
            "failed_checks": failed_checks, "seconds": results.get("seconds"), "below_target": below,
            "searched": searched}


def proof_figures(results: dict[str, Any]) -> dict[str, Any]:
    rows = results["kernels"]
    reasons = Counter(_renderer("proofs")._reason(o) for r in rows for o in r["obligations"]
                      if o["status"] == "inconclusive")
    obligations = Counter(o["status"] for r in rows for o in r["obligations"])
    times = [r["seconds"] for r in rows]
    return {"environment": results["environment"], "kernels": len(rows),
            "verdicts": dict(Counter(r["verdict"] for r in rows)), "obligations": dict(obligations),
            "median_s": statistics.median(times), "max_s": max(times),
            "over_60_s": sum(t > 60 for t in times), "reasons": reasons.most_common(6)}


def checker_figures(results: dict[str, Any]) -> dict[str, Any]:
    corpus = [r for r in results["rows"] if r["part"] == "corpus"]
    suite = [r for r in results["rows"] if r["part"] == "suite" and r["verdict"] in ("accepted", "rejected")]
    return {"device": results["environments"][0]["device"],
            "dates": sorted({e["date"][:10] for e in results["environments"]}),
            "corpus": len(corpus), "caught": sum(r["caught"] for r in corpus),
            "names": sorted(r["name"] for r in corpus),
            "missed": [r["name"] for r in corpus if not r["caught"]],
            "suite_checked": len(suite), "suite_accepted": sum(r["verdict"] == "accepted" for r in suite)}


def mutation_figures(results: dict[str, Any]) -> dict[str, Any]:
    renderer = _renderer("mutation")
    rows = results["mutants"]
    equivalent = sum(r["gate"] == renderer.EQUIVALENT for r in rows)
    return {"environment": results["environment"], "mutants": len(rows), "equivalent": equivalent,
            "wrong": len(rows) - equivalent, "caught": sum(r["gate"] in renderer.CAUGHT for r in rows),
            "survived": sum(r["gate"] == "survived" for r in rows),
            "unchecked": sum(r["gate"] == "emulator (inconclusive)" for r in rows)}


def optimize_figures(results: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for name, report in sorted(results["problems"].items()):
        timing = (report.get("check") or {}).get("timing", {})
        baselines = [t for t in (timing.get("eager"), timing.get("torch.compile")) if t]
        if "failure" in report or not baselines:
            continue
        used = timing.get("candidate") if report["module"]["kind"] == "ptx" else min(baselines)
        rows.append({"problem": name, "module": report["module"]["kind"], "vs_best": min(baselines) / used})
    return {"device": results["environments"][0]["device"], "problems": rows,
            "geomean": _geomean([r["vs_best"] for r in rows]), "ours_kept": sum(r["module"] == "ptx" for r in rows)}


def reproof_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The optimize runs' chosen kernels proved again on the CPU: problems whose every one is proved."""
    proved = [name for name, rows in results["problems"].items() if all(r["verdict"] == "proved" for r in rows)]
    return {"problems": len(results["problems"]), "proved": sorted(proved),
            "commit": results["environment"]["commit"], "date": results["environment"]["date"][:10]}


def search_figures(results: dict[str, Any]) -> dict[str, Any]:
    rows = results["regions"]
    guided, random = sum(r["guided_trials"] for r in rows), sum(r["random_trials"] for r in rows)
    return {"regions": len(rows), "within": results["within"], "guided": guided, "random": random,
            "ratio": guided / random if random else None, "device": results["environments"][0]["device"]}


def dataset_figures(card: dict[str, Any]) -> dict[str, Any]:
    return {"counts": card["counts"], "split": card["split"], "sources": len(card["sources"])}


FIGURES = {"bench": bench_figures, "proofs": proof_figures, "checker": checker_figures,
           "mutation": mutation_figures, "optimize": optimize_figures, "search": search_figures,
           "reproof": reproof_figures, "datasets": dataset_figures}


def collect() -> dict[str, Any]:
    """Every figure the paper uses, from the sources as they are now, with their hashes."""
    figures: dict[str, Any] = {"sources": {}}
    for name, path in SOURCES.items():
        raw = (REPO / path).read_bytes()
        figures["sources"][name] = {"path": path, "sha256": hashlib.sha256(raw).hexdigest()}
        figures[name] = FIGURES[name](json.loads(raw))
    figures["environment"] = figures["bench"]["environment"]
    return json.loads(json.dumps(figures))  # as read back from results.json (tuples become lists)


# ---- the text

def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _abstract(f: dict[str, Any]) -> list[str]:
    bench, s = f["bench"], f["bench"]["summary"]
    proofs, checker, mutation = f["proofs"], f["checker"], f["mutation"]
    return ["## Abstract", "",
            f"We lower PyTorch programs (KernelBench format) through a small IR to hand-level PTX, prove each kernel "
            f"equal to its IR with Z3 on symbolic tiles, and check every drop-in module on the GPU with a checker "
            f"built to reject known cheats. On {bench['environment']['device']}, the {s['problems']} problems of "
            f"our suite run as drop-in modules at a geometric-mean {_x(s['geomean'].get('eager'))} over eager "
            f"PyTorch and {_x(s['geomean'].get('torch.compile'))} over torch.compile, measured side by side; "
            f"{s['reaching_target']} of the {s['memory_bound_ours_alone']} memory-bound problems made of our "
            f"kernels alone reach 85% of the measured copy bandwidth. Of {proofs['kernels']} kernels at their "
            f"default schedules, {proofs['verdicts'].get('proved', 0)} are proved on every obligation and "
            f"{proofs['verdicts'].get('refuted', 0)} refuted; the rest are inconclusive on named obligations (each "
            f"reason counted in `papers/proofs/README.md`). The "
            f"checker catches {checker['caught']} of {checker['corpus']} cheats in its corpus, and the checks "
            f"catch {mutation['caught']} of {mutation['wrong']} single-instruction mutants that are not proved "
            "equivalent.", ""]


METHOD = [
    "## 1. Method", "",
    "- **Frontend** (`ir/frontend`): `torch.export` with core ATen decompositions, one rule table from ATen to "
    "IR ops, and a partition into fusion regions (elementwise chains and one reduction shape per region); "
    "matmul, convolution and layout changes stay in PyTorch as glue.",
    "- **IR** (`ir/`): typed SSA kernels with a lark grammar, a typechecker and a numpy reference interpreter "
    "(float64, or the dtype's native rounding).",
    "- **Lowering** (`ptxgen/`): IR + schedule + target -> PTX text from instruction tables: 16-byte vector "
    "accesses, predicated tails, 64-bit addressing, warp shuffles, shared memory, thread-block clusters with "
    "distributed shared memory on sm_90; schedules are frozen dataclasses with their valid spaces per target.",
    "- **Proof** (`verify/`): the PTX is parsed back from text and executed symbolically, one semantics written "
    "once and evaluated with numpy (a CPU emulator) or z3 (a symbolic executor). Obligations, one query each: "
    "bounds without wrap-around, every output written exactly once, no races, no divergent barriers, and each "
    "output value equal to the IR's (approximate instructions uninterpreted). Verdicts are proved, refuted "
    "(with a counterexample replayed on the emulator) or inconclusive (with the reason).",
    "- **Empirical checker** (`verify/check.py`): fresh inputs from several distributions, poisoned outputs, "
    "inputs checked unchanged, two runs, an isolated process, L2 flushed, baselines in the same process, and a "
    "speed-of-light floor below which a kernel is rejected as too fast to be real.",
    "- **Search** (`agents/`): proposers (machine-model seeds, beam search, a cost model trained on the "
    "records, an LLM through the OpenAI-compatible API) feed one gate (ptxas, proof, emulator, GPU check, "
    "timing); every attempt is a record, and the records become training data.", ""]


def _performance(f: dict[str, Any]) -> list[str]:
    bench, s = f["bench"], f["bench"]["summary"]
    env = bench["environment"]
    lines = ["## 2. Performance on the H100", "",
             f"{env['device']}, {env['date']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
             + f". Ceilings measured in the same run: device-to-device copy {bench['copy_gb_per_s']:,.0f} GB/s; "
             "matrix products of side 4096 at " + ", ".join(f"{k} {v:,.0f} TFLOP/s"
                                                            for k, v in bench["matmul_tflops"].items()) + ". "
             f"`ptxgen bench` ran the whole suite in {bench['seconds']:.0f} s (lowering, checks and the "
             "baselines' compilation in a pool of processes; then timing alone). Each problem's module uses the "
             "fastest schedule a recorded search admitted on this device, else the default. Times are device "
             "times of one call of the whole module (CUDA events, L2 flushed, the stream held before each call so "
             "that host-side launch work is hidden for every candidate alike), ours, eager and torch.compile in "
             "turn.", "",
             f"{s['timed']} problems timed, {s['passed']} pass both checks (float64 reference at odd and at "
             "default shapes). Speed of light: bytes moved once at the copy bandwidth or FLOPs at the matrix rate "
             "of the problem's dtype, whichever binds.", "",
             "| category | problems | pass checks | vs eager | vs torch.compile | ours of SOL (median) | "
             "torch.compile of SOL (median) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in bench["by_category"].items():
        lines.append(f"| {name} | {c['problems']} | {c['passed']} | {_x(c['vs_eager'])} | {_x(c['vs_compile'])} | "
                     f"{c['sol_ours']:.0%} | {c['sol_compile']:.0%} |")
    lines += [f"| all | {s['timed']} | {s['passed']} | {_x(s['geomean'].get('eager'))} | "
              f"{_x(s['geomean'].get('torch.compile'))} | | |", "",
              "![speedup](../bench/speedup.svg)", "", "![speed of light](../bench/speed_of_light.svg)", "",
              "Per-problem figures: `papers/bench/README.md`.", ""]
    long_rows = bench["long_rows"]
    if long_rows:
        lines += [f"### Long rows (>= {LONG_ROWS} elements)", "",
                  "At these row lengths torch.compile falls behind the copy bandwidth; our row kernels (a row "
                  "split over a warp, a CTA or a thread-block cluster, as each schedule says) beside it:", "",
                  "| problem | ours of copy | torch.compile of copy | vs torch.compile |", "|---|---:|---:|---:|"]
        lines += [f"| `{r['problem']}` | {r['ours']:.0%} | {r['compile']:.0%} | {_x(r['vs_compile'])} |"
                  for r in long_rows]
        lines += ["", f"Median over these {len(long_rows)}: ours "
                  f"{statistics.median(r['ours'] for r in long_rows):.0%} of copy, torch.compile "
                  f"{statistics.median(r['compile'] for r in long_rows):.0%}.", ""]
    return lines


def _proofs(f: dict[str, Any]) -> list[str]:
    p = f["proofs"]
    env = p["environment"]
    return ["## 3. Proofs", "",
            f"Every suite kernel at its default schedule, at the problems' own shapes, on {env['device']} "
            f"({env['cores']} cores), z3 {env['z3']}, {env['date']}: {p['kernels']} kernels, "
            f"{p['verdicts'].get('proved', 0)} proved on every obligation, {p['verdicts'].get('refuted', 0)} "
            f"refuted, {p['verdicts'].get('inconclusive', 0)} inconclusive; obligations "
            f"{p['obligations'].get('proved', 0)} proved, {p['obligations'].get('refuted', 0)} refuted, "
            f"{p['obligations'].get('inconclusive', 0)} inconclusive. Time per kernel: median {p['median_s']:.2f} s, "
            f"max {p['max_s']:.1f} s ({p['over_60_s']} over 60 s).", "",
            "Most frequent reasons an obligation stays inconclusive:", "",
            *[f"- {count} x {reason}" for reason, count in p["reasons"]], "",
            "Per kernel: `papers/proofs/README.md`.", ""]


def _checks(f: dict[str, Any]) -> list[str]:
    c, m = f["checker"], f["mutation"]
    me = m["environment"]
    missed = f" Missed: {', '.join(c['missed'])}." if c["missed"] else ""
    return ["## 4. The checker and the cheat corpus", "",
            f"On {c['device']} ({', '.join(c['dates'])}): {c['caught']} of {c['corpus']} cheats caught for the "
            f"reasons they are expected to be rejected for ({', '.join(c['names'])}).{missed} "
            f"{c['suite_accepted']} of {c['suite_checked']} of the suite's drop-in modules were accepted by the "
            "same checker. Details: `papers/checker/README.md`.", "",
            "## 5. Mutation testing", "",
            f"{m['mutants']} random single-instruction mutants of suite kernels ({me['date'][:10]}, {me['device']}): "
            f"{m['equivalent']} proved equivalent (every obligation, output values bit for bit included, proved: "
            f"the edit left a right kernel); of the other {m['wrong']}, {m['caught']} "
            f"({m['caught'] / m['wrong']:.0%}) caught by ptxas, the Z3 memory obligations, the CPU emulator or "
            f"the Z3 proof of the output values, {m['unchecked']} not checked (an edit the emulator does not "
            f"model), and {m['survived']} survived, each listed with the obligation its proof left open in "
            "`papers/mutation/README.md`.", ""]


def _search(f: dict[str, Any]) -> list[str]:
    o, s, d = f["optimize"], f["search"], f["datasets"]
    lines = ["## 6. Search and training data", "",
             f"`ptxgen optimize` on {len(o['problems'])} problems ({o['device']}): our kernels kept in "
             f"{o['ours_kept']}, PyTorch kept where it was faster; geometric mean {_x(o['geomean'])} over the better "
             f"of eager and torch.compile (`papers/optimize/README.md`)."]
    r = f["reproof"]
    ours = {p["problem"] for p in o["problems"] if p["module"] == "ptx"}
    lines.append(f"Their chosen kernels proved again on the CPU with the prover of commit {r['commit']} ({r['date']}): "
                 f"every one proved in {len(r['proved'])} of {r['problems']} problems ({len(ours & set(r['proved']))} "
                 f"of the {len(ours)} whose module runs our kernels); the rest are inconclusive on named obligations.")
    if s["ratio"] is not None:
        lines.append(f"Over {s['regions']} measured schedule pools, the cost model needs {s['guided']} trials to "
                     f"reach within {round((s['within'] - 1) * 100)}% of each pool's fastest, against "
                     f"{s['random']:.1f} expected at random (ratio {s['ratio']:.2f}; "
                     "`papers/search_efficiency/README.md`).")
    counts = ", ".join(f"{name} {c['train']} train / {c['test']} test" for name, c in d["counts"].items())
    lines += ["", f"The attempt records of these runs ({d['sources']} files) become training data "
              f"(`datasets/training/`): {counts}; split by problem ({len(d['split']['test'])} problems held out).",
              ""]
    return lines


def _limitations(f: dict[str, Any]) -> list[str]:
    bench, p = f["bench"], f["proofs"]
    s = bench["summary"]
    slower = ", ".join(f"`{r['problem']}` ({_x(r['vs_compile'])})" for r in bench["slower_than_compile"])
    failed = "; ".join(f"`{r['problem']}` (error {r['error']:.1e}, eager's {r['eager_error']:.1e}, tolerance "
                       f"{r['tolerance']:.0e})" for r in bench["failed_checks"])
    return ["## 7. Limitations", "",
            f"- Slower than torch.compile by more than {1 - PARITY:.0%}: {slower or 'none'}. Where search cannot "
            "win, `ptxgen optimize` falls back to PyTorch for the whole module (not yet per region).",
            f"- {len(bench['below_target'])} of {s['memory_bound_ours_alone']} memory-bound problems made of our "
            "kernels alone stay under 85% of the copy bandwidth: " + ", ".join(
                f"`{r['problem']}` ({r['ours']:.1%})" for r in bench["below_target"]) + ".",
            f"- Checks failed by eager PyTorch too, against the same tolerance: {failed or 'none'}.",
            f"- Proofs: {p['verdicts'].get('inconclusive', 0)} of {p['kernels']} kernels are inconclusive on at least "
            "one obligation: not modelled yet are online softmax's rescaled sums, argmax and argmin, the values of "
            "workspaces that several CTAs fill, loops of more than 256 trips and reductions across clusters of more "
            "than 4096 threads; the middle-axis reductions and some kernels at rows of 65536-262144 elements spend "
            "their 60 s (each reason counted in `papers/proofs/README.md`). Inconclusive is never counted as proved.",
            f"- Numbers come from one H100 and one day. {bench['searched']} of the {s['timed']} modules use "
            "schedules from a recorded search (short ones: tens of seconds per problem); the others run "
            "default schedules.", ""]


def render(results: dict[str, Any]) -> str:
    lines = ["# Verified PTX for fused operators on H100", "",
             "Generated by `papers/verified_ptx_h100/render.py` from the results files listed at the end (their "
             "figures collected into `results.json`); no number here is typed by hand.", "",
             *_abstract(results), *METHOD, *_performance(results), *_proofs(results), *_checks(results),
             *_search(results), *_limitations(results),
             "## Sources", "", "| figures | file | sha256 |", "|---|---|---|",
             *[f"| {name} | `{s['path']}` | `{s['sha256'][:16]}` |" for name, s in results["sources"].items()]]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if "--render" in argv:
        results = json.loads((HERE / "results.json").read_text())
    else:
        results = collect()
        (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (HERE / "README.md").write_text(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
