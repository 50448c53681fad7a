"""On the CPU: how many wrong kernels the checks catch. For a set of suite kernels (small shapes,
default schedules, sm_90a), random single-instruction mutants (`verify.mutate`) go through the
gates in order: ptxas, the Z3 memory obligations, then the CPU emulator against the IR
interpreter (normal inputs, then inputs with infinities, NaN and huge values). Each mutant is
recorded with the first gate that rejected it, or as surviving; a survivor whose mutated line no
thread ran on the emulator is marked so (no input at these shapes reaches it). Writes
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

import z3

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ir.frontend import capture, load_problem  # noqa: E402
from ptxgen.lower import default_schedule, lower  # noqa: E402
from ptxgen.ptxas import PtxasError, assemble  # noqa: E402
from ptxgen.targets import TARGETS  # noqa: E402
from verify.against_ir import check_on_emulator, random_inputs, run_on_emulator  # noqa: E402
from verify.emulate import Launch  # noqa: E402
from verify.mutate import mutants  # noqa: E402
from verify.prove import prove_memory  # noqa: E402
from verify.ptxparse import parse_ptx  # noqa: E402

TARGET = TARGETS["sm_90a"]
PROBLEMS = ("elementwise/relu_f32", "elementwise/gelu_tanh_bf16", "elementwise/hardswish_bf16",
            "elementwise/silu_scale_f32", "fused/swiglu_bf16", "reduction/softmax_f32", "reduction/layernorm_f32",
            "reduction/argmax_dim1_f32", "reduction/mean_dim1_bf16", "loss/mse_loss_f32", "loss/cross_entropy_f32",
            "rowsweep/rmsnorm_bf16_4096")


def first_rejection(kernel: Any, ptx: str, launch: Launch) -> tuple[str, str]:
    """(gate, reason) of the first gate that rejects the PTX, or ("survived", "")."""
    try:
        assemble(ptx, TARGET.name)
    except PtxasError as err:
        return "ptxas", str(err).splitlines()[-1][:200]
    params = list(kernel.inputs) + list(kernel.outputs)
    sizes = [math.prod(p.type.shape) * p.type.dtype.itemsize for p in params]
    proof = prove_memory(ptx, launch, sizes, [p.name for p in params], set(range(len(kernel.inputs), len(params))),
                         ir=kernel, values=False)
    refuted = next((o for o in proof if o.status == "refuted"), None)
    if refuted is not None:
        return "z3 memory obligations", refuted.name
    for seed, extremes in ((0, False), (1, True)):
        verdict = check_on_emulator(kernel, ptx, launch, seed=seed, extremes=extremes)
        if verdict.status != "match":
            return f"emulator ({verdict.status})", "; ".join(verdict.reasons)[:200]
    return "survived", ""


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
            launch = Launch.of(lowered.launch)
            dead = unexecuted_lines(kernel, lowered.ptx, launch)
            for mutant in mutants(lowered.ptx, random.Random(kernel.name), args.per_kernel):
                gate, reason = first_rejection(kernel, mutant.ptx, launch)
                results["mutants"].append({"problem": problem, "kernel": kernel.name, "operator": mutant.operator,
                                           "line": mutant.line, "before": mutant.before, "after": mutant.after,
                                           "gate": gate, "reason": reason, "line_ran": mutant.line not in dead})
            print(f"{kernel.name}: {len(results['mutants'])} mutants so far", flush=True)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
