"""Concrete witnesses (`verify.witness`): the IR's value where every order of accumulation gives
one, the search that shows a kernel storing another, and none for a right kernel."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ir import parse
from ir.frontend import capture, load_problem
from ir.interp import Precision, run
from ptxgen.lower import default_schedule, lower
from ptxgen.targets import TARGETS
from verify import witness
from verify.emulate import Launch
from verify.prove import VALUES, prove_kernel

REPO = Path(__file__).resolve().parents[1]
TARGET = TARGETS["sm_90a"]
F = np.float32
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


@pytest.mark.parametrize("terms, expected", [
    ([1.0, 0.0, 2.0**-30, -0.0], 1.0),  # two nonzero terms: rn(1 + 2**-30) in every order
    ([3.0, 0.0, 5.0], 8.0),
    ([2.0**-8] * 15 + [225 / 256], 240 / 256),  # many terms, every partial sum exact
    ([0.0, -0.0], 0.0),  # a +0.0 among zeros: +0.0 in every order
    ([1.0, -1.0], 0.0),
], ids=["two", "exact pair", "many exact", "zeros", "cancelling"])
def test_a_sum_with_one_value_in_every_order_is_that_value(terms: list[float], expected: float) -> None:
    assert witness.sum_in_every_order(np.array(terms, F)) == bits(expected)


@pytest.mark.parametrize("terms, words", [
    ([1.0, -1.0, 2.0**-30], "depends on the order"),  # (1 - 1) + t = t, (1 + t) - 1 = 0
    ([0.1] * 14, "14 nonzero terms"),
    ([-0.0, -0.0], "-0.0 terms only"),
    ([np.inf, 1.0], "infinite"),
    ([2.0**127, 2.0**127, -(2.0**127)], "depends on the order"),  # (a + b) + c overflows, (a + c) + b does not
], ids=["order", "many inexact", "negative zeros", "infinity", "overflow"])
def test_a_sum_whose_order_matters_is_not_determined(terms: list[float], words: str) -> None:
    with pytest.raises(witness.NotDetermined, match=words):
        witness.sum_in_every_order(np.array(terms, F))


def test_a_nan_term_makes_any_order_nan() -> None:
    assert witness.sum_in_every_order(np.array([1.0, np.nan, 2.0], F)) == 0x7FFFFFFF


def test_an_extremum_orders_negative_zero_below_positive_zero() -> None:
    assert witness.extremum(np.array([-0.0, 0.0, -1.0], F), larger=True) == bits(0.0)
    assert witness.extremum(np.array([-0.0, 0.0, 1.0], F), larger=False) == bits(-0.0)
    assert witness.extremum(np.array([-0.0, -0.0], F), larger=True) == bits(-0.0)
    assert witness.extremum(np.array([3.0, np.nan], F), larger=False) == 0x7FFFFFFF


SUM_ROWS = "kernel k(%x: f32[4, 8]) -> (%y: f32[4, 1]) {\n  %y = sum(%x, axes=[1], keepdim=true)\n  return %y\n}\n"
SCALED = ("kernel k(%x: f32[4, 8], %w: f32[8]) -> (%y: f32[4, 8]) {\n  %m = mul(%x, %w)\n  %y = add(%m, %x)\n"
          "  return %y\n}\n")


def test_the_ir_value_is_numpys_float32_where_it_is_one_value() -> None:
    kernel = parse(SCALED)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 8)).astype(F), rng.standard_normal(8).astype(F)]
    ir = witness.ConcreteIr(kernel, inputs, approx=None, keep_f32=False)
    want = (inputs[0] * inputs[1] + inputs[0]).ravel()
    assert [ir.stored(0, k) for k in range(32)] == [int(v) for v in want.view(np.uint32)]


def test_a_row_sum_of_few_terms_is_evaluated_and_one_of_many_is_not() -> None:
    kernel = parse(SUM_ROWS)
    x = np.zeros((4, 8), F)
    x[0, [1, 5]] = [1.5, 2.0**-3]
    x[1] = np.linspace(0.1, 0.9, 8, dtype=F)  # eight inexact terms
    ir = witness.ConcreteIr(kernel, [x], approx=None, keep_f32=False)
    assert ir.stored(0, 0) == bits(1.625)
    assert ir.stored(0, 2) == 0  # a row of +0.0
    with pytest.raises(witness.NotDetermined):
        ir.stored(0, 1)
    reference = run(kernel, [x.astype(np.float64)], Precision.FLOAT64)[0]
    assert float(np.uint32(ir.stored(0, 0)).view(F)) == reference[0, 0]


def lowered(problem: str) -> tuple[object, list[str], Launch, bool | None]:
    kernel = capture(load_problem(REPO / "datasets" / "problems" / f"{problem}.py", shrink_to=16),
                     shapes_only=True).regions[0].kernel
    result = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    return kernel, result.ptx.splitlines(), Launch.of(result.launch), getattr(result.schedule, "approx_math", None)


def edited(lines: list[str], pattern: str, old: str, new: str, nth: int = 0) -> str:
    index = [i for i, line in enumerate(lines) if re.search(pattern, line)][nth]
    return "\n".join(lines[:index] + [lines[index].replace(old, new, 1)] + lines[index + 1:])


@pytest.mark.parametrize("problem", ["reduction/layernorm_f32", "reduction/mean_dim1_bf16", "loss/mse_loss_f32",
                                     "reduction/sum_dim1_f32"])
def test_no_witness_is_found_against_a_right_kernel(problem: str) -> None:
    kernel, lines, launch, approx = lowered(problem)
    assert witness.searchable(launch, kernel) is None
    assert witness.search("\n".join(lines), launch, kernel, approx, seconds=4) is None


def test_a_square_root_rounded_toward_zero_is_shown_wrong_on_concrete_inputs() -> None:
    """layernorm's sqrt.rz: within the emulator's tolerance, and the solver gives up on its values;
    rows of a few elements make the mean and variance one value in every order, and the stored
    value is not the IR's there."""
    kernel, lines, launch, approx = lowered("reduction/layernorm_f32")
    mutant = edited(lines, r"sqrt\.rn\.f32", "sqrt.rn", "sqrt.rz")
    found = witness.search(mutant, launch, kernel, approx, seconds=60)
    assert found is not None
    assert found.got != found.want and found.output == kernel.outputs[0].name
    assert "in every order of its accumulation" in found.describe()


