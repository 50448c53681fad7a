"""Machine models of the GPUs ptxgen generates code for. Differences between targets are data in
this table, never branches elsewhere. Figures are the datasheet values of the named product;
search measures what it relies on (bandwidth) on the device itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Feature(Enum):
    CP_ASYNC = "cp.async"  # asynchronous global -> shared copies (sm_80+)
    BULK_TENSOR = "cp.async.bulk.tensor"  # the tensor memory accelerator (sm_90+)
    WGMMA = "wgmma"  # warpgroup matrix multiply (sm_90a only)
    TCGEN05 = "tcgen05"  # fifth-generation tensor cores (sm_100a)
    CLUSTERS = "clusters"  # thread-block clusters and distributed shared memory (sm_90+)
    BF16_MATH = "bf16 arithmetic"  # add/mul/fma on .bf16 (sm_90+)
    MAX_NAN = "max.NaN"  # NaN-propagating min/max (sm_80+)


@dataclass(frozen=True)
class Target:
    """One GPU architecture, as code generation and search see it."""

    name: str  # the ptxas architecture, e.g. "sm_90a"
    product: str  # the part these figures describe
    ptx_isa: str  # the .version line
    sm_count: int
    registers_per_sm: int
    max_registers_per_thread: int
    max_threads_per_block: int
    max_threads_per_sm: int
    max_blocks_per_sm: int
    shared_memory_per_sm: int  # bytes
    shared_memory_per_block: int  # bytes, opt-in maximum
    l2_bytes: int
    dram_bandwidth: float  # bytes/s, datasheet
    warp_size: int
    max_cluster_size: int  # CTAs; beyond 8 (non-portable sizes) the launcher opts in per kernel
    features: frozenset[Feature]
    # (cluster size, SMs that hold clusters of that size at one CTA an SM): a cluster lives within
    # one GPC, so GPCs of few SMs leave some idle. Measured with cuOccupancyMaxActiveClusters
    # (papers/ptx_suite/clusters.py); sizes not listed are taken to use every SM.
    cluster_sms: tuple[tuple[int, int], ...] = ()

    def sms_holding_clusters(self, size: int) -> int:
        """SMs that clusters of `size` CTAs occupy together, one CTA an SM."""
        return dict(self.cluster_sms).get(size, self.sm_count)

    @property
    def compute_capability(self) -> tuple[int, int]:
        digits = self.name.removeprefix("sm_").rstrip("af")
        return int(digits[:-1]), int(digits[-1])

    def has(self, feature: Feature) -> bool:
        return feature in self.features


AMPERE = frozenset({Feature.CP_ASYNC, Feature.MAX_NAN})
HOPPER = AMPERE | {Feature.BULK_TENSOR, Feature.CLUSTERS, Feature.BF16_MATH}
KIB, MIB = 1024, 1024 * 1024

TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("sm_80", "A100 SXM4 80GB", "7.1", 108, 65536, 255, 1024, 2048, 32, 164 * KIB, 163 * KIB,
           40 * MIB, 2.039e12, 32, 1, AMPERE),
    Target("sm_86", "RTX A6000", "7.1", 84, 65536, 255, 1024, 1536, 16, 100 * KIB, 99 * KIB,
           6 * MIB, 0.768e12, 32, 1, AMPERE),
    Target("sm_89", "L40S", "7.8", 142, 65536, 255, 1024, 1536, 24, 100 * KIB, 99 * KIB,
           96 * MIB, 0.864e12, 32, 1, AMPERE),
    Target("sm_90a", "H100 SXM5 80GB", "8.0", 132, 65536, 255, 1024, 2048, 32, 228 * KIB, 227 * KIB,
           50 * MIB, 3.35e12, 32, 16, HOPPER | {Feature.WGMMA}, ((4, 120), (8, 120), (16, 112))),
    Target("sm_100a", "B200", "8.6", 148, 65536, 255, 1024, 2048, 32, 228 * KIB, 227 * KIB,
           126 * MIB, 8.0e12, 32, 16, HOPPER | {Feature.TCGEN05}),
    Target("sm_120", "RTX PRO 6000 Blackwell", "8.7", 188, 65536, 255, 1024, 1536, 32, 100 * KIB,
           99 * KIB, 128 * MIB, 1.79e12, 32, 8, HOPPER),
]}
DEFAULT_TARGET = "sm_90a"

# The target that runs on a device of a given compute capability (arch-specific where one exists).
BY_CAPABILITY = {t.compute_capability: t.name for t in TARGETS.values()}


class TargetError(ValueError):
    """An unknown target name."""


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def target_for_capability(major: int, minor: int) -> Target:
    name = BY_CAPABILITY.get((major, minor))
    if name is None:
        known = ", ".join(f"{a}.{b}" for a, b in BY_CAPABILITY)
        raise TargetError(f"no target for compute capability {major}.{minor}; modelled: {known}")
    return TARGETS[name]


def default_target() -> Target:
    """The local GPU's target where one is present and modelled, else sm_90a."""
    from ptxgen.runtime import local_capability

    capability = local_capability()
    if capability is not None and capability in BY_CAPABILITY:
        return target_for_capability(*capability)
    return TARGETS[DEFAULT_TARGET]
