"""Running a captured program on the GPU: regions as lowered PTX kernels, glue with PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ir.frontend.builder import IR_TO_TORCH
from ir.frontend.program import Glue, Program, Region, ValueRef
from ir.kernel import Kernel
from ptxgen.lower import LoweredKernel, default_schedule, lower
from ptxgen.runtime import Runtime
from ptxgen.schedule import ElementwiseSchedule
from ptxgen.targets import Target

ScheduleChoice = Callable[[Kernel, Target], ElementwiseSchedule]


@dataclass
class CompiledProgram:
    program: Program
    kernels: dict[str, LoweredKernel]

    def __call__(self, runtime: Runtime, inputs: Sequence[Any]) -> tuple[Any, ...]:
        device = torch.device("cuda", runtime.device)
        env: dict[str, Any] = {}
        user = iter(inputs)
        for item in self.program.inputs:
            value = next(user) if item.kind == "input" else self.program.state[item.name]
            env[item.name] = value.to(device) if isinstance(value, torch.Tensor) else value
        for step in self.program.steps:
            if isinstance(step, Region):
                self._region(runtime, step, env, device)
            else:
                env[step.name] = _glue(step, env, device)
        return tuple(_resolve(o, env, device) for o in self.program.outputs)

    def _region(self, runtime: Runtime, region: Region, env: dict[str, Any], device: torch.device) -> None:
        kernel = region.kernel
        ins = [_launchable(env[name]) for name in region.inputs]
        outs = [torch.empty(p.type.shape, dtype=IR_TO_TORCH[p.type.dtype], device=device) for p in kernel.outputs]
        runtime.launch(self.kernels[kernel.name], ins + outs)
        env.update(zip(region.outputs, outs))


def _launchable(tensor: torch.Tensor) -> torch.Tensor:
    """Contiguous and 16-byte aligned (a copy where the tensor is a view that is not)."""
    if tensor.is_contiguous() and tensor.data_ptr() % 16 == 0:
        return tensor
    return tensor.contiguous().clone()


def _resolve(value: Any, env: dict[str, Any], device: torch.device) -> Any:
    if isinstance(value, ValueRef):
        return env[value.name]
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, env, device) for v in value)
    return device if isinstance(value, torch.device) else value


def _glue(glue: Glue, env: dict[str, Any], device: torch.device) -> Any:
    args = _resolve(glue.args, env, device)
    kwargs = {k: _resolve(v, env, device) for k, v in glue.kwargs.items()}
    return glue.target(*args, **kwargs)


def compile_program(program: Program, target: Target, choose: ScheduleChoice = default_schedule) -> CompiledProgram:
    """Lower every region (LoweringError names the first that cannot be)."""
    kernels = {r.kernel.name: lower(r.kernel, choose(r.kernel, target), target) for r in program.regions}
    return CompiledProgram(program, kernels)
