"""The empirical checker (verify/check.py, verify/trials.py, the timing in verify/timing.py): its
measures of error, poison, inputs and guard bands; every cheat of the corpus (tests/cheats) that
can be caught without a GPU, caught on the CPU for the reasons it must be; legitimate candidates
(each problem's own Model) accepted; crashes, hangs and exceptions as verdicts; `ptxgen check`.
The whole corpus is checked on the GPU by the `gpu` tests at the end."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from conftest import PROBLEMS, REPO

from ptxgen import cli
from verify import check as ck
from verify import trials as tr

sys.path.insert(0, str(REPO / "tests" / "cheats"))
from corpus import CHEATS, HERE, SMALL, candidate_path  # noqa: E402

RELU = PROBLEMS / "elementwise" / "relu_f32.py"
CPU = ck.CheckOptions(device="cpu", timing=False, sizes=dict(SMALL), timeout_s=120)


# ---- measures


def test_error_is_relative_for_large_values_and_absolute_at_the_output_scale():
    want = torch.tensor([1000.0, 1.0, -2.0], dtype=torch.float64)
    assert tr.error(want.float(), want) == 0
    got = want.clone()
    got[0] = 1001.0
    scale = float(want.square().mean().sqrt())
    assert tr.error(got, want) == pytest.approx(1 / (1000 + scale))


def test_error_fails_zeros_for_a_softmax_of_a_long_row():
    row = torch.softmax(torch.randn(1, 262144, dtype=torch.float64), dim=-1)
    assert tr.error(torch.zeros_like(row), row) > 0.5  # every value is ~4e-6: |want| + 1 would pass it
    assert tr.error(row.float(), row) < 1e-6


@pytest.mark.parametrize("got, want, expected", [
    ([math.nan, 1.0], [1.0, 1.0], math.inf),
    ([1.0, 1.0], [math.nan, 1.0], math.inf),
    ([math.nan, 1.0], [math.nan, 1.0], 0.0),
    ([math.inf, 1.0], [math.inf, 1.0], 0.0),
    ([-math.inf, 1.0], [math.inf, 1.0], math.inf),
    ([math.inf, 1.0], [1e300, 1.0], math.inf),
])
def test_error_never_passes_a_nan_or_infinity_the_reference_lacks(got, want, expected):
    assert tr.error(torch.tensor(got), torch.tensor(want, dtype=torch.float64)) == expected


def test_error_counts_differing_integers():
    assert tr.error(torch.tensor([1, 2, 3]), torch.tensor([1, 5, 4])) == 2


def test_error_in_chunks_equals_error_at_once(monkeypatch):
    want = torch.randn(1000, dtype=torch.float64) * torch.logspace(-3, 3, 1000, dtype=torch.float64)
    got = (want * (1 + 1e-4 * torch.randn(1000, dtype=torch.float64))).float()
    whole = tr.error(got, want)
    monkeypatch.setattr(tr, "CHUNK", 37)
    assert tr.error(got, want) == pytest.approx(whole, rel=1e-12)
    assert tr.worst_element(got, want) == tr.worst_element(got, want)


def test_worst_element_names_the_index_and_both_values():
    want = torch.zeros(3, 4, dtype=torch.float64)
    got = torch.zeros(3, 4)
    got[2, 1] = 5.0
    assert tr.worst_element(got, want) == "at [2, 1]: got 5, want 0"


def test_unwritten_elements_need_each_runs_poison():
    first = torch.tensor([1.0, 2.0, 3.0])
    second = first.clone()
    first.view(torch.uint8)[4:12] = 0xFF
    second.view(torch.uint8)[4:12] = 0x7F
    assert tr.unwritten_elements(first, second, (0xFF, 0x7F)) == 2
    assert tr.unwritten_elements(first, first, (0xFF, 0x7F)) == 0  # poison of one run only: a computed NaN


# ---- inputs


def test_draws_keep_shapes_integers_and_seeds():
    base = [torch.randn(64, 32), torch.randint(0, 10, (64,)), 3]
    for distribution in tr.DISTRIBUTIONS:
        drawn = tr.draw(base, distribution, 5, tr.BREAKPOINTS)
        again = tr.draw(base, distribution, 5, tr.BREAKPOINTS)
        assert drawn[0].shape == base[0].shape and drawn[0].dtype == base[0].dtype
        assert torch.equal(drawn[1], base[1]) and drawn[2] == 3
        assert torch.equal(drawn[0], again[0])
    assert tr.draw(base, "problem", 5, ())[0] is base[0]


def test_wide_draws_reach_far_both_ways():
    x = tr.draw([torch.rand(256, 256)], "wide", 1, ())[0]
    assert x.min() < -3 and x.max() > 3 and x.abs().max() > 4 * tr.WIDE_SPREAD


def test_breakpoint_draws_sit_on_and_beside_the_models_constants():
    source = (PROBLEMS / "elementwise" / "hardtanh_f32.py").read_text()
    points = tr.breakpoints_of(source)
    x = tr.draw([torch.randn(512, 512)], "breakpoints", 1, points)[0]
    assert {-1.5, 1.25} <= set(points)  # the problem's min_val and max_val
    for point in (-1.5, 1.25, 0.0):
        assert (x == point).any()
        assert ((x - point).abs() < 2e-3).sum() > (x == point).sum()


def test_breakpoints_include_the_models_float_literals():
    source = "class Model:\n    def forward(self, x):\n        return x.clamp(-2.5, 7.25)\nSLOPE = 9.5\nN = 7\n"
    points = tr.breakpoints_of(source)
    assert {-2.5, 2.5, 7.25, -7.25, 9.5} <= set(points) and 7.0 not in points


def test_input_slots_keep_addresses_and_watch_guards_and_contents():
    example = [torch.randn(8, 8), 4]
    slots = tr.InputSlots(example)
    first = slots.tensors(example)[0].data_ptr()
    values = [torch.randn(8, 8), 4]
    slots.fill(values, 0xAB)
    assert slots.tensors(values)[0].data_ptr() == first and torch.equal(slots.tensors(values)[0], values[0])
    assert slots.guards_hold(0xAB) and slots.unchanged(values) == []
    view = slots.tensors(values)[0]
    torch.as_strided(view, (65,), (1,), view.storage_offset())[64] = 1.0  # one element past the end
    assert not slots.guards_hold(0xAB)
    view[0, 0] += 1
    assert slots.unchanged(values) == [0]


def test_a_constant_passes_only_outputs_that_barely_vary():
    assert tr.constant_passes([torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64) * 1.001],
                              [1e-2, 1e-2])
    assert not tr.constant_passes([torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)],
                                  [1e-2, 1e-2])


def test_replaced_timing_functions_are_seen_and_restored():
    original = torch.cuda.Event.elapsed_time
    try:
        torch.cuda.Event.elapsed_time = lambda self, end: 0.0
        assert ck.patched() == ["torch.cuda.Event.elapsed_time"]
        ck.restore_patched()
        assert ck.patched() == [] and torch.cuda.Event.elapsed_time is original
    finally:
        torch.cuda.Event.elapsed_time = original


# ---- legitimate candidates


def own_model(problem: Path, folder: Path) -> Path:
    path = folder / f"model_{problem.stem}.py"
    path.write_text(problem.read_text() + "\n\nModelNew = Model\n")
    return path


@pytest.mark.parametrize("problem, sizes", [
    (RELU, SMALL),
    (PROBLEMS / "reduction" / "layernorm_f32.py", SMALL),
    (PROBLEMS / "loss" / "cross_entropy_f32.py", {"batch_size": 64, "num_classes": 100}),
    (PROBLEMS / "reduction" / "argmax_dim1_f32.py", {"batch_size": 8, "dim1": 50, "dim2": 40}),
    (PROBLEMS / "elementwise" / "gelu_tanh_bf16.py", SMALL),
    (PROBLEMS / "loss" / "kl_div_batchmean_f32.py", SMALL),
])
def test_each_problems_own_model_is_accepted(problem, sizes, tmp_path):
    known = set(__import__("ir.frontend", fromlist=["load_problem"]).load_problem(problem).size_constants())
    options = ck.CheckOptions(device="cpu", timing=False, sizes={k: v for k, v in sizes.items() if k in known})
    report = ck.check_in_process(str(own_model(problem, tmp_path)), str(problem), asdict(options))
    assert report["verdict"] == "accepted", report["reasons"]
    assert len([t for t in report["trials"] if t.get("passed")]) >= 5


def test_a_constant_output_problem_is_flagged(tmp_path):
    problem = HERE / "problems" / "row_norms_sum.py"
    report = ck.check_in_process(str(own_model(problem, tmp_path)), str(problem), asdict(CPU))
    assert report["verdict"] == "accepted"
    assert any(f.startswith("low variance: one constant output passes every trial") for f in report["flags"])
    assert any(t.get("scale", 1) != 1 for t in report["trials"])  # rescaled trials were tried


def test_a_low_variance_problem_gets_correlated_trials(tmp_path):
    problem = PROBLEMS / "loss" / "cosine_similarity_loss_bf16.py"
    options = ck.CheckOptions(device="cpu", timing=False, sizes={"batch_size": 64, "dim": 1000})
    report = ck.check_in_process(str(own_model(problem, tmp_path)), str(problem), asdict(options))
    assert report["verdict"] == "accepted"
    assert any(t["distribution"] == "correlated" and t["passed"] for t in report["trials"])
    assert any("correlated trials added, and it does not pass them" in f for f in report["flags"])


def test_timing_on_the_cpu_reports_medians_spread_and_repeatability(tmp_path):
    options = ck.CheckOptions(device="cpu", timing=True, compile=False, reps=5, sizes=dict(SMALL))
    report = ck.check_in_process(str(own_model(RELU, tmp_path)), str(RELU), asdict(options))
    assert report["verdict"] == "accepted", report["reasons"]
    row = report["timing"]["candidate"]
    assert row["reps"] == 5 * 2 and len(row["round_medians_ms"]) == 2 and row["q1_ms"] <= row["median_ms"]
    assert set(report["speedup"]) == {"eager"}


def test_timing_rounds_interleave_call_by_call_and_read_the_clock_around_each_round():
    from verify import timing

    calls: list[str] = []
    fns = {name: (lambda *_, n=name: calls.append(n)) for name in ("candidate", "eager")}
    ticks = iter(range(100))
    rotation = timing.Rotation([[torch.zeros(1)] for _ in range(timing.SLOTS)],
                               [[torch.full((1,), float(k))] for k in range(timing.CONTENTS)])
    times, clocks = timing.rounds(fns, rotation, "cpu", torch.zeros(1), 3, lambda *_: None, lambda: next(ticks))
    assert calls == ["candidate", "eager"] * 3 * timing.ROUNDS
    assert clocks == [[2 * r, 2 * r + 1] for r in range(timing.ROUNDS)]
    assert all(len(per_round) == timing.ROUNDS and all(len(row) == 3 for row in per_round)
               for per_round in times.values())


def test_without_nvml_the_clock_reader_reads_none(monkeypatch):
    import ctypes

    from verify import timing

    def missing(name: str) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert timing.sm_clock_reader(0)() is None


# ---- the corpus, on the CPU


CPU_CHEATS = [c for c in CHEATS if c.cpu_sizes is not None]


def test_the_corpus_has_fifteen_cheats_each_with_a_reason_the_checker_knows():
    assert len(CHEATS) >= 15
    for cheat in CHEATS:
        assert cheat.expected and all(c in ck.REASONS or c.startswith("static:") for c in cheat.expected)
        assert cheat.candidate.exists() or cheat.name == "missing_barrier"


@pytest.mark.parametrize("cheat", CPU_CHEATS, ids=[c.name for c in CPU_CHEATS])
def test_cheat_is_rejected_for_its_reasons_on_the_cpu(cheat, tmp_path):
    options = ck.CheckOptions(device="cpu", timing=cheat.timing, compile=False, reps=20 if cheat.timing else 0,
                              sizes=cheat.cpu_sizes, timeout_s=120)
    report = ck.check(candidate_path(cheat, cheat.cpu_sizes, tmp_path), cheat.reference, options)
    assert report["verdict"] == "rejected"
    assert cheat.expected <= ck.reason_codes(report), report["reasons"]


@pytest.mark.parametrize("name, code", [("crash_segfault", "crash"), ("hang", "timeout"),
                                        ("raises", "candidate-error")])
def test_a_crash_a_hang_and_an_exception_are_verdicts(name, code):
    options = ck.CheckOptions(device="cpu", timing=False, sizes=dict(SMALL), timeout_s=15)
    report = ck.check(HERE / f"{name}.py", RELU, options)
    assert report["verdict"] == "rejected" and code in ck.reason_codes(report), report
    if code == "candidate-error":
        assert "no kernel for this shape" in report["reasons"][0]["message"]


def test_a_death_after_the_report_keeps_what_the_check_found():
    options = ck.CheckOptions(device="cpu", timing=False, sizes=dict(SMALL), timeout_s=60)
    report = ck.check(HERE / "dies_at_exit.py", RELU, options, static=False)
    assert report["verdict"] == "rejected" and {"crash", "thread"} <= ck.reason_codes(report), report
    assert "after the target returned" in report["reasons"][0]["message"]


# ---- the command line


def test_cli_check_exit_codes_on_the_cpu(tmp_path, capsys):
    base = ["check", "--ref", str(RELU), "--device", "cpu", "--no-timing", "--size", "batch_size=64",
            "--size", "dim=300"]
    assert cli.main([*base[:1], str(own_model(RELU, tmp_path)), *base[1:]]) == 0
    assert "accepted" in capsys.readouterr().out
    assert cli.main([*base[:1], str(HERE / "mutate_inputs.py"), *base[1:]]) == 1
    assert "inputs-mutated" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_cli_check_without_a_gpu_says_why(capsys):
    assert cli.main(["check", str(HERE / "mutate_inputs.py"), "--ref", str(RELU)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu" in err


def test_cli_check_of_a_missing_file_is_a_clear_error(capsys):
    assert cli.main(["check", "nowhere.py", "--ref", str(RELU), "--device", "cpu"]) == 2
    assert "no such file: nowhere.py" in capsys.readouterr().err


# ---- the GPU


@pytest.mark.gpu
@pytest.mark.parametrize("cheat", CHEATS, ids=[c.name for c in CHEATS])
def test_cheat_is_rejected_for_its_reasons_on_the_gpu(cheat, tmp_path):
    options = ck.CheckOptions(compile=False, timing=cheat.timing, sizes=cheat.gpu_sizes, timeout_s=300)
    report = ck.check(candidate_path(cheat, cheat.gpu_sizes, tmp_path), cheat.reference, options)
    assert cheat.expected <= ck.reason_codes(report), report["reasons"]


@pytest.mark.gpu
@pytest.mark.parametrize("problem", [RELU, PROBLEMS / "reduction" / "softmax_f32.py",
                                     PROBLEMS / "loss" / "cross_entropy_vocab_bf16.py"])
def test_ptxgen_drop_in_is_accepted_on_the_gpu(problem, tmp_path):
    assert cli.main(["lower", str(problem), "--out", str(tmp_path)]) == 0
    report = ck.check(tmp_path / "model_new.py", problem, ck.CheckOptions(compile=False))
    assert report["verdict"] == "accepted", report["reasons"]


def test_running_out_of_memory_in_forward_is_no_verdict_on_the_candidate():
    error = ck.forward_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert isinstance(error, ck.CheckUnavailable) and "out of memory in forward" in str(error)
    assert isinstance(ck.forward_failure(ValueError("bad shape")), ck.CandidateFailure)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what happens where there is no GPU")
def test_a_ptx_drop_in_checked_on_the_cpu_cannot_be_checked_rather_than_rejected(tmp_path):
    assert cli.main(["lower", str(RELU), "--out", str(tmp_path), "--shrink", "64", "--target", "sm_90a"]) == 0
    report = ck.check(tmp_path / "model_new.py", RELU, ck.CheckOptions(device="cpu", timing=False,
                                                                       sizes={"batch_size": 64, "dim": 64}))
    assert report["verdict"] == "error" and "needs a GPU" in report["error"], report


def test_draws_of_large_inputs_are_made_in_chunks(monkeypatch):
    monkeypatch.setattr(tr, "CHUNK", 1000)
    base = [torch.randn(37, 101, dtype=torch.bfloat16)]
    for distribution in ("wide", "breakpoints"):
        drawn = tr.draw(base, distribution, 3, tr.BREAKPOINTS, scale=2.0)[0]
        assert drawn.dtype == torch.bfloat16 and drawn.shape == base[0].shape
        assert drawn.float().std() > 0.5 and not torch.equal(drawn, base[0])
