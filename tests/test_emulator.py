"""The CPU emulator, instruction by instruction against independent references (numpy, PyTorch,
Python integers), and every kind of undefined behaviour it must report: out-of-bounds and
misaligned accesses, shared-memory races, barriers under divergent control, a diverging
bra.uni, shuffles whose lanes did not arrive together, division by zero, loops that do not end,
outputs not written or written twice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verify.emulate import EmulationError, Launch, emulate
from verify.semantics import NotModelled

TEMPLATE = """
.version 8.0
.target sm_90a
.address_size 64
.visible .entry k(.param .u64 pa, .param .u64 pb, .param .u64 pout)
{{
\t.reg .b32 %r<16>;
\t.reg .b64 %rd<16>;
\t.reg .f32 %f<16>;
\t.reg .pred %p<8>;
\t.reg .b16 %h<8>;
\t.shared .align 16 .b8 tile[256];
\tld.param.u64 %rd0, [pa];
\tld.param.u64 %rd1, [pb];
\tld.param.u64 %rd2, [pout];
\tmov.u32 %r0, %tid.x;
\tmul.wide.u32 %rd3, %r0, 4;
\tadd.u64 %rd4, %rd0, %rd3;
\tadd.u64 %rd5, %rd1, %rd3;
\tadd.u64 %rd6, %rd2, %rd3;
\tld.global.b32 %r1, [%rd4];
\tld.global.b32 %r2, [%rd5];
\tmov.b32 %f1, %r1;
\tmov.b32 %f2, %r2;
{body}
\tst.global.b32 [%rd6], %r3;
\tret;
}}
"""
N = 64


def run(body: str, a: np.ndarray, b: np.ndarray, threads: int = N, grid: int = 1, **kwargs: object) -> np.ndarray:
    """The kernel's 32-bit output per thread, as uint32."""
    ptx = TEMPLATE.format(body="\n".join(f"\t{line.strip()}" for line in body.strip().splitlines()))
    out = np.zeros(threads * grid, np.uint32)
    args = [np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32), out]
    result = emulate(ptx, Launch((grid, 1, 1), (threads, 1, 1)), args, outputs={2}, **kwargs)
    return result.arguments[2].view(np.uint32)


def floats(seed: int) -> np.ndarray:
    values = (np.random.default_rng(seed).standard_normal(N) * 100).astype(np.float32)
    values[:8] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, 3.5, 2.5]
    return values


def ints(seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).integers(-(2**31), 2**31, N).astype(np.int32)
    values[:6] = [0, -1, 7, -7, 2**31 - 1, -(2**31)]
    return values


def as_f32(bits: np.ndarray) -> np.ndarray:
    return bits.view(np.float32)


def bf16_bits(values: np.ndarray) -> np.ndarray:
    return torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16).astype(np.uint32)


def zeros_ordered(result: np.ndarray, a: np.ndarray, b: np.ndarray, smaller: bool) -> np.ndarray:
    """PTX's min/max count -0.0 below +0.0 (numpy's choice between equal zeros varies)."""
    negative = np.signbit(a) | np.signbit(b) if smaller else np.signbit(a) & np.signbit(b)
    return np.where((a == 0) & (b == 0), np.where(negative, np.float32(-0.0), np.float32(0.0)), result)


def trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([int(x / y) if y else 0 for x, y in zip(a.tolist(), b.tolist())], np.int64).astype(np.int32)


A, B = floats(1), floats(2)
B[:8] = [1.0, np.inf, 1.0, -0.0, 0.0, 1e-40, -2.0, np.nan]
X, Y = ints(3), ints(4)
Y[:6] = [5, 3, -2, 2, -1, 7]
SHIFTS = np.arange(N).astype(np.uint32) % 40
# fma on a float32 tie: 3 * k / 2**24 for odd k has 25 bits; adding -2**-60 moves it just below the tie
THREES = np.full(N, 3.0, np.float32)
ODD = np.random.default_rng(5).integers(5592406, 11184810, N) | 1
ODD[0] = 5592409
TIES = (ODD / 2**24).astype(np.float32)

