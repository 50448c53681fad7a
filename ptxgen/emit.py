"""Emitting a drop-in module: a self-contained `model_new.py` whose `ModelNew` takes the same
constructor arguments and forward inputs as the problem's `Model`, embeds the PTX of every region,
and runs the kernels plus the glue ops. It carries the problem's source (for `Model`'s parameters)
and the launcher's source, so it needs torch and cuda-python, not ptxgen."""

from __future__ import annotations

import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import torch

from ir.frontend.builder import IR_TO_TORCH
from ir.frontend.program import Glue, Program, ProgramInput, Region, ValueRef
from ptxgen import launcher
from ptxgen.lower import LoweredKernel

FUTURE = "from __future__ import annotations\n"
STATE_ACCESSORS = {"parameter": "get_parameter", "buffer": "get_buffer"}
CONSTANT_SPELLING = {
    torch.strided: "torch.strided",
    torch.contiguous_format: "torch.contiguous_format",
    torch.preserve_format: "torch.preserve_format",
}

RUNNER = '''
_LOADED: dict = {}


def _kernel(name):
    if name not in _LOADED:
        init(torch.cuda.current_device() if torch.cuda.is_available() else 0)  # init says why there is no GPU
        ptx = _KERNELS[name]["ptx"]
        _LOADED[name] = load_function(ptx.encode() + b"\\0", ptx, name)
    return _LOADED[name]


def _launchable(tensor):
    """Contiguous and 16-byte aligned (a copy where a view is not)."""
    if tensor.is_contiguous() and tensor.data_ptr() % 16 == 0:
        return tensor
    return tensor.contiguous().clone()


def _expect(tensor, shape, name):
    if tuple(tensor.shape) != shape:
        raise ValueError(f"ModelNew was lowered for {name} of shape {list(shape)}, got {list(tensor.shape)}")
    return tensor


def _run(name, inputs, outputs):
    """Launch kernel `name` on `inputs`; returns new tensors of the (shape, dtype) in `outputs`."""
    inputs = [_launchable(t) for t in inputs]
    results = [torch.empty(shape, dtype=dtype, device=inputs[0].device) for shape, dtype in outputs]
    spec = _KERNELS[name]
    launch(_kernel(name), spec["grid"], spec["block"], spec["shared"], inputs + results, name, spec["cluster"])
    return results
'''


class EmitError(ValueError):
    """A program that cannot be written as a model_new.py (the message says which part)."""


def _var(name: str) -> str:
    return "v_" + re.sub(r"\W", "_", name)


def _literal(value: Any) -> str:
    """Python source for a glue argument."""
    if isinstance(value, ValueRef):
        return _var(value.name)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, torch.device):
        return "_device"
    if value in CONSTANT_SPELLING:
        return CONSTANT_SPELLING[value]
    raise EmitError(f"cannot write a glue argument of type {type(value).__name__}: {value!r}")


def _input_line(item: ProgramInput) -> str:
    if item.kind == "input" and item.type is not None:
        return f"        {_var(item.name)} = _expect(inputs[{item.source}], {tuple(item.type.shape)}, {item.name!r})"
    if item.kind == "input":
        return f"        {_var(item.name)} = inputs[{item.source}]"
    if item.kind not in STATE_ACCESSORS:
        raise EmitError(f"program input {item.name} is a {item.kind}; only parameters and buffers are carried")
    return f"        {_var(item.name)} = self.reference.{STATE_ACCESSORS[item.kind]}({item.source!r})"


def _glue_line(glue: Glue) -> str:
    args = [_literal(a) for a in glue.args] + [f"{k}={_literal(v)}" for k, v in glue.kwargs.items()]
    target = f"torch.ops.{glue.op_name}" if isinstance(glue.target, torch._ops.OpOverload) else None
    if target is None:
        if glue.op_name != "getitem":
            raise EmitError(f"cannot write glue op {glue.op_name}")
        return f"        {_var(glue.name)} = {args[0]}[{args[1]}]  # {glue.note}"
    return f"        {_var(glue.name)} = {target}({', '.join(args)})  # {glue.note}"


def _region_line(region: Region) -> str:
    kernel = region.kernel
    outputs = ", ".join(f"({tuple(p.type.shape)}, {IR_TO_TORCH[p.type.dtype]})" for p in kernel.outputs)
    targets = ", ".join(_var(n) for n in region.outputs) + ","
    inputs = ", ".join(_var(n) for n in region.inputs)
    return f"        {targets} = _run({kernel.name!r}, [{inputs}], [{outputs}])"


def _kernels_table(kernels: dict[str, LoweredKernel]) -> str:
    lines = ["_KERNELS = {"]
    for name, k in kernels.items():
        lines.append(f"    {name!r}: {{\"grid\": {k.launch.grid}, \"block\": {k.launch.block}, "
                     f"\"shared\": {k.launch.shared_bytes}, \"cluster\": {k.launch.cluster[0]}, "
                     f"\"ptx\": '''\\\n{k.ptx}'''}},")
    return "\n".join(lines + ["}"])


def _without_future(source: str) -> str:
    return source.replace(FUTURE, "")


def emit_model_new(problem_path: Path, program: Program, kernels: dict[str, LoweredKernel], target: str,
                   sizes: dict[str, int] | None = None) -> str:
    """The source of model_new.py for `program` (every region must be in `kernels`), lowered with the
    problem's size constants set to `sizes` where given."""
    missing = [r.kernel.name for r in program.regions if r.kernel.name not in kernels]
    if missing:
        raise EmitError(f"regions not lowered: {', '.join(missing)}")
    body = [_input_line(item) for item in program.inputs]
    first_input = next((i for i in program.inputs if i.kind == "input"), None)
    body.append(f"        _device = {_var(first_input.name) + '.device' if first_input else 'None'}")
    body += [_region_line(s) if isinstance(s, Region) else _glue_line(s) for s in program.steps]
    outputs = [_literal(o) for o in program.outputs]
    body.append(f"        return {outputs[0] if len(outputs) == 1 else '(' + ', '.join(outputs) + ',)'}")
    launcher_source = _without_future(Path(launcher.__file__).read_text())
    return "\n".join([
        f'"""model_new.py: generated by ptxgen from {problem_path.name} for {target}. ModelNew is a drop-in',
        "for Model (same constructor arguments and forward inputs); its fused regions run as the PTX",
        'kernels embedded below, the rest as the PyTorch ops the program names."""',
        "",
        FUTURE.rstrip(),
        "",
        "# ---- the problem, as given " + "-" * 60,
        _without_future(problem_path.read_text()).strip("\n"),
        "",
        *(["# the sizes this module was lowered for"] + [f"{k} = {v}" for k, v in (sizes or {}).items()] + [""]
          if sizes else []),
        "# ---- the launcher (ptxgen/launcher.py) " + "-" * 48,
        launcher_source.strip("\n"),
        "",
        "# ---- the kernels " + "-" * 70,
        _kernels_table(kernels),
        RUNNER.rstrip("\n"),
        "",
        "",
        "class ModelNew(torch.nn.Module):",
        "    def __init__(self, *args, **kwargs):",
        "        super().__init__()",
        "        self.reference = Model(*args, **kwargs)  # holds the parameters",
        "",
        "    def forward(self, *inputs):",
        *body,
        "",
    ])


def load_model_new(source: str, name: str = "model_new") -> types.ModuleType:
    """Execute an emitted model_new.py as a module (ModelNew, Model, get_inputs, ...)."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    finally:
        sys.modules.pop(name, None)
    return module
