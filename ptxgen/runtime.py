"""Loading and launching PTX through the CUDA driver API (cuda-python), on PyTorch's current
stream. Every driver call's result is checked; a JIT failure carries the driver's log next to the
offending PTX line; launch configurations beyond the target's limits are refused before launch.

Modules are cached in memory by PTX hash; cubins (assembled with ptxas where it is installed) are
cached on disk by (PTX hash, architecture)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptxgen.lower import LoweredKernel
from ptxgen.ptxas import PtxasError, assemble, ptxas_path
from ptxgen.targets import Target, get_target

JIT_LOG_BYTES = 16384
CACHE_DIR = Path(os.environ.get("PTXGEN_CACHE", Path.home() / ".cache" / "ptxgen"))
MAX_GRID_X = 2**31 - 1


class GpuUnavailable(RuntimeError):
    """No NVIDIA driver or device: PTX can be generated and assembled, not run."""


class DriverError(RuntimeError):
    """A CUDA driver call failed; the message names the call and the error."""


class PtxLoadError(DriverError):
    """The driver's JIT rejected the PTX; the message carries its log."""


class LaunchError(ValueError):
    """A launch refused before it reached the driver (limits, arguments)."""


def _driver() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError as err:
        raise GpuUnavailable(f"cuda-python (cuda-bindings) is not installed: {err}") from None
    return driver


def _check(result: tuple[Any, ...], call: str) -> Any:
    """The values a driver call returns after its status, or DriverError."""
    driver = _driver()
    status, *values = result
    if status != driver.CUresult.CUDA_SUCCESS:
        _, name = driver.cuGetErrorName(status)
        _, text = driver.cuGetErrorString(status)
        raise DriverError(f"{call} failed: {name.decode() if name else status}: {text.decode() if text else ''}")
    return values[0] if len(values) == 1 else tuple(values)


def _init_driver() -> Any:
    driver = _driver()
    try:
        _check(driver.cuInit(0), "cuInit")
    except Exception as err:  # no libcuda.so (cuda-pathfinder's DynamicLibNotFoundError) or no device
        raise GpuUnavailable(f"no usable NVIDIA driver or GPU ({type(err).__name__}: {err}); "
                             "lowering and ptxas checks work without one, running needs one") from None
    return driver


def local_capability() -> tuple[int, int] | None:
    """The compute capability of GPU 0, or None where there is none."""
    try:
        if torch.cuda.is_available():
            return torch.cuda.get_device_capability(0)
    except RuntimeError:
        return None
    return None


def _with_context(log: str, ptx: str) -> str:
    lines = ptx.splitlines()
    out = []
    for entry in log.strip().splitlines():
        out.append(entry)
        found = re.search(r"line (\d+)", entry)
        if found and 0 < int(found.group(1)) <= len(lines):
            out.append(f"    {int(found.group(1))}: {lines[int(found.group(1)) - 1].strip()}")
    return "\n".join(out)


@dataclass
class Loaded:
    module: Any
    function: Any


