"""Candidate work in a process of its own, with a time limit: whatever the work does (returns,
raises, hangs, exits early, dies on a signal, poisons its CUDA context with an illegal memory
access) comes back as an `Outcome`, and the caller goes on with a clean process.

The child is a fresh interpreter started with `subprocess` as `python -m verify.isolate`, not a
`multiprocessing` spawn context, because:
- it is what spawn gives (a new interpreter; CUDA does not survive fork) without spawn's
  re-import of the caller's `__main__`, which fails from notebooks and scripts without a main guard;
- the child leads a session of its own, so one `killpg` also reaches the grandchildren it started;
- its stdout and stderr are files at the descriptor level, so output from C code and tools such as
  ptxas is caught too, a candidate that prints gigabytes costs disk and not memory, and only
  bounded tails are read back;
- nothing is pickled: the target is named "module:function", its keyword arguments and its result
  are JSON, and the result comes back in a file written atomically, never parsed from stdout.

When the child ends, its process group is killed whatever the verdict, so no grandchild outlives
it. On Linux the caller becomes a child subreaper: the grandchildren orphaned by the kill are
reparented to it and reaped here, not left as zombies under a PID 1 that never reaps (containers
without an init). Grandchildren that leave the child's process group are beyond reach.

A fatal signal makes the child print its Python stacks to stderr (faulthandler), and a child still
running near its limit prints them too, so a crash or a timeout says where it happened."""

from __future__ import annotations

import ctypes
import faulthandler
import functools
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
TAIL_BYTES = 8192
ERROR_LINES = 20  # traceback lines kept in an "error"
STDERR_LINES = 12  # stderr lines quoted in a "crash" or "timeout"
DUMP_LEAD = (0.2, 2.0)  # a still-running child prints its stacks this fraction of the limit, at most
# this many seconds, before the limit
POLL_S = (0.002, 0.05)  # first and longest pause between checks on the child
REAP_S = 5.0  # longest wait for killed grandchildren to die (one stuck in a driver call may take a while)
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

Status = Literal["ok", "error", "crash", "timeout"]


@dataclass(frozen=True)
class Outcome:
    """What became of one isolated call.

    result: the target's return value (JSON round trip); kept on a crash after it returned.
    error: for "error", the exception and its traceback tail; for "crash", the exit code or signal
    and the last stderr lines; for "timeout", the limit and the last stderr lines."""

    status: Status
    result: Any | None
    error: str | None
    seconds: float
    stderr_tail: str
    stdout_tail: str = ""


def run_isolated(target: str, kwargs: dict[str, Any], timeout_s: float,
                 env: dict[str, str] | None = None) -> Outcome:
    """Call `target(**kwargs)` in a child process; kill it and its process group past `timeout_s`."""
    request = request_text(target, kwargs, timeout_s)
    with tempfile.TemporaryDirectory(prefix="ptxgen-isolate-") as folder:
        files = ChildFiles.inside(Path(folder))
        files.request.write_text(request)
        become_subreaper()
        start = time.perf_counter()
        child = start_child(files, env)
        try:
            finished = wait_exited(child.pid, timeout_s)
        finally:
            kill_group(child.pid)  # leftovers of a finished child too; it is unreaped, so its group id is not reused
            child.wait()
            reap_group(child.pid)
        seconds = time.perf_counter() - start
        stderr_tail = tail(files.stderr)
        status, result, error = verdict(read_report(files.result), child.returncode, finished, timeout_s, stderr_tail)
        return Outcome(status, result, error, seconds, stderr_tail, tail(files.stdout))


def run_many(jobs: list[tuple[str, dict[str, Any]]], timeout_s: float,
             env: dict[str, str] | None = None) -> list[Outcome]:
    """Jobs one after another (a GPU serves one candidate at a time); a failed job never stops the
    rest. Every request is checked before the first job starts, so a typo fails at once."""
    for target, kwargs in jobs:
        request_text(target, kwargs, timeout_s)
    return [run_isolated(target, kwargs, timeout_s, env) for target, kwargs in jobs]


# The parent's side


@dataclass(frozen=True)
class ChildFiles:
    """The request, the report and the two output streams of one child, in one temporary folder."""

    request: Path
    result: Path
    stdout: Path
    stderr: Path

    @classmethod
    def inside(cls, folder: Path) -> ChildFiles:
        return cls(*(folder / name for name in ("request.json", "result.json", "stdout", "stderr")))


def request_text(target: str, kwargs: dict[str, Any], timeout_s: float) -> str:
    """The request as the child reads it; ValueError or TypeError for a caller's mistake."""
    if not TARGET.fullmatch(target):
        raise ValueError(f"target {target!r} is not 'module:function'")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    try:
        return json.dumps({"target": target, "kwargs": kwargs, "dump_at": dump_time(timeout_s)})
    except (TypeError, ValueError) as err:
        raise TypeError(f"keyword arguments for {target} must be JSON-serialisable: {err}") from None