ROWS_OF_64 = ("kernel k(%x: f32[16, 64]) -> (%y: f32[16, 1]) {\n  %y = sum(%x, axes=[1], keepdim=true)\n"
              "  return %y\n}\n")  # 16 lanes to a row, four terms each, then the warp's butterfly
ACCUMULATE = r"add\.rn\.f32 (%f\d+), \1, %f\d+;"


@pytest.mark.parametrize("nth, status", [(0, "proved"), (1, "refuted"), (4, "proved"), (5, "refuted")],
                         ids=["first term", "second term", "butterfly from idle lanes", "butterfly"])
def test_an_add_rounded_toward_zero_is_refuted_by_a_witness_or_proved_where_exact(nth: int, status: str) -> None:
    """A row sum with one add.rz: where it adds a term to the +0.0 the accumulator starts from, or
    a partial of lanes that hold no element (the first butterfly step: 16 lanes to a row), the add
    is exact, the same in every rounding: proved. Elsewhere it is not a tree of the IR's sum (the
    proof leaves it open), and sparse rows whose terms meet there show a value no order gives."""
    kernel = parse(ROWS_OF_64)
    result = lower(kernel, default_schedule(kernel, TARGET), TARGET)
    mutant = edited(result.ptx.splitlines(), ACCUMULATE, "add.rn", "add.rz", nth)
    found = next(o for o in prove_kernel(mutant, Launch.of(result.launch), kernel, None) if o.name == VALUES)
    assert found.status == status, found.detail
    if status == "refuted":
        assert found.replay == witness.FOUND and "the proof alone:" in found.detail


def test_an_unsearchable_launch_says_why() -> None:
    kernel = parse(SUM_ROWS)
    assert "threads" in witness.searchable(Launch((4096, 1, 1), (256, 1, 1)), kernel)


def test_a_tie_of_bfloat16_rounds_away_to_nearest_and_back_toward_zero() -> None:
    """The row pattern for sums stored as bfloat16: rounded to nearest the three values' sum is the
    tie (the tiny one vanishes), which bfloat16 rounds away from the first; rounded toward zero it
    falls below the tie, and bfloat16 rounds it back."""
    from ir.dtypes import DType, round_to_bf16

    rng = np.random.default_rng(0)
    for _ in range(20):
        value, half, tiny = witness._tie_and_tiny(rng, DType.BF16)
        tie = np.float32(value + half)
        assert np.float32(tie + tiny) == tie and np.sign(tiny) == -np.sign(value)
        toward_zero = np.nextafter(tie, np.float32(0))
        assert abs(round_to_bf16(np.array([tie]))[0]) > abs(value)
        assert round_to_bf16(np.array([toward_zero]))[0] == value


AGREEMENT_PROBLEMS = ["reduction/softmax_f32", "rowsweep/rmsnorm_bf16_4096", "elementwise/gelu_tanh_bf16",
                      "reduction/mean_dim1_bf16", "reduction/layernorm_f32", "loss/cross_entropy_f32",
                      "elementwise/hardswish_bf16", "fused/swiglu_bf16"]


