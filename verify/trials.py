"""What one trial of the empirical checker is made of: inputs drawn from several distributions,
input buffers with guard bands around them at addresses that stay the same across trials, the
allocator poisoned before the candidate runs, and the error of an output against its float64
reference.

Errors are measured as max |got - want| / (|want| + s), with s the root mean square of the
reference output: relative for large values, absolute at the output's own scale near zero. So an
all-zero softmax of a long row (every value near 1/n) fails, as it would not against |want| + 1."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
EAGER_SLACK = 4.0  # a trial's tolerance is at least this multiple of eager PyTorch's own error on it
DISTRIBUTIONS = ("problem", "wide", "breakpoints")
WIDE_SPREAD = 4.0  # "wide": uniform over +-WIDE_SPREAD times the problem's own root mean square (at least 1)
WIDE_OUTLIERS = (1 / 256, 16.0)  # and this fraction of elements this many times further out
BREAKPOINTS = (0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, -6.0, 20.0, -20.0)  # of common activations
BREAKPOINT_OFFSETS = (0.0, 2**-12, -(2**-12), 1e-3, -1e-3, 0.1, -0.1)
BREAKPOINT_SHARE = 0.5  # of elements set near a breakpoint; the rest keep the problem's own values
RESCALES = (4.0, 0.25, 16.0)  # input scales tried when a constant output would pass every trial
CORRELATION = (0.05, 0.9)  # "correlated" draws: the least share of the first input, and the spread above it
GUARD_BYTES = 64 * 1024  # on each side of every input; a multiple of 256 keeps inputs aligned
SMALL_POOL_BLOCKS = 64  # 1 MiB blocks poisoned in the caching allocator's pool of small blocks
SMALL_BLOCK_BYTES = 2**20
CHUNK = 2**24  # elements compared at a time
POISON_HEADROOM = 0.8  # of the device's free memory, at most, is filled with poison


# ---- errors against the reference


def tolerance_of(dtypes: Sequence[torch.dtype]) -> float:
    """The loosest tolerance among the floating dtypes involved (inputs and outputs); 0 if none is."""
    return max((TOLERANCE.get(d, 0.0) for d in dtypes if d.is_floating_point), default=0.0)


def chunks(*tensors: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Matching flat pieces of equally long tensors, so that float64 temporaries stay small."""
    flat = [t.reshape(-1) for t in tensors]
    for start in range(0, flat[0].numel(), CHUNK):
        yield tuple(f[start:start + CHUNK] for f in flat)


def error(got: torch.Tensor, want: torch.Tensor) -> float:
    """The worst element's error (module docstring); inf for a NaN or infinity that the other lacks,
    and for integer outputs the number of elements that differ."""
    if not want.is_floating_point():
        return float(sum(int((g.to(w.dtype) != w).sum()) for g, w in chunks(got, want)))
    squares, count = 0.0, 0
    for g, w in chunks(got, want):
        g = g.double()
        infinite = w.isinf()
        if (g.isnan() != w.isnan()).any() or (g[infinite] != w[infinite]).any() or (g.isinf() & ~infinite).any():
            return math.inf
        finite = w[w.isfinite()].double()
        squares += float(finite.square().sum())
        count += finite.numel()
    if count == 0:
        return 0.0
    scale = math.sqrt(squares / count) or torch.finfo(torch.float64).tiny
    worst = 0.0
    for g, w in chunks(got, want):
        w = w.double()
        diff = ((g.double() - w).abs() / (w.abs() + scale))[w.isfinite()]
        worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
    return worst


def worst_element(got: torch.Tensor, want: torch.Tensor) -> str:
    """Where `got` is furthest from `want`, in the output's own indices, and both values."""
    if got.shape != want.shape or got.numel() == 0:
        return ""
    best, where = -1.0, 0
    for index, (g, w) in enumerate(chunks(got, want)):
        if w.is_floating_point():
            g, w = g.double(), w.double()
            miss = torch.where(g.isnan() != w.isnan(), math.inf, (g - w).abs().nan_to_num(0.0))
        else:
            miss = (g.to(w.dtype) != w).double()
        top = int(miss.argmax())
        if float(miss[top]) > best:
            best, where = float(miss[top]), index * CHUNK + top
    position = [int(i) for i in torch.unravel_index(torch.tensor(where), want.shape)] if want.dim() else []
    g, w = got.reshape(-1)[where].item(), want.reshape(-1)[where].item()
    return f"at {position}: got {g:.8g}, want {w:.8g}"


