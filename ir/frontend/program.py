"""A captured program: fusion regions (IR kernels) and glue (PyTorch ops), in execution order,
with a runner that evaluates regions on the IR interpreter and glue with PyTorch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ir.frontend.builder import IR_TO_TORCH, TORCH_TO_IR
from ir.interp import Precision, run
from ir.kernel import Kernel, TensorType
from ir.printer import format_kernel


@dataclass(frozen=True)
class ValueRef:
    """A reference to a program value inside a glue op's arguments."""

    name: str

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class ProgramInput:
    """A value the program starts from: a forward argument or a parameter/buffer/constant."""

    name: str
    kind: str
    source: str
    type: TensorType | None


@dataclass(frozen=True)
class Region:
    """A fusion region: one IR kernel, fed by and defining program values."""

    kernel: Kernel
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Glue:
    """One op left to PyTorch, with the reason."""

    name: str
    target: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    note: str

    @property
    def op_name(self) -> str:
        """`aten.addmm.default` for ATen ops, the function's name otherwise."""
        if isinstance(self.target, torch._ops.OpOverload):
            return str(self.target)
        return getattr(self.target, "__name__", str(self.target))


Step = Region | Glue


@dataclass(frozen=True)
class Program:
    name: str
    inputs: tuple[ProgramInput, ...]
    steps: tuple[Step, ...]
    outputs: tuple[Any, ...]
    state: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    rewrites: tuple[str, ...] = ()  # exact graph rewrites applied before partitioning (ir.frontend.rewrites)

    @property
    def regions(self) -> tuple[Region, ...]:
        return tuple(s for s in self.steps if isinstance(s, Region))

    @property
    def glue(self) -> tuple[Glue, ...]:
        return tuple(s for s in self.steps if isinstance(s, Glue))


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in a (possibly nested) tuple or list of outputs, in order."""
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flatten_tensors(item)]
    return [value] if isinstance(value, torch.Tensor) else []


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.float() if value.dtype in (torch.bfloat16,) else value).numpy()


def _to_torch(value: np.ndarray, type_: TensorType, precision: Precision) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(value))  # a copy that keeps 0-d arrays 0-d
    if precision is Precision.NATIVE:
        tensor = tensor.to(IR_TO_TORCH[type_.dtype])
    return tensor


def _widen(value: Any, precision: Precision) -> Any:
    """Floating tensors (and float dtype arguments) as float64 when running at float64."""
    if precision is Precision.NATIVE:
        return value
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.double()
    if isinstance(value, torch.dtype) and value.is_floating_point:
        return torch.float64
    return value


def _resolve(value: Any, env: dict[str, Any], precision: Precision) -> Any:
    if isinstance(value, ValueRef):
        return env[value.name]
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, env, precision) for v in value)
    return _widen(value, precision)


def _run_region(region: Region, env: dict[str, Any], precision: Precision) -> None:
    arrays = [_to_numpy(env[name]) for name in region.inputs]
    results = run(region.kernel, arrays, precision)
    for name, param, value in zip(region.outputs, region.kernel.outputs, results):
        env[name] = _to_torch(value, param.type, precision)


def _run_glue(glue: Glue, env: dict[str, Any], precision: Precision) -> None:
    args = _resolve(glue.args, env, precision)
    kwargs = {k: _resolve(v, env, precision) for k, v in glue.kwargs.items()}
    env[glue.name] = glue.target(*args, **kwargs)


def run_program(program: Program, inputs: Sequence[Any],
                precision: Precision = Precision.FLOAT64) -> tuple[Any, ...]:
    """Run on the CPU: regions on the IR interpreter, glue with PyTorch."""
    user = iter(inputs)
    env: dict[str, Any] = {}
    for item in program.inputs:
        value = next(user) if item.kind == "input" else program.state[item.name]
        env[item.name] = _widen(value.detach().cpu() if isinstance(value, torch.Tensor) else value, precision)
    for step in program.steps:
        (_run_region if isinstance(step, Region) else _run_glue)(step, env, precision)  # type: ignore[operator]
    return tuple(_resolve(o, env, precision) for o in program.outputs)


def _format_arg(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_arg(v) for v in value) + "]"
    if isinstance(value, torch.dtype) and value in TORCH_TO_IR:
        return str(TORCH_TO_IR[value])
    return str(value)


def format_glue(glue: Glue) -> str:
    parts = [_format_arg(a) for a in glue.args] + [f"{k}={_format_arg(v)}" for k, v in glue.kwargs.items()]
    return f"%{glue.name} = {glue.op_name}({', '.join(parts)})  # {glue.note}"


def format_program(program: Program) -> str:
    lines = [f"# program {program.name}: {len(program.regions)} region(s), {len(program.glue)} glue op(s)",
             "# inputs"]
    for item in program.inputs:
        described = f"{item.kind} {item.source}" if item.kind != "input" else f"forward argument {item.source}"
        lines.append(f"#   %{item.name}: {item.type or 'not a tensor'}  ({described})")
    lines += [f"# rewrite: {r}" for r in program.rewrites]
    for step in program.steps:
        if isinstance(step, Region):
            ins, outs = ", ".join(f"%{n}" for n in step.inputs), ", ".join(f"%{n}" for n in step.outputs)
            lines += ["", f"# region: ({outs}) = {step.kernel.name}({ins})", format_kernel(step.kernel).rstrip()]
        else:
            lines += [f"# glue: {format_glue(step)}"]
    lines += ["", f"# outputs: {', '.join(_format_arg(o) for o in program.outputs)}"]
    return "\n".join(lines) + "\n"
