"""Attempt records: one JSON line per attempt, appended and flushed to disk as each attempt
finishes (killing a run loses at most the attempts in flight), read back to resume a run and to
train on. Each attempt is keyed by (IR hash, schedule, target, device): a key already recorded is
never evaluated again."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS_FILE = "attempts.jsonl"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def schedule_key(schedule: dict[str, Any]) -> str:
    return json.dumps(schedule, sort_keys=True)


def candidate_key(schedule: dict[str, Any], written_ptx: str = "") -> str:
    """A schedule lowered, or PTX a proposer wrote for the schedule's launch: never the same."""
    return schedule_key(schedule) + (f" written {text_hash(written_ptx)}" if written_ptx else "")


@dataclass
class Attempt:
    """One candidate through the gate. `verdict` is the first stage that rejected it (`ptxas`,
    `proof`, `emulator`, `gpu`, `crash`) or `admitted`; `stages` holds each stage's result."""

    problem: str
    region: str
    ir_hash: str
    schedule: dict[str, Any]
    target: str
    device: str
    proposer: str
    verdict: str = "pending"
    ptx_hash: str = ""
    stages: dict[str, Any] = field(default_factory=dict)
    median_ms: float | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    kernel_features: dict[str, float] = field(default_factory=dict)  # the region's, for the cost model
    feedback: str = ""  # what the proposers are told: the rejection's reason, or the time
    seconds: float = 0.0  # wall time of the attempt through the gate
    versions: dict[str, str] = field(default_factory=dict)
    recorded: str = ""  # UTC time the attempt finished
    written_ptx: str = ""  # PTX a proposer wrote for this schedule's launch (empty: the lowering's)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.ir_hash, candidate_key(self.schedule, self.written_ptx), self.target, self.device)

    @property
    def admitted(self) -> bool:
        return self.verdict == "admitted"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_name() -> str:
    """The CPU's model name (a proof's figures are per CPU)."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """The library versions an attempt ran with."""
    import z3

    found = {"python": platform.python_version(), "z3": z3.get_version_string()}
    try:
        import torch

        found["torch"] = torch.__version__
        found["cuda"] = str(torch.version.cuda)
    except ImportError:
        pass
    return found


class Records:
    """The attempts of one run directory, in memory and on disk."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / RECORDS_FILE
        self.attempts: list[Attempt] = list(read_attempts(self.path))
        self.by_key = {a.key: a for a in self.attempts}

    def seen(self, key: tuple[str, str, str, str]) -> Attempt | None:
        return self.by_key.get(key)

    def add(self, attempt: Attempt) -> None:
        attempt.recorded = attempt.recorded or datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")
        with self.path.open("a") as out:
            out.write(json.dumps(attempt.to_dict(), sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.attempts.append(attempt)
        self.by_key[attempt.key] = attempt

    def of_region(self, problem: str, region: str) -> list[Attempt]:
        return [a for a in self.attempts if a.problem == problem and a.region == region]


def read_attempts(path: Path) -> Iterator[Attempt]:
    """The attempts recorded at `path`; a line cut short by a kill (the last) is skipped."""
    if not path.exists():
        return
    known = set(Attempt.__dataclass_fields__)
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and {"problem", "region", "ir_hash", "schedule"} <= set(row):
            yield Attempt(**{k: v for k, v in row.items() if k in known})