# name: (body leaving the result in %r3, a, b, expected result as uint32 bits)
FLOAT_CASES = {
    "add": ("add.rn.f32 %f3, %f1, %f2;", A, B, lambda: A + B),
    "sub": ("sub.rn.f32 %f3, %f1, %f2;", A, B, lambda: A - B),
    "mul": ("mul.rn.f32 %f3, %f1, %f2;", A, B, lambda: A * B),
    "div": ("div.rn.f32 %f3, %f1, %f2;", A, B, lambda: A / B),
    "fma": ("fma.rn.f32 %f3, %f1, %f2, 0f3F800000;", A, B,
            lambda: (A.astype(np.float64) * B + 1).astype(np.float32)),
    "max_nan": ("max.NaN.f32 %f3, %f1, %f2;", A, B, lambda: zeros_ordered(np.maximum(A, B), A, B, smaller=False)),
    "max": ("max.f32 %f3, %f1, %f2;", A, B, lambda: zeros_ordered(np.fmax(A, B), A, B, smaller=False)),
    "min_nan": ("min.NaN.f32 %f3, %f1, %f2;", A, B, lambda: zeros_ordered(np.minimum(A, B), A, B, smaller=True)),
    "min": ("min.f32 %f3, %f1, %f2;", A, B, lambda: zeros_ordered(np.fmin(A, B), A, B, smaller=True)),
    "sqrt": ("sqrt.rn.f32 %f3, %f1;", A, B, lambda: np.sqrt(A)),
    "rcp": ("rcp.rn.f32 %f3, %f1;", A, B, lambda: np.float32(1) / A),
    "abs": ("abs.f32 %f3, %f1;", A, B, lambda: np.abs(A)),
    "neg": ("neg.f32 %f3, %f1;", A, B, lambda: -A),
    "copysign": ("copysign.f32 %f3, %f1, %f2;", A, B, lambda: np.copysign(B, A)),  # sign of a, magnitude of b
    "round_even": ("cvt.rni.f32.f32 %f3, %f1;", A, B, lambda: np.rint(A)),
    "truncate": ("cvt.rzi.f32.f32 %f3, %f1;", A, B, lambda: np.trunc(A)),
    "bf16_round_trip": ("cvt.rn.bf16.f32 %h1, %f1;\ncvt.f32.bf16 %f3, %h1;", A, B,
                        lambda: torch.from_numpy(A).to(torch.bfloat16).float().numpy()),
    "f16_round_trip": ("cvt.rn.f16.f32 %h1, %f1;\ncvt.f32.f16 %f3, %h1;", A, B, lambda: A.astype(np.float16)),
    "ex2": ("ex2.approx.f32 %f3, %f1;", A / 16, B, lambda: np.exp2((A / 16).astype(np.float64))),
    "fma_rounds_once": ("fma.rn.f32 %f3, %f1, %f2, 0fA1800000;", THREES, TIES, lambda: (3 * ODD - 1) / 2**24),
}


@pytest.mark.parametrize("name", sorted(FLOAT_CASES))
def test_float_instructions(name: str) -> None:
    body, a, b, expected = FLOAT_CASES[name]
    got = as_f32(run(body + "\nmov.b32 %r3, %f3;", a, b))
    with np.errstate(all="ignore"):
        want = np.asarray(expected(), np.float64)
    np.testing.assert_allclose(got, want, rtol=2**-22 if name == "ex2" else 0, atol=0, equal_nan=True)
    assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()


def test_bf16_rounding_bits_match_pytorch() -> None:
    got = run("cvt.rn.bf16.f32 %h1, %f1;\ncvt.u32.u16 %r3, %h1;", A, B)
    want = bf16_bits(A)
    finite = ~np.isnan(A)
    np.testing.assert_array_equal(got[finite], want[finite])
    assert np.isnan(as_f32(got[~finite] << 16)).all()


COMPARISONS = {"eq": np.equal, "ne": lambda a, b: (a != b) & ~np.isnan(a) & ~np.isnan(b), "lt": np.less,
               "ge": np.greater_equal, "neu": np.not_equal, "gtu": lambda a, b: ~(a <= b),
               "num": lambda a, b: ~np.isnan(a) & ~np.isnan(b), "nan": lambda a, b: np.isnan(a) | np.isnan(b)}


