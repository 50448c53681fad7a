"""A cost model trained on recorded attempts, and the proposer that ranks candidates with it before
any is timed.

Features (`features`): the kernel's (elements and bytes moved, ops, transcendental ops, reduction
length and count of rows), the target's (SMs, bandwidth), the schedule's knobs, and ptxas's
resource report (registers, spills, shared memory), each knob also as one indicator per value;
then every product of a schedule or resource feature with a kernel feature, so that "a wide row
wants many threads" can be learned. The model
is ridge regression (numpy) of the log of the kernel's time, centred per region: what matters is
the order of schedules within a region, and centring lets regions of any size train one model. It
is fitted again from the records each time it proposes (they grow as the search goes)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.proposers import BEAM, Region, knob_values, neighbours
from agents.records import Attempt, schedule_key
from ir.kernel import Kernel
from ptxgen.lower import LIBRARY, lower, sample_schedules
from ptxgen.schedule import (
    BLOCK_SIZES,
    CLUSTER_SIZES,
    CTAS_PER_SM,
    THREADS_ALONG_REDUCTION,
    THREADS_PER_ROW,
    UNROLLS,
    VECTOR_BYTES,
    Schedule,
    schedule_from_dict,
)
from ptxgen.targets import Target
from verify.kernel_gpu import largest_elements, moved_bytes

RIDGE = 1.0
MIN_TRAINING = 8  # timed attempts before the model proposes anything
REJECTED_PENALTY = math.log(2.0)  # a rejected candidate counts as twice as slow as the region's slowest
POOL = 48  # candidates ranked per proposal: neighbours of the fastest, then random draws
KINDS = ("elementwise", "row", "column", "scalar")
KNOBS = ("vector_bytes", "block_size", "threads_per_row", "threads_along_reduction", "cluster", "ctas_per_sm", "unroll",
         "cache_row", "cache_column", "shared_row", "async_copy", "online", "approx_math", "fp32_intermediates")
RESOURCES = ("registers", "spilled", "shared_bytes")
KERNEL_FEATURES = ("elements", "bytes", "ops", "transcendental", "row_length", "rows", "sm_count", "bandwidth")
KNOB_VALUES = {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES, "threads_per_row": THREADS_PER_ROW,
               "threads_along_reduction": THREADS_ALONG_REDUCTION, "cluster": CLUSTER_SIZES,
               "ctas_per_sm": CTAS_PER_SM, "unroll": UNROLLS}


def _log2(value: float) -> float:
    return math.log2(value + 1.0)


def kernel_features(kernel: Kernel, target: Target) -> dict[str, float]:
    """What the model knows of a region and the GPU it runs on (recorded with each attempt)."""
    from ptxgen.reduce import reduction_shape

    shape = reduction_shape(kernel)
    return {
        "elements": _log2(largest_elements(kernel)),
        "bytes": _log2(moved_bytes(kernel)),
        "ops": float(len(kernel.body)),
        "transcendental": float(sum(i.op in LIBRARY for i in kernel.body)),
        "row_length": _log2(shape.length) if shape else 0.0,
        "rows": _log2(shape.outer * shape.inner) if shape else 0.0,
        "sm_count": target.sm_count / 100.0,
        "bandwidth": target.dram_bandwidth / 1e12,
    }


def schedule_features(schedule: dict[str, Any]) -> dict[str, float]:
    """The kind; each knob as a number (log2) and as one indicator per value it can take (so that
    a knob whose best value lies inside its range, or differs by kernel, can be learned)."""
    found = {f"kind_{k}": float(schedule.get("kind") == k) for k in KINDS}
    for knob in KNOBS:
        value = schedule.get(knob, 0)
        found[knob] = float(value) if isinstance(value, bool) else _log2(float(value))
        for option in KNOB_VALUES.get(knob, ()):
            found[f"{knob}={option}"] = float(value == option)
    return found


def resource_features(resources: dict[str, Any]) -> dict[str, float]:
    if not resources:
        return {name: 0.0 for name in RESOURCES}
    return {"registers": resources["registers"] / 32.0,
            "spilled": float(resources["spill_stores"] + resources["spill_loads"] > 0),
            "shared_bytes": _log2(resources["shared_bytes"])}


def features(kernel: dict[str, float], schedule: dict[str, Any], resources: dict[str, Any]) -> np.ndarray:
    """The model's input: the base features and their products (schedule or resources times kernel)."""
    own = [*schedule_features(schedule).values(), *resource_features(resources).values()]
    region = [kernel[name] for name in KERNEL_FEATURES]  # by name: records read back have their keys sorted
    crossed = [k * o for k in region for o in own]
    return np.array(region + own + crossed, dtype=np.float64)