def unwritten_elements(first: torch.Tensor, second: torch.Tensor, poisons: tuple[int, int]) -> int:
    """Elements that hold each run's poison byte in every byte (`first` from a run with the allocator
    poisoned with poisons[0], `second` with poisons[1]): never written. A NaN computed from poisoned
    bytes keeps their payload on some processors, but not the poison of both runs."""
    if first.numel() == 0 or first.shape != second.shape:
        return 0

    def holds(t: torch.Tensor, byte: int) -> torch.Tensor:
        return (bits(t).view(t.numel(), t.element_size()) == byte).all(dim=1)

    return int((holds(first, poisons[0]) & holds(second, poisons[1])).sum())


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(bits(a), bits(b))


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes (NaN compares equal to the same NaN)."""
    flat = t.detach().reshape(-1).contiguous()
    return flat.view(torch.uint8) if flat.numel() else flat.to(torch.uint8)


# ---- input distributions


def breakpoints_of(reference_source: str) -> tuple[float, ...]:
    """The float literals of the reference's `Model` and its module-level float constants (its
    activations' thresholds, slopes, bounds), with the breakpoints of common activations."""
    tree = ast.parse(reference_source)
    model = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"]
    constants = [n.value for n in tree.body if isinstance(n, ast.Assign)]
    literals = {float(c.value) for node in [*model, *constants] for c in ast.walk(node)
                if isinstance(c, ast.Constant) and type(c.value) is float}
    return tuple(sorted(set(BREAKPOINTS) | literals | {-v for v in literals}))


def rms(t: torch.Tensor) -> float:
    if t.numel() == 0:
        return 0.0
    return math.sqrt(sum(float(c.double().square().sum()) for (c,) in chunks(t)) / t.numel())


