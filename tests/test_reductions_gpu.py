"""Reductions on the GPU against the IR interpreter in float64: every layout (rows, middle axes,
scalars), at odd shapes (tails, partial row groups, ties), under the default schedule, schedules
that exercise each knob (sub-warp rows, re-read rows, grid-stride loops, clusters, threads along
a middle axis) and a seeded sample of the kernel's schedule space."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from ir import parse
from ir.frontend.builder import IR_TO_TORCH
from ir.interp import Precision, run
from ir.kernel import Kernel
from ptxgen.lower import default_schedule, lower, schedule_space
from ptxgen.schedule import ColumnSchedule, RowSchedule, ScalarSchedule, Schedule
from verify.against_ir import TOLERANCE  # relative to max |reference|, and per element

pytestmark = pytest.mark.gpu

SOFTMAX = ("kernel k(%x: {t}[{r}, {n}]) -> (%y: {t}[{r}, {n}]) {{\n  %m = amax(%x, axes=[1], keepdim=true)\n"
           "  %d = sub(%x, %m)\n  %e = exp(%d)\n  %s = sum(%e, axes=[1], keepdim=true)\n  %y = div(%e, %s)\n"
           "  return %y\n}}")
LAYERNORM = ("kernel k(%x: f32[9, 4096], %w: f32[4096], %b: f32[4096]) -> (%y: f32[9, 4096], %v: f32[9, 1]) {\n"
             "  %m = mean(%x, axes=[1], keepdim=true)\n  %d = sub(%x, %m)\n  %q = mul(%d, %d)\n"
             "  %v = mean(%q, axes=[1], keepdim=true)\n  %c = const(1e-05) : f32\n  %a = add(%v, %c)\n"
             "  %r = rsqrt(%a)\n  %n = mul(%d, %r)\n  %s = mul(%n, %w)\n  %y = add(%s, %b)\n  return %y, %v\n}")
ARGMIN_LSE = ("kernel k(%x: bf16[6, 1000]) -> (%i: i64[6], %l: f32[6]) {\n  %i = argmin(%x, axes=[1])\n"
              "  %c = cast(%x, to=f32)\n  %e = exp(%c)\n  %s = sum(%e, axes=[1])\n  %l = log(%s)\n  return %i, %l\n}")
LOGSUMEXP = ("kernel k(%x: bf16[8, 3000]) -> (%y: bf16[8]) {\n  %c = cast(%x, to=f32)\n"
             "  %m = amax(%c, axes=[1], keepdim=true)\n  %a = abs(%m)\n  %i = const(inf) : f32\n"
             "  %q = eq(%a, %i)\n  %z = const(0.0) : f32\n  %s = where(%q, %z, %m)\n  %v = reshape(%s, shape=[8])\n"
             "  %d = sub(%c, %s)\n  %e = exp(%d)\n  %t = sum(%e, axes=[1])\n  %l = log(%t)\n  %r = add(%l, %v)\n"
             "  %y = cast(%r, to=bf16)\n  return %y\n}")
INT_ROWS = "kernel k(%x: i32[7, 300]) -> (%s: i32[7]) {\n  %s = sum(%x, axes=[1])\n  return %s\n}"
COLUMN_SOFTMAX = ("kernel k(%x: f32[3, 37, 10]) -> (%y: f32[3, 37, 10]) {\n"
                  "  %m = amax(%x, axes=[1], keepdim=true)\n  %d = sub(%x, %m)\n  %e = exp(%d)\n"
                  "  %s = sum(%e, axes=[1], keepdim=true)\n  %y = div(%e, %s)\n  return %y\n}")
COLUMN_ARGMAX = "kernel k(%x: f32[5, 37, 6]) -> (%i: i64[5, 6]) {\n  %i = argmax(%x, axes=[1])\n  return %i\n}"
CHANNEL_RMSNORM = ("kernel k(%x: bf16[4, 33, 8, 8], %w: bf16[33]) -> (%y: bf16[4, 33, 8, 8]) {\n"
                   "  %c = cast(%x, to=f32)\n  %q = mul(%c, %c)\n  %m = mean(%q, axes=[1], keepdim=true)\n"
                   "  %e = const(1e-06) : f32\n  %a = add(%m, %e)\n  %r = rsqrt(%a)\n  %n = mul(%c, %r)\n"
                   "  %h = cast(%n, to=bf16)\n  %v = reshape(%w, shape=[1, 33, 1, 1])\n  %y = mul(%h, %v)\n"
                   "  return %y\n}")
MEAN_LOSS = ("kernel k(%a: f32[37, 1003], %b: f32[37, 1003]) -> (%l: f32[]) {\n  %d = sub(%a, %b)\n"
             "  %q = mul(%d, %d)\n  %l = mean(%q, axes=[0, 1])\n  return %l\n}")
COUNT_AND_SUM = ("kernel k(%t: i64[1003], %v: f32[1003]) -> (%r: f32[], %n: i64[1003]) {\n"
                 "  %c = const(-100) : i64\n  %k = ne(%t, %c)\n  %n = cast(%k, to=i64)\n"
                 "  %count = sum(%n, axes=[0])\n  %total = sum(%v, axes=[0])\n  %f = cast(%count, to=f32)\n"
                 "  %r = div(%total, %f)\n  return %r, %n\n}")
SCALAR_ARGMAX = "kernel k(%x: f32[100003]) -> (%i: i64[], %m: f32[]) {\n  %i = argmax(%x, axes=[0])\n" \
                "  %m = amax(%x, axes=[0])\n  return %i, %m\n}"

CASES: dict[str, tuple[str, list[Schedule]]] = {
    "softmax_f32_odd": (SOFTMAX.format(t="f32", r=37, n=1003), [
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=32, online=True),
        RowSchedule(vector_bytes=4, block_size=512, threads_per_row=512, cluster=4, cache_row=False, online=True),
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=8),  # sub-warp rows, many slots
        RowSchedule(vector_bytes=4, block_size=128, threads_per_row=128, cache_row=False, ctas_per_sm=1, unroll=4),
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cluster=2),
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=False, shared_row=True, cluster=4),
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=32, cache_row=False, shared_row=True, unroll=1),
        RowSchedule(vector_bytes=4, block_size=256, threads_per_row=256, cache_row=False, shared_row=True,
                    async_copy=True, cluster=4),
        RowSchedule(vector_bytes=4, block_size=128, threads_per_row=32, cache_row=False, shared_row=True,
                    async_copy=True, unroll=4),
        # a loop over rows, each cluster's next row copied in while it works on this one (30 clusters, 37 rows)
        RowSchedule(vector_bytes=4, block_size=128, threads_per_row=128, cache_row=False, shared_row=True,
                    async_copy=True, cluster=4, ctas_per_sm=1, unroll=2),
    ]),
    "softmax_bf16_long": (SOFTMAX.format(t="bf16", r=3, n=65536), [
        RowSchedule(block_size=1024, threads_per_row=1024, cluster=4),
        RowSchedule(block_size=1024, threads_per_row=1024, cluster=8, cache_row=False, unroll=2),
        RowSchedule(block_size=512, threads_per_row=512, cache_row=False, unroll=4),
        RowSchedule(block_size=1024, threads_per_row=1024, cluster=2, cache_row=False, shared_row=True, unroll=4),
        RowSchedule(block_size=256, threads_per_row=256, cluster=8, cache_row=False, shared_row=True, async_copy=True,
                    unroll=2),
    ]),
    "softmax_bf16_rows": (SOFTMAX.format(t="bf16", r=300, n=128), [
        RowSchedule(block_size=64, threads_per_row=4), RowSchedule(block_size=256, threads_per_row=16, ctas_per_sm=1),
        RowSchedule(block_size=64, threads_per_row=64, cluster=2, ctas_per_sm=1),  # 66 clusters walk 300 rows
        RowSchedule(block_size=64, threads_per_row=64, cluster=2, ctas_per_sm=1, cache_row=False, shared_row=True,
                    async_copy=True),
    ]),
    "layernorm_f32": (LAYERNORM, [
        RowSchedule(block_size=1024, threads_per_row=1024),
        RowSchedule(block_size=256, threads_per_row=32, cache_row=False, unroll=1),
        RowSchedule(block_size=512, threads_per_row=512, cluster=4),
        RowSchedule(block_size=256, threads_per_row=256, cache_row=False, shared_row=True, ctas_per_sm=1, unroll=2),
        RowSchedule(block_size=256, threads_per_row=256, cache_row=False, shared_row=True, async_copy=True,
                    ctas_per_sm=1, unroll=2),
    ]),
    "argmin_logsumexp_bf16": (ARGMIN_LSE, [
        RowSchedule(vector_bytes=16, block_size=64, threads_per_row=32),
        RowSchedule(vector_bytes=2, block_size=512, threads_per_row=512, cluster=2),
    ]),
    "logsumexp_online": (LOGSUMEXP, [
        RowSchedule(vector_bytes=16, block_size=256, threads_per_row=256, online=True),
        RowSchedule(vector_bytes=4, block_size=64, threads_per_row=16, cache_row=False, unroll=4, online=True),
        RowSchedule(vector_bytes=16, block_size=128, threads_per_row=128, cluster=2, online=True, approx_math=True),
        # one exchange a row: a cluster barrier before the next row's exchange reuses the slots
        RowSchedule(vector_bytes=16, block_size=64, threads_per_row=64, cluster=2, ctas_per_sm=1, online=True,
                    cache_row=False, shared_row=True, async_copy=True),
    ]),
    "int_rows": (INT_ROWS, [RowSchedule(vector_bytes=16, block_size=64, threads_per_row=16)]),
    "column_softmax": (COLUMN_SOFTMAX, [
        ColumnSchedule(vector_bytes=8, block_size=64, threads_along_reduction=16, unroll=2),
        ColumnSchedule(vector_bytes=4, block_size=128, threads_along_reduction=1, unroll=4),
        # the column in registers: 37 rows over 8 threads, the last of 5 slots guarded by its row
        ColumnSchedule(vector_bytes=8, block_size=64, threads_along_reduction=8, unroll=2, cache_column=True),
        ColumnSchedule(vector_bytes=4, block_size=64, threads_along_reduction=1, unroll=1, cache_column=True),
    ]),
    "column_argmax": (COLUMN_ARGMAX, [
        ColumnSchedule(vector_bytes=16, block_size=64, threads_along_reduction=32),
        ColumnSchedule(vector_bytes=8, block_size=64, threads_along_reduction=4, unroll=2, cache_column=True)]),
    "channel_rmsnorm_bf16": (CHANNEL_RMSNORM, [
        ColumnSchedule(vector_bytes=16, block_size=256, threads_along_reduction=8),
        ColumnSchedule(vector_bytes=16, block_size=256, threads_along_reduction=16, cache_column=True)]),
    "mean_loss": (MEAN_LOSS, [ScalarSchedule(vector_bytes=4, block_size=64, ctas_per_sm=1, unroll=1)]),
    "count_and_sum": (COUNT_AND_SUM, [ScalarSchedule(vector_bytes=8, block_size=1024, ctas_per_sm=2)]),
    "scalar_argmax": (SCALAR_ARGMAX, [ScalarSchedule(vector_bytes=4, block_size=128, ctas_per_sm=16, unroll=2)]),
}


def random_inputs(kernel: Kernel, seed: int, special_rows: bool = False) -> list[torch.Tensor]:
    """Normal floats times 3; with `special_rows`, the first rows of a float input are all -inf,
    hold +inf, hold NaN, hold -inf among numbers, and are all equal."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for param in kernel.inputs:
        shape, dtype = param.type.shape, param.type.dtype
        if dtype.is_float:
            values = torch.randn(shape, generator=generator) * 3
            if special_rows and len(shape) == 2 and shape[0] >= 5:
                values[0] = -math.inf
                values[1, 7] = math.inf
                values[2, 3] = math.nan
                values[3, ::2] = -math.inf
                values[4] = 1.5
            tensors.append(values.to(IR_TO_TORCH[dtype]))
        else:  # small integers, with PyTorch's ignore index -100 among them
            tensors.append(torch.randint(-101, 4, shape, generator=generator).clamp(min=-100).to(IR_TO_TORCH[dtype]))
    return tensors