@dataclass
class CostModel:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray, targets: np.ndarray, ridge: float = RIDGE) -> CostModel:
        mean, scale = rows.mean(axis=0), rows.std(axis=0)
        scale[scale == 0] = 1.0
        x = (rows - mean) / scale
        weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ targets)
        return cls(mean, scale, weights)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.weights


def training_set(attempts: Sequence[Attempt]) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and targets from attempts that carry their kernel's features: a timed one's log time
    minus its region's mean log time; a rejected one's (a crash, a wrong result, a refuted proof)
    as REJECTED_PENALTY above its region's slowest, so the model learns to avoid what fails. None
    below MIN_TRAINING timed attempts. PTX a proposer wrote is left out: its schedule does not
    describe it."""
    usable = [a for a in attempts if a.kernel_features and not a.written_ptx]
    known = [a for a in usable if a.verdict not in ("pending", "admitted") or a.admitted and a.median_ms]
    if sum(a.admitted for a in known) < MIN_TRAINING:
        return None
    groups: dict[tuple[str, str], list[Attempt]] = {}
    for a in known:
        groups.setdefault((a.ir_hash, a.device), []).append(a)
    rows, targets = [], []
    for group in groups.values():
        logs = [math.log(a.median_ms) for a in group if a.admitted and a.median_ms]
        if not logs:
            continue
        centre, worst = sum(logs) / len(logs), max(logs)
        for a in group:
            rows.append(features(a.kernel_features, a.schedule, a.resources))
            timed = a.admitted and a.median_ms
            targets.append((math.log(a.median_ms) if timed else worst + REJECTED_PENALTY) - centre)  # type: ignore
    return np.array(rows), np.array(targets)


def fitted(attempts: Sequence[Attempt]) -> CostModel | None:
    found = training_set(attempts)
    return None if found is None else CostModel.fit(*found)


class CostModelProposer:
    """The untried candidates (neighbours of the fastest, random draws) the model ranks fastest,
    the model fitted on the region's attempts and `history` (other regions' records)."""

    name = "cost_model"

    def __init__(self, history: Sequence[Attempt] = (), seed: int = 0, resources: bool = True) -> None:
        self.history, self.rng, self.resources = list(history), random.Random(seed), resources

    def propose(self, region: Region, count: int) -> list[Schedule]:
        model = fitted(self.history + region.attempts)
        if model is None:
            return []
        pool = self._pool(region)
        if not pool:
            return []
        kernel = kernel_features(region.kernel, region.target)
        rows = np.array([features(kernel, s.to_dict(), self._resources(region, s)) for s in pool])
        order = np.argsort(model.predict(rows), kind="stable")
        return [pool[i] for i in order[:count]]

    def _pool(self, region: Region) -> list[Schedule]:
        tried, pool, keys = region.tried(), [], set()
        knobs = knob_values(region.kernel, region.target)
        around = [s for a in region.fastest(BEAM)
                  for s in neighbours(region.kernel, schedule_from_dict(a.schedule), region.target, knobs)]
        drawn = sample_schedules(region.kernel, region.target, POOL, self.rng)
        for schedule in around + drawn:
            key = schedule_key(schedule.to_dict())
            if key not in tried and key not in keys:
                keys.add(key)
                pool.append(schedule)
        return pool[:POOL]

    def _resources(self, region: Region, schedule: Schedule) -> dict[str, Any]:
        from ptxgen.ptxas import PtxasError, assemble, ptxas_path

        if not self.resources or ptxas_path() is None:
            return {}
        try:
            _, found = assemble(lower(region.kernel, schedule, region.target).ptx, region.target.name)
        except PtxasError:
            return {}
        return dataclasses.asdict(found)
