"""The verifier gate, the only way in: ptxas, then the Z3 proof, then the CPU emulator (on the
CPU, in a process pool: `cpu_stages`), then the GPU check and timing (in a worker process per GPU:
`agents.workers`). The first stage that rejects a candidate names the verdict; its reason goes back
to the proposers as feedback.

Proof policy: a refuted obligation always rejects. With `require_proof`, so does an inconclusive
one; without it a candidate whose proof is inconclusive may pass on the emulator and GPU checks,
and its proof status is carried into the report as it is (never as proved)."""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ir import parse
from ir.kernel import Kernel
from ptxgen.lower import LoweringError, lower
from ptxgen.ptxas import PtxasError, assemble, ptxas_path
from ptxgen.schedule import ScheduleError, schedule_from_dict
from ptxgen.targets import get_target
from verify.against_ir import check_on_emulator
from verify.emulate import Launch
from verify.kernel_gpu import moved_bytes
from verify.prove import prove_kernel, verdict

EMULATOR_CASES = ((0, False), (1, True))  # (seed, extremes): normal inputs, then infinities, NaN, huge values
RAW_PTX_EMULATED_BYTES = 4 * 2**20  # PTX a proposer wrote is emulated at the problem's shapes up to this


@dataclass(frozen=True)
class CpuJob:
    """One candidate for the CPU stages (plain data: it crosses into a pool process)."""

    kernel: str  # IR text at the problem's shapes
    small: str | None  # IR text of the same region at reduced shapes, for the emulator
    schedule: dict[str, Any]
    target: str
    require_proof: bool = False
    prove: bool = True
    ptx: str | None = None  # PTX written by a proposer for this schedule's launch, instead of the lowering's


def _rejected(stage: str, reason: str, stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"verdict": stage, "feedback": f"{stage}: {reason}", "stages": stages, **extra}


def _proof(job: CpuJob, ptx: str, launch: Launch, kernel: Any, schedule: Any) -> tuple[dict[str, Any], str | None]:
    """The proof stage's record and, where it rejects, the reason (the values as the schedule's
    form of math and precision compute them)."""
    obligations = prove_kernel(ptx, launch, kernel, bool(getattr(schedule, "approx_math", False)),
                               bool(getattr(schedule, "fp32_intermediates", False)))
    status = verdict(obligations)
    unproved = [o for o in obligations if o.status != "proved"]
    record = {"status": status, "seconds": round(sum(o.seconds for o in obligations), 3),
              "obligations": len(obligations), "unproved": [f"{o.name}: {o.status}: {o.detail}" for o in unproved]}
    refuted = next((o for o in obligations if o.status == "refuted"), None)
    if refuted is not None:
        return record, f"{refuted.name} refuted: {refuted.detail}"
    if job.require_proof and unproved:
        return record, f"{unproved[0].name} inconclusive: {unproved[0].detail}"
    return record, None


def _emulated(job: CpuJob, kernel: Kernel, ptx: str, launch: Launch) -> tuple[Kernel, str, Launch] | str:
    """What the emulator runs: the same schedule lowered for the region at reduced shapes; PTX a
    proposer wrote, at the problem's shapes where they are small. A string says why nothing."""
    if job.ptx is not None:
        moved = moved_bytes(kernel)
        return (kernel, ptx, launch) if moved <= RAW_PTX_EMULATED_BYTES else \
            f"PTX written for the problem's shapes, which move {moved} bytes (emulated up to {RAW_PTX_EMULATED_BYTES})"
    if job.small is None:
        return "no region at reduced shapes matches this one"
    small = parse(job.small)
    try:
        lowered = lower(small, schedule_from_dict(job.schedule), get_target(job.target))
    except (LoweringError, ScheduleError) as err:
        return f"the schedule does not fit the reduced shapes: {err}"
    return small, lowered.ptx, Launch.of(lowered.launch)


def _emulation(job: CpuJob, kernel: Kernel, ptx: str, launch: Launch) -> tuple[dict[str, Any], str | None]:
    """The emulator stage against the IR interpreter in float64."""
    chosen = _emulated(job, kernel, ptx, launch)
    if isinstance(chosen, str):
        return {"status": "skipped", "reason": chosen}, None
    small, small_ptx, small_launch = chosen
    for seed, extremes in EMULATOR_CASES:
        result = check_on_emulator(small, small_ptx, small_launch, seed=seed, extremes=extremes)
        if result.status in ("mismatch", "error"):
            return {"status": result.status, "reasons": result.reasons[:4]}, "; ".join(result.reasons[:2])
        if result.status == "inconclusive":
            return {"status": "inconclusive", "reasons": result.reasons[:4]}, None
    return {"status": "match", "shapes": [list(p.type.shape) for p in small.inputs]}, None


def cpu_stages(job: CpuJob) -> dict[str, Any]:
    """Lowering, ptxas, proof and emulator for one candidate: {"verdict": "passed" or the stage
    that rejected it, "feedback", "stages", "seconds", and the lowered kernel's "ptx", "launch",
    "params", "resources"}. Never raises for a bad candidate."""
    started = time.perf_counter()
    try:
        result = _stages(job)
    except Exception as err:  # a fault of ours on this candidate: recorded as such, the search goes on
        frames = traceback.format_exception(type(err), err, err.__traceback__)
        result = _rejected("error", f"{type(err).__name__}: {err}", {"error": "".join(frames[-3:])[-800:]})
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _stages(job: CpuJob) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    kernel, target = parse(job.kernel), get_target(job.target)
    try:
        schedule = schedule_from_dict(job.schedule)
        lowered = lower(kernel, schedule, target)
    except (LoweringError, ScheduleError) as err:
        return _rejected("lowering", str(err), stages)
    ptx = job.ptx if job.ptx is not None else lowered.ptx
    found = {"ptx": ptx, "launch": dataclasses.asdict(lowered.launch), "params": list(lowered.params)}
    if ptxas_path() is None:
        stages["ptxas"] = {"status": "skipped", "reason": "ptxas is not installed"}
    else:
        try:
            _, resources = assemble(ptx, target.name)
        except PtxasError as err:
            return _rejected("ptxas", str(err).strip()[-600:], stages, **found)
        stages["ptxas"] = {"status": "passed"}
        found["resources"] = dataclasses.asdict(resources)
    if job.prove:
        stages["proof"], reason = _proof(job, ptx, Launch.of(lowered.launch), kernel, schedule)
        if reason is not None:
            return _rejected("proof", reason, stages, **found)
    else:
        stages["proof"] = {"status": "skipped", "reason": "not asked for"}
    stages["emulator"], reason = _emulation(job, kernel, ptx, Launch.of(lowered.launch))
    if reason is not None:
        return _rejected("emulator", reason, stages, **found)
    return {"verdict": "passed", "feedback": "", "stages": stages, **found}
