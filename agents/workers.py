"""GPU work in a process of its own per GPU, so that a kernel that crashes or hangs loses one
candidate, not the run: the worker is started again and the candidate recorded as a crash.

A worker serves jobs over a pipe with an evaluator named "module:function" (the GPU check and
timing by default; tests name others). Each job is plain data; each answer a dict."""

from __future__ import annotations

import importlib
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any

GPU_EVALUATOR = "agents.workers:evaluate_on_gpu"
JOB_TIMEOUT_S = 180.0


def _function(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(conn: Connection, device: int, evaluator: str) -> None:
    """The worker's loop: one answer per job until the pipe closes or a None job arrives."""
    evaluate = _function(evaluator)
    state: dict[str, Any] = {"device": device}
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            answer = evaluate(job, state)
        except Exception as err:  # a failure of this candidate; the worker goes on
            frames = traceback.format_exception(type(err), err, err.__traceback__)
            answer = {"status": "error", "reasons": [f"{type(err).__name__}: {err}", "".join(frames[-3:])[-600:]]}
        conn.send(answer)


class Worker:
    """One worker process bound to one device, restarted after a crash or a timeout."""

    def __init__(self, device: int = 0, evaluator: str = GPU_EVALUATOR, timeout_s: float = JOB_TIMEOUT_S) -> None:
        self.device, self.evaluator, self.timeout_s = device, evaluator, timeout_s
        self.context = multiprocessing.get_context("spawn")
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=serve, args=(child, self.device, self.evaluator), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    def _restart(self) -> None:
        self.process.kill()
        self.process.join(10)
        self.conn.close()
        self.restarts += 1
        self._start()

    def evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        try:
            self.conn.send(job)
            if self.conn.poll(self.timeout_s):
                answer: dict[str, Any] = self.conn.recv()
                return answer
            self._restart()
            return {"status": "timeout", "reasons": [f"no answer within {self.timeout_s:.0f} s; the worker was "
                                                     "killed and started again"]}
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self.process.join(10)
            code = self.process.exitcode
            self._restart()
            return {"status": "crash", "reasons": [f"the worker process died (exit code {code}) on this candidate; "
                                                   "it was started again"]}

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


# ---- the GPU evaluator (runs inside the worker)


def evaluate_on_gpu(job: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Jobs: {"describe": true} -> the device and its copy bandwidth; else a lowered kernel
    ({"kernel": IR text, "ptx", "launch", "params", "target", "schedule", and "check_kernel": the
    region's IR at the shapes to check it at, where the problem's are too large to interpret}) ->
    its check (the same schedule lowered for the check's shapes) and its times."""
    import torch

    from ptxgen.runtime import Runtime

    if "runtime" not in state:
        state["runtime"] = Runtime(state["device"])
    if job.get("describe"):
        return describe_device(state["device"])
    from ir import parse
    from ptxgen.lower import LaunchConfig, LoweredKernel, lower
    from ptxgen.schedule import schedule_from_dict
    from ptxgen.targets import get_target
    from verify.kernel_gpu import KernelBench, KernelTimer, check_and_time

    kernel, schedule = parse(job["kernel"]), schedule_from_dict(job["schedule"])
    checked_text = job.get("check_kernel") or job["kernel"]
    if state.get("region") != (job["kernel"], checked_text):  # one region at a time: its inputs drawn once
        state.pop("bench", None)
        state.pop("timer", None)
        state["region"] = (job["kernel"], checked_text)
        with torch.cuda.device(state["device"]):
            state["bench"], state["timer"] = KernelBench(parse(checked_text)), KernelTimer(kernel)
    launch = job["launch"]
    config = LaunchConfig(tuple(launch["grid"]), tuple(launch["block"]), launch["shared_bytes"],
                          tuple(launch["cluster"]))
    timed = LoweredKernel(kernel.name, job["ptx"], config, job["target"], schedule, tuple(job["params"]))
    checked = timed if checked_text == job["kernel"] else lower(state["bench"].kernel, schedule,
                                                                 get_target(job["target"]))
    with torch.cuda.device(state["device"]):
        run = check_and_time(state["bench"], checked, state["timer"], timed, state["runtime"]).to_dict()
    run["checked_shapes"] = [list(p.type.shape) for p in state["bench"].kernel.inputs]
    return run


def describe_device(device: int) -> dict[str, Any]:
    import torch

    from verify.timing import copy_bandwidth, flush_buffer

    with torch.cuda.device(device):
        copy = copy_bandwidth("cuda", 20, flush_buffer("cuda"), 2**30)
    return {"status": "passed", "device": torch.cuda.get_device_name(device), "copy_gb_per_s": copy["gb_per_s"]}
