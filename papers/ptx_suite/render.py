"""results.json -> README.md: suite problems lowered to PTX at default schedules and emitted as
ModelNew, checked against float64 and timed beside eager PyTorch and torch.compile. Every number
comes from results.json.

    python papers/ptx_suite/render.py [RESULTS_JSON] [OUT_MD]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _checked(row: dict[str, Any]) -> str:
    parts = []
    for label in ("odd", "full"):
        check = row[label]
        verdict = "pass" if check["passed"] else "FAIL"
        parts.append(f"{verdict} {check['error']:.1e} (eager {check['eager_error']:.1e}, tol {check['tolerance']:.0e})")
    return " / ".join(parts)


def _copy_gbs(results: dict[str, Any], row: dict[str, Any]) -> float:
    return float(results["parts"][row["part"]]["copy"]["gb_per_s"])


def _row(row: dict[str, Any], copy_gbs: float) -> str:
    if "not_lowered" in row:
        return f"| `{row['problem']}` | not lowered: {row['not_lowered']} |||||||"
    if "failure" in row:
        return f"| `{row['problem']}` | failed: {row['failure'].splitlines()[0][:120]} |||||||"
    t = row["times"]
    ours, eager, compiled = (t[k]["median_ms"] for k in ("ours", "eager", "torch.compile"))
    return (f"| `{row['problem']}` | {_checked(row)} | {ours:.3f} | {eager:.3f} | {compiled:.3f} | "
            f"{eager / ours:.2f} | {compiled / ours:.2f} | {t['ours']['gb_per_s'] / copy_gbs:.0%} |")


SCHEDULE_LABELS = {"row": ("threads_per_row", "cache_row", "shared_row", "async_copy", "online", "cluster", "unroll",
                           "approx_math", "fp32_intermediates", "block_size"),
                   "column": ("threads_along_reduction", "cache_column", "vector_bytes", "unroll", "block_size"),
                   "elementwise": ("ctas_per_sm", "unroll", "block_size", "approx_math", "fp32_intermediates"),
                   "scalar": ("ctas_per_sm", "unroll", "block_size", "approx_math", "fp32_intermediates")}


def _knobs(schedule: dict[str, Any]) -> str:
    return ", ".join(f"{k}={schedule[k]}" for k in SCHEDULE_LABELS.get(schedule["kind"], ()) if k in schedule)


def _sweep(results: dict[str, Any]) -> list[str]:
    if not results.get("sweep"):
        return []
    lines = ["", "## Schedule sweep", "",
             "Median ms of the whole ModelNew under the default schedule and under variants of its knobs "
             "(other knobs as in the default), timed in one process; the best and worst variants.", "",
             "| problem | default | ms | best | ms | worst ms |", "|---|---|---:|---|---:|---:|"]
    for name, entry in results["sweep"].items():
        rows = entry["rows"]
        default = next(r for r in rows if r["default"])
        best = min(rows, key=lambda r: r["median_ms"])
        worst = max(rows, key=lambda r: r["median_ms"])
        lines.append(f"| `{name}` | {_knobs(default['schedule'])} | {default['median_ms']:.3f} | "
                     f"{_knobs(best['schedule'])} | {best['median_ms']:.3f} | {worst['median_ms']:.3f} |")
    return lines


# Sweeps that time each variant with one boolean knob off and on: the knob, and what it means.
PAIRED = {"async_copy": "the row copied into shared memory by cp.async before the first walk (on) or by the "
                        "first walk's loads (off)",
          "approx": "approximate transcendentals (ex2.approx and friends, on) or the accurate library (off)"}
PAIRED_KNOB = {"async_copy": "async_copy", "approx": "approx_math"}


def _paired(results: dict[str, Any]) -> list[str]:
    """For the sweeps that pair variants by one knob: each (threads, cluster) with it off and on."""
    lines: list[str] = []
    for sweep, meaning in PAIRED.items():
        entries = {name.split(" [")[0]: entry["rows"] for name, entry in results.get("sweep", {}).items()
                   if name.endswith(f"[{sweep}]")}
        if not entries:
            continue
        knob = PAIRED_KNOB[sweep]
        lines += ["", f"### `--sweep-set {sweep}`: {meaning}", "",
                  "Median ms of the whole ModelNew, the knob off / on, for each threads per row (a CTA) and "
                  "cluster size; other knobs as in the default. The default's own time in the last column.", "",
                  "| problem | threads | cluster 4 | cluster 8 | cluster 16 | default |", "|---|---:|---|---|---|---:|"]
        for name, rows in entries.items():
            times = {(r["schedule"]["block_size"], r["schedule"]["cluster"], bool(r["schedule"].get(knob))):
                     r["median_ms"] for r in rows}
            default = next(r for r in rows if r["default"])["median_ms"]
            for threads in sorted({b for b, _, _ in times}):
                cells = [" / ".join(f"{times[(threads, k, on)]:.3f}" if (threads, k, on) in times else "-"
                                    for on in (False, True)) for k in (4, 8, 16)]
                lines.append(f"| `{name}` | {threads} | " + " | ".join(cells) + f" | {default:.3f} |")
    return lines


def _clusters(clusters: dict[str, Any] | None) -> list[str]:
    """How many clusters of each long-row schedule the device holds at once (papers/ptx_suite/clusters.py)."""
    if not clusters:
        return []
    lines = ["", "## Clusters the device holds at once", "",
             f"{clusters['device']}, {clusters['date']}: cuOccupancyMaxActiveClusters for long-row schedules "
             "(shared memory per CTA as the schedule needs it). A cluster lives within one GPC, so clusters of 4 "
             "or more CTAs at one CTA an SM leave SMs idle.", "",
             "| CTA threads | cluster | shared bytes a CTA | clusters at once | CTAs at once | SMs |",
             "|---:|---:|---:|---:|---:|---:|"]
    seen = set()
    for row in clusters["rows"]:
        key = (row["block"], row["cluster"], row["shared_bytes"])
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"| {row['block']} | {row['cluster']} | {row['shared_bytes']:,} | {row['active_clusters']} | "
                     f"{row['active_ctas']} | {row['sms']} |")
    return lines


def _bandwidth_target(results: dict[str, Any], timed: list[dict[str, Any]]) -> list[str]:
    """Problems made of our kernels alone (no glue): fraction of copy bandwidth against the target."""
    rows = [r for r in timed if r["full"].get("glue") == 0]
    fractions = {r["problem"]: r["times"]["ours"]["gb_per_s"] / _copy_gbs(results, r) for r in rows}
    below = sorted((f, p) for p, f in fractions.items() if f < TARGET_FRACTION)
    lines = ["", "## Against the bandwidth target", "",
             f"Problems made of our kernels alone (no glue), at default schedules: {len(fractions)}; "
             f"{len(fractions) - len(below)} reach {TARGET_FRACTION:.0%} of the copy bandwidth, "
             f"{len(below)} do not:", ""]
    compiled = {r["problem"]: r["times"]["torch.compile"]["gb_per_s"] / _copy_gbs(results, r) for r in rows}
    lines += [f"- `{p}`: {f:.0%} (torch.compile {compiled[p]:.0%})" for f, p in below]
    return lines


TARGET_FRACTION = 0.85


def render(results: dict[str, Any]) -> str:
    rows = results["problems"]
    timed = [r for r in rows if "times" in r]
    passed = sum(r["odd"]["passed"] and r["full"]["passed"] for r in timed)
    not_lowered = sum("not_lowered" in r for r in rows)
    failed = sum("failure" in r for r in rows)
    ratios = [r["times"]["torch.compile"]["median_ms"] / r["times"]["ours"]["median_ms"] for r in timed]
    eager_ratios = [r["times"]["eager"]["median_ms"] / r["times"]["ours"]["median_ms"] for r in timed]
    parts = [f"- Part {k + 1}: {p['environment']['device']} (target {p['environment']['target']}); measured "
             f"{p['environment']['date']}; torch {p['environment']['torch']}, CUDA {p['environment']['cuda']}; "
             f"device-to-device copy {p['copy']['gb_per_s']:,.0f} GB/s before, "
             f"{p['copy']['after']['gb_per_s']:,.0f} GB/s after." for k, p in enumerate(results["parts"])]
    lines = [
        "# The problem suite lowered to PTX and run as ModelNew, on the GPU",
        "",
        "Generated by `papers/ptx_suite/render.py` from `results.json` (written on the GPU by",
        "`papers/ptx_suite/run.py`, in parts merged with its `--merge`); no number here is typed by hand.",
        "",
        *parts,
        f"- {len(rows)} problems: {len(timed)} lowered and run, {passed} of them pass both checks; {not_lowered} "
        f"have a region that does not lower yet (the reason is in the table); {failed} failed to run. Over the "
        f"ones run, geometric-mean speedup {statistics.geometric_mean(eager_ratios):.2f}x over eager and "
        f"{statistics.geometric_mean(ratios):.2f}x over torch.compile (below 1: slower).",
        "- Checks: the emitted drop-in `ModelNew` (model_new.py: our PTX kernels plus any glue) against `Model` "
        "run in float64 on the GPU, on fresh "
        "inputs; first at odd reduced shapes (size constants set to 37, 1003, 5: tails and broadcasts), then "
        "at the problem's own shapes. Error: max |ours - ref| / (|ref| + 1), beside eager PyTorch's own error "
        "against the same reference; tolerance by dtype.",
        "- Times: median ms of one call of the whole ModelNew (launch overhead included), CUDA events, L2 "
        "flushed before each run; ours, eager and torch.compile timed in turn in one process.",
        "- \"of copy\": inputs + parameters read once and outputs written once, over our time, against the "
        "copy bandwidth measured in the same part.",
        "",
        "| problem | check: odd shapes / default shapes | ours ms | eager ms | torch.compile ms | vs eager | "
        "vs compile | of copy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(r, _copy_gbs(results, r)) for r in rows]
    lines += _bandwidth_target(results, timed)
    lines += _sweep(results)
    lines += _paired(results)
    lines += _clusters(results.get("clusters"))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else HERE / "results.json"
    target = Path(argv[1]) if len(argv) > 1 else HERE / "README.md"
    target.write_text(render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