def check(kernel: Kernel, schedule: Schedule, seed: int = 0, special_rows: bool = False) -> None:
    from ptxgen.runtime import Runtime
    from ptxgen.targets import default_target

    target = default_target()
    lowered = lower(kernel, schedule, target)
    inputs = random_inputs(kernel, seed, special_rows)
    outputs = [torch.full(p.type.shape, -7777, dtype=IR_TO_TORCH[p.type.dtype]) if not p.type.dtype.is_float
               else torch.full(p.type.shape, float("nan"), dtype=IR_TO_TORCH[p.type.dtype]) for p in kernel.outputs]
    device = [t.cuda() for t in inputs + outputs]
    for _ in range(2):  # a second launch: the scalar workspace was reset by the first
        Runtime().launch(lowered, device)
        torch.cuda.synchronize()
    expected = run(kernel, [t.double().numpy() if t.dtype.is_floating_point else t.numpy() for t in inputs],
                   Precision.FLOAT64)
    for param, got, want in zip(kernel.outputs, device[len(inputs):], expected):
        got_np = got.cpu().double().numpy() if got.dtype.is_floating_point else got.cpu().numpy()
        if not param.type.dtype.is_float:
            np.testing.assert_array_equal(got_np, want, err_msg=f"{param.name} under {schedule}")
            continue
        tolerance = TOLERANCE[param.type.dtype]
        scale = max(1.0, float(np.abs(want[np.isfinite(want)]).max(initial=0.0)))
        np.testing.assert_allclose(got_np, want, rtol=tolerance, atol=tolerance * scale * 1e-1, equal_nan=True,
                                   err_msg=f"{param.name} under {schedule}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_reductions_match_the_interpreter(name: str) -> None:
    from ptxgen.targets import default_target

    text, chosen = CASES[name]
    kernel = parse(text)
    target = default_target()
    sampled = random.Random(name).sample(schedule_space(kernel, target), 6)
    for schedule in [default_schedule(kernel, target), *chosen, *sampled]:
        check(kernel, schedule)


@pytest.mark.parametrize("name", ["softmax_f32_odd", "logsumexp_online", "argmin_logsumexp_bf16", "layernorm_f32"])
def test_rows_of_infinities_and_nan_match_the_interpreter(name: str) -> None:
    """Rows of -inf, with +inf, with NaN: the online pass's rescaling and the arg reductions'
    NaN rule give what the interpreter gives (NaN where it gives NaN)."""
    from ptxgen.targets import default_target

    text, chosen = CASES[name]
    kernel = parse(text)
    for schedule in [default_schedule(kernel, default_target()), *chosen]:
        check(kernel, schedule, special_rows=True)
