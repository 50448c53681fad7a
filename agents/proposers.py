"""Proposers: each turns what is known of a region (its kernel, the target, the attempts so far)
into schedules to try. They are interchangeable; the supervisor asks them in turn and the gate
judges every proposal alike.

- seeds: the default schedule, then its neighbours that the machine model favours (enough CTAs in
  flight to cover the SMs, the widest vectors);
- neighbours: a beam search, the schedules one knob away from the fastest admitted so far;
- random: schedules drawn from the valid space, the baseline search is measured against.

A proposer may also write the PTX itself (`WrittenPtx`, for a schedule's launch): the LLM proposer
does (`agents.llm.LlmPtxProposer`)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agents.records import Attempt, candidate_key, schedule_key
from ir.kernel import Kernel
from ptxgen.lower import default_schedule, kind_space, lowering_for, sample_schedules
from ptxgen.schedule import Schedule, ScheduleError
from ptxgen.targets import Target

BEAM = 3  # the fastest admitted schedules whose neighbours the beam search proposes


@dataclass
class Region:
    """What proposers know of one region."""

    kernel: Kernel
    target: Target
    attempts: list[Attempt] = field(default_factory=list)

    def tried(self) -> set[str]:
        """The candidate keys tried: schedules lowered (their schedule keys) and written PTX."""
        return {candidate_key(a.schedule, a.written_ptx) for a in self.attempts}

    def fastest(self, count: int) -> list[Attempt]:
        timed = [a for a in self.attempts if a.admitted and a.median_ms is not None]
        return sorted(timed, key=lambda a: a.median_ms or 0.0)[:count]


@dataclass(frozen=True)
class WrittenPtx:
    """PTX a proposer wrote for the region, to run with `schedule`'s launch configuration."""

    schedule: Schedule
    ptx: str


Candidate = Schedule | WrittenPtx


def candidate_parts(candidate: Candidate) -> tuple[Schedule, str]:
    """(schedule, written PTX or "")."""
    return (candidate.schedule, candidate.ptx) if isinstance(candidate, WrittenPtx) else (candidate, "")


class Proposer(Protocol):
    name: str

    def propose(self, region: Region, count: int) -> Sequence[Candidate]: ...


def valid(kernel: Kernel, schedule: Schedule, target: Target) -> bool:
    try:
        lowering_for(kernel, schedule, target)
    except ScheduleError:
        return False
    return True


def knob_values(kernel: Kernel, target: Target) -> dict[str, list[object]]:
    """Each knob of the kernel's schedule kind and the values the target's space gives it."""
    values: dict[str, set[object]] = {}
    for schedule in kind_space(kernel, target):
        for f in dataclasses.fields(schedule):
            values.setdefault(f.name, set()).add(getattr(schedule, f.name))
    return {name: sorted(found) for name, found in values.items()}  # type: ignore[type-var]


def neighbours(kernel: Kernel, schedule: Schedule, target: Target,
               knobs: dict[str, list[object]]) -> list[Schedule]:
    """The valid schedules that differ from `schedule` in one knob."""
    found = []
    for name, options in knobs.items():
        for value in options:
            if value == getattr(schedule, name):
                continue
            try:
                candidate = dataclasses.replace(schedule, **{name: value})
            except ScheduleError:
                continue
            if valid(kernel, candidate, target):
                found.append(candidate)
    return found


def _untried(schedules: Iterable[Schedule], region: Region, count: int) -> list[Schedule]:
    tried, chosen = region.tried(), []
    for schedule in schedules:
        key = schedule_key(schedule.to_dict())
        if key not in tried:
            tried.add(key)
            chosen.append(schedule)
        if len(chosen) == count:
            break
    return chosen


# Knobs in the order the machine model says matter most for memory-bound kernels: how much work
# is in flight per SM first, then how it is split among threads, then precision.
SEED_KNOBS = ("ctas_per_sm", "block_size", "threads_per_row", "unroll", "vector_bytes", "cache_row", "cache_column",
              "online", "threads_along_reduction", "fp32_intermediates", "approx_math", "shared_row", "cluster")


class Seeds:
    """The default schedule, then its one-knob neighbours, the knobs taken in SEED_KNOBS order."""

    name = "seeds"

    def propose(self, region: Region, count: int) -> list[Schedule]:
        kernel, target = region.kernel, region.target
        start = default_schedule(kernel, target)
        knobs = knob_values(kernel, target)
        around = neighbours(kernel, start, target, knobs)
        order = {name: k for k, name in enumerate(SEED_KNOBS)}

        def rank(schedule: Schedule) -> int:
            changed = [f.name for f in dataclasses.fields(schedule) if getattr(schedule, f.name) != getattr(start,
                                                                                                          f.name)]
            return min((order.get(name, len(order)) for name in changed), default=len(order))

        return _untried([start, *sorted(around, key=rank)], region, count)


class Neighbours:
    """Beam search: the untried one-knob neighbours of the BEAM fastest admitted schedules."""

    name = "neighbours"

    def propose(self, region: Region, count: int) -> list[Schedule]:
        from ptxgen.schedule import schedule_from_dict

        knobs = knob_values(region.kernel, region.target)
        pool: list[Schedule] = []
        for attempt in region.fastest(BEAM):
            pool += neighbours(region.kernel, schedule_from_dict(attempt.schedule), region.target, knobs)
        return _untried(pool, region, count)


class RandomSearch:
    """Valid schedules drawn at random (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def propose(self, region: Region, count: int) -> list[Schedule]:
        drawn = sample_schedules(region.kernel, region.target, count + len(region.attempts), self.rng)
        return _untried(drawn, region, count)
