"""The supervisor: `ptxgen optimize PROBLEM.py --out DIR`. It captures the problem's fused
regions, deploys the proposers on each, sends every proposal through the gate (CPU stages in a
process pool, GPU check and timing in a worker process), keeps a leaderboard per region, and
writes DIR/model_new.py, DIR/report.json and DIR/report.md. Every attempt is recorded in
DIR/attempts.jsonl as it finishes; running again with the same DIR resumes (what was recorded is
not evaluated again).

Without a GPU it still lowers, proves and emulates, chooses by the proposers' heuristic order (the
default schedule first), writes the module and says that timing needs a GPU."""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import datetime
import json
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import OptimizeError
from agents.cost_model import CostModelProposer, kernel_features
from agents.gate import CpuJob, cpu_stages
from agents.llm import LlmProposer, LlmPtxProposer
from agents.proposers import Candidate, Neighbours, Proposer, RandomSearch, Region, Seeds, candidate_parts
from agents.records import Attempt, Records, candidate_key, read_attempts, text_hash, versions
from agents.workers import GPU_EVALUATOR, JOB_TIMEOUT_S, Worker
from ir.frontend import capture, load_problem
from ir.frontend.program import Program
from ir.kernel import Kernel
from ir.printer import format_kernel
from ptxgen.lower import LoweredKernel, LoweringError, lower
from ptxgen.schedule import ScheduleError, schedule_from_dict
from ptxgen.targets import Target
from verify.kernel_gpu import largest_elements

CPU_DEVICE = "cpu"
CHECK_ELEMENTS = 2**25  # a tensor larger than this is checked on the GPU at capped shapes (interpreting it is slow)
CHECK_CAPS = (8192, 4096, 2048, 1024, 512)  # size-constant caps tried, largest first
EMULATED_ELEMENTS = 2**20  # a region whose shapes do not shrink below this is not emulated (too slow)


def _spawned_pool(workers: int) -> futures.ProcessPoolExecutor:
    """Processes started afresh (not forked: the parent may hold a CUDA context and z3 state)."""
    return futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def lowered_as_recorded(kernel: Kernel, attempt: Attempt, target: Target) -> bool:
    """Whether the attempt's schedule lowers today to the PTX it recorded (a proposer's written
    PTX always does): a lowering changed since is a new candidate, not a result to reuse."""
    if attempt.written_ptx:
        return True
    try:
        ptx = lower(kernel, schedule_from_dict(attempt.schedule), target).ptx
    except (LoweringError, ScheduleError):
        ptx = ""
    return text_hash(ptx) == attempt.ptx_hash


@dataclass
class OptimizeOptions:
    target: Target
    budget_s: float = 120.0  # wall time of the search, all regions together
    max_trials: int = 32  # candidates per region
    require_proof: bool = False  # admit only kernels proved on every obligation
    prove: bool = True
    shrink: int = 64  # size constants capped at this for the emulator stage
    sizes: dict[str, int] = field(default_factory=dict)
    cpu_workers: int = max(1, os.cpu_count() or 1)  # 0: the CPU stages run in this process
    gpu: bool = True  # use a GPU where one is present
    gpu_workers: int = 0  # worker processes, one per GPU (0: every visible GPU)
    evaluator: str = GPU_EVALUATOR
    gpu_timeout_s: float = JOB_TIMEOUT_S  # a candidate's GPU work longer than this is killed (recorded as a crash)
    final_check: bool = True  # the strict checker on the emitted module, with eager and torch.compile timed
    llm_url: str = ""  # an OpenAI-compatible server (vLLM) for the LLM proposer; empty: none
    llm_model: str = "default"
    llm_ptx: bool = False  # the LLM also writes PTX for the fastest schedule's launch (checked like any kernel)
    hint: str = ""  # the user's hint, in the LLM proposer's prompt
    history: list[Path] = field(default_factory=list)  # other runs' attempts.jsonl the cost model also learns from
    seed: int = 0
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