@pytest.mark.parametrize("problem", AGREEMENT_PROBLEMS)
def test_the_ir_arrays_agree_with_the_provers_terms_element_by_element(problem: str) -> None:
    """`verify.ir_arrays` (what the search compares a kernel's outputs with at once) gives, on every
    element it knows, the bits the prover's terms give there (`ConcreteIr`); a row whose sum
    depends on the order is unknown to both."""
    from verify.against_ir import to_device
    from verify.ir_arrays import IrArrays

    for region in capture(load_problem(REPO / "datasets" / "problems" / f"{problem}.py", shrink_to=16),
                          shapes_only=True).regions:
        kernel = region.kernel
        schedule = lower(kernel, default_schedule(kernel, TARGET), TARGET).schedule
        approx, keep = getattr(schedule, "approx_math", None), getattr(schedule, "fp32_intermediates", False)
        compared = 0
        for family in ("random", "sparse over -1e4", "rows of a few elements"):
            rng = np.random.default_rng(1)
            inputs = witness.FAMILIES[family](kernel, rng, 1)
            device = [to_device(v, p.type.dtype) for v, p in zip(inputs, kernel.inputs)]
            arrays = IrArrays(kernel, witness._values(kernel, device), approx, keep, witness._every_order)
            ir = witness.ConcreteIr(kernel, inputs, approx, keep)
            for index, param in enumerate(kernel.outputs):
                values = arrays.output(index)
                stored = witness._stored_bits(values.data, param.type.dtype).ravel()
                for flat in range(0, stored.size, max(1, stored.size // 24)):
                    try:
                        exact = ir.stored(index, flat)
                    except witness.NotDetermined:
                        assert not values.known.ravel()[flat], (kernel.name, family, flat)
                        continue
                    if values.known.ravel()[flat]:
                        compared += 1
                        assert witness._same(int(stored[flat]), exact, param.type.dtype), (kernel.name, family, flat)
        assert compared > 0, kernel.name


@pytest.mark.parametrize("shape, target", [((8,), (4, 8)), ((4, 1), (4, 8)), ((1, 8), (2, 4, 8)), ((), (3, 2)),
                                           ((1,), ())])
def test_the_arrays_broadcast_as_the_terms_read(shape: tuple[int, ...], target: tuple[int, ...]) -> None:
    from verify.ir_arrays import broadcast

    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    read = broadcast(values, target).ravel()
    assert [int(v) for v in read] == [witness._broadcast(k, target, shape) for k in range(int(np.prod(target)))]


@pytest.mark.parametrize("problem, pattern, old, new, nth, model", [
    ("elementwise/gelu_tanh_bf16", r"cvt\.rn\.bf16\.f32", "cvt.rn", "cvt.rz", 0, "tanh.approx.f32"),
    ("rowsweep/rmsnorm_bf16_4096", r"cvt\.rn\.bf16\.f32", "cvt.rn", "cvt.rz", 1, "rsqrt.approx.f32"),
], ids=["gelu_tanh", "rmsnorm"])
def test_a_witness_may_take_approximate_instructions_as_the_emulator_computes_them(
        problem: str, pattern: str, old: str, new: str, nth: int, model: str) -> None:
    """A bfloat16 store rounded toward zero after an approximate instruction: the proof leaves the
    values open (the instruction is free there), and with it taken as the emulator computes it, in
    the kernel and the IR alike, a concrete input shows a stored value that is not the IR's; the
    witness names the instruction so taken."""
    kernel, lines, launch, approx = lowered(problem)
    found = witness.search(edited(lines, pattern, old, new, nth), launch, kernel, approx, seconds=60)
    assert found is not None and found.got != found.want
    assert model in found.models and model in found.describe()
    assert witness.search("\n".join(lines), launch, kernel, approx, seconds=4) is None


def test_every_bfloat16_value_in_turn_finds_a_product_rounded_toward_zero_at_overflow() -> None:
    """hardswish's x * relu6(x + 3) rounded toward zero: the same bits nearly everywhere, but where
    the product passes the largest float the IR's rounds to infinity and the kernel's stays finite.
    Inputs that run through every bfloat16 value meet it."""
    kernel, lines, launch, approx = lowered("elementwise/hardswish_bf16")
    found = witness.search(edited(lines, r"mul\.rn\.f32", "mul.rn", "mul.rz", 1), launch, kernel, approx, seconds=60)
    assert found is not None and found.family == "every half-type value in turn"
    assert found.want == 0x7F80 and found.got != found.want  # the IR's is +inf


def test_every_half_value_family_covers_all_patterns_over_its_seeds() -> None:
    kernel = parse("kernel k(%x: bf16[4, 128]) -> (%y: bf16[4, 128]) {\n  %y = neg(%x)\n  return %y\n}")
    seen = set()
    for seed in range(2**16 // 512):
        values = witness._every_half_value(kernel, np.random.default_rng(0), seed)[0]
        seen |= set((np.asarray(values, F).view(np.uint32) >> 16).ravel().tolist())
    assert len(seen) == 2**16


def test_an_online_pair_is_a_max_and_a_sum_of_exponentials_of_the_same_values() -> None:
    """Where the IR has one, a kernel may rescale partial sums (online softmax): its values are
    the IR's over the reals only, and a value proof left open there is not searched for witnesses."""
    softmax = capture(load_problem(REPO / "datasets" / "problems" / "reduction" / "softmax_f32.py", shrink_to=16),
                      shapes_only=True).regions[0].kernel
    assert witness.has_online_pair(softmax)
    assert not witness.has_online_pair(parse(SUM_ROWS)) and not witness.has_online_pair(parse(SCALED))
