"""Lowering IR kernels to PTX for NVIDIA targets, loading them, and the `ptxgen` command line."""

from __future__ import annotations

from typing import Any


def optimize(model: Any, example_inputs: Any, target: str | None = None, **options: Any) -> Any:
    """`agents.api.optimize`: a faster, verified drop-in module for `model` (see there)."""
    from agents.api import optimize as run

    return run(model, example_inputs, target, **options)
