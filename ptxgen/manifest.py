"""`ptxgen lower`: a captured program's regions lowered for one target, written as DIR/NAME.ir,
DIR/NAME.ptx and DIR/manifest.json (files, shapes, dtypes, launch configuration, schedule and
ptxas's resource report for each kernel; the glue between them, with notes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ir.frontend.program import Glue, Program, Region, format_glue
from ir.kernel import Param
from ir.printer import format_kernel
from ptxgen.emit import emit_model_new
from ptxgen.lower import LoweredKernel, LoweringError, default_schedule, lower
from ptxgen.ptxas import assemble, ptxas_path
from ptxgen.schedule import ScheduleError
from ptxgen.targets import Target

MANIFEST_VERSION = 1


def _tensor(param: Param) -> dict[str, Any]:
    return {"name": param.name, "dtype": str(param.type.dtype), "shape": list(param.type.shape)}


def _kernel_entry(region: Region, lowered: LoweredKernel, out: Path) -> dict[str, Any]:
    kernel = region.kernel
    (out / f"{kernel.name}.ir").write_text(format_kernel(kernel))
    (out / f"{kernel.name}.ptx").write_text(lowered.ptx)
    entry: dict[str, Any] = {
        "name": kernel.name, "ir": f"{kernel.name}.ir", "ptx": f"{kernel.name}.ptx", "lowered": True,
        "inputs": [_tensor(p) for p in kernel.inputs], "outputs": [_tensor(p) for p in kernel.outputs],
        "program_inputs": list(region.inputs), "program_outputs": list(region.outputs),
        "launch": dataclasses.asdict(lowered.launch), "schedule": lowered.schedule.to_dict(),
        "params": list(lowered.params),
    }
    if ptxas_path() is not None:
        _, resources = assemble(lowered.ptx, lowered.target)
        entry["resources"] = dataclasses.asdict(resources)
    return entry


def _unlowered_entry(region: Region, reason: str, out: Path) -> dict[str, Any]:
    (out / f"{region.kernel.name}.ir").write_text(format_kernel(region.kernel))
    return {"name": region.kernel.name, "ir": f"{region.kernel.name}.ir", "lowered": False, "reason": reason,
            "program_inputs": list(region.inputs), "program_outputs": list(region.outputs)}


def write_lowered(program: Program, target: Target, out: Path, source: Path,
                  sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Lower every region it can and write the files (model_new.py too when every region is
    lowered); returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    steps: list[dict[str, Any]] = []
    kernels: dict[str, LoweredKernel] = {}
    for step in program.steps:
        if isinstance(step, Glue):
            steps.append({"glue": format_glue(step), "note": step.note})
            continue
        try:
            lowered = lower(step.kernel, default_schedule(step.kernel, target), target)
            steps.append({"kernel": _kernel_entry(step, lowered, out)})
            kernels[step.kernel.name] = lowered
        except (LoweringError, ScheduleError) as err:
            steps.append({"kernel": _unlowered_entry(step, str(err), out)})
    manifest = {"version": MANIFEST_VERSION, "problem": str(source), "program": program.name,
                "target": target.name, "steps": steps}
    if len(kernels) == len(program.regions):
        (out / "model_new.py").write_text(emit_model_new(source, program, kernels, target.name, sizes))
        manifest["model_new"] = "model_new.py"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def unlowered(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [s["kernel"] for s in manifest["steps"] if "kernel" in s and not s["kernel"]["lowered"]]
