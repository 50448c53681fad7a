"""The strict empirical checker: a KernelBench-format candidate (a file defining `ModelNew`) against
its problem (`Model`, `get_inputs`, `get_init_inputs`), on the GPU (or, for plain PyTorch
candidates, on the CPU).

Each trial draws fresh inputs (the problem's own distribution, a wide one with negatives and
outliers, one crowded around the op's breakpoints; new seeds) and runs the candidate twice before
anything else touches them, each run with:
- the caching allocator poisoned (every byte it hands out next is 0xFF in run A, 0x7F in run B), so
  an output element never written still holds poison, and no result of an earlier run is left in
  memory to be found;
- the inputs at the same addresses as in the last trial, inside guard bands holding the poison;
- the inputs written on the current stream behind a sleep, so work not ordered after the current
  stream reads poison instead of inputs;
- the outputs copied on the current stream as soon as forward returns, and compared with what they
  hold once the device is idle;
- threads, and the functions that timing relies on, compared before and after.
The outputs are then compared with the float64 reference (tolerance by dtype, and never below a
multiple of eager PyTorch's own error), the inputs and guard bands with what they held, and the two
runs with each other. A failure is explained by more runs that change one thing at a time: inputs
ready before forward (ordering), guard bands alone changed (out-of-bounds reads), the same run
again (races). If one constant output would pass every trial, trials with correlated inputs (each
made partly of the first) and with rescaled inputs are added; if none helps, the report says so.

Then timing (verify.timing): the candidate beside eager PyTorch and torch.compile, interleaved call by call,
with the inputs' contents rotated under fixed addresses and each timed output checked, and a
speed-of-light floor from the problem's bytes and FLOPs against the copy bandwidth and matrix rate
measured in the same process.

`check` runs static checks of the source, then all of the above in a process of its own with a time
limit (verify.isolate): a crash or a hang is a verdict, not the end of the caller."""

from __future__ import annotations

import copy
import datetime
import inspect
import threading
import time
import traceback
import types
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ir.frontend.problem import Problem, ProblemError, load_problem
from verify import trials as tr
from verify.isolate import run_isolated
from verify.static_checks import check_source

SLEEP_CYCLES = 4_000_000  # about 2 ms at Hopper clocks: longer than a forward's host-side work
TRIAL_PLAN = tr.DISTRIBUTIONS
POISON_A, POISON_B, OTHER_GUARD = 0xFF, 0x7F, 0x00
POISON_RESERVE = (2, 256 * 2**20)  # poison this multiple of the problem's bytes, plus this many bytes
CHILD_TARGET = "verify.check:check_in_process"
NO_DEVICE_ERRORS = ("GpuUnavailable",)  # raised by ptxgen's launcher where no driver or device is found
MAX_REDRAWS = 6  # draws from other distributions that leave the op's domain before giving up on them

REASONS: dict[str, str] = {
    "values": "an output differs from the float64 reference by more than the tolerance",
    "output-type": "an output is not a plain torch.Tensor (a subclass or a lazy value defers the work)",
    "output-shape": "the outputs differ from the reference's in number, shape, dtype or device",
    "unwritten": "output elements still hold the poison the allocator was filled with: never written",
    "unordered": "the work is not ordered on the current stream: it reads inputs before they are written or "
                 "finishes after forward returns",
    "out-of-bounds-read": "the output depends on the bytes next to an input: it reads out of bounds",
    "out-of-bounds-write": "the guard band next to an input was overwritten",
    "uninitialized-read": "the output depends on what the allocator's memory held before: it reads memory "
                          "that nothing wrote",
    "nondeterministic": "two identical runs give results that differ by more than the tolerance (a race)",
    "inputs-mutated": "an input's bytes changed",
    "cached": "an output repeats the previous trial's, whose inputs were different",
    "thread": "a thread started by the candidate is still running when forward returns",
    "timing-patched": "a function the timing relies on was replaced",
    "stale-in-timing": "an output timed with rotated input contents is wrong for those contents",
    "faster-than-light": "faster than the problem's bytes and FLOPs allow at the measured copy bandwidth and "
                         "matrix rate",
    "candidate-error": "the candidate raised an exception",
    "crash": "the candidate's process died",
    "timeout": "the check did not finish within its time limit",
}