def in_chunks(t: torch.Tensor, piece: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`piece` applied to flat chunks of `t`, into a new tensor of t's dtype: temporaries stay small."""
    out = torch.empty_like(t)
    flat, target = t.reshape(-1), out.view(-1)
    for start in range(0, flat.numel(), CHUNK):
        target[start:start + CHUNK] = piece(flat[start:start + CHUNK])
    return out


def wide_like(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform over a range wider than the problem's, with negatives and a few far outliers."""
    spread = WIDE_SPREAD * max(1.0, rms(t))
    share, factor = WIDE_OUTLIERS

    def piece(chunk: torch.Tensor) -> torch.Tensor:
        values = (torch.rand(chunk.shape, generator=generator, device=chunk.device) * 2 - 1) * spread
        far = torch.rand(chunk.shape, generator=generator, device=chunk.device) < share
        return torch.where(far, values * factor, values)

    return in_chunks(t, piece)


def near_breakpoints(t: torch.Tensor, generator: torch.Generator, points: tuple[float, ...]) -> torch.Tensor:
    """Half the elements at a breakpoint or just beside it; the others keep the problem's values."""
    table = torch.tensor(points, dtype=torch.float64, device=t.device)
    offsets = torch.tensor(BREAKPOINT_OFFSETS, dtype=torch.float64, device=t.device)

    def pick(values: torch.Tensor, n: int) -> torch.Tensor:
        return values[torch.randint(len(values), (n,), generator=generator, device=t.device)]

    def piece(chunk: torch.Tensor) -> torch.Tensor:
        n = chunk.numel()
        values = pick(table, n) * (1 + pick(offsets, n)) + pick(offsets, n) * 0.01
        chosen = torch.rand(n, generator=generator, device=t.device) < BREAKPOINT_SHARE
        return torch.where(chosen, values, chunk.double())

    return in_chunks(t, piece)


Redraw = Callable[[torch.Tensor, torch.Generator, tuple[float, ...]], torch.Tensor]
REDRAW: dict[str, Redraw] = {
    "problem": lambda t, g, points: t,
    "wide": lambda t, g, points: wide_like(t, g),
    "breakpoints": near_breakpoints,
}


def correlated(values: list[Any], generator: torch.Generator) -> list[Any]:
    """Each floating tensor shaped like the first made partly of the first: y = (1 - w) x + w y,
    with w drawn once per draw. Outputs of independent inputs can barely vary (a cosine
    similarity of random vectors is about 0 whatever the draw); these vary with w."""
    first = next((v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()), None)
    if first is None:
        return values
    w = float(torch.rand((), generator=generator, device=first.device)) * CORRELATION[1] + CORRELATION[0]

    def mix(value: Any) -> Any:
        if value is first or not (isinstance(value, torch.Tensor) and value.is_floating_point()
                                  and value.shape == first.shape):
            return value
        return in_chunks(value, lambda c: c.double() * w)  # the part of the first is added below

    mixed = [mix(v) for v in values]
    for index, value in enumerate(values):
        if mixed[index] is not value:
            mixed[index].view(-1).add_(first.reshape(-1).to(value.dtype), alpha=1 - w)
    return mixed


def draw(base: list[Any], distribution: str, seed: int, points: tuple[float, ...], scale: float = 1.0) -> list[Any]:
    """The problem's own inputs `base` (drawn with `seed`), their floating tensors redrawn from
    `distribution` and multiplied by `scale`; integer tensors (labels, indices) and other values
    are kept as the problem made them."""
    generator = torch.Generator(device=next((t.device for t in base if isinstance(t, torch.Tensor)), "cpu"))
    generator.manual_seed(seed)
    if distribution == "correlated":
        return correlated(base, generator)
    redraw = REDRAW[distribution]

    def one(value: Any) -> Any:
        if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
            return value
        drawn = redraw(value, generator, points)
        return drawn if scale == 1.0 else in_chunks(drawn, lambda c: c.double() * scale)

    return [one(v) for v in base]


# ---- guarded input buffers


@dataclass
class GuardedInput:
    """One input tensor viewed inside a larger byte buffer, with guard bands before and after it."""

    buffer: torch.Tensor
    view: torch.Tensor

    @classmethod
    def like(cls, t: torch.Tensor) -> GuardedInput:
        nbytes = t.numel() * t.element_size()
        buffer = torch.empty(2 * GUARD_BYTES + nbytes, dtype=torch.uint8, device=t.device)
        view = buffer[GUARD_BYTES:GUARD_BYTES + nbytes].view(t.dtype).view(t.shape)
        return cls(buffer, view)

    def guards(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.buffer[:GUARD_BYTES], self.buffer[GUARD_BYTES + self.view.numel() * self.view.element_size():]

    def fill_guards(self, byte: int) -> None:
        for guard in self.guards():
            guard.fill_(byte)

    def guards_hold(self, byte: int) -> bool:
        return all(bool((g == byte).all()) for g in self.guards())


class InputSlots:
    """The candidate's input tensors: guarded, allocated once, refilled every run, so that each
    trial's inputs sit at the same addresses as the last trial's (a result cached by address goes
    stale). Non-tensor inputs and non-contiguous tensors are passed as given."""

    def __init__(self, example: list[Any]) -> None:
        self.slots = [GuardedInput.like(v) if self.guardable(v) else None for v in example]

    @staticmethod
    def guardable(value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.is_contiguous() and value.numel() > 0

    def fits(self, values: list[Any]) -> bool:
        return len(values) == len(self.slots) and all(
            s is None or (isinstance(v, torch.Tensor) and v.shape == s.view.shape and v.dtype == s.view.dtype)
            for s, v in zip(self.slots, values))

    def tensors(self, values: list[Any]) -> list[Any]:
        return [v if s is None else s.view for s, v in zip(self.slots, values)]

    def fill(self, values: list[Any], guard_byte: int, contents_byte: int | None = None) -> None:
        """Guards set to `guard_byte`; the inputs to `values`, or to `contents_byte` (poison, to be
        overwritten later by `write`)."""
        for slot, value in zip(self.slots, values):
            if slot is None:
                continue
            slot.fill_guards(guard_byte)
            if contents_byte is None:
                slot.view.copy_(value)
            else:
                slot.view.view(torch.uint8).fill_(contents_byte)

    def write(self, values: list[Any]) -> None:
        for slot, value in zip(self.slots, values):
            if slot is not None:
                slot.view.copy_(value)

    def guards_hold(self, byte: int) -> bool:
        return all(s is None or s.guards_hold(byte) for s in self.slots)

    def unchanged(self, values: list[Any]) -> list[int]:
        """Positions of the tensor inputs whose bytes differ from `values`."""
        return [i for i, (s, v) in enumerate(zip(self.slots, values)) if s is not None and not same_bits(s.view, v)]


# ---- the caching allocator, poisoned


def poison_allocator(byte: int, reserve_bytes: int) -> None:
    """Fill the memory that PyTorch's CUDA caching allocator hands out next with `byte`: every free
    block in its cache is allocated (largest first, so each request takes a block of its own size),
    with a block of `reserve_bytes` where the cache has none that large and SMALL_POOL_BLOCKS of the
    small pool where it has fewer; all are filled and freed back into the cache, where a candidate's
    `torch.empty` finds them. On the CPU there is no such cache; nothing is done."""
    if not torch.cuda.is_available():
        return
    torch.cuda.synchronize()
    free_blocks = [(b["size"], segment["segment_type"]) for segment in torch.cuda.memory_snapshot()
                   for b in segment["blocks"] if b["state"] == "inactive"]
    held = [torch.empty(size, dtype=torch.uint8, device="cuda") for size, _ in sorted(free_blocks, reverse=True)]
    small = sum(1 for size, kind in free_blocks if kind == "small" and size >= SMALL_BLOCK_BYTES)
    held += [torch.empty(SMALL_BLOCK_BYTES, dtype=torch.uint8, device="cuda")
             for _ in range(max(0, SMALL_POOL_BLOCKS - small))]
    if not any(size >= reserve_bytes for size, kind in free_blocks if kind == "large"):
        free, _ = torch.cuda.mem_get_info()
        held.append(torch.empty(max(min(reserve_bytes, int(free * POISON_HEADROOM)), 2 * SMALL_BLOCK_BYTES),
                                dtype=torch.uint8, device="cuda"))
    for block in held:
        block.fill_(byte)
    torch.cuda.synchronize()
    held.clear()


def constant_passes(references: list[torch.Tensor], tolerances: list[float]) -> bool:
    """Whether one fixed output (the elementwise mean of the references) would pass every trial:
    then the trials cannot tell a constant from a computation."""
    if len(references) < 2 or any(r.shape != references[0].shape for r in references):
        return False
    if not references[0].is_floating_point():
        return all(torch.equal(r, references[0]) for r in references)
    constant = torch.stack([r.double() for r in references]).mean(dim=0)
    return all(error(constant, r) <= tol for r, tol in zip(references, tolerances))
