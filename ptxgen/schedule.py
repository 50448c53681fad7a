"""Schedules: frozen, self-validating sets of knobs, and for each kernel and target the space of
valid ones, which search enumerates."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

from ptxgen.targets import Target

VECTOR_BYTES = (2, 4, 8, 16)
BLOCK_SIZES = (64, 128, 256, 512, 1024)
CTAS_PER_SM = (0, 1, 2, 4, 8, 16)  # 0: one vector per thread, no grid-stride loop
UNROLLS = (1, 2, 4)


class ScheduleError(ValueError):
    """A schedule whose knobs are out of range, or that does not fit a kernel or target."""


@dataclass(frozen=True)
class ElementwiseSchedule:
    """Knobs of a kernel with no reduction: each thread handles `unroll` vectors of
    `vector_bytes` per loop trip, in a grid of `ctas_per_sm` CTAs per SM (grid-stride loop)."""

    vector_bytes: int = 16
    block_size: int = 256
    ctas_per_sm: int = 0  # one pass over the data: measured fastest on H100 (papers/ptx_suite)
    unroll: int = 2
    approx_math: bool = False  # ex2/lg2/tanh.approx instead of the accurate math library
    fp32_intermediates: bool = False  # bf16/f16 kernels: keep float32 between ops (round at stores)

    def __post_init__(self) -> None:
        allowed = {"vector_bytes": VECTOR_BYTES, "block_size": BLOCK_SIZES, "ctas_per_sm": CTAS_PER_SM,
                   "unroll": UNROLLS}
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ScheduleError(f"{name}={getattr(self, name)} is not one of {values}")

    def fits(self, target: Target) -> bool:
        resident = self.block_size * self.ctas_per_sm
        return self.block_size <= target.max_threads_per_block and resident <= target.max_threads_per_sm

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def elementwise_space(target: Target) -> list[ElementwiseSchedule]:
    """Every elementwise schedule that fits the target (the kernel may rule out vector widths)."""
    product = itertools.product(VECTOR_BYTES, BLOCK_SIZES, CTAS_PER_SM, UNROLLS, (False, True), (False, True))
    schedules = [ElementwiseSchedule(*knobs) for knobs in product]
    return [s for s in schedules if s.fits(target)]
