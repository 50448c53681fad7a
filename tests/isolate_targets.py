"""Targets that tests/test_isolate.py runs in a child process, each well or badly behaved in one way."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

END = "END OF OUTPUT"


def echo(**kwargs: Any) -> dict[str, Any]:
    print("echo says hello")
    return {"kwargs": kwargs, "nan": float("nan")}


def read_env(name: str) -> dict[str, Any]:
    return {"value": os.environ.get(name), "pythonpath": os.environ["PYTHONPATH"]}


def raise_error(message: str) -> None:
    raise ValueError(message)


def exit_early(code: int) -> None:
    print("leaving early", file=sys.stderr)
    os._exit(code)


def exit_cleanly() -> None:
    sys.exit(0)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def abort_after_returning() -> int:
    atexit.register(os.abort)  # dies at interpreter shutdown, after the result is written
    return 7


def spin(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def hang_with_grandchild(pid_file: str) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    Path(pid_file).write_text(str(sleeper.pid))
    while True:
        time.sleep(0.05)


def leave_grandchild(pid_file: str) -> str:
    sleeper = subprocess.Popen(["sleep", "60"])
    Path(pid_file).write_text(str(sleeper.pid))
    return "returned with a sleeper left behind"


def flood_stdout(megabytes: int) -> int:
    chunk = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(chunk)
    print(END)
    return megabytes


def unserialisable() -> object:
    return {"tensor-like": object()}
