"""Loading and launching lowered kernels on the GPU, on PyTorch's current stream. Launch
configurations beyond the target's limits are refused before launch; the driver calls themselves
(every result checked, JIT logs next to the offending PTX line) are in `ptxgen.launcher`.

Functions are cached in memory by PTX hash; cubins (assembled with ptxas where it is installed)
are cached on disk by (PTX hash, architecture)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptxgen import launcher
from ptxgen.launcher import DriverError, GpuUnavailable, PtxLoadError
from ptxgen.lower import LoweredKernel
from ptxgen.ptxas import PtxasError, assemble, ptxas_path
from ptxgen.targets import Target, get_target

CACHE_DIR = Path(os.environ.get("PTXGEN_CACHE", Path.home() / ".cache" / "ptxgen"))
MAX_GRID_X = 2**31 - 1

__all__ = ["DriverError", "GpuUnavailable", "LaunchError", "PtxLoadError", "Runtime", "check_launch",
           "local_capability"]


class LaunchError(ValueError):
    """A launch refused before it reached the driver (limits, arguments)."""


def local_capability() -> tuple[int, int] | None:
    """The compute capability of GPU 0, or None where there is none."""
    try:
        if torch.cuda.is_available():
            return torch.cuda.get_device_capability(0)
    except RuntimeError:
        return None
    return None


class Runtime:
    """One process's view of one GPU: loaded kernels and launches."""

    def __init__(self, device: int = 0, use_ptxas: bool = True) -> None:
        launcher.init(device)
        self.device = device
        self.capability = torch.cuda.get_device_capability(device)
        self.use_ptxas = use_ptxas  # False: the driver JIT-compiles every PTX module
        self.functions: dict[str, Any] = {}

    def load(self, kernel: LoweredKernel) -> Any:
        key = hashlib.sha256(kernel.ptx.encode()).hexdigest()
        if key not in self.functions:
            image = self._cubin(kernel, key) or kernel.ptx.encode() + b"\0"
            self.functions[key] = launcher.load_function(image, kernel.ptx, kernel.name)
        return self.functions[key]

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

    def launch(self, kernel: LoweredKernel, tensors: list[torch.Tensor]) -> None:
        """Launch on the current stream with one pointer per kernel parameter."""
        check_launch(kernel, tensors, get_target(kernel.target))
        launcher.launch(self.load(kernel), kernel.launch.grid, kernel.launch.block, kernel.launch.shared_bytes,
                        tensors, kernel.name, int(np.prod(kernel.launch.cluster)))


def check_launch(kernel: LoweredKernel, tensors: list[torch.Tensor], target: Target) -> None:
    """Refuse launches the target cannot run and arguments the kernel was not built for."""
    threads = int(np.prod(kernel.launch.block))
    if threads > target.max_threads_per_block:
        raise LaunchError(f"{kernel.name}: {threads} threads per block exceed {target.name}'s "
                          f"{target.max_threads_per_block}")
    if not 0 < kernel.launch.grid[0] <= MAX_GRID_X or min(kernel.launch.grid) < 1:
        raise LaunchError(f"{kernel.name}: grid {kernel.launch.grid} is out of range")
    cluster = int(np.prod(kernel.launch.cluster))
    if cluster > 1 and (cluster > target.max_cluster_size or kernel.launch.grid[0] % kernel.launch.cluster[0]):
        raise LaunchError(f"{kernel.name}: grid {kernel.launch.grid} in clusters of {kernel.launch.cluster}: "
                          f"{target.name} allows clusters of at most {target.max_cluster_size} CTAs, and the "
                          "grid must be a whole number of clusters")
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