def _checked_on_cpu(attempt: Attempt) -> bool:
    """The CPU stages checked the kernel themselves: emulated against the IR, or proved whole."""
    stages = attempt.stages
    return stages.get("emulator", {}).get("status") == "match" or stages.get("proof", {}).get("status") == "proved"


def gpu_present() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def reduced_regions(path: Path, program: Program, sizes: dict[str, int], shrink: int,
                    log: Callable[[str], None]) -> dict[int, Kernel]:
    """Each region at shapes with every size constant capped at `shrink`, where the reduced capture
    has the same region (the same ops in the same order)."""
    try:
        reduced = capture(load_problem(path, sizes=sizes, shrink_to=shrink))
    except Exception as err:  # the reduced shapes may not capture; what needs them is skipped
        log(f"shapes capped at {shrink} do not capture ({err})")
        return {}
    ops = [[str(i.op) for i in r.kernel.body] for r in program.regions]
    small_ops = [[str(i.op) for i in r.kernel.body] for r in reduced.regions]
    return {k: r.kernel for k, r in enumerate(reduced.regions) if k < len(ops) and small_ops[k] == ops[k]}


def check_regions(path: Path, program: Program, sizes: dict[str, int], log: Callable[[str], None]) -> dict[int, str]:
    """IR text of the regions whose tensors are too large to interpret in float64 for the GPU
    check, at the largest capped shapes that are not."""
    found: dict[int, str] = {}
    for shrink in CHECK_CAPS:
        large = [k for k, r in enumerate(program.regions)
                 if k not in found and largest_elements(r.kernel) > CHECK_ELEMENTS]
        if not large:
            break
        reduced = reduced_regions(path, program, sizes, shrink, log)
        found.update({k: format_kernel(reduced[k]) for k in large
                      if k in reduced and largest_elements(reduced[k]) <= CHECK_ELEMENTS})
    return found


@dataclass
class RegionResult:
    name: str
    attempts: list[Attempt]
    best: Attempt | None
    seconds: float


