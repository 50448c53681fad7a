"""Evaluators that stand in for the GPU worker's in tests of the search loop (the loop, not the
GPU, is under test): times that follow the schedule's knobs, a crash and a hang on chosen ones."""

from __future__ import annotations

import os
import time
from typing import Any

COPY_GB_PER_S = 3000.0
HAND_TUNED = "// hand-tuned"


def shaped_ms(schedule: dict[str, Any]) -> float:
    """Faster with bigger blocks and a grid-stride loop of 4 CTAs per SM: a landscape with one best."""
    return 1.0 + abs(schedule.get("block_size", 256) - 512) / 512 + abs(schedule.get("ctas_per_sm", 0) - 4) / 8


def shaped_times(job: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    if job.get("describe"):
        return {"status": "passed", "device": "test double", "copy_gb_per_s": COPY_GB_PER_S}
    schedule = job["schedule"]
    if schedule.get("block_size") == 64:
        os._exit(3)  # the process dies, as a kernel that corrupts the context takes it down
    if schedule.get("block_size") == 128:
        time.sleep(60)
    faster = 0.5 if HAND_TUNED in job.get("ptx", "") else 1.0  # PTX a proposer wrote, marked as twice as fast
    return {"status": "passed", "reasons": [], "timing": {"median_ms": shaped_ms(schedule) * faster},
            "moved_bytes": 2**20}


def crash_on_marker(job: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    state["served"] = state.get("served", 0) + 1
    if job.get("crash"):
        os._exit(1)
    if job.get("hang"):
        time.sleep(60)
    if job.get("raise"):
        raise ValueError("a bad candidate")
    return {"status": "passed", "served": state["served"]}
