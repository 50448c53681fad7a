"""Assembling PTX with ptxas (where it is installed): errors and the resource report."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ptxgen.launcher import with_context


class PtxasError(RuntimeError):
    """ptxas rejected the PTX; the message carries its log and the offending line."""


@dataclass(frozen=True)
class Resources:
    """ptxas's report for one kernel: what search uses to rank and to rule out candidates."""

    registers: int
    spill_stores: int
    spill_loads: int
    stack_bytes: int
    shared_bytes: int
    constant_bytes: int


REPORT = {
    "registers": r"Used (\d+) registers",
    "spill_stores": r"(\d+) bytes spill stores",
    "spill_loads": r"(\d+) bytes spill loads",
    "stack_bytes": r"(\d+) bytes stack frame",
    "shared_bytes": r"(\d+) bytes smem",
    "constant_bytes": r"(\d+) bytes cmem\[0\]",
}


def ptxas_path() -> str | None:
    return shutil.which("ptxas")


def parse_report(log: str) -> Resources:
    values = {k: int(m.group(1)) if (m := re.search(p, log)) else 0 for k, p in REPORT.items()}
    return Resources(**values)


def assemble(ptx: str, arch: str, timeout: float = 120.0) -> tuple[bytes, Resources]:
    """(cubin, resources) for `ptx` on `arch`; PtxasError with the log if it does not assemble."""
    exe = ptxas_path()
    if exe is None:
        raise FileNotFoundError("ptxas is not installed (it comes with the CUDA toolkit)")
    with tempfile.TemporaryDirectory() as tmp:
        source, cubin = Path(tmp) / "kernel.ptx", Path(tmp) / "kernel.cubin"
        source.write_text(ptx)
        run = subprocess.run([exe, f"-arch={arch}", "-v", "-o", str(cubin), str(source)],
                             capture_output=True, text=True, timeout=timeout)
        log = run.stdout + run.stderr
        if run.returncode != 0:
            raise PtxasError(f"ptxas -arch={arch} rejected the PTX:\n{with_context(log, ptx)}")
        return cubin.read_bytes(), parse_report(log)
