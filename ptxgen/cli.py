"""The `ptxgen` command line. Errors in the user's input are one line on stderr and exit code 2;
no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents import OptimizeError
from ir.errors import IRError
from ir.frontend.problem import ProblemError
from ptxgen.ptxas import PtxasError
from ptxgen.targets import TargetError
from verify.against_ir import ManifestError
from verify.check import CheckUnavailable

USER_ERRORS = (IRError, ProblemError, TargetError, PtxasError, OSError, ManifestError, CheckUnavailable,
               OptimizeError)


def _sizes(pairs: Sequence[str]) -> dict[str, int]:
    sizes = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not name or not value.lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"--size expects NAME=INTEGER, got {pair!r}")
        sizes[name] = int(value)
    return sizes


def cmd_capture(args: argparse.Namespace) -> int:
    from ir.frontend import capture, format_program, load_problem

    problem = load_problem(args.problem, sizes=_sizes(args.size), shrink_to=args.shrink)
    sys.stdout.write(format_program(capture(problem)))
    return 0


def cmd_lower(args: argparse.Namespace) -> int:
    from ir.frontend import capture, load_problem
    from ptxgen.manifest import unlowered, write_lowered
    from ptxgen.targets import default_target, get_target

    target = get_target(args.target) if args.target else default_target()
    problem = load_problem(args.problem, sizes=_sizes(args.size), shrink_to=args.shrink)
    manifest = write_lowered(capture(problem), target, Path(args.out), Path(args.problem), problem.overrides)
    kernels = [s["kernel"] for s in manifest["steps"] if "kernel" in s]
    missing = unlowered(manifest)
    print(f"{len(kernels) - len(missing)} of {len(kernels)} kernel(s) lowered for {target.name} "
          f"into {Path(args.out) / 'manifest.json'}" + (" and model_new.py" if "model_new" in manifest else ""))
    for entry in missing:
        print(f"ptxgen lower: not lowered: {entry['name']}: {entry['reason']}", file=sys.stderr)
    return 1 if missing else 0


def cmd_emulate(args: argparse.Namespace) -> int:
    """Exit 0: every kernel matches the IR; 1: one mismatches or does something undefined;
    2: one could not be checked (not lowered, or PTX the emulator does not model)."""
    import json

    from verify.against_ir import check_manifest

    verdicts = []
    for verdict in check_manifest(Path(args.manifest), args.kernel, args.seed):
        verdicts.append(verdict)
        if not args.json:
            reasons = "".join(f"\n    {r}" for r in verdict.reasons)
            print(f"{verdict.kernel}: {verdict.status} ({verdict.steps} steps, {verdict.seconds:.2f} s){reasons}",
                  flush=True)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=1))
    statuses = {v.status for v in verdicts}
    return 1 if statuses & {"mismatch", "error"} else 2 if "inconclusive" in statuses else 0


def cmd_prove(args: argparse.Namespace) -> int:
    """Exit 0: every obligation of every kernel proved; 1: one refuted; 2: one inconclusive."""
    import json

    from verify.prove import prove_manifest

    proofs = []
    for proof in prove_manifest(Path(args.manifest), args.kernel):
        proofs.append(proof)
        if not args.json:
            print(f"{proof.kernel}: {proof.status}", flush=True)
            for o in proof.obligations:
                detail = f": {o.detail}" if o.status != "proved" else ""
                print(f"  {o.status:12s} {o.name} ({o.seconds:.2f} s){detail}")
                if o.replay:
                    print(f"  {'':12s} replay: {o.replay}")
    if args.json:
        print(json.dumps([p.to_dict() for p in proofs], indent=1))
    statuses = {p.status for p in proofs}
    return 1 if "refuted" in statuses else 2 if "inconclusive" in statuses else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0: accepted; 1: rejected (the reasons are printed); 2: the check could not be made."""
    import json

    from verify.check import EXIT_CODES, CheckOptions, check, lines

    if args.trials < 1:
        raise argparse.ArgumentTypeError("--trials must be at least 1")
    options = CheckOptions(trials=args.trials, seed=args.seed, device=args.device, timing=not args.no_timing,
                           compile=not args.no_compile, max_autotune=args.max_autotune, reps=args.reps,
                           sizes=_sizes(args.size), timeout_s=args.timeout)
    if not args.json:
        print(f"checking {args.candidate} against {args.ref} on {args.device} ...", file=sys.stderr, flush=True)
    report = check(Path(args.candidate), Path(args.ref), options)
    print(json.dumps(report, indent=1) if args.json else "\n".join(lines(report)))
    return EXIT_CODES[report["verdict"]]