@pytest.mark.parametrize("cmp", sorted(COMPARISONS))
def test_float_comparisons(cmp: str) -> None:
    got = run(f"setp.{cmp}.f32 %p1, %f1, %f2;\nselp.u32 %r3, 1, 0, %p1;", A, B)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, COMPARISONS[cmp](A, B).astype(np.uint32))


INT_CASES = {
    "div_s32": ("div.s32 %r3, %r1, %r2;", X, Y, lambda: trunc_div(X, Y)),
    "rem_s32": ("rem.s32 %r3, %r1, %r2;", X, Y, lambda: (X.astype(np.int64) - trunc_div(X, Y).astype(np.int64) * Y)),
    "div_u32": ("div.u32 %r3, %r1, %r2;", X, Y, lambda: X.view(np.uint32) // Y.view(np.uint32)),
    "shr_s32": ("shr.s32 %r3, %r1, %r2;", X, SHIFTS, lambda: X.astype(np.int64) >> np.minimum(SHIFTS, 31)),
    "shr_u32": ("shr.u32 %r3, %r1, %r2;", X, SHIFTS,
                lambda: np.where(SHIFTS >= 32, 0, X.view(np.uint32).astype(np.uint64) >> np.minimum(SHIFTS, 31))),
    "shl_b32": ("shl.b32 %r3, %r1, %r2;", X, SHIFTS,
                lambda: np.where(SHIFTS >= 32, 0, X.view(np.uint32).astype(np.uint64) << np.minimum(SHIFTS, 31))),
    "mul_lo": ("mul.lo.s32 %r3, %r1, %r2;", X, Y, lambda: X.astype(np.int64) * Y),
    "mul_hi_u32": ("mul.hi.u32 %r3, %r1, %r2;", X, Y,
                   lambda: (X.view(np.uint32).astype(np.uint64) * Y.view(np.uint32).astype(np.uint64)) >> 32),
    "mul_wide_s32_high": ("mul.wide.s32 %rd7, %r1, %r2;\nshr.s64 %rd8, %rd7, 32;\ncvt.u32.u64 %r3, %rd8;", X, Y,
                          lambda: (X.astype(np.int64) * Y) >> 32),
    "min_s32": ("min.s32 %r3, %r1, %r2;", X, Y, lambda: np.minimum(X, Y)),
    "min_u32": ("min.u32 %r3, %r1, %r2;", X, Y, lambda: np.minimum(X.view(np.uint32), Y.view(np.uint32))),
    "abs_neg": ("abs.s32 %r4, %r1;\nneg.s32 %r3, %r4;", X, Y, lambda: -np.abs(X.astype(np.int64))),
    "logic": ("and.b32 %r4, %r1, %r2;\nxor.b32 %r5, %r4, %r1;\nnot.b32 %r3, %r5;", X, Y, lambda: ~((X & Y) ^ X)),
    "float_to_int": ("cvt.rzi.s32.f32 %r3, %f1;", A * 1e8, B,
                     lambda: np.clip(np.nan_to_num(np.trunc((A * 1e8).astype(np.float64))), -(2**31), 2**31 - 1)),
    "int_to_float": ("cvt.rn.f32.s32 %f3, %r1;\nmov.b32 %r3, %f3;", X, Y, lambda: X.astype(np.float32).view(np.int32)),
    "sign_extend": ("cvt.s64.s32 %rd7, %r1;\nshr.u64 %rd8, %rd7, 40;\ncvt.u32.u64 %r3, %rd8;", X, Y,
                    lambda: (X.astype(np.int64).view(np.uint64) >> 40)),
    "combined_setp": ("setp.lt.s32 %p1, %r1, 0;\nsetp.gt.and.s32 %p2, %r2, 0, %p1;\nselp.b32 %r3, %r1, %r2, %p2;",
                      X, Y, lambda: np.where((X < 0) & (Y > 0), X, Y)),
}


@pytest.mark.parametrize("name", sorted(INT_CASES))
def test_integer_instructions(name: str) -> None:
    body, a, b, expected = INT_CASES[name]
    got = run(body, a, b)
    with np.errstate(all="ignore"):
        want = np.asarray(expected()).astype(np.int64).astype(np.uint64).astype(np.uint32)
    np.testing.assert_array_equal(got, want)


def shuffle_reference(mode: str, lane: int, b: int, c: int) -> int:
    """PTX ISA's shfl.sync pseudocode for one lane."""
    segmask, cval = (c >> 8) & 31, c & 31
    max_lane, min_lane = (lane & segmask) | (cval & ~segmask), lane & segmask
    source = {"up": lane - b, "down": lane + b, "bfly": lane ^ b, "idx": min_lane | (b & ~segmask)}[mode]
    valid = source >= min_lane if mode == "up" else source <= max_lane
    return source if valid else lane


@pytest.mark.parametrize("mode,b,c", [("bfly", 16, 31), ("bfly", 3, 0x181F), ("up", 5, 0), ("down", 4, 31),
                                      ("down", 2, 0x1C1F), ("idx", 7, 31), ("idx", 3, 0x181F)])
def test_shuffles(mode: str, b: int, c: int) -> None:
    got = run(f"mul.lo.u32 %r4, %r0, 10;\nshfl.sync.{mode}.b32 %r3, %r4, {b}, {c}, 0xffffffff;", X, Y)
    want = [10 * (32 * (t // 32) + shuffle_reference(mode, t % 32, b, c)) for t in range(N)]
    np.testing.assert_array_equal(got, want)


def test_atomics_take_effect_one_thread_at_a_time_in_launch_order() -> None:
    body = ("atom.global.add.u32 %r3, [%rd1], 3;\nmov.u32 %r9, %ctaid.x;\nmad.lo.u32 %r9, %r9, 64, %r0;\n"
            "mul.wide.u32 %rd9, %r9, 4;\nadd.u64 %rd6, %rd2, %rd9;")
    counter = np.zeros(N, np.uint32)
    result = emulate(TEMPLATE.format(body=body), Launch((2, 1, 1), (N, 1, 1)),
                     [X.view(np.uint32), counter, np.zeros(2 * N, np.uint32)], outputs={2})
    assert result.arguments[1].view(np.uint32)[0] == 3 * 2 * N
    np.testing.assert_array_equal(result.arguments[2].view(np.uint32), 3 * np.arange(2 * N))
    assert result.unwritten[2] == result.rewritten[2] == 0


SHARED_EXCHANGE = """
shl.b32 %r4, %r0, 2;
mov.u32 %r5, tile;
add.u32 %r6, %r5, %r4;
st.shared.b32 [%r6], %r1;
{barrier}
add.u32 %r7, %r0, 1;
and.b32 %r7, %r7, 63;
shl.b32 %r7, %r7, 2;
add.u32 %r8, %r5, %r7;
ld.shared.b32 %r3, [%r8];
"""


def test_threads_exchange_through_shared_memory_after_a_barrier() -> None:
    got = run(SHARED_EXCHANGE.format(barrier="bar.sync 0;"), X, Y)
    np.testing.assert_array_equal(got, np.roll(X, -1).view(np.uint32))


def test_special_registers_of_a_grid() -> None:
    got = run("mov.u32 %r4, %ctaid.x;\nmov.u32 %r5, %ntid.x;\nmad.lo.u32 %r3, %r4, %r5, %r0;", X, Y, threads=32)
    np.testing.assert_array_equal(got, np.arange(32))


# What the kernel must not do: (body, error kind, a message fragment).
UNDEFINED = {
    "out_of_bounds_load": ("add.u64 %rd7, %rd4, 4;\nld.global.b32 %r3, [%rd7];", "out_of_bounds", r"pa\+256"),
    "misaligned_vector": ("ld.global.v2.b32 {%r3, %r4}, [%rd0+4];", "misaligned", "aligned to 8"),
    "shared_race": (SHARED_EXCHANGE.format(barrier=""), "race", "no barrier"),
    "shared_out_of_bounds": ("mov.u32 %r5, tile;\nld.shared.b32 %r3, [%r5+256];", "out_of_bounds", "tile"),
    "barrier_in_divergent_branch": ("setp.lt.u32 %p1, %r0, 16;\n@%p1 bra $L_skip;\nbar.sync 0;\n$L_skip:\n"
                                    "bar.sync 0;\nmov.u32 %r3, 0;", "barrier_divergence", "elsewhere"),
    "barrier_after_exit": ("setp.lt.u32 %p1, %r0, 16;\n@%p1 ret;\nbar.sync 0;\nmov.u32 %r3, 0;",
                           "barrier_divergence", "exited"),
    "diverging_uniform_branch": ("setp.lt.u32 %p1, %r0, 16;\n@%p1 bra.uni $L_on;\n$L_on:\nmov.u32 %r3, 0;",
                                 "divergence", "bra.uni"),
    "shuffle_without_all_members": ("setp.lt.u32 %p1, %r0, 16;\n@%p1 bra $L_on;\n"
                                    "shfl.sync.bfly.b32 %r3, %r1, 1, 31, 0xffffffff;\n$L_on:\nmov.u32 %r3, 0;",
                                    "shuffle", "member mask"),
    "division_by_zero": ("div.u32 %r3, %r1, 0;", "undefined", "division by zero"),
    "endless_loop": ("$L_again:\nbra $L_again;", "step_limit", "steps"),
}


@pytest.mark.parametrize("name", sorted(UNDEFINED))
def test_undefined_behaviour_is_reported(name: str) -> None:
    body, kind, fragment = UNDEFINED[name]
    with pytest.raises(EmulationError, match=fragment) as caught:
        run(body, X, Y, max_steps=10_000)
    assert caught.value.kind == kind


def test_outputs_not_written_or_written_twice_are_counted() -> None:
    ptx = TEMPLATE.format(body="mov.u32 %r3, 1;\nsetp.lt.u32 %p1, %r0, 8;\n@%p1 st.global.b32 [%rd2], %r3;\n"
                               "setp.ge.u32 %p2, %r0, 60;\n@%p2 ret;")
    result = emulate(ptx, Launch((1, 1, 1), (N, 1, 1)), [X, Y, np.zeros(N, np.uint32)], outputs={2})
    assert result.unwritten[2] == 4 * 4  # threads 60..63 returned before their store
    assert result.rewritten[2] == 4  # element 0: threads 0..7 and thread 0's own store


def test_a_launch_that_breaks_the_kernels_requirements_is_refused() -> None:
    ptx = TEMPLATE.format(body="mov.u32 %r3, 0;").replace("{\n", ".reqntid 32, 1, 1\n{\n", 1)
    with pytest.raises(EmulationError, match="requires"):
        emulate(ptx, Launch((1, 1, 1), (N, 1, 1)), [X, Y, np.zeros(N, np.uint32)])


def test_unmodelled_forms_are_named() -> None:
    with pytest.raises(NotModelled, match=r"cvt\.rn from float to integer"):
        run("cvt.rn.s32.f32 %r3, %f1;", A, B)
    with pytest.raises(NotModelled, match="bar.sync"):
        run("bar.sync 0, 64;\nmov.u32 %r3, 0;", A, B)


def test_a_value_the_kernels_precision_rounds_to_zero_times_infinity_matches_what_eager_computes() -> None:
    from ir import parse
    from verify.against_ir import mismatches

    kernel = parse("kernel k(%x: f32[3], %s: f32[3]) -> (%y: f32[3]) {\n  %y = mul(%x, %s)\n  return %y\n}")
    exact = (np.array([np.inf, 2.0, 3.0]),)  # float64: a tiny nonzero value times +inf
    native = (np.array([np.nan, 2.0, 3.0]),)  # float32: the tiny value rounded to 0, times +inf
    assert mismatches(kernel, [np.array([np.nan, 2.0, 3.0])], exact, native) == []
    assert mismatches(kernel, [np.array([np.nan, 2.0, 3.0])], exact) != []  # without the native reference
    wrong = mismatches(kernel, [np.array([np.nan, 2.5, 3.0])], exact, native)  # matches neither at element 1
    assert len(wrong) == 1 and "%y[1] = 2.5" in wrong[0]
