"""results.json of `ptxgen bench` -> results.md and two plots (SVG, no plotting library needed):
speedup over eager and over torch.compile per problem, and each problem's fraction of its speed
of light (the measured copy bandwidth or matrix rate, whichever binds). Every number comes from
results.json.

    python -m ptxgen.bench_report RESULTS_JSON [OUT_DIR]
"""

from __future__ import annotations

import html
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

BANDWIDTH_TARGET = 0.85
ROW_HEIGHT, BAR, LABEL_WIDTH, PLOT_WIDTH = 16, 6, 330, 520
COLOURS = {"eager": "#7f7f7f", "torch.compile": "#1f77b4", "ours": "#d62728"}


def timed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["problems"] if "times" in r]


def passed(row: dict[str, Any]) -> bool:
    return bool(row.get("odd", {}).get("passed") and row.get("full", {}).get("passed"))


def speedups(row: dict[str, Any]) -> dict[str, float]:
    ours = row["times"]["ours"]["median_ms"]
    return {name: stats["median_ms"] / ours for name, stats in row["times"].items() if name != "ours"}


def best_baseline(row: dict[str, Any]) -> float:
    return min(stats["median_ms"] for name, stats in row["times"].items() if name != "ours")


def ours_alone(row: dict[str, Any]) -> bool:
    """The module is our kernels only (no PyTorch glue)."""
    return row.get("full", {}).get("glue") == 0


NOISY = 1.10  # a candidate whose third quartile exceeds its first by more than this is marked


def noisy(row: dict[str, Any]) -> bool:
    return any(stats.get("q3_ms", 0) > NOISY * stats.get("q1_ms", math.inf) for stats in row["times"].values())


def summary(results: dict[str, Any]) -> dict[str, Any]:
    rows = timed(results)
    ratios = {name: [speedups(r)[name] for r in rows if name in speedups(r)] for name in ("eager", "torch.compile")}
    vs_best = [best_baseline(r) / r["times"]["ours"]["median_ms"] for r in rows]
    memory = [r for r in rows if ours_alone(r) and r["speed_of_light"]["bound"] == "memory"]
    reaching = [r for r in memory if r["speed_of_light"]["fraction"]["ours"] >= BANDWIDTH_TARGET]
    return {"problems": len(results["problems"]), "timed": len(rows), "passed": sum(passed(r) for r in rows),
            "not_lowered": sum("not_lowered" in r for r in results["problems"]),
            "failed": sum("failure" in r for r in results["problems"]),
            "cached": sum(bool(r.get("cached")) for r in rows),
            "geomean": {name: statistics.geometric_mean(v) for name, v in ratios.items() if v},
            "geomean_best": statistics.geometric_mean(vs_best) if vs_best else None,
            "memory_bound_ours_alone": len(memory), "reaching_target": len(reaching),
            "noisy": sum(noisy(r) for r in rows)}


def _check_cell(row: dict[str, Any]) -> str:
    parts = []
    for label in ("odd", "full"):
        found = row[label]
        parts.append(f"{'pass' if found['passed'] else 'FAIL'} {found['error']:.1e} (eager {found['eager_error']:.1e})")
    return " / ".join(parts)


def _row(row: dict[str, Any]) -> str:
    if "not_lowered" in row:
        return f"| `{row['problem']}` | not lowered: {row['not_lowered'][:160]} |||||||||"
    if "failure" in row:
        return f"| `{row['problem']}` | failed: {row['failure'].splitlines()[0][:160]} |||||||||"
    t, sol = row["times"], row["speed_of_light"]
    compiled = t.get("torch.compile", {}).get("median_ms")
    ups = speedups(row)
    schedules = sorted(set(row.get("schedules", {}).values())) or ["default"]
    mark = " (noisy)" if noisy(row) else ""
    return (f"| `{row['problem']}`{mark} | {_check_cell(row)} | {t['ours']['median_ms']:.3f} | "
            f"{t['eager']['median_ms']:.3f} | "
            f"{'' if compiled is None else f'{compiled:.3f}'} | {ups['eager']:.2f} | "
            f"{ups.get('torch.compile', float('nan')):.2f} | {sol['bound']} | {sol['fraction']['ours']:.0%} | "
            f"{sol['fraction'].get('torch.compile', float('nan')):.0%} | {', '.join(schedules)} |")


def _schedules_used(results: dict[str, Any]) -> str:
    options = results.get("options", {})
    if options.get("optimize_s"):
        return f"each problem searched for {options['optimize_s']:g} s first, then its best schedules"
    if options.get("schedules"):
        return (f"the best each `ptxgen optimize` run in `{options['schedules']}` timed (a kernel it did not "
                "search: its default)")
    return "every kernel at its default schedule (the target's machine model; no search)"


def _tolerance_rule(results: dict[str, Any]) -> str:
    slack = results.get("options", {}).get("eager_slack")
    by_dtype = "tolerance by dtype (float32 1e-5, bfloat16 1.6e-2, float16 2e-3)"
    return by_dtype + (f", never below {slack:g} times eager's own error (the checker's rule: a float32 "
                       "sum of 4096 terms, or a convolution in TF32, errs more than 1e-5 in eager PyTorch too)"
                       if slack else "")


