"""Training datasets from attempt records (agents/training_data.py, datasets/make_training_data.py):
what each file teaches, the correctness gate on rewards, the split by problem, deduplication, the
PTX hash check, and loading with Hugging Face `datasets` (and TRL's format check where installed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from agents.llm import SYSTEM, prompt
from agents.proposers import Region
from agents.records import Attempt, Records, text_hash
from agents.training_data import FILES, NOISE_MARGIN, REFUSED, build, problem_split, reward
from ir import format_kernel
from ir.frontend import capture, load_problem
from ptxgen.lower import default_schedule, lower
from ptxgen.schedule import schedule_from_dict
from ptxgen.targets import TARGETS

TARGET = TARGETS["sm_90a"]
DEVICE = "Stand-in GPU"
PROBLEM = '''import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {expression}


rows = 8
dim = 512


def get_inputs():
    return [torch.randn(rows, dim)]


def get_init_inputs():
    return []
'''
EXPRESSIONS = {"elementwise/tiny_relu": "torch.relu(x)", "elementwise/tiny_square": "x * x",
               "elementwise/tiny_tanh": "torch.tanh(x)"}
# Knobs over each region's default schedule, with the stand-in time and verdict of each attempt.
PLAN = [({}, 1.00, "admitted"), ({"block_size": 128}, 0.80, "admitted"), ({"block_size": 512}, 0.81, "admitted"),
        ({"unroll": 4}, 1.50, "admitted"), ({"block_size": 64}, None, "proof"), ({"block_size": 1024}, None, "error"),
        ({"ctas_per_sm": 2}, 0.50, "admitted")]  # the last: its PTX hash is recorded wrong (stale)


def write_suite(root: Path) -> Path:
    problems = root / "problems"
    for name, expression in EXPRESSIONS.items():
        path = problems / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PROBLEM.format(expression=expression))
    return problems


def record_run(problems: Path, run: Path, names: list[str], stamp: str = "2026-11-27T10:00:0",
               scale: float = 1.0) -> list[Attempt]:
    """Attempts at each named problem's region as a search would record them: real IR and PTX
    hashes, stand-in times; plus records the builder must leave out."""
    records = Records(run)
    for name in names:
        kernel = capture(load_problem(problems / f"{name}.py")).regions[0].kernel
        base = default_schedule(kernel, TARGET).to_dict()
        for index, (knobs, ms, verdict) in enumerate(PLAN):
            schedule = schedule_from_dict({**base, **knobs})
            ptx = lower(kernel, schedule, TARGET).ptx
            stale = index == len(PLAN) - 1
            records.add(Attempt(name.split("/")[-1], kernel.name, text_hash(format_kernel(kernel)),
                                schedule.to_dict(), TARGET.name, DEVICE, "seeds", verdict=verdict,
                                ptx_hash=text_hash(ptx + ("// other" if stale else "")),
                                median_ms=None if ms is None else ms * scale,
                                stages={"proof": {"status": "proved"}}, recorded=f"{stamp}{index}+00:00",
                                feedback=verdict))
    records.add(Attempt("not_in_suite", "r", "h", {}, TARGET.name, DEVICE, "seeds", verdict="admitted", median_ms=1.0))
    records.add(Attempt(names[0], "r", "h", {}, TARGET.name, "cpu", "seeds", verdict="admitted"))
    return records.attempts


def rows(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for side in ("train", "test")
            for line in (out / f"{name}.{side}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("training")
    problems = write_suite(root)
    record_run(problems, root / "run_a", list(EXPRESSIONS))
    record_run(problems, root / "run_b", ["elementwise/tiny_relu"], stamp="2026-11-27T11:00:0", scale=1.1)
    sources = [root / "run_a" / "attempts.jsonl", root / "run_b" / "attempts.jsonl", root / "run_a" / "attempts.jsonl"]
    card = build(sources, problems, root / "out", test_problems=["elementwise/tiny_tanh"], log=lambda _: None)
    return problems, root / "out", card


def test_supervised_schedule_pairs_teach_the_fastest_admitted_schedule_in_the_proposers_format(built) -> None:
    problems, out, card = built
    sft = rows(out, "sft_schedule")
    assert sorted(r["problem"] for r in sft) == sorted(EXPRESSIONS)  # one per region, whatever the repeats
    for row in sft:
        kernel = capture(load_problem(problems / f"{row['problem']}.py")).regions[0].kernel
        base = default_schedule(kernel, TARGET).to_dict()
        answer = json.loads(row["completion"][0]["content"])
        assert answer == {"schedules": [{**base, "ctas_per_sm": 2}]}  # 0.50 ms: the fastest admitted
        assert row["prompt"] == [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": prompt(Region(kernel, TARGET), "", 1, [])}]
        assert row["median_ms"] == 0.5 and row["speedup"] == pytest.approx(2.0) and row["proof"] == "proved"


def test_ptx_completions_are_lowered_again_and_kept_only_where_the_hash_is_the_checked_one(built) -> None:
    problems, out, card = built
    assert rows(out, "sft_ptx") == []  # every region's fastest has a stale hash in these records
    assert card["skipped"]["PTX changed since it was checked (sft_ptx)"] == len(EXPRESSIONS)


def test_ptx_completions_carry_the_checked_ptx(tmp_path: Path) -> None:
    problems = write_suite(tmp_path)
    attempts = record_run(problems, tmp_path / "run", ["elementwise/tiny_square"])
    lines = (tmp_path / "run" / "attempts.jsonl").read_text().splitlines()
    (tmp_path / "run" / "attempts.jsonl").write_text("\n".join(lines[:len(PLAN) - 1] + lines[len(PLAN):]) + "\n")
    build([tmp_path / "run" / "attempts.jsonl"], problems, tmp_path / "out", log=lambda _: None)
    (row,) = rows(tmp_path / "out", "sft_ptx")
    fastest = attempts[1]  # 0.80 ms, now the fastest admitted
    assert text_hash(row["completion"][0]["content"]) == fastest.ptx_hash
    assert "grid" in row["prompt"][1]["content"] and format_kernel(
        capture(load_problem(problems / "elementwise/tiny_square.py")).regions[0].kernel) in row["prompt"][1]["content"]


def test_ptx_a_proposer_wrote_is_taught_as_ptx_and_never_as_a_schedule(tmp_path: Path) -> None:
    problems = write_suite(tmp_path)
    record_run(problems, tmp_path / "run", ["elementwise/tiny_square"])
    kernel = capture(load_problem(problems / "elementwise/tiny_square.py")).regions[0].kernel
    base = default_schedule(kernel, TARGET)
    written = "// hand-written\n" + lower(kernel, base, TARGET).ptx
    records = Records(tmp_path / "run")
    for ptx, verdict, ms in ((written, "admitted", 0.25), ("// refused\n" + written, "proof", None)):
        records.add(Attempt("tiny_square", kernel.name, text_hash(format_kernel(kernel)), base.to_dict(), TARGET.name,
                            DEVICE, "llm-ptx", verdict=verdict, ptx_hash=text_hash(ptx), median_ms=ms,
                            written_ptx=ptx, recorded="2026-11-27T10:00:09+00:00"))
    build([tmp_path / "run" / "attempts.jsonl"], problems, tmp_path / "out", log=lambda _: None)
    (ptx_row,) = rows(tmp_path / "out", "sft_ptx")
    assert ptx_row["completion"][0]["content"] == written and ptx_row["written_by"] == "llm-ptx"
    (schedule_row,) = rows(tmp_path / "out", "sft_schedule")
    assert json.loads(schedule_row["completion"][0]["content"]) == {"schedules": [{**base.to_dict(), "ctas_per_sm": 2}]}
    pairs = rows(tmp_path / "out", "preference_schedule")
    assert all(p["chosen_ms"] != 0.25 and "refused" not in json.dumps(p) for p in pairs)
    (trajectory,) = rows(tmp_path / "out", "trajectories")
    assert [s["written_ptx_hash"] for s in trajectory["steps"][-2:]] == [text_hash(written),
                                                                         text_hash("// refused\n" + written)]


def test_preference_pairs_prefer_faster_by_more_than_noise_or_admitted_over_refused(built) -> None:
    _, out, _ = built
    pairs = rows(out, "preference_schedule")
    assert pairs
    for pair in pairs:
        assert pair["chosen"] != pair["rejected"] and pair["prompt"][0]["content"] == SYSTEM
        if pair["rejected_verdict"] == "admitted":
            assert pair["rejected_ms"] > pair["chosen_ms"] * (1 + NOISE_MARGIN)
        else:
            assert pair["rejected_verdict"] in REFUSED and pair["rejected_ms"] is None
    verdicts = {p["rejected_verdict"] for p in pairs}
    assert "proof" in verdicts and "error" not in verdicts  # a fault of ours teaches nothing about the kernel
    within_noise = [p for p in pairs if {p["chosen_ms"], p["rejected_ms"]} == {0.80, 0.81}]
    assert within_noise == []


def test_trajectories_reward_only_admitted_kernels_and_more_for_faster_ones(built) -> None:
    _, out, _ = built
    trajectories = rows(out, "trajectories")
    assert len(trajectories) == len(EXPRESSIONS) + 1  # run_b's repeat of tiny_relu is another run; run_a twice is not
    for trajectory in trajectories:
        steps, reference = trajectory["steps"], trajectory["reference_ms"]
        assert reference in (1.0, 1.1)  # the default schedule's time in its run
        assert [s["median_ms"] and s["median_ms"] / reference for s in steps] == pytest.approx(
            [ms for _, ms, _ in PLAN])  # in the order judged
        for step, (_, ms, verdict) in zip(steps, PLAN):
            assert step["verdict"] == verdict
            assert step["reward"] == (pytest.approx(1 + math.log(1.0 / ms)) if verdict == "admitted" else 0.0)
        assert trajectory["best_reward"] == pytest.approx(1 + math.log(2.0))


def test_reward_is_gated_on_admission_and_floored_above_zero() -> None:
    admitted = Attempt("p", "r", "h", {}, "sm_90a", DEVICE, "x", verdict="admitted", median_ms=100.0)
    refused = Attempt("p", "r", "h", {}, "sm_90a", DEVICE, "x", verdict="gpu", median_ms=0.1)
    assert reward(refused, 1.0) == 0.0
    assert 0 < reward(admitted, 1.0) < 0.1  # far slower than the reference, still above any refused kernel


def test_split_keeps_each_problem_on_one_side(built) -> None:
    _, out, card = built
    assert card["split"]["test"] == ["elementwise/tiny_tanh"]
    for name in FILES:
        for side in ("train", "test"):
            problems = {json.loads(line)["problem"] for line in (out / f"{name}.{side}.jsonl").read_text().splitlines()}
            assert problems <= set(card["split"][side])
    names = [f"p{i}" for i in range(40)]
    split = problem_split(names, 0.25)
    assert set(split.values()) == {"train", "test"} and 4 < sum(s == "test" for s in split.values()) < 18
    assert problem_split(names[:20], 0.25) == {n: split[n] for n in names[:20]}  # a problem keeps its side
    assert set(problem_split(["a", "b"], 0.0).values()) == {"train", "test"}


def test_records_that_cannot_be_reproduced_or_were_not_timed_are_counted_not_used(built) -> None:
    _, _, card = built
    skipped = card["skipped"]
    assert skipped["problem not in the suite"] == 3 and skipped["no GPU time (recorded without a GPU)"] == 3
    assert skipped["duplicate (trajectories)"] == len(EXPRESSIONS)  # run_a's file given twice
    assert skipped["duplicate (preference_schedule)"] > 0


def test_files_load_with_hugging_face_datasets_and_pass_trls_format_check(built) -> None:
    loader = pytest.importorskip("datasets")
    _, out, card = built
    for name in FILES:
        files = {side: str(out / f"{name}.{side}.jsonl") for side in ("train", "test") if card["counts"][name][side]}
        if not files:
            continue
        loaded = loader.load_dataset("json", data_files=files, cache_dir=str(out / "hf_cache"))
        assert sum(split.num_rows for split in loaded.values()) == sum(card["counts"][name].values())
    try:
        from trl.data_utils import is_conversational
    except ImportError:
        return
    for name in ("sft_schedule", "preference_schedule", "trajectories"):
        assert is_conversational(rows(out, name)[0])


def test_the_script_builds_from_committed_records(tmp_path: Path) -> None:
    records = REPO / "papers" / "optimize" / "runs" / "loss__mse_loss_f32" / "attempts.jsonl"
    done = subprocess.run([sys.executable, str(REPO / "datasets" / "make_training_data.py"), "--out", str(tmp_path),
                           str(records)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / "card.json").read_text())
    (source,) = card["sources"]
    assert source["path"] == "papers/optimize/runs/loss__mse_loss_f32/attempts.jsonl"
    used, total = source["attempts_used"], len(records.read_text().splitlines())
    assert used + sum(card["skipped"].get(k, 0) for k in ("IR changed since it was recorded",
                                                         "region not in the problem any more")) == total
    assert "sft_schedule:" in done.stdout and (tmp_path / "README.md").read_text().startswith("# Training data")


def test_records_of_a_problem_that_no_longer_loads_are_counted_out(tmp_path: Path) -> None:
    problems = write_suite(tmp_path)
    record_run(problems, tmp_path / "run", ["elementwise/tiny_relu", "elementwise/tiny_tanh"])
    (problems / "elementwise" / "tiny_tanh.py").write_text("raise RuntimeError('broken')\n")
    card = build([tmp_path / "run" / "attempts.jsonl"], problems, tmp_path / "out", log=lambda _: None)
    assert card["skipped"]["problem does not capture any more"] == len(PLAN)
    assert [r["problem"] for r in rows(tmp_path / "out", "sft_schedule")] == ["elementwise/tiny_relu"]


def test_the_script_says_which_records_file_is_missing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "datasets" / "make_training_data.py"), "--out", str(tmp_path),
                           str(tmp_path / "nothing.jsonl")], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nothing.jsonl" in done.stderr