class Supervisor:
    def __init__(self, problem_path: Path, out: Path, options: OptimizeOptions) -> None:
        self.problem_path, self.out, self.options = problem_path, out, options
        self.records = Records(out)
        self.workers: list[Worker] = []  # one per GPU, all of the same model
        self.free: queue.Queue[Worker] = queue.Queue()  # the workers not evaluating a candidate now
        self.device = CPU_DEVICE
        self.copy_gb_per_s: float | None = None
        self.pool: futures.Executor | None = None

    # ---- the run

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        opts = self.options
        problem = load_problem(self.problem_path, sizes=opts.sizes)
        program = capture(problem)
        reduced = reduced_regions(self.problem_path, program, opts.sizes, opts.shrink, opts.log)
        small = {k: format_kernel(r) for k, r in reduced.items() if largest_elements(r) <= EMULATED_ELEMENTS}
        checks = check_regions(self.problem_path, program, opts.sizes, opts.log)
        if not program.regions:
            raise OptimizeError(f"{self.problem_path}: no fusable region: nothing for ptxgen to optimize")
        self._start_workers()
        deadline = time.perf_counter() + opts.budget_s
        results = []
        try:
            for index, region in enumerate(program.regions):
                share = (deadline - time.perf_counter()) / (len(program.regions) - index)  # of the time left
                results.append(self._search(problem.name, region.kernel, small.get(index), checks.get(index),
                                            time.perf_counter() + share))
        finally:
            self._stop_workers()
        report = self._finish(program, problem.name, results, time.perf_counter() - started)
        return report

    def _start_workers(self) -> None:
        opts = self.options
        if opts.cpu_workers > 0:
            self.pool = _spawned_pool(opts.cpu_workers)
        if opts.gpu and (gpu_present() or opts.evaluator != GPU_EVALUATOR):  # another evaluator: tests
            for index in range(self._gpu_count()):
                self._start_worker(index)
        for worker in self.workers:
            self.free.put(worker)
        if self.workers:
            opts.log(f"GPU: {self.device} x {len(self.workers)}, device-to-device copy {self.copy_gb_per_s:,.0f} GB/s")
        else:
            opts.log("no GPU: candidates are lowered, proved and emulated; timing needs a GPU")

    def _gpu_count(self) -> int:
        """Workers to start: as asked, else one per visible GPU (one for a stand-in evaluator)."""
        if self.options.gpu_workers > 0:
            return self.options.gpu_workers
        if self.options.evaluator != GPU_EVALUATOR:
            return 1
        import torch

        return max(1, torch.cuda.device_count())

    def _start_worker(self, index: int) -> None:
        """A worker on GPU `index`, kept if it starts and its GPU is the same model as the first's
        (times from different models are not compared)."""
        opts = self.options
        worker = Worker(index, opts.evaluator, opts.gpu_timeout_s)
        described = worker.evaluate({"describe": True})
        if described.get("status") != "passed":
            opts.log(f"the GPU worker on device {index} did not start: {described.get('reasons')}")
        elif self.workers and described["device"] != self.device:
            opts.log(f"device {index} is a {described['device']}, not a {self.device}: not used")
        else:
            if not self.workers:
                self.device, self.copy_gb_per_s = described["device"], described["copy_gb_per_s"]
            self.workers.append(worker)
            return
        worker.close()

    def _stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        for worker in self.workers:
            worker.close()

    # ---- one region

    def _search(self, problem: str, kernel: Any, small: str | None, check: str | None,
                deadline: float) -> RegionResult:
        opts, started = self.options, time.perf_counter()
        ir_text = format_kernel(kernel)
        ir_hash = text_hash(ir_text)
        recorded = [a for a in self.records.of_region(problem, kernel.name)
                    if a.ir_hash == ir_hash and a.target == opts.target.name and a.device == self.device]
        previous = [a for a in recorded if lowered_as_recorded(kernel, a, opts.target)]
        region = Region(kernel, opts.target, list(previous))
        if previous:
            opts.log(f"{kernel.name}: resuming with {len(previous)} recorded attempt(s)")
        if len(previous) < len(recorded):
            opts.log(f"{kernel.name}: {len(recorded) - len(previous)} recorded attempt(s) lowered to other PTX "
                     "since: judged again")
        features = kernel_features(kernel, opts.target)
        others = [a for path in opts.history for a in read_attempts(path)]
        history = [a for a in self.records.attempts + others if a.ir_hash != ir_hash and a.device == self.device]
        proposers: list[Proposer] = [Seeds(), CostModelProposer(history, opts.seed), Neighbours(),
                                     RandomSearch(opts.seed)]
        if opts.llm_url:
            proposers.insert(1, LlmProposer(opts.llm_url, opts.llm_model, opts.hint))
            if opts.llm_ptx:
                proposers.insert(2, LlmPtxProposer(opts.llm_url, opts.llm_model, opts.hint))
        batch_size = max(2, opts.cpu_workers)
        first = True  # the first batch (the default schedule and its neighbours) is judged whatever the budget
        while len(region.attempts) < opts.max_trials and (first or time.perf_counter() < deadline):
            batch = self._proposals(region, proposers, min(batch_size, opts.max_trials - len(region.attempts)), first)
            if not batch:
                opts.log(f"{kernel.name}: no schedule left to try")
                break
            judged = self._cpu_results(ir_text, small, batch, None if first else deadline)
            with futures.ThreadPoolExecutor(max(1, len(self.workers))) as gpus:  # one candidate per GPU at a time
                running = [gpus.submit(self._attempt, problem, kernel.name, ir_hash, proposer, candidate, cpu, ir_text,
                                       check, features, None if first else deadline)
                           for proposer, candidate, cpu in judged]
                for future in running:  # recorded in proposal order
                    attempt = future.result()
                    if attempt is None:
                        continue  # the budget ran out before a GPU was free: not recorded, a resumed run judges it
                    self.records.add(attempt)
                    region.attempts.append(attempt)
                    self._progress(region, attempt)
            first = False
        best = self._best(region)
        return RegionResult(kernel.name, region.attempts, best, time.perf_counter() - started)

    def _proposals(self, region: Region, proposers: list[Proposer], count: int,
                   first: bool) -> list[tuple[str, Candidate]]:
        """The first batch from the first proposer (the seeds); later ones shared among all, each
        asked for its share in turn and the rest filled in the same order (a batch smaller than the
        number of proposers goes to the first ones that propose something)."""
        chosen: list[tuple[str, Candidate]] = []
        keys = region.tried()
        share = count if first else max(1, count // len(proposers))
        for limit in (share, count):
            for proposer in proposers:
                wanted = min(limit, count - len(chosen))
                if wanted <= 0:
                    break
                for candidate in proposer.propose(region, wanted):
                    schedule, written = candidate_parts(candidate)
                    key = candidate_key(schedule.to_dict(), written)
                    if key not in keys:
                        keys.add(key)
                        chosen.append((proposer.name, candidate))
        return chosen

    def _cpu_results(self, ir_text: str, small: str | None, batch: list[tuple[str, Candidate]],
                     deadline: float | None) -> list[tuple[str, Candidate, dict[str, Any]]]:
        """The CPU stages' results in proposal order; those not finished by `deadline` are left out
        (their processes are stopped)."""
        opts = self.options
        jobs = [CpuJob(ir_text, small, schedule.to_dict(), opts.target.name, opts.require_proof, opts.prove,
                       ptx=written or None)
                for schedule, written in (candidate_parts(c) for _, c in batch)]
        if self.pool is None:
            return [(p, s, cpu_stages(job)) for (p, s), job in zip(batch, jobs)]
        submitted = [self.pool.submit(cpu_stages, job) for job in jobs]
        results, broken = [], False
        for (proposer, schedule), job, future in zip(batch, jobs, submitted):
            try:
                left = None if deadline is None else max(0.01, deadline - time.perf_counter())
                results.append((proposer, schedule, future.result(timeout=left)))
            except futures.process.BrokenProcessPool:
                broken = True
                results.append((proposer, schedule, self._alone(job)))
            except futures.TimeoutError:
                opts.log(f"the budget is spent: {len(batch) - len(results)} candidate(s) in the CPU stages dropped")
                broken = True
                break
        if broken:
            self._new_pool()
        return results

    def _new_pool(self) -> None:
        """A fresh pool; the old one's processes are stopped (a broken pool's are gone already, an
        interrupted batch's would go on with work nobody waits for)."""
        assert self.pool is not None
        processes = list(getattr(self.pool, "_processes", {}).values())  # the executor's own table of them
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        self.pool = _spawned_pool(self.options.cpu_workers)

    def _alone(self, job: CpuJob) -> dict[str, Any]:
        """A job whose pool broke (some job's process died), run again in a process of its own: the
        one that crashes is recorded as a crash, the others get their verdicts."""
        with _spawned_pool(1) as alone:
            try:
                return alone.submit(cpu_stages, job).result()
            except futures.process.BrokenProcessPool:
                return {"verdict": "crash", "feedback": "crash: the CPU stages' process died on this candidate",
                        "stages": {}}

    def _attempt(self, problem: str, region: str, ir_hash: str, proposer: str, candidate: Candidate,
                 cpu: dict[str, Any], ir_text: str, check: str | None, features: dict[str, float],
                 deadline: float | None = None) -> Attempt | None:
        """The candidate's attempt through the GPU stage (on whichever GPU is free); None where the
        deadline passes before one is."""
        if deadline is not None and time.perf_counter() > deadline:
            return None
        started = time.perf_counter()
        schedule, written = candidate_parts(candidate)
        attempt = Attempt(problem, region, ir_hash, schedule.to_dict(), self.options.target.name, self.device,
                          proposer, verdict=cpu["verdict"], ptx_hash=text_hash(cpu.get("ptx", "")),
                          stages=dict(cpu["stages"]), resources=cpu.get("resources", {}), feedback=cpu["feedback"],
                          versions=versions(), kernel_features=features, written_ptx=written)
        attempt.seconds = cpu.get("seconds", 0.0)
        if cpu["verdict"] != "passed":
            return attempt
        if written and check is not None:  # the GPU check runs the lowering at capped shapes, not this PTX
            attempt.verdict = "gpu"
            attempt.feedback = ("gpu: written PTX is checked on the GPU at the problem's shapes only, and this "
                                f"region's are too large to check against the interpreter (over {CHECK_ELEMENTS} "
                                "elements)")
            return attempt
        if not self.workers and written and not _checked_on_cpu(attempt):
            attempt.verdict = "emulator"
            attempt.feedback = ("emulator: written PTX this large is neither emulated nor fully proved on the CPU; "
                                "it needs the GPU check")
            return attempt
        if not self.workers:
            attempt.verdict, attempt.feedback = "admitted", "admitted on the CPU stages; timing needs a GPU"
            attempt.stages["gpu"] = {"status": "skipped", "reason": "no GPU"}
            return attempt
        worker = self.free.get()
        try:
            if deadline is not None and time.perf_counter() > deadline:
                return None
            run = worker.evaluate({"kernel": ir_text, "ptx": cpu["ptx"], "launch": cpu["launch"],
                                   "params": cpu["params"], "target": self.options.target.name,
                                   "schedule": schedule.to_dict(), "check_kernel": check})
        finally:
            self.free.put(worker)
        attempt.stages["gpu"] = {**run, "gpu_index": worker.device}
        attempt.seconds = round(time.perf_counter() - started + attempt.seconds, 3)
        if run.get("status") != "passed":
            attempt.verdict = "crash" if run.get("status") in ("crash", "timeout") else "gpu"
            attempt.feedback = f"{attempt.verdict}: " + "; ".join(run.get("reasons", []))[:600]
            return attempt
        attempt.verdict, attempt.median_ms = "admitted", run["timing"]["median_ms"]
        attempt.feedback = f"admitted: {attempt.median_ms * 1e3:.1f} us"
        return attempt

    def _progress(self, region: Region, attempt: Attempt) -> None:
        best = region.fastest(1)
        knobs = ", ".join(f"{k}={v}" for k, v in attempt.schedule.items() if k != "kind")
        knobs += " (PTX written by the proposer for this launch)" if attempt.written_ptx else ""
        timing = f" {attempt.median_ms * 1e3:.1f} us" if attempt.median_ms is not None else ""
        leader = f" (best {best[0].median_ms * 1e3:.1f} us)" if best and best[0].median_ms is not None else ""
        self.options.log(f"{region.kernel.name} [{len(region.attempts)}/{self.options.max_trials}] {attempt.proposer}: "
                         f"{attempt.verdict}{timing}{leader} <- {knobs}"
                         + (f"\n    {attempt.feedback[:300]}" if not attempt.admitted else ""))

    def _best(self, region: Region) -> Attempt | None:
        """The fastest admitted attempt; without timings, the first admitted in proposal order (the
        default schedule first)."""
        fastest = region.fastest(1)
        if fastest:
            return fastest[0]
        return next((a for a in region.attempts if a.admitted), None)

    # ---- the module and the report

    def _finish(self, program: Program, problem: str, results: list[RegionResult], seconds: float) -> dict[str, Any]:
        report: dict[str, Any] = {
            "problem": str(self.problem_path), "target": self.options.target.name, "device": self.device,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), "copy_gb_per_s": self.copy_gb_per_s, "seconds": round(seconds, 1),
            "budget_s": self.options.budget_s, "regions": [self._region_report(r) for r in results], "skipped": [],
            "llm": {"url": self.options.llm_url, "model": self.options.llm_model} if self.options.llm_url else None,
            "hint": self.options.hint,
        }
        if not self.workers:
            report["skipped"].append("GPU check and timing of candidates: no GPU (choice by heuristic order)")
        missing = [r.name for r in results if r.best is None]
        kernels = {r.name: self._relowered(program, r) for r in results if r.best is not None}
        module_path = self.out / "model_new.py"
        if missing:
            report["module"] = {"kind": "pytorch", "reason": f"no admitted kernel for {', '.join(missing)}"}
            module_path.write_text(fallback_source(self.problem_path, report["module"]["reason"], compiled=False))
        else:
            from ptxgen.emit import emit_model_new

            module_path.write_text(emit_model_new(self.problem_path, program, kernels, self.options.target.name,
                                                  self.options.sizes or None))
            report["module"] = {"kind": "ptx", "kernels": sorted(kernels)}
            self._final_check(report, module_path)
        (self.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        (self.out / "report.md").write_text(render_report(report))
        return report

    def _relowered(self, program: Program, result: RegionResult) -> LoweredKernel:
        assert result.best is not None
        region = next(r for r in program.regions if r.kernel.name == result.name)
        lowered = lower(region.kernel, schedule_from_dict(result.best.schedule), self.options.target)
        if result.best.written_ptx:  # the proposer's PTX, with the launch of the schedule it was written for
            lowered = dataclasses.replace(lowered, ptx=result.best.written_ptx)
        if text_hash(lowered.ptx) != result.best.ptx_hash:
            raise RuntimeError(f"{result.name}: the chosen kernel's PTX is not the PTX that was checked")
        return lowered

    def _region_report(self, result: RegionResult) -> dict[str, Any]:
        verdicts: dict[str, int] = {}
        for a in result.attempts:
            verdicts[a.verdict] = verdicts.get(a.verdict, 0) + 1
        row: dict[str, Any] = {"region": result.name, "attempts": len(result.attempts), "verdicts": verdicts,
                               "seconds": round(result.seconds, 1), "best": None}
        best = result.best
        if best is not None:
            proof = best.stages.get("proof", {})
            row["best"] = {"schedule": best.schedule, "proposer": best.proposer, "median_ms": best.median_ms,
                           "proof": proof.get("status", "skipped"), "proof_seconds": proof.get("seconds"),
                           "unproved": proof.get("unproved", []),
                           "emulator": best.stages.get("emulator", {}).get("status")}
            moved = best.stages.get("gpu", {}).get("moved_bytes")
            if best.median_ms and moved and self.copy_gb_per_s:
                row["best"]["of_copy"] = moved / (best.median_ms * 1e-3) / 1e9 / self.copy_gb_per_s
        return row

    def _final_check(self, report: dict[str, Any], module_path: Path) -> None:
        if not self.options.final_check:
            report["skipped"].append("the strict check of the module: not asked for")
            return
        if not self.workers and not gpu_present():
            report["skipped"].append("the strict check of the module and its timing beside eager and torch.compile: "
                                     "no GPU")
            return
        from verify.check import CheckOptions, check

        self.options.log("checking model_new.py against the problem, timing it beside eager and torch.compile ...")
        checked = check(module_path, self.problem_path, CheckOptions(trials=3, sizes=self.options.sizes))
        timing = checked.get("timing") or {}
        report["check"] = {"verdict": checked["verdict"], "reasons": checked.get("reasons", []),
                           "timing": {n: r.get("median_ms") for n, r in timing.items()},
                           "speedup": checked.get("speedup", {}), "speed_of_light": checked.get("speed_of_light")}
        baselines = {n: ms for n, ms in report["check"]["timing"].items() if n != "candidate" and ms}
        ours = report["check"]["timing"].get("candidate")
        if checked["verdict"] != "accepted" or not ours or not baselines:
            why = "; ".join(r["message"] for r in checked.get("reasons", [])) or "not timed"
            self._fall_back(report, module_path, f"the module did not pass the strict check: {why}", compiled=False)
            return
        best_name = min(baselines, key=lambda n: baselines[n])
        if ours > baselines[best_name]:
            self._fall_back(report, module_path, f"ours {ours * 1e3:.1f} us is slower than {best_name} "
                            f"{baselines[best_name] * 1e3:.1f} us", compiled=best_name == "torch.compile")

    def _fall_back(self, report: dict[str, Any], module_path: Path, reason: str, compiled: bool) -> None:
        (self.out / "model_new_ptx.py").write_text(module_path.read_text())
        module_path.write_text(fallback_source(self.problem_path, reason, compiled))
        report["module"] = {"kind": "pytorch", "compiled": compiled, "reason": reason, "ptx_module": "model_new_ptx.py"}
        self.options.log(f"falling back to PyTorch: {reason}")


FALLBACK = '''"""model_new.py: generated by ptxgen from {problem}. No kernel of ours is used: {reason}.
ModelNew runs the problem's own Model{how}."""

{source}


class ModelNew(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.reference = Model(*args, **kwargs)
        self.run = {run}

    def forward(self, *inputs):
        return self.run(*inputs)
'''


def fallback_source(problem: Path, reason: str, compiled: bool) -> str:
    source = problem.read_text().strip("\n")
    if "import torch\n" not in source:
        source = "import torch\n" + source
    return FALLBACK.format(problem=problem.name, reason=reason, source=source,
                           how=" under torch.compile" if compiled else "",
                           run="torch.compile(self.reference)" if compiled else "self.reference")


def _us(ms: float | None) -> str:
    return f"{ms * 1e3:.1f}" if ms else "-"


def render_report(report: dict[str, Any]) -> str:
    """report.md from report.json."""
    lines = [f"# ptxgen optimize: {Path(report['problem']).name}", "",
             f"- target {report['target']}, device {report['device']}, {report['date']}; search "
             f"{report['seconds']} s (budget {report['budget_s']:.0f} s)"]
    if report.get("copy_gb_per_s"):
        lines.append(f"- device-to-device copy measured at {report['copy_gb_per_s']:,.0f} GB/s")
    module = report["module"]
    used = "our PTX kernels" if module["kind"] == "ptx" else f"PyTorch (fallback): {module['reason']}"
    lines.append(f"- module: {used}")
    check = report.get("check")
    if check:
        timing, speedup = check["timing"], check["speedup"]
        lines.append(f"- strict check: {check['verdict']}; ours {_us(timing.get('candidate'))} us, eager "
                     f"{_us(timing.get('eager'))} us, torch.compile {_us(timing.get('torch.compile'))} us; speedup "
                     + ", ".join(f"{x:.2f}x over {n}" for n, x in speedup.items()))
    lines += [f"- skipped: {s}" for s in report["skipped"]]
    lines += ["", "| region | attempts | verdicts | chosen schedule | kernel us | of copy | proof | proof s |",
              "|---|---:|---|---|---:|---:|---|---:|"]
    for row in report["regions"]:
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(row["verdicts"].items()))
        best = row["best"]
        if best is None:
            lines.append(f"| `{row['region']}` | {row['attempts']} | {verdicts} | none admitted | - | - | - | - |")
            continue
        knobs = ", ".join(f"{k}={v}" for k, v in best["schedule"].items() if k != "kind")
        of_copy = f"{best['of_copy']:.0%}" if best.get("of_copy") else "-"
        seconds = f"{best['proof_seconds']:.1f}" if best.get("proof_seconds") is not None else "-"
        lines.append(f"| `{row['region']}` | {row['attempts']} | {verdicts} | {knobs} | {_us(best['median_ms'])} | "
                     f"{of_copy} | {best['proof']} | {seconds} |")
    unproved = [(row["region"], u) for row in report["regions"] if row["best"] for u in row["best"]["unproved"]]
    if unproved:
        lines += ["", "Obligations of the chosen kernels not proved:", ""]
        lines += [f"- `{region}`: {u}" for region, u in unproved]
    return "\n".join(lines) + "\n"