def render(results: dict[str, Any]) -> str:
    env, ceil, facts = results["environment"], results["ceilings"], summary(results)
    after = ceil.get("copy_after", {}).get("gb_per_s")
    lines = ["# `ptxgen bench`: the suite as drop-in PTX modules, against eager PyTorch and torch.compile", "",
             "Generated by `ptxgen bench` (`ptxgen/bench_report.py`) from `results.json`; no number is typed by hand.",
             "",
             f"- {env['device']} (target {env['target']}), {env['date']}; "
             + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
             + (f"; sources {env['sources']}" if env.get("sources") else ""),
             f"- Ceilings measured in the same run: device-to-device copy {ceil['copy']['gb_per_s']:,.0f} GB/s"
             + (f" ({after:,.0f} after the suite)" if after else "") + "; matrix products of side 4096 "
             + ", ".join(f"{k} {v:,.0f} TFLOP/s" for k, v in ceil["matmul_tflops"].items()) + ".",
             f"- {facts['problems']} problems: {facts['timed']} timed ({facts['cached']} of them measured in an "
             f"earlier run of the same module, device and versions), {facts['passed']} pass both checks; "
             f"{facts['not_lowered']} not lowered, {facts['failed']} failed; {facts['noisy']} marked noisy (a "
             f"candidate's quartiles more than {NOISY - 1:.0%} apart).",
             ]
    if facts["geomean"]:
        lines.append(f"- Geometric-mean speedup: {facts['geomean'].get('eager', float('nan')):.2f}x over eager, "
                     f"{facts['geomean'].get('torch.compile', float('nan')):.2f}x over torch.compile, "
                     f"{facts['geomean_best']:.2f}x over the better of the two (below 1: slower).")
    lines.append(f"- Schedules: {_schedules_used(results)}.")
    lines += [f"- Memory-bound problems made of our kernels alone: {facts['memory_bound_ours_alone']}; "
              f"{facts['reaching_target']} reach {BANDWIDTH_TARGET:.0%} of the copy bandwidth.",
              "- Checks: ModelNew against Model run in float64 on fresh inputs, at odd reduced shapes (size "
              "constants 37, 1003, 5) and at the problem's shapes; error max |ours - ref| / (|ref| + 1), eager's "
              f"beside it; {_tolerance_rule(results)}. Times: median ms of one call of the whole module on the "
              "device (CUDA events; L2 flushed "
              "and the stream held by a spinning kernel before each call, so that host-side launch work is "
              "hidden for every candidate alike), ours, eager and torch.compile in turn, twice. Speed of light: "
              "bytes of inputs, parameters and "
              "outputs moved once at the copy bandwidth, or FLOPs at the matrix rate of the problem's dtype, "
              "whichever takes longer.", "",
              "![speedup](speedup.svg)", "", "![speed of light](speed_of_light.svg)", "",
              "| problem | check: odd / default shapes | ours ms | eager ms | compile ms | vs eager | vs compile | "
              "bound | ours of SOL | compile of SOL | schedules |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    lines += [_row(r) for r in results["problems"]]
    return "\n".join(lines) + "\n"


# ---- plots

def _svg(width: int, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            f'font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def _legend(names: list[str], x: int) -> list[str]:
    return [f'<rect x="{x + 130 * i}" y="24" width="10" height="10" fill="{COLOURS[n]}"/>'
            f'<text x="{x + 130 * i + 14}" y="33">{html.escape(n)}</text>' for i, n in enumerate(names)]


def bar_chart(title: str, rows: list[tuple[str, dict[str, float]]], scale: tuple[float, float], log: bool,
              marks: list[tuple[float, str]]) -> str:
    """Horizontal grouped bars, one group per label; values clipped to `scale`."""
    low, high = scale
    names = sorted({n for _, values in rows for n in values}, key=list(COLOURS).index)

    def x_of(value: float) -> float:
        value = min(max(value, low), high)
        span = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low)) if log else \
            (value - low) / (high - low)
        return LABEL_WIDTH + span * PLOT_WIDTH

    top = 44
    height = top + ROW_HEIGHT * len(rows) + 30
    body = [f'<text x="10" y="16" font-size="13">{html.escape(title)}</text>', *_legend(names, LABEL_WIDTH)]
    for value, label in marks:
        x = x_of(value)
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 25}" stroke="black" '
                    f'stroke-dasharray="3,3"/><text x="{x:.1f}" y="{height - 10}" text-anchor="middle">{label}</text>')
    for i, (label, values) in enumerate(rows):
        y = top + i * ROW_HEIGHT
        body.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 11}" text-anchor="end">{html.escape(label)}</text>')
        for j, name in enumerate(n for n in names if n in values):
            start, end = x_of(1.0 if log else low), x_of(values[name])
            body.append(f'<rect x="{min(start, end):.1f}" y="{y + 2 + j * BAR}" width="{abs(end - start):.1f}" '
                        f'height="{BAR - 1}" fill="{COLOURS[name]}"><title>{html.escape(label)} {name}: '
                        f'{values[name]:.3f}</title></rect>')
    return _svg(LABEL_WIDTH + PLOT_WIDTH + 40, height, body)


def speedup_chart(results: dict[str, Any]) -> str:
    rows = [(r["problem"], {name: value for name, value in speedups(r).items()}) for r in timed(results)]
    return bar_chart("Speedup of our module over eager and over torch.compile (log scale, 1 = parity)", rows,
                     (0.25, 16.0), True, [(v, f"{v:g}x") for v in (0.25, 0.5, 1, 2, 4, 8, 16)])


def speed_of_light_chart(results: dict[str, Any]) -> str:
    rows = [(f"{r['problem']} ({r['speed_of_light']['bound'][0]})",
             {name: value for name, value in r["speed_of_light"]["fraction"].items() if name != "eager"})
            for r in timed(results)]
    return bar_chart("Fraction of speed of light: the measured copy bandwidth (m) or matrix rate (c)", rows,
                     (0.0, 1.0), False, [(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, BANDWIDTH_TARGET, 1.0)])


def write_report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(render(results))
    (out / "speedup.svg").write_text(speedup_chart(results))
    (out / "speed_of_light.svg").write_text(speed_of_light_chart(results))


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    write_report(json.loads(source.read_text()), Path(argv[1]) if len(argv) > 1 else source.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
