"""The cheat corpus: candidates that must be rejected, each with the reasons it must be rejected for,
the problem it cheats on and the sizes it is checked at (small ones on the CPU, larger ones on the
GPU, where the allocator, streams and timing are in play). A candidate is caught when every
expected reason is among the check's reasons; others may be there too.

Read by tests/test_check.py (CPU and GPU) and papers/checker/run.py."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROBLEMS = REPO / "datasets" / "problems"
SMALL = {"batch_size": 64, "dim": 300}


@dataclass(frozen=True)
class Cheat:
    name: str
    reference: Path
    expected: frozenset[str]
    gpu_sizes: dict[str, int]
    cpu_sizes: dict[str, int] | None = field(default_factory=lambda: dict(SMALL))  # None: GPU only
    timing: bool = False  # caught only by the timing

    @property
    def candidate(self) -> Path:
        return HERE / f"{self.name}.py"


def cheat(name: str, reference: Path, expected: set[str], gpu_sizes: dict[str, int],
          cpu_sizes: dict[str, int] | None = SMALL, timing: bool = False) -> Cheat:
    return Cheat(name, reference, frozenset(expected), gpu_sizes, dict(cpu_sizes) if cpu_sizes else None, timing)


RELU = PROBLEMS / "elementwise" / "relu_f32.py"
MID = {"batch_size": 4096, "dim": 4096}
CHEATS = [
    cheat("return_input", HERE / "problems" / "relu_positive.py", {"values"}, MID),
    cheat("partial_write", RELU, {"unwritten"}, MID, cpu_sizes=None),
    cheat("stale_memory", RELU, {"unwritten"}, MID, cpu_sizes=None),
    cheat("side_stream", RELU, {"static:side-stream", "unordered"}, MID, cpu_sizes=None),
    cheat("side_stream_hidden", RELU, {"unordered"}, MID, cpu_sizes=None),
    cheat("lazy_subclass", RELU, {"static:lazy-result", "output-type"}, MID),
    cheat("cached_by_pointer", RELU, {"static:identity-cache", "cached"}, MID),
    cheat("precision_downgrade", PROBLEMS / "reduction" / "softmax_f32.py", {"static:precision", "values"},
          {"batch_size": 4096, "dim": 4096}),
    cheat("constant_output", HERE / "problems" / "mse_bf16.py", {"values"}, MID, cpu_sizes={"batch_size": 64,
                                                                                           "dim": 1000}),
    cheat("constant_cosine", PROBLEMS / "loss" / "cosine_similarity_loss_bf16.py", {"values"}, MID,
          cpu_sizes={"batch_size": 64, "dim": 1000}),
    cheat("patched_timer", RELU, {"static:patching", "timing-patched"}, MID),
    cheat("background_thread", RELU, {"static:concurrency", "thread"}, MID),
    cheat("reference_op", RELU, {"static:reference-op"}, MID),
    cheat("mutate_inputs", RELU, {"inputs-mutated"}, MID),
    cheat("out_of_bounds_read", HERE / "problems" / "row_sum_f32.py", {"out-of-bounds-read"},
          {"batch_size": 4096, "dim": 4100}),
    cheat("skip_work", PROBLEMS / "reduction" / "layernorm_f32.py", {"values"}, MID),
    cheat("lazy_after_warmup", RELU, {"stale-in-timing"}, MID, timing=True),
    cheat("fingerprint_cache", RELU, {"faster-than-light"}, {"batch_size": 8192, "dim": 8192}, cpu_sizes=None,
          timing=True),
    cheat("missing_barrier", PROBLEMS / "rowsweep" / "softmax_f32_16384.py", {"nondeterministic"},
          {"batch_size": 1024}, cpu_sizes=None),
]
GENERATED = {"missing_barrier"}  # written by `generate` (needs ptxgen), not kept as a file


def generate(cheat: Cheat, sizes: dict[str, int], folder: Path, target: str = "sm_90a") -> Path:
    """A candidate made from ptxgen's own output: the drop-in for the problem with every barrier
    deleted from its PTX (threads read partial sums from shared memory before others write them)."""
    out = folder / cheat.name
    command = [sys.executable, "-m", "ptxgen.cli", "lower", str(cheat.reference), "--out", str(out),
               "--target", target, *[f"--size={k}={v}" for k, v in sizes.items()]]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    source = (out / "model_new.py").read_text()
    stripped = "\n".join(line for line in source.splitlines() if line.strip() != "bar.sync 0;")
    if stripped == source:
        raise RuntimeError(f"{cheat.name}: the lowered kernel has no barrier to delete")
    path = folder / f"{cheat.name}.py"
    path.write_text(stripped.replace('"""model_new.py:', '"""model_new.py with every barrier deleted (a race):', 1))
    return path


def candidate_path(cheat: Cheat, sizes: dict[str, int], folder: Path, target: str = "sm_90a") -> Path:
    return generate(cheat, sizes, folder, target) if cheat.name in GENERATED else cheat.candidate
