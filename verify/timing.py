"""Timing on the GPU: CUDA events around each run, L2 flushed before it, warm-up first, median
and quartiles; and the device-to-device copy bandwidth that memory-bound kernels are held to.
On the CPU (dry runs) the host clock stands in for events."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

L2_FLUSH_BYTES = 512 * 2**20
CPU_FLUSH_BYTES = 64 * 2**20  # more than a server's last-level cache
WARMUP = 3


def flush_buffer(device: str) -> torch.Tensor:
    """A buffer larger than any L2; writing it evicts what a previous run left there."""
    return torch.empty((L2_FLUSH_BYTES if device == "cuda" else CPU_FLUSH_BYTES) // 4, dtype=torch.float32,
                       device=device)


def time_ms(fn: Callable[[], Any], device: str, reps: int, flush: torch.Tensor) -> list[float]:
    """Per-run times in milliseconds."""
    for _ in range(WARMUP):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        flush.zero_()
        if device == "cuda":
            times.append(_event_ms(fn))
        else:
            begin = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin) * 1e3)
    return times


HOLD_CYCLES = 2_000_000  # about 1 ms of spinning on the GPU: longer than any candidate's launch work on the host


def time_queued_ms(fn: Callable[[], Any], reps: int, flush: torch.Tensor,
                   hold_cycles: int = HOLD_CYCLES) -> list[float]:
    """Per-call device times in milliseconds, host overhead hidden alike for every candidate: before
    each call the stream is held by a spinning kernel, so that the call's launches are queued before
    its start event is reached. A call that waits on the device itself (a synchronization) still
    shows it."""
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        flush.zero_()
        torch.cuda._sleep(hold_cycles)
        times.append(_event_ms(fn))
    return times


def _event_ms(fn: Callable[[], Any]) -> float:
    """Milliseconds between CUDA events recorded on the current stream around one call."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def summary(times: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_ms": statistics.median(times), "q1_ms": quartiles[0], "q3_ms": quartiles[2],
            "min_ms": min(times), "reps": len(times)}