def cmd_optimize(args: argparse.Namespace) -> int:
    """Exit 0: the module is written (our kernels, or PyTorch where none of ours won, as the report
    says); 2: the problem could not be optimized."""
    from agents.supervisor import OptimizeOptions, Supervisor
    from ptxgen.targets import default_target, get_target

    if args.budget <= 0 or args.max_trials < 1:
        raise argparse.ArgumentTypeError("--budget must be positive and --max-trials at least 1")
    target = get_target(args.target) if args.target else default_target()
    options = OptimizeOptions(target, budget_s=args.budget, max_trials=args.max_trials,
                              require_proof=args.require_proof, sizes=_sizes(args.size), gpu=not args.no_gpu,
                              final_check=not args.no_check, seed=args.seed, llm_url=args.llm or "",
                              llm_model=args.llm_model, llm_ptx=args.llm_ptx, hint=args.hint or "",
                              history=[Path(h) for h in args.history],
                              **({"cpu_workers": args.workers} if args.workers is not None else {}))
    out = Path(args.out)
    try:
        report = Supervisor(Path(args.problem), out, options).run()
    except KeyboardInterrupt:
        print(f"ptxgen optimize: interrupted; the attempts so far are in {out / 'attempts.jsonl'}, and running "
              "again with the same --out resumes", file=sys.stderr)
        return 130
    module = report["module"]
    print(f"{out / 'model_new.py'}: {'our PTX kernels' if module['kind'] == 'ptx' else 'PyTorch: ' + module['reason']}"
          f"; report in {out / 'report.md'}")
    for skipped in report["skipped"]:
        print(f"  skipped: {skipped}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Exit 0: results written (failures of single problems are in them); 2: the bench could not run."""
    from ptxgen.bench import BenchOptions, main_bench

    if args.reps < 1 or args.workers < 1:
        raise argparse.ArgumentTypeError("--reps and --workers must be at least 1")
    if args.optimize is not None and (args.optimize <= 0 or args.schedules):
        raise argparse.ArgumentTypeError("--optimize takes a positive number of seconds, and replaces --schedules")
    options = BenchOptions(Path(args.suite), Path(args.out), tuple(m for m in args.match.split(",") if m),
                           reps=args.reps, workers=args.workers, compile=not args.no_compile,
                           schedules=Path(args.schedules) if args.schedules else None,
                           optimize_s=args.optimize or 0.0, fresh=args.fresh,
                           log=lambda line: print(line, flush=True))
    return main_bench(options)


def _kernel_of(spec: str) -> Any:
    """FILE or FILE:KERNEL: the named kernel of an IR file, or its only one."""
    from ir import parse_module

    path, _, name = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    try:
        kernels = parse_module(Path(path).read_text())
    except IRError as err:
        raise IRError(f"{path}:{err}") from None
    chosen = [k for k in kernels if k.name == name] if name else list(kernels)
    if len(chosen) != 1:
        names = ", ".join(k.name for k in kernels)
        raise IRError(f"{path}: {'no kernel ' + repr(name) if name else 'several kernels'} (it holds {names}); "
                      "name one as FILE:KERNEL")
    return chosen[0]


def cmd_equiv(args: argparse.Namespace) -> int:
    """Exit 0: proved equal; 1: refuted (a counterexample); 2: inconclusive."""
    import json

    from verify.equiv import prove_equal

    first, second = _kernel_of(args.first), _kernel_of(args.second)
    obligation = prove_equal(first, second)
    if args.json:
        print(json.dumps({"first": first.name, "second": second.name, **obligation.to_dict()}, indent=1))
    else:
        print(f"{first.name} and {second.name}: {obligation.status} ({obligation.seconds:.2f} s): {obligation.detail}")
    return {"proved": 0, "refuted": 1}.get(obligation.status, 2)


def cmd_ir(args: argparse.Namespace) -> int:
    from ir import format_kernel, parse_module

    try:
        kernels = parse_module(Path(args.file).read_text())
    except IRError as err:
        raise IRError(f"{args.file}:{err}") from None
    sys.stdout.write("\n".join(format_kernel(k) for k in kernels))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptxgen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    capture = commands.add_parser("capture", help="print a problem's fusion regions (IR) and glue ops")
    capture.add_argument("problem", help="a KernelBench-format problem file")
    capture.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                         help="override a module-level size constant (repeatable)")
    capture.add_argument("--shrink", type=int, metavar="N",
                         help="cap every integer size constant at N (small shapes for a quick look)")
    capture.set_defaults(run=cmd_capture)

    lower = commands.add_parser("lower", help="lower a problem's regions to PTX: DIR/manifest.json, NAME.ir, NAME.ptx")
    lower.add_argument("problem", help="a KernelBench-format problem file")
    lower.add_argument("--out", required=True, metavar="DIR")
    lower.add_argument("--target", help="sm_80, sm_86, sm_89, sm_90a, sm_100a or sm_120 "
                       "(default: this GPU's, else sm_90a)")
    lower.add_argument("--size", action="append", default=[], metavar="NAME=VALUE")
    lower.add_argument("--shrink", type=int, metavar="N")
    lower.set_defaults(run=cmd_lower)

    emulate = commands.add_parser("emulate", help="run each lowered kernel of a manifest on the CPU emulator and "
                                  "compare it with the IR interpreter (float64)")
    emulate.add_argument("manifest", help="DIR/manifest.json written by ptxgen lower")
    emulate.add_argument("--kernel", metavar="NAME", help="only this kernel")
    emulate.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    emulate.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    emulate.set_defaults(run=cmd_emulate)

    prove = commands.add_parser("prove", help="prove each lowered kernel of a manifest safe and equal to its IR "
                                "with Z3, on a symbolic tile at its real shapes")
    prove.add_argument("manifest", help="DIR/manifest.json written by ptxgen lower")
    prove.add_argument("--kernel", metavar="NAME", help="only this kernel")
    prove.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    prove.set_defaults(run=cmd_prove)

    check = commands.add_parser("check", help="strict empirical check and timing of a KernelBench-format "
                                "candidate (a file defining ModelNew) against its problem")
    check.add_argument("candidate", help="a file defining ModelNew")
    check.add_argument("--ref", required=True, metavar="PROBLEM.py", help="the problem: Model, get_inputs, "
                       "get_init_inputs")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--trials", type=int, default=5, help="trials with fresh inputs (default 5)")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--device", default="cuda", help="cuda (default), or cpu for a plain PyTorch candidate")
    check.add_argument("--no-timing", action="store_true", help="check correctness only")
    check.add_argument("--no-compile", action="store_true", help="time eager PyTorch only, not torch.compile")
    check.add_argument("--max-autotune", action="store_true", help="torch.compile with mode=max-autotune")
    check.add_argument("--reps", type=int, default=0, help="timed runs per round (default: about 0.2 s worth)")
    check.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                       help="override a size constant of the problem (repeatable)")
    check.add_argument("--timeout", type=float, default=900.0, metavar="S", help="time limit of the whole check")
    check.set_defaults(run=cmd_check)

    optimize = commands.add_parser("optimize", help="search schedules for each fused region through the verifier "
                                   "gate; writes DIR/model_new.py, DIR/report.json, DIR/report.md")
    optimize.add_argument("problem", help="a KernelBench-format problem file")
    optimize.add_argument("--out", required=True, metavar="DIR", help="results; DIR/attempts.jsonl lets a run resume")
    optimize.add_argument("--target", help="sm_80 ... sm_120 (default: this GPU's, else sm_90a)")
    optimize.add_argument("--budget", type=float, default=120.0, metavar="S", help="seconds of search (default 120)")
    optimize.add_argument("--max-trials", type=int, default=32, metavar="N", help="candidates per region (default 32)")
    optimize.add_argument("--require-proof", action="store_true",
                          help="admit only kernels proved on every obligation (default: none refuted)")
    optimize.add_argument("--workers", type=int, metavar="N", help="processes for the CPU stages (default: one per "
                          "core; 0 runs them in this process)")
    optimize.add_argument("--no-gpu", action="store_true", help="do not time candidates even where a GPU is present")
    optimize.add_argument("--no-check", action="store_true", help="skip the strict check of the written module")
    optimize.add_argument("--size", action="append", default=[], metavar="NAME=VALUE")
    optimize.add_argument("--seed", type=int, default=0)
    optimize.add_argument("--llm", metavar="URL", help="an OpenAI-compatible server (vLLM) for the LLM proposer, "
                          "e.g. http://localhost:8000/v1")
    optimize.add_argument("--llm-model", default="default", metavar="NAME", help="the model the server serves")
    optimize.add_argument("--llm-ptx", action="store_true", help="the LLM also writes PTX itself, for the fastest "
                          "schedule's launch, constrained by our PTX grammar and checked like any kernel")
    optimize.add_argument("--hint", metavar="TEXT", help="a hint for the LLM proposer's prompt")
    optimize.add_argument("--history", action="append", default=[], metavar="ATTEMPTS.jsonl",
                          help="other runs' attempt records for the cost model to learn from (repeatable)")
    optimize.set_defaults(run=cmd_optimize)

    bench = commands.add_parser("bench", help="every problem of a suite as a drop-in PTX module: checked, and timed "
                                "beside eager and torch.compile; DIR/results.json, results.md and plots (GPU)")
    bench.add_argument("suite", metavar="SUITE_DIR", help="a folder of KernelBench-format problems (searched below)")
    bench.add_argument("--out", required=True, metavar="DIR")
    bench.add_argument("--match", default="", help="comma-separated parts of problem paths to run")
    bench.add_argument("--reps", type=int, default=15, help="timed runs of each candidate per round (two rounds)")
    bench.add_argument("--workers", type=int, default=6, help="processes that lower, check and compile baselines")
    bench.add_argument("--no-compile", action="store_true", help="no torch.compile baseline")
    bench.add_argument("--schedules", metavar="RUNS_DIR", help="folders of `ptxgen optimize` runs, one per problem "
                       "(its path with '/' as '__'): each region takes the fastest schedule its search admitted")
    bench.add_argument("--optimize", type=float, metavar="S", help="search each problem for S seconds first "
                       "(`ptxgen optimize`, runs kept and resumed in DIR/runs), then bench its fastest schedules")
    bench.add_argument("--fresh", action="store_true", help="measure again what an earlier run measured")
    bench.set_defaults(run=cmd_bench)

    equiv = commands.add_parser("equiv", help="prove two IR kernels equal element for element (inputs matched "
                                "by position), or show an input that tells them apart")
    equiv.add_argument("first", metavar="A.ir[:KERNEL]")
    equiv.add_argument("second", metavar="B.ir[:KERNEL]")
    equiv.add_argument("--json", action="store_true")
    equiv.set_defaults(run=cmd_equiv)

    ir = commands.add_parser("ir", help="parse and typecheck an IR file; print it normalized")
    ir.add_argument("file")
    ir.set_defaults(run=cmd_ir)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    except USER_ERRORS as err:
        print(f"ptxgen {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
