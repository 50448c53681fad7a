"""The CUDA driver calls that load PTX and launch kernels, with every result checked.

Standalone on purpose (torch, numpy and cuda-python only): `ptxgen.runtime` uses it, and emitted
`model_new.py` files carry its source verbatim, so that they run without ptxgen installed."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

JIT_LOG_BYTES = 16384
DEFAULT_SHARED_BYTES = 48 * 1024  # dynamic shared memory beyond this must be opted into per kernel
PORTABLE_CLUSTER_SIZE = 8  # larger clusters (16 on sm_90) must be opted into per kernel


class GpuUnavailable(RuntimeError):
    """No NVIDIA driver or device: PTX can be generated and assembled, not run."""


class DriverError(RuntimeError):
    """A CUDA driver call failed; the message names the call and the error."""


class PtxLoadError(DriverError):
    """The driver rejected a module; the message carries its log and the offending PTX lines."""


def driver() -> Any:
    try:
        from cuda.bindings import driver as cu
    except ImportError as err:
        raise GpuUnavailable(f"cuda-python (cuda-bindings) is not installed: {err}") from None
    return cu


def check(result: tuple[Any, ...], call: str) -> Any:
    """The values a driver call returns after its status, or DriverError naming the call."""
    cu = driver()
    status, *values = result
    if status != cu.CUresult.CUDA_SUCCESS:
        _, name = cu.cuGetErrorName(status)
        _, text = cu.cuGetErrorString(status)
        raise DriverError(f"{call} failed: {name.decode() if name else status}: {text.decode() if text else ''}")
    return values[0] if len(values) == 1 else tuple(values)


def init(device: int) -> Any:
    """Make PyTorch's context on `device` current and initialise the driver API."""
    if not torch.cuda.is_available():
        raise GpuUnavailable("PyTorch sees no CUDA device: lowering and ptxas checks work without one; "
                             "running kernels needs one")
    torch.cuda.set_device(device)
    torch.empty(1, device=f"cuda:{device}")  # makes the primary context current
    cu = driver()
    try:
        check(cu.cuInit(0), "cuInit")
    except Exception as err:  # no libcuda.so (cuda-pathfinder's DynamicLibNotFoundError) or no device
        raise GpuUnavailable(f"no usable NVIDIA driver or GPU ({type(err).__name__}: {err}); "
                             "lowering and ptxas checks work without one, running needs one") from None
    return cu


def with_context(log: str, ptx: str) -> str:
    """The log, with each PTX line it names quoted beneath it."""
    lines = ptx.splitlines()
    out = []
    for entry in log.strip().splitlines():
        out.append(entry)
        found = re.search(r"line (\d+)", entry)
        if found and 0 < int(found.group(1)) <= len(lines):
            out.append(f"    {int(found.group(1))}: {lines[int(found.group(1)) - 1].strip()}")
    return "\n".join(out)


def load_function(image: bytes, ptx: str, name: str) -> Any:
    """Load a module (PTX text or cubin) and return its kernel `name`."""
    cu = driver()
    log = bytearray(JIT_LOG_BYTES)
    options = [cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
    status, module = cu.cuModuleLoadDataEx(image, len(options), options, [log, JIT_LOG_BYTES])
    if status != cu.CUresult.CUDA_SUCCESS:
        _, error = cu.cuGetErrorName(status)
        text = bytes(log).split(b"\0", 1)[0].decode(errors="replace")
        raise PtxLoadError(f"the driver rejected the module ({error.decode() if error else status}):\n"
                           f"{with_context(text, ptx)}")
    return check(cu.cuModuleGetFunction(module, name.encode()), f"cuModuleGetFunction({name})")


def launch(function: Any, grid: tuple[int, int, int], block: tuple[int, int, int], shared_bytes: int,
           tensors: list[torch.Tensor], name: str, cluster: int = 1) -> None:
    """Launch on PyTorch's current stream with one pointer argument per tensor (`cluster`: the
    CTAs per cluster the kernel's .reqnctapercluster fixes)."""
    attributes = driver().CUfunction_attribute
    if shared_bytes > DEFAULT_SHARED_BYTES:
        check(driver().cuFuncSetAttribute(function, attributes.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          shared_bytes), f"cuFuncSetAttribute({name}, dynamic shared memory)")
    if cluster > PORTABLE_CLUSTER_SIZE:
        check(driver().cuFuncSetAttribute(function, attributes.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
              f"cuFuncSetAttribute({name}, non-portable cluster size)")
    pointers = [np.array([t.data_ptr()], dtype=np.uint64) for t in tensors]
    params = np.array([p.ctypes.data for p in pointers], dtype=np.uint64)
    stream = torch.cuda.current_stream().cuda_stream
    check(driver().cuLaunchKernel(function, *grid, *block, shared_bytes, stream, params.ctypes.data, 0),
          f"cuLaunchKernel({name})")