class Runtime:
    """One process's view of one GPU: modules, functions and launches."""

    def __init__(self, device: int = 0, use_ptxas: bool = True) -> None:
        if not torch.cuda.is_available():
            raise GpuUnavailable("PyTorch sees no CUDA device: lowering and ptxas checks work without "
                                 "one; running kernels needs one")
        self.device = device
        torch.cuda.init()
        torch.cuda.set_device(device)
        torch.empty(1, device=f"cuda:{device}")  # makes the primary context current
        self.driver = _init_driver()
        major, minor = torch.cuda.get_device_capability(device)
        self.capability = (major, minor)
        self.loaded: dict[str, Loaded] = {}
        self.use_ptxas = use_ptxas  # False: the driver JIT-compiles every PTX module

    def load(self, kernel: LoweredKernel) -> Loaded:
        key = hashlib.sha256(kernel.ptx.encode()).hexdigest()
        if key not in self.loaded:
            image = self._cubin(kernel, key) or kernel.ptx.encode() + b"\0"
            module = self._load_image(image, kernel.ptx)
            function = _check(self.driver.cuModuleGetFunction(module, kernel.name.encode()),
                              f"cuModuleGetFunction({kernel.name})")
            self.loaded[key] = Loaded(module, function)
        return self.loaded[key]

    def _cubin(self, kernel: LoweredKernel, key: str) -> bytes | None:
        """The cubin from the disk cache, or assembled now with ptxas; None (the driver JIT-compiles
        the PTX) without ptxas or where the kernel's target is not this device's architecture."""
        same_arch = get_target(kernel.target).compute_capability == self.capability
        if not self.use_ptxas or ptxas_path() is None or not same_arch:
            return None
        path = CACHE_DIR / "cubin" / f"{key}_{kernel.target}.cubin"
        if path.exists():
            return path.read_bytes()
        try:
            cubin, _ = assemble(kernel.ptx, kernel.target)
        except PtxasError as err:
            raise PtxLoadError(str(err)) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cubin)
        return cubin

    def _load_image(self, image: bytes, ptx: str) -> Any:
        cu = self.driver
        log = bytearray(JIT_LOG_BYTES)
        options = [cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
        status, module = cu.cuModuleLoadDataEx(image, len(options), options, [log, JIT_LOG_BYTES])
        if status != cu.CUresult.CUDA_SUCCESS:
            _, name = cu.cuGetErrorName(status)
            text = bytes(log).split(b"\0", 1)[0].decode(errors="replace")
            raise PtxLoadError(f"the driver rejected the PTX ({name.decode() if name else status}):\n"
                               f"{_with_context(text, ptx)}")
        return module

    def launch(self, kernel: LoweredKernel, tensors: list[torch.Tensor]) -> None:
        """Launch on the current stream with one pointer per kernel parameter."""
        check_launch(kernel, tensors, get_target(kernel.target))
        loaded = self.load(kernel)
        pointers = [np.array([t.data_ptr()], dtype=np.uint64) for t in tensors]
        params = np.array([p.ctypes.data for p in pointers], dtype=np.uint64)
        stream = torch.cuda.current_stream(self.device).cuda_stream
        grid, block = kernel.launch.grid, kernel.launch.block
        _check(self.driver.cuLaunchKernel(loaded.function, *grid, *block, kernel.launch.shared_bytes,
                                          stream, params.ctypes.data, 0), f"cuLaunchKernel({kernel.name})")


def check_launch(kernel: LoweredKernel, tensors: list[torch.Tensor], target: Target) -> None:
    """Refuse launches the target cannot run and arguments the kernel was not built for."""
    threads = int(np.prod(kernel.launch.block))
    if threads > target.max_threads_per_block:
        raise LaunchError(f"{kernel.name}: {threads} threads per block exceed {target.name}'s "
                          f"{target.max_threads_per_block}")
    if not 0 < kernel.launch.grid[0] <= MAX_GRID_X or min(kernel.launch.grid) < 1:
        raise LaunchError(f"{kernel.name}: grid {kernel.launch.grid} is out of range")
    if kernel.launch.shared_bytes > target.shared_memory_per_block:
        raise LaunchError(f"{kernel.name}: {kernel.launch.shared_bytes} bytes of shared memory exceed "
                          f"{target.name}'s {target.shared_memory_per_block}")
    if len(tensors) != len(kernel.params):
        raise LaunchError(f"{kernel.name} takes {len(kernel.params)} tensors, got {len(tensors)}")
    for name, tensor in zip(kernel.params, tensors):
        if not tensor.is_cuda or not tensor.is_contiguous():
            raise LaunchError(f"{kernel.name}: {name} must be a contiguous CUDA tensor")
        if tensor.data_ptr() % 16:
            raise LaunchError(f"{kernel.name}: {name} is not 16-byte aligned")
