"""Kernels -> IR text that `ir.parse` reads back to an equal kernel."""

from __future__ import annotations

from ir.dtypes import DType
from ir.kernel import Attr, Instr, Kernel, Param


def format_attr(value: Attr) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, (DType, str)):
        return str(value)
    return repr(value)


def format_instr(instr: Instr) -> str:
    args = list(instr.args)
    for name, value in instr.attrs:
        args.append(format_attr(value) if name == "value" else f"{name}={format_attr(value)}")
    text = f"{instr.result} = {instr.op}({', '.join(args)})"
    return text + (f" : {instr.type}" if instr.type is not None else "")


def _params(params: tuple[Param, ...]) -> str:
    return ", ".join(f"{p.name}: {p.type}" for p in params)


def format_kernel(kernel: Kernel) -> str:
    lines = [f"kernel {kernel.name}({_params(kernel.inputs)}) -> ({_params(kernel.outputs)}) {{"]
    lines += [f"  {format_instr(i)}" for i in kernel.body]
    lines += [f"  return {', '.join(kernel.returns)}", "}"]
    return "\n".join(lines) + "\n"
