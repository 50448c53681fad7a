"""The search loop: a supervisor deploys proposers on each fused region of a problem, admits what
the verifier gate passes (ptxas, the Z3 proof, the CPU emulator, the GPU check, timing), keeps a
leaderboard per region and records every attempt."""


class OptimizeError(ValueError):
    """A problem that cannot be optimized (no fusable region); the message says why."""
