"""On the CPU: how many wrong kernels the checks catch. For a set of suite kernels (small shapes,
default schedules, sm_90a), random single-instruction mutants (`verify.mutate`) go through the
gates in order: ptxas, the Z3 memory obligations, the CPU emulator against the IR interpreter
(normal inputs, then inputs with infinities, NaN and huge values), then the Z3 proof of the
output values (bit for bit; it reaches elementwise kernels, whose values the emulator compares
only within a tolerance), and where that proof is left open, a concrete witness (`verify.witness`).
Each mutant is recorded with the first gate that rejected it; one that
passes them all is "proved equivalent" where every obligation, values included, is proved (the
edit left a kernel that is right at these shapes), else it survives. A survivor whose mutated
line no thread ran on the emulator is marked so (no input at these shapes reaches it). Writes
results.json.

    python papers/mutation/run.py [--out DIR] [--per-kernel N] [--shrink N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import z3

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend import capture, load_problem  # noqa: E402
from ptxgen.lower import default_schedule, lower  # noqa: E402
from ptxgen.ptxas import PtxasError, assemble  # noqa: E402
from ptxgen.targets import TARGETS  # noqa: E402
from verify import witness  # noqa: E402
from verify.against_ir import check_on_emulator, random_inputs, run_on_emulator  # noqa: E402
from verify.emulate import Launch  # noqa: E402
from verify.mutate import mutants  # noqa: E402
from verify.prove import VALUES, prove_memory  # noqa: E402
from verify.ptxparse import parse_ptx  # noqa: E402

TARGET = TARGETS["sm_90a"]
PROBLEMS = ("elementwise/relu_f32", "elementwise/gelu_tanh_bf16", "elementwise/hardswish_bf16",
            "elementwise/silu_scale_f32", "fused/swiglu_bf16", "reduction/softmax_f32", "reduction/layernorm_f32",
            "reduction/argmax_dim1_f32", "reduction/mean_dim1_bf16", "loss/mse_loss_f32", "loss/cross_entropy_f32",
            "rowsweep/rmsnorm_bf16_4096")


def first_rejection(kernel: Any, ptx: str, launch: Launch, approx: bool | None) -> tuple[str, str]:
    """(gate, reason) of the first gate that rejects the PTX; else ("proved equivalent", "") where
    every obligation is proved, or ("survived", the first obligation left open)."""
    try:
        assemble(ptx, TARGET.name)
    except PtxasError as err:
        return "ptxas", str(err).splitlines()[-1][:200]
    params = list(kernel.inputs) + list(kernel.outputs)
    sizes = [math.prod(p.type.shape) * p.type.dtype.itemsize for p in params]
    arguments = (ptx, launch, sizes, [p.name for p in params], set(range(len(kernel.inputs), len(params))))
    proof = prove_memory(*arguments, ir=kernel, values=False)
    refuted = next((o for o in proof if o.status == "refuted"), None)
    if refuted is not None:
        return "z3 memory obligations", refuted.name
    for seed, extremes in ((0, False), (1, True)):
        verdict = check_on_emulator(kernel, ptx, launch, seed=seed, extremes=extremes)
        if verdict.status != "match":
            return f"emulator ({verdict.status})", "; ".join(verdict.reasons)[:200]
    full = prove_memory(*arguments, ir=kernel, approx=approx)
    values = next((o for o in full if o.name == VALUES), None)
    if values is not None and values.status == "refuted":
        gate = "output values: a concrete witness" if values.replay == witness.FOUND else "z3 output values"
        return gate, values.detail[:200]
    unproved = next((o for o in full if o.status != "proved"), None)
    if unproved is None:
        return "proved equivalent", ""
    return "survived", f"{unproved.name}: {unproved.detail}"[:200]


def change_from_original(kernel: Any, original: str, ptx: str, launch: Launch) -> dict[str, Any]:
    """How a surviving mutant's outputs differ from the unmutated kernel's on the emulator, on the
    inputs the gate used: elements that differ (NaN equals NaN) and the largest change relative to
    the original value (|mutant - original| / (|original| + 1), finite values)."""
    differing, total, largest = 0, 0, 0.0
    for seed, extremes in ((0, False), (1, True)):
        inputs = random_inputs(kernel, seed, extremes)
        try:
            before, _ = run_on_emulator(kernel, original, launch, inputs)
            after, _ = run_on_emulator(kernel, ptx, launch, inputs)
        except Exception as err:  # noqa: BLE001 - recorded, not raised: the gate already ran this mutant
            return {"error": f"{type(err).__name__}: {err}"[:200]}
        for old, new in zip(before, after):
            old, new = np.asarray(old, np.float64).ravel(), np.asarray(new, np.float64).ravel()
            same = (old == new) | (np.isnan(old) & np.isnan(new))
            differing, total = differing + int((~same).sum()), total + old.size
            finite = np.isfinite(old) & np.isfinite(new)
            if finite.any():
                largest = max(largest, float((np.abs(new - old) / (np.abs(old) + 1))[finite].max()))
    return {"elements_changed": differing, "elements": total, "largest_relative_change": largest}


def unexecuted_lines(kernel: Any, ptx: str, launch: Launch) -> set[int]:
    entry = next(iter(parse_ptx(ptx).entries.values()))
    lines: set[int] | None = None
    for seed, extremes in ((0, False), (1, True)):
        _, emulation = run_on_emulator(kernel, ptx, launch, random_inputs(kernel, seed, extremes))
        found = set(emulation.unexecuted_lines(entry))
        lines = found if lines is None else lines & found
    return lines or set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--per-kernel", type=int, default=30)
    parser.add_argument("--shrink", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "environment": {"device": platform.processor() or platform.machine(), "python": platform.python_version(),
                        "z3": z3.get_version_string(), "target": TARGET.name, "shrink": args.shrink,
                        "per_kernel": args.per_kernel,
                        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
        "mutants": []}
    for problem in PROBLEMS:
        path = REPO / "datasets" / "problems" / f"{problem}.py"
        for region in capture(load_problem(path, shrink_to=args.shrink), shapes_only=True).regions:
            kernel = region.kernel
            lowered = lower(kernel, default_schedule(kernel, TARGET), TARGET)
            launch, approx = Launch.of(lowered.launch), getattr(lowered.schedule, "approx_math", None)
            dead = unexecuted_lines(kernel, lowered.ptx, launch)
            for mutant in mutants(lowered.ptx, random.Random(kernel.name), args.per_kernel):
                gate, reason = first_rejection(kernel, mutant.ptx, launch, approx)
                row = {"problem": problem, "kernel": kernel.name, "operator": mutant.operator, "line": mutant.line,
                       "before": mutant.before, "after": mutant.after, "gate": gate, "reason": reason,
                       "line_ran": mutant.line not in dead}
                if gate == "survived":
                    row["change"] = change_from_original(kernel, lowered.ptx, mutant.ptx, launch)
                results["mutants"].append(row)
            print(f"{kernel.name}: {len(results['mutants'])} mutants so far", flush=True)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