class CheckUnavailable(RuntimeError):
    """The check cannot be run here (no GPU, or a file that cannot be loaded); nothing was judged."""


class CandidateFailure(Exception):
    """The candidate raised; the message is its error."""


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class CheckOptions:
    trials: int = 5
    seed: int = 0
    device: str = "cuda"
    timing: bool = True
    compile: bool = True
    max_autotune: bool = False
    reps: int = 0  # timed runs per round for each candidate; 0 chooses from a first measurement
    sizes: dict[str, int] = field(default_factory=dict)
    timeout_s: float = 900.0


@dataclass(frozen=True)
class RunSettings:
    """One run of the candidate: the allocator's poison byte, the guard bands' byte, and whether the
    inputs are written on the current stream behind a sleep (late) or before forward is called."""

    poison: int
    guard: int
    late_inputs: bool


RUN_A = RunSettings(POISON_A, POISON_A, True)
RUN_B = RunSettings(POISON_B, POISON_B, True)


@dataclass
class Run:
    outputs: list[Any]
    snapshot: list[torch.Tensor]
    mutated: list[int]
    guards_hold: bool
    threads: list[str]


# ---- what timing relies on, captured before any candidate is imported


def _timing_functions() -> dict[str, tuple[Any, str]]:
    table: dict[str, tuple[Any, str]] = {f"time.{n}": (time, n) for n in ("perf_counter", "perf_counter_ns", "time",
                                                                         "monotonic", "sleep")}
    table.update({f"torch.cuda.{n}": (torch.cuda, n) for n in ("synchronize", "Event", "current_stream", "Stream",
                                                              "stream", "set_stream", "is_available")})
    table.update({f"torch.cuda.Event.{n}": (torch.cuda.Event, n) for n in ("record", "elapsed_time", "synchronize",
                                                                           "query", "wait")})
    table.update({f"torch.cuda.Stream.{n}": (torch.cuda.Stream, n) for n in ("synchronize", "wait_event",
                                                                             "wait_stream", "query")})
    table.update({"torch.Tensor.__torch_function__": (torch.Tensor, "__torch_function__"),
                  "torch.equal": (torch, "equal"), "torch.allclose": (torch, "allclose")})
    return table


TIMING_FUNCTIONS = _timing_functions()
ORIGINALS = {name: inspect.getattr_static(owner, attr) for name, (owner, attr) in TIMING_FUNCTIONS.items()}


def patched() -> list[str]:
    """The timing functions no longer the objects they were when this module was imported."""
    return [name for name, (owner, attr) in TIMING_FUNCTIONS.items()
            if inspect.getattr_static(owner, attr, None) is not ORIGINALS[name]]


def restore_patched() -> None:
    for name in patched():
        owner, attr = TIMING_FUNCTIONS[name]
        setattr(owner, attr, ORIGINALS[name])


# ---- loading


def load_candidate(path: Path) -> types.ModuleType:
    """The candidate file executed as a module; CandidateFailure if it does not import."""
    import sys

    try:
        source = path.read_text()
    except OSError as err:
        raise CheckUnavailable(f"cannot read candidate {path}: {err.strerror}") from None
    module = types.ModuleType("ptxgen_candidate")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look modules up by name
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except Exception as err:
        raise CandidateFailure(f"importing {path.name} failed: {described(err)}") from err
    if not callable(getattr(module, "ModelNew", None)):
        raise CandidateFailure(f"{path.name} defines no ModelNew")
    return module


def described(err: BaseException) -> str:
    frames = traceback.format_exception(type(err), err, err.__traceback__)
    return "".join(frames[-6:]).strip()


def build_candidate(module: types.ModuleType, problem: Problem, seed: int, device: str) -> torch.nn.Module:
    """`ModelNew(*get_init_inputs())` after seeding torch as the reference was (the same weights)."""
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            init = problem.init_inputs()
            return module.ModelNew(*init).to(device).eval()
    except Exception as err:
        raise CandidateFailure(f"ModelNew(*get_init_inputs()) failed: {described(err)}") from err


