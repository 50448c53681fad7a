"""Every kernel of every suite problem, captured at its production sizes (on the meta device: no
data is made), lowers at its default schedule and assembles with ptxas for every target without
spilling, and two schedules drawn from each kernel's space of valid schedules on each target
assemble too."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pytest
from conftest import problem_files

from ir.frontend import capture, load_problem
from ir.kernel import Kernel
from ptxgen.lower import default_schedule, kind_space, lower, sample_schedules
from ptxgen.ptxas import assemble, ptxas_path
from ptxgen.targets import TARGETS

pytestmark = pytest.mark.skipif(ptxas_path() is None, reason="ptxas is not installed")
PROBLEM_FILES = problem_files()


@cache
def production_kernels(path: Path) -> tuple[Kernel, ...]:
    return tuple(r.kernel for r in capture(load_problem(path), shapes_only=True).regions)


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in PROBLEM_FILES])
def test_every_kernel_assembles_on_every_target(path: Path) -> None:
    kernels = production_kernels(path)
    assert kernels, f"{path.stem} captured no kernel"
    for target in TARGETS.values():
        for kernel in kernels:
            lowered = lower(kernel, default_schedule(kernel, target), target)
            _, resources = assemble(lowered.ptx, target.name)
            assert resources.registers > 0 and resources.spill_stores == 0, (kernel.name, target.name, resources)


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in PROBLEM_FILES])
def test_sampled_schedules_assemble_on_every_target(path: Path) -> None:
    for target in TARGETS.values():
        for kernel in production_kernels(path):
            assert default_schedule(kernel, target) in kind_space(kernel, target)
            drawn = sample_schedules(kernel, target, 2, random.Random(f"{kernel.name} {target.name}"))
            assert drawn, f"no valid schedule for {kernel.name} on {target.name}"
            for schedule in drawn:
                assemble(lower(kernel, schedule, target).ptx, target.name)