def dump_time(timeout_s: float) -> float:
    """When (wall clock, shared by both processes) a child still running prints its stacks: before
    the kill whatever the child's start-up took."""
    return time.time() + timeout_s - min(DUMP_LEAD[0] * timeout_s, DUMP_LEAD[1])


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """The parent's environment plus `extra`, with the repository importable and stdio unbuffered
    (so that the last lines before a crash reach the files)."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_child(files: ChildFiles, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "verify.isolate", str(files.request), str(files.result)]
    with files.stdout.open("wb") as stdout, files.stderr.open("wb") as stderr:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                env=child_env(env), start_new_session=True)


def wait_exited(pid: int, timeout_s: float) -> bool:
    """Whether the child exited within `timeout_s`; it is left unreaped (WNOWAIT)."""
    deadline = time.monotonic() + timeout_s
    pause = POLL_S[0]
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(2 * pause, POLL_S[1])
    return True


@functools.cache
def become_subreaper() -> bool:
    """Whether orphans among this process's descendants now come to it rather than to PID 1. Set
    once per process; orphans of its other descendants come here too, and stay zombies until reaped."""
    if not sys.platform.startswith("linux"):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # no process of the group is left
        pass


def reap_group(pgid: int) -> None:
    """Reap the killed members of the group that were reparented here (see `become_subreaper`)."""
    deadline = time.monotonic() + REAP_S
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:  # none of the group is a child of this process
            return
        if pid == 0:
            time.sleep(POLL_S[0])


def tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a file, with a note of how much came before."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - limit))
        text = file.read().decode(errors="replace")
    return f"[{size - limit} bytes before]\n{text}" if size > limit else text


def read_report(path: Path) -> dict[str, Any]:
    """What the child wrote: {"result": ...} or {"error": ...}; empty where it wrote nothing."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


CRASH_MOMENT = {
    "result": "after the target returned",
    "error": "after the target raised",
    None: "before the target returned",
}


def verdict(report: dict[str, Any], returncode: int, finished: bool, timeout_s: float,
            stderr_tail: str) -> tuple[Status, Any | None, str | None]:
    """(status, result, error): a timeout first, then a death by signal, a nonzero exit or an exit
    without a report, then what the report says."""
    kind = next((key for key in ("error", "result") if key in report), None)
    if not finished:
        limit = f"still running after the limit of {timeout_s:g} s, killed with its process group"
        return "timeout", report.get("result"), limit + quoted(stderr_tail)
    if returncode != 0 or kind is None:
        raised = f"\n{report['error']}" if kind == "error" else ""
        reason = f"{exit_reason(returncode)} {CRASH_MOMENT[kind]}{raised}"
        return "crash", report.get("result"), reason + quoted(stderr_tail)
    if kind == "error":
        return "error", None, report["error"]
    return "ok", report["result"], None


def exit_reason(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def quoted(stderr_tail: str) -> str:
    lines = stderr_tail.rstrip().splitlines()[-STDERR_LINES:]
    return "\nstderr, last lines:\n" + "\n".join(lines) if lines else ""


# The child's side


def child_main(request_path: Path, result_path: Path) -> None:
    faulthandler.enable()  # a fatal signal prints the Python stacks before the process dies
    request = json.loads(request_path.read_text())
    faulthandler.dump_traceback_later(max(request["dump_at"] - time.time(), 0.001))  # a hang says where
    report = call(request["target"], request["kwargs"])
    faulthandler.cancel_dump_traceback_later()
    partial = result_path.with_suffix(".partial")
    partial.write_text(report)
    os.replace(partial, result_path)  # the parent sees a whole report or none


def call(target: str, kwargs: dict[str, Any]) -> str:
    """The report as JSON text: the target's result, or the error it raised. SystemExit and
    KeyboardInterrupt are not caught: the child then exits without a report, which is a crash."""
    try:
        value = resolve(target)(**kwargs)
    except Exception as err:
        return json.dumps({"error": described(err)})
    try:
        return json.dumps({"result": value})
    except (TypeError, ValueError) as err:
        return json.dumps({"error": f"the result is not JSON-serialisable: {type(err).__name__}: {err}"})


def resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return functools.reduce(getattr, name.split("."), importlib.import_module(module))


def described(err: BaseException) -> str:
    lines = "".join(traceback.format_exception(err)).rstrip().splitlines()
    return f"{type(err).__name__}: {err}\ntraceback, last lines:\n" + "\n".join(lines[-ERROR_LINES:])


if __name__ == "__main__":
    child_main(Path(sys.argv[1]), Path(sys.argv[2]))