def forward_failure(err: Exception) -> Exception:
    """What an exception out of forward means: running out of memory says nothing of the candidate
    (the checker's own buffers share the device), so the check could not be made; anything else
    is the candidate's failure."""
    if isinstance(err, torch.OutOfMemoryError):
        held = torch.cuda.memory_reserved() / 2**30 if torch.cuda.is_available() else 0.0
        return CheckUnavailable(f"out of memory in forward, with {held:.1f} GiB held by the checking process: "
                                f"{str(err).splitlines()[0]}")
    if type(err).__name__ in NO_DEVICE_ERRORS:  # the launcher's (emitted drop-ins carry their own copy of it)
        return CheckUnavailable(f"the candidate needs a GPU: {err}")
    return CandidateFailure(f"forward raised: {described(err)}")


def outputs_of(value: Any) -> list[Any]:
    """The outputs in order, tuples and lists flattened (whatever their type)."""
    if isinstance(value, (tuple, list)):
        return [o for item in value for o in outputs_of(item)]
    return [value]


def floats_as(value: Any, dtype: torch.dtype) -> Any:
    """A floating tensor cast to `dtype`; anything else as it is."""
    return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value


# ---- one run of the candidate


class Harness:
    """The problem, the candidate and the reference built once; runs and trials on them."""

    def __init__(self, problem: Problem, candidate: torch.nn.Module, options: CheckOptions) -> None:
        self.problem, self.candidate, self.options = problem, candidate, options
        self.device = options.device
        self.model = problem.model(options.seed, self.device)
        self.reference64 = copy.deepcopy(self.model).double()
        example = problem.inputs(options.seed, self.device)
        self.slots = tr.InputSlots(example)
        with torch.no_grad():
            sample = outputs_of(self.model(*example))
        self.expected = [(o.shape, o.dtype) if isinstance(o, torch.Tensor) else (None, type(o)) for o in sample]
        io = sum(t.numel() * t.element_size() for t in [*example, *sample] if isinstance(t, torch.Tensor))
        self.poison_bytes = POISON_RESERVE[0] * io + POISON_RESERVE[1]
        self.points = tr.breakpoints_of(problem.path.read_text())
        floats = [t.dtype for t in [*example, *sample] if isinstance(t, torch.Tensor)]
        self.base_tolerance = tr.tolerance_of(floats)
        self.previous: list[torch.Tensor] | None = None
        self.witness: list[torch.Tensor] | None = None
        self.constant_fits: list[bool] = []
        self.reasons: dict[str, Reason] = {}

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def run(self, values: list[Any], settings: RunSettings) -> Run:
        """Forward once under `settings`; CandidateFailure if it raises (or the device reports an error)."""
        late = settings.late_inputs and self.device.startswith("cuda")
        self.slots.fill(values, settings.guard, contents_byte=settings.poison if late else None)
        tr.poison_allocator(settings.poison, self.poison_bytes)
        if late:
            torch.cuda._sleep(SLEEP_CYCLES)
            self.slots.write(values)
        before = set(threading.enumerate())
        try:
            with torch.no_grad():
                outputs = outputs_of(self.candidate(*self.slots.tensors(values)))
                snapshot = [o.clone() for o in outputs if type(o) is torch.Tensor]
            self.sync()
        except Exception as err:
            raise forward_failure(err) from err
        threads = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        return Run(outputs, snapshot, self.slots.unchanged(values), self.slots.guards_hold(settings.guard), threads)

    def note(self, code: str, message: str) -> None:
        self.reasons.setdefault(code, Reason(code, message))

    # ---- what a run shows by itself

    def structure(self, run: Run) -> bool:
        """Outputs of the reference's number, types, shapes and dtypes; noted and False otherwise."""
        if len(run.outputs) != len(self.expected):
            self.note("output-shape", f"{len(run.outputs)} outputs, the reference has {len(self.expected)}")
            return False
        for i, (out, (shape, dtype)) in enumerate(zip(run.outputs, self.expected)):
            if shape is None:
                continue
            if type(out) is not torch.Tensor:
                self.note("output-type", f"output {i} is a {type(out).__module__}.{type(out).__qualname__}")
                return False
            if out.shape != shape or out.dtype != dtype or out.device.type != torch.device(self.device).type:
                self.note("output-shape", f"output {i} is {out.dtype} {list(out.shape)} on {out.device}, the "
                          f"reference's is {dtype} {list(shape)} on {self.device}")
                return False
        return True

    def side_effects(self, run: Run, where: str) -> None:
        if run.mutated:
            self.note("inputs-mutated", f"{where}: input(s) {run.mutated} changed by forward")
        if not run.guards_hold:
            self.note("out-of-bounds-write", f"{where}: bytes next to an input were overwritten")
        if run.threads:
            self.note("thread", f"{where}: thread(s) {run.threads} still running after forward returned")
        if patched():
            self.note("timing-patched", f"{where}: replaced: {', '.join(patched())}")
            restore_patched()
        tensors = [o for o in run.outputs if type(o) is torch.Tensor]
        changed = [i for i, (o, s) in enumerate(zip(tensors, run.snapshot)) if not tr.same_bits(o, s)]
        if changed:
            self.note("unordered", f"{where}: output(s) {changed} changed after forward returned, once the device "
                      "was idle")

    # ---- trials

    def reference(self, values: list[Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(float64 reference outputs, eager outputs in the problem's dtypes)."""
        with torch.no_grad():
            eager = [o for o in outputs_of(self.model(*values)) if isinstance(o, torch.Tensor)]
            exact = [o for o in outputs_of(self.reference64(*[floats_as(v, torch.float64) for v in values]))
                     if isinstance(o, torch.Tensor)]
        return exact, eager

    def judge(self, values: list[Any]) -> tuple[list[torch.Tensor], float, float]:
        """(float64 reference outputs, the tolerance, eager PyTorch's own error) for `values`."""
        exact, eager = self.reference(values)
        eager_error = max([tr.error(e, r) for e, r in zip(eager, exact)], default=0.0)
        return exact, max(self.base_tolerance, tr.EAGER_SLACK * eager_error), eager_error

    def errors(self, outputs: list[Any], exact: list[torch.Tensor]) -> list[float]:
        tensors = [o for o in outputs if type(o) is torch.Tensor]
        return [tr.error(o, r) for o, r in zip(tensors, exact)]

    def trial(self, distribution: str, seed: int, scale: float) -> dict[str, Any] | None:
        """One trial; its record, or None where `distribution` leaves the op's domain (the float64
        reference is not finite where the problem's own inputs' is)."""
        values = tr.draw(self.problem.inputs(seed, self.device), distribution, seed, self.points, scale)
        if not self.slots.fits(values):
            raise CheckUnavailable("get_inputs() returned inputs of another shape or dtype on a second draw")
        first = self.run(values, RUN_A)
        second = self.run(values, RUN_B)
        exact, tolerance, eager_error = self.judge(values)
        if distribution != "problem" and not all(bool(r.isfinite().all()) for r in exact if r.is_floating_point()):
            return None
        where = f"trial {distribution} (seed {seed}{'' if scale == 1 else f', inputs x{scale:g}'})"
        record = {"distribution": distribution, "seed": seed, "scale": scale, "tolerance": tolerance,
                  "eager_error": eager_error}
        for run in (first, second):
            self.side_effects(run, where)
        if not (self.structure(first) and self.structure(second)):
            return {**record, "passed": False}
        first.outputs, second.outputs = [], []  # the snapshots stand for them from here on
        errors = [self.errors(run.snapshot, exact) for run in (first, second)]
        between = [tr.error(a, b.double()) if b.is_floating_point() else tr.error(a, b)
                   for a, b in zip(first.snapshot, second.snapshot)]
        record.update(error=max(max(e, default=0.0) for e in errors), between_runs=max(between, default=0.0),
                      bitwise_repeatable=all(tr.same_bits(a, b) for a, b in zip(first.snapshot, second.snapshot)))
        failed = any(e > tolerance for e in errors[0] + errors[1]) or any(b > tolerance for b in between)
        if failed:
            self.explain(values, first, second, exact, errors, tolerance, where)
        self.previous = first.snapshot
        self.remember(exact, tolerance)
        record["passed"] = not failed
        return record

    def explain(self, values: list[Any], first: Run, second: Run, exact: list[torch.Tensor],
                errors: list[list[float]], tolerance: float, where: str) -> None:
        """Name why a trial failed, with runs that change one thing at a time."""
        unwritten = [(i, tr.unwritten_elements(a, b, (RUN_A.poison, RUN_B.poison)), a.numel())
                     for i, (a, b) in enumerate(zip(first.snapshot, second.snapshot))]
        for i, count, total in unwritten:
            if count:
                self.note("unwritten", f"{where}: output {i}: {count} of {total} elements never written "
                          f"({'none written' if count == total else 'a partial write'})")
        if any(e > tolerance for e in errors[0]):
            i = max(range(len(errors[0])), key=lambda k: errors[0][k])
            self.note("values", f"{where}: output {i}: error {errors[0][i]:.3g} > tolerance {tolerance:.3g}, "
                      f"{tr.worst_element(first.snapshot[i], exact[i])}")
            if (self.previous is not None and "unwritten" not in self.reasons
                    and all(tr.same_bits(a, b) for a, b in zip(first.snapshot, self.previous))):
                self.note("cached", f"{where}: the outputs are bit for bit the previous trial's")
            ready = self.run(values, replace(RUN_A, late_inputs=False))
            if self.device.startswith("cuda") and max(self.errors(ready.snapshot, exact), default=0.0) <= tolerance:
                self.note("unordered", f"{where}: wrong when the inputs are written on the current stream just "
                          "before forward, right when they are ready earlier")
        if not all(tr.same_bits(a, b) for a, b in zip(first.snapshot, second.snapshot)):
            self.explain_difference(values, first, where)

    def explain_difference(self, values: list[Any], first: Run, where: str) -> None:
        """Runs A and B differ: the same run again tells a race from a dependence on memory contents,
        and a run with other guard bands tells an out-of-bounds read from an uninitialized one."""
        again = self.run(values, RUN_A)
        if not all(tr.same_bits(a, b) for a, b in zip(first.snapshot, again.snapshot)):
            between = max(tr.error(a, b.double()) if b.is_floating_point() else tr.error(a, b)
                          for a, b in zip(first.snapshot, again.snapshot))
            self.note("nondeterministic", f"{where}: two identical runs differ (error {between:.3g} between them)")
            return
        guards = self.run(values, replace(RUN_A, guard=OTHER_GUARD))
        if not all(tr.same_bits(a, b) for a, b in zip(first.snapshot, guards.snapshot)):
            self.note("out-of-bounds-read", f"{where}: the outputs change when only the bytes next to the inputs do")
        elif not any(self.reasons.get(c) for c in ("unwritten", "unordered")):
            self.note("uninitialized-read", f"{where}: the outputs change with the allocator's poison alone")

    def trials(self, count: int) -> list[dict[str, Any]]:
        """`count` trials over the distributions in turn (one leaving the op's domain is replaced by a
        draw of the problem's own), then rescaled trials while one constant would pass them all."""
        records: list[dict[str, Any]] = []
        seed = self.options.seed + 1
        redraws = 0
        for distribution in [TRIAL_PLAN[i % len(TRIAL_PLAN)] for i in range(count)]:
            record = self.trial(distribution, seed, 1.0)
            seed += 1
            while record is None and redraws < MAX_REDRAWS:
                redraws += 1
                records.append({"distribution": distribution, "seed": seed - 1, "skipped": "reference not finite"})
                record = self.trial("problem", seed, 1.0)
                seed += 1
            if record is not None:
                records.append(record)
        for distribution, scale in [("correlated", 1.0), *(("problem", s) for s in tr.RESCALES)]:
            if not self.constant_would_pass():
                break
            records.append(self.trial(distribution, seed, scale)
                           or {"skipped": "reference not finite", "distribution": distribution, "scale": scale})
            seed += 1
        return records

    def remember(self, exact: list[torch.Tensor], tolerance: float) -> None:
        """Keep the first trial's reference outputs as the witness constant; for each later trial,
        whether that constant would pass it too."""
        if self.witness is None:  # kept as a candidate would return it, in the outputs' own dtypes
            dtypes = [dtype for shape, dtype in self.expected if shape is not None]
            self.witness = [r.to(dtype) for r, dtype in zip(exact, dtypes)]
            return
        self.constant_fits.append(all(
            r.shape == w.shape and tr.error(w, r) <= tolerance for w, r in zip(self.witness, exact)))

    def constant_would_pass(self) -> bool:
        """Whether the first trial's outputs, returned as a constant, would pass every later trial."""
        return bool(self.constant_fits) and all(self.constant_fits)


# ---- the whole check, in this process


def check_in_process(candidate: str, reference: str, options: dict[str, Any]) -> dict[str, Any]:
    """The empirical check (module docstring) of `candidate` against `reference`; the report as JSON."""
    opts = CheckOptions(**options)
    started = time.monotonic()
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckUnavailable("no CUDA device: PyTorch sees none (torch.cuda.is_available() is False)")
    problem = load_problem(reference, sizes=opts.sizes)
    report: dict[str, Any] = {"environment": environment(opts.device), "trials": [], "flags": []}
    try:
        module = load_candidate(Path(candidate))
        at_import = patched()
        restore_patched()
        harness = Harness(problem, build_candidate(module, problem, opts.seed, opts.device), opts)
    except CandidateFailure as err:
        return finish(report, [Reason("candidate-error", str(err))], started)
    if at_import:
        harness.note("timing-patched", f"at import: replaced: {', '.join(at_import)}")
    try:
        report["trials"] = harness.trials(opts.trials)
    except CandidateFailure as err:
        harness.note("candidate-error", str(err))
        return finish(report, list(harness.reasons.values()), started)
    report["flags"] = flags(harness, report["trials"])
    if opts.timing and not harness.reasons:
        from verify.timing import time_check

        try:
            timing = time_check(harness, opts)
        except CandidateFailure as err:
            harness.note("candidate-error", f"while timed: {err}")
            return finish(report, list(harness.reasons.values()), started)
        report.update({k: v for k, v in timing.items() if k != "reasons"})
        for code, message in timing["reasons"]:
            harness.note(code, message)
    return finish(report, list(harness.reasons.values()), started)


def flags(harness: Harness, records: list[dict[str, Any]]) -> list[str]:
    """What the trials could not show, for the reader (not a rejection)."""
    notes = []
    judged = [r for r in records if "passed" in r]
    added = [r for r in judged if r.get("scale", 1) != 1 or r["distribution"] == "correlated"]
    if harness.constant_would_pass():
        notes.append("low variance: one constant output passes every trial"
                     + (", correlated and rescaled ones too" if added else "")
                     + ": these trials cannot tell a constant from a computation")
    elif added:
        notes.append("low variance: one constant output would pass the first trials; "
                     + ", ".join(sorted({"correlated" if r["distribution"] == "correlated" else "rescaled"
                                         for r in added})) + " trials added, and it does not pass them")
    if all(r["passed"] for r in judged) and any(not r.get("bitwise_repeatable", True) for r in judged):
        notes.append("not bitwise repeatable: two runs on the same inputs differ within the tolerance")
    skipped = [r["distribution"] for r in records if "skipped" in r and "distribution" in r]
    if skipped:
        notes.append(f"draws outside the op's domain replaced by the problem's own: {', '.join(sorted(set(skipped)))}")
    if not harness.device.startswith("cuda"):
        notes.append("on the CPU: no allocator poisoning and no stream-ordering checks")
    return notes


def finish(report: dict[str, Any], reasons: list[Reason], started: float) -> dict[str, Any]:
    report["reasons"] = [asdict(r) for r in reasons]
    report["verdict"] = "rejected" if reasons else "accepted"
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def environment(device: str) -> dict[str, Any]:
    return {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "cuda": torch.version.cuda}


# ---- the whole check, from outside


def static_reasons(candidate: Path, reference: Path) -> list[Reason]:
    findings = check_source(candidate.read_text(), reference.read_text(), candidate.name)
    return [Reason(f"static:{f.rule}", f.message) for f in findings]


def check(candidate: Path, reference: Path, options: CheckOptions = CheckOptions(),
          static: bool = True) -> dict[str, Any]:
    """Static checks, then the empirical check in a process of its own. The report's verdict is
    "accepted", "rejected" (with reasons) or "error" (the check could not be made: no GPU, a
    reference that does not load)."""
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckUnavailable("no CUDA device (torch.cuda.is_available() is False): the check runs candidates on "
                               "the GPU; --device cpu checks a plain PyTorch candidate on the CPU")
    for path in (candidate, reference):
        if not path.is_file():
            raise CheckUnavailable(f"no such file: {path}")
    try:
        load_problem(reference, sizes=options.sizes)
    except ProblemError as err:
        raise CheckUnavailable(str(err)) from None
    reasons = static_reasons(candidate, reference) if static else []
    outcome = run_isolated(CHILD_TARGET, {"candidate": str(candidate.resolve()), "reference": str(reference.resolve()),
                                          "options": asdict(options)}, options.timeout_s)
    if outcome.status == "ok":
        report = outcome.result
    elif outcome.status in ("crash", "timeout"):
        finished = outcome.result if isinstance(outcome.result, dict) else {}  # a death after the check's report
        report = {"verdict": "rejected", "reasons": list(finished.get("reasons", [])),
                  "seconds": round(outcome.seconds, 3)}
        reasons.append(Reason(outcome.status, outcome.error or outcome.status))
    else:
        report = {"verdict": "error", "reasons": [], "error": outcome.error, "seconds": round(outcome.seconds, 3)}
    report["reasons"] = [asdict(r) for r in reasons] + report["reasons"]
    if report["verdict"] != "error":
        report["verdict"] = "rejected" if report["reasons"] else "accepted"
    report.update(candidate=str(candidate), reference=str(reference), static=static)
    return report


def reason_codes(report: dict[str, Any]) -> set[str]:
    return {r["code"] for r in report.get("reasons", [])}


def lines(report: dict[str, Any]) -> Iterator[str]:
    """The report as text, for a terminal."""
    yield f"{report['candidate']}: {report['verdict']} ({report.get('seconds', 0):.1f} s)"
    if report.get("error"):
        yield f"  error: {report['error']}"
    for r in report.get("reasons", []):
        yield f"  {r['code']}: {r['message']}"
    for flag in report.get("flags", []):
        yield f"  note: {flag}"
    for t in report.get("trials", []):
        if "passed" in t:
            yield (f"  trial {t['distribution']:11s} seed {t['seed']:<3d} x{t['scale']:<5g} "
                   f"error {t.get('error', 0):.3g} (tolerance {t['tolerance']:.3g}, eager {t['eager_error']:.3g}) "
                   f"{'passed' if t['passed'] else 'FAILED'}")
    speedups = report.get("speedup", {})
    for name, row in (report.get("timing") or {}).items():
        if "median_ms" in row:
            yield (f"  time {name:14s} {row['median_ms'] * 1e3:9.1f} us (q1 {row['q1_ms'] * 1e3:.1f}, q3 "
                   f"{row['q3_ms'] * 1e3:.1f}, {row['reps']} runs)" + (f"; candidate x{speedups[name]:.2f} faster"
                                                                       if name in speedups else ""))
        else:
            yield f"  time {name:14s} {row.get('error', 'not timed')}"
    sol = report.get("speed_of_light")
    if sol:
        yield (f"  speed of light: {sol['floor_ms'] * 1e3:.1f} us ({sol['bytes'] / 1e6:.1f} MB at "
               f"{sol['copy_gb_per_s']:.0f} GB/s, {sol['flops'] / 1e9:.2f} GFLOP); candidate at "
               f"{sol['fraction']:.0%} of it")


EXIT_CODES = {"accepted": 0, "rejected": 1, "error": 2}