def copy_bandwidth(device: str, reps: int, flush: torch.Tensor, nbytes: int) -> dict[str, float]:
    """Device-to-device copy of `nbytes`, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    stats = summary(time_ms(lambda: dst.copy_(src), device, reps, flush))
    stats["gb_per_s"] = 2 * nbytes / (stats["median_ms"] * 1e-3) / 1e9
    stats["bytes"] = 2 * nbytes
    return stats


# ---- the checker's timing: candidate and baselines interleaved, contents rotated, outputs checked

ROUNDS = 2  # the candidate's median in each round, compared, is the repeatability figure
REPS = (10, 100)  # timed runs per round, at least and at most
ROUND_MS = 100.0  # with no count given, each runs about this long per round
SLOTS, CONTENTS = 2, 3  # coprime: a slot (fixed addresses) never holds the same contents twice in a row
SOL_MARGIN = 0.8  # rejected below this fraction of the speed-of-light time (read-only traffic beats copies)
COPY_BYTES = 2**30
MATMUL_SIDE = 4096
IDLE_GAP = (2.0, 0.05)  # a candidate whose device stays busy past its end event longer than this multiple of
# the baselines' gap plus this many ms has work outside the current stream


@dataclass
class Rotation:
    """Input slots at fixed addresses whose contents rotate among pre-drawn sets, call by call."""

    slots: list[list[Any]]
    contents: list[list[Any]]
    calls: int = 0

    def next(self) -> tuple[list[Any], int]:
        slot, index = self.slots[self.calls % SLOTS], self.calls % CONTENTS
        for target, value in zip(slot, self.contents[index]):
            if isinstance(target, torch.Tensor):
                target.copy_(value)
        self.calls += 1
        return slot, index


def timed_call(fn: Callable[..., Any], args: list[Any], device: str, flush: torch.Tensor) -> tuple[float, float, Any]:
    """(event time, time until the device is idle, outputs) of one call, in ms, after an L2 flush."""
    flush.zero_()
    if device != "cuda":
        begin = time.perf_counter()
        out = fn(*args)
        elapsed = (time.perf_counter() - begin) * 1e3
        return elapsed, elapsed, out
    start, end, idle = (torch.cuda.Event(enable_timing=True) for _ in range(3))
    start.record()
    out = fn(*args)
    end.record()
    torch.cuda.synchronize()
    idle.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end), start.elapsed_time(idle), out


def rounds(fns: dict[str, Callable[..., Any]], rotation: Rotation, device: str, flush: torch.Tensor, reps: int,
           verify: Callable[[str, int, Any], None], clock: Callable[[], int | None] = lambda: None
           ) -> tuple[dict[str, list[list[tuple[float, float]]]], list[list[int | None]]]:
    """Each function `reps` times per round for ROUNDS rounds, call by call in turn (a drift of the
    clocks falls on all alike); `verify(name, contents, out)` sees every output. Also the SM clock
    (MHz, from `clock`) at the start and the end of each round."""
    times: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in fns}
    clocks: list[list[int | None]] = []
    for _ in range(ROUNDS):
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
        started = clock()
        for _ in range(reps):
            for name, fn in fns.items():
                args, index = rotation.next()
                event, idle, out = timed_call(fn, args, device, flush)
                verify(name, index, out)
                rows[name].append((event, idle))
        clocks.append([started, clock()])
        for name, row in rows.items():
            times[name].append(row)
    return times, clocks


def timing_rows(times: dict[str, list[list[tuple[float, float]]]]) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, per_round in times.items():
        events = [e for row in per_round for e, _ in row]
        medians = [statistics.median(e for e, _ in row) for row in per_round]
        gaps = [i - e for row in per_round for e, i in row]
        rows[name] = {**summary(events), "round_medians_ms": medians,
                      "repeat_delta": (max(medians) - min(medians)) / min(medians) if min(medians) > 0 else 0.0,
                      "idle_gap_ms": statistics.median(gaps)}
    return rows


def matmul_rate(device: str, flush: torch.Tensor, dtype: torch.dtype = torch.bfloat16, reps: int = 10) -> float:
    """FLOP/s of a matrix product of side MATMUL_SIDE in `dtype` (cuBLAS), the matrix-rate ceiling."""
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=device, dtype=dtype)
    b = torch.randn_like(a)
    stats = summary(time_ms(lambda: a @ b, device, reps, flush))
    return 2 * MATMUL_SIDE**3 / (stats["median_ms"] * 1e-3)


def flops_of(model: torch.nn.Module, inputs: list[Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return int(counter.get_total_flops())


def tensor_bytes(values: Any) -> int:
    return sum(t.numel() * t.element_size() for t in values if isinstance(t, torch.Tensor))


def speed_of_light(model: torch.nn.Module, inputs: list[Any], outputs: list[Any], device: str,
                   flush: torch.Tensor) -> dict[str, Any]:
    """The least time the problem can take: its inputs, parameters and outputs moved once at the
    measured copy bandwidth, or its FLOPs at the measured matrix rate, whichever is longer."""
    moved = tensor_bytes(inputs) + tensor_bytes(outputs) + tensor_bytes([*model.parameters(), *model.buffers()])
    flops = flops_of(model, inputs)
    copy = copy_bandwidth(device, 10, flush, COPY_BYTES)
    rate = matmul_rate(device, flush) if flops else 0.0
    floor_s = max(moved / (copy["gb_per_s"] * 1e9), flops / rate if rate else 0.0)
    return {"bytes": moved, "flops": flops, "copy_gb_per_s": copy["gb_per_s"], "matmul_tflops": rate / 1e12,
            "floor_ms": floor_s * 1e3}


def time_check(harness: Any, opts: Any) -> dict[str, Any]:
    """The checker's timing of `harness.candidate` beside eager PyTorch and torch.compile: reasons
    ("stale-in-timing", "unordered", "faster-than-light") and figures."""
    device = "cuda" if opts.device.startswith("cuda") else "cpu"
    flush = flush_buffer(device)
    contents = [harness.problem.inputs(opts.seed + 1000 + k, device) for k in range(CONTENTS)]
    judged = [harness.judge(values) for values in contents]
    rotation = Rotation([[v.clone() if isinstance(v, torch.Tensor) else v for v in contents[0]] for _ in range(SLOTS)],
                        contents)
    reasons: list[tuple[str, str]] = []
    errors: dict[str, str] = {}
    verified: dict[int, list[torch.Tensor]] = {}  # per contents, an output found right, bit for bit

    def verify(name: str, index: int, out: Any) -> None:
        """Every timed output of the candidate: bitwise equal to one already found right for the
        same contents, or else measured against the reference for them."""
        if name != "candidate" or reasons:
            return
        from verify.check import outputs_of
        from verify.trials import error, same_bits

        tensors = [o for o in outputs_of(out) if isinstance(o, torch.Tensor)]
        if index in verified and all(same_bits(o, v) for o, v in zip(tensors, verified[index])):
            return
        exact, tolerance, _ = judged[index]
        worst = max((error(o, r) for o, r in zip(tensors, exact)), default=0.0)
        if worst > tolerance:
            reasons.append(("stale-in-timing", f"a timed output is wrong for its inputs' contents (error {worst:.3g} "
                            f"> {tolerance:.3g}) after the contents under its addresses were changed"))
        else:
            verified.setdefault(index, [o.clone() for o in tensors])

    fns = {"candidate": guarded(harness.candidate), "eager": harness.model}
    if opts.compile:
        fns["torch.compile"] = torch.compile(harness.model, mode="max-autotune" if opts.max_autotune else None)
    with torch.no_grad():
        warm = {}
        for name, fn in list(fns.items()):
            try:
                warm[name] = [timed_call(fn, rotation.next()[0], device, flush)[0] for _ in range(WARMUP)]
            except Exception as err:  # a baseline that fails to compile is reported, not fatal
                if name == "candidate":
                    raise
                errors[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                del fns[name]
        reps = opts.reps or max(REPS[0], min(REPS[1], int(ROUND_MS / max(min(warm["candidate"]), 1e-3))))
        times, clocks = rounds(fns, rotation, device, flush, reps, verify,
                               sm_clock_reader() if device == "cuda" else lambda: None)
        rows = timing_rows(times)
    rows.update({name: {"error": message} for name, message in errors.items()})
    result: dict[str, Any] = {"timing": rows, "reasons": reasons, "round_sm_clock_mhz": clocks,
                              "speedup": {n: r["median_ms"] / rows["candidate"]["median_ms"]
                                          for n, r in rows.items() if n != "candidate" and "median_ms" in r}}
    if device == "cuda":
        outputs = [torch.empty(shape, dtype=dtype, device="meta") for shape, dtype in harness.expected
                   if shape is not None]
        result["speed_of_light"] = light = speed_of_light(harness.model, contents[0], outputs, device, flush)
        candidate = rows["candidate"]["median_ms"]
        light["fraction"] = light["floor_ms"] / candidate
        if candidate < SOL_MARGIN * light["floor_ms"]:
            reasons.append(("faster-than-light", f"median {candidate * 1e3:.1f} us, below {SOL_MARGIN:.0%} of the "
                            f"{light['floor_ms'] * 1e3:.1f} us that {light['bytes'] / 1e6:.1f} MB at "
                            f"{light['copy_gb_per_s']:.0f} GB/s take"))
        gaps = [r["idle_gap_ms"] for n, r in rows.items() if n != "candidate" and "idle_gap_ms" in r]
        limit = IDLE_GAP[0] * max(gaps, default=0.0) + IDLE_GAP[1]
        if rows["candidate"]["idle_gap_ms"] > limit:
            reasons.append(("unordered", f"in timing: the device stays busy {rows['candidate']['idle_gap_ms']:.3f} "
                            f"ms past the end event on the current stream (baselines: at most "
                            f"{max(gaps, default=0):.3f})"))
    return result


def guarded(candidate: Callable[..., Any]) -> Callable[..., Any]:
    """The candidate, its exceptions raised as the checker means them (verify.check.forward_failure)."""
    from verify.check import forward_failure

    def call(*args: Any) -> Any:
        try:
            return candidate(*args)
        except Exception as err:
            raise forward_failure(err) from err

    return call


NVML_CLOCK_SM = 1


def sm_clock_reader(index: int | None = None) -> Callable[[], int | None]:
    """A reader of the current SM clock in MHz through NVML (the driver's libnvidia-ml, by ctypes),
    or of None where NVML is missing: a timing round whose clock fell (power or heat) shows it."""
    import ctypes

    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return lambda: None
        handle = ctypes.c_void_p()
        device = torch.cuda.current_device() if index is None else index
        if nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(nvml_index(device)), ctypes.byref(handle)) != 0:
            return lambda: None
    except (OSError, AttributeError):
        return lambda: None

    def read() -> int | None:
        mhz = ctypes.c_uint()
        return mhz.value if nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_SM, ctypes.byref(mhz)) == 0 else None

    return read


def nvml_index(cuda_index: int) -> int:
    """NVML numbers devices by PCI order; CUDA_VISIBLE_DEVICES may renumber them for CUDA."""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    order = [v for v in visible.split(",") if v.strip().isdigit()]
    return int(order[cuda_index]) if cuda_index < len(order) else cuda_index
