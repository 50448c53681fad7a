"""The search loop on the CPU: records, proposers, the gate's CPU stages, worker processes, and
`ptxgen optimize` end to end without a GPU (and with a stand-in for the GPU's timings, to test
the loop's choices, crashes and hangs). The GPU's own evaluator is tested on the GPU."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import PROBLEMS

from agents.gate import CpuJob, cpu_stages
from agents.proposers import Neighbours, RandomSearch, Region, Seeds, valid
from agents.records import RECORDS_FILE, Attempt, Records, candidate_key, schedule_key, text_hash
from agents.supervisor import OptimizeOptions, Supervisor
from agents.workers import Worker
from ir import format_kernel, parse
from ir.frontend import capture, load_problem
from ptxgen.cli import main
from ptxgen.lower import default_schedule, lower
from ptxgen.ptxas import ptxas_path
from ptxgen.schedule import ElementwiseSchedule
from ptxgen.targets import TARGETS

TARGET = TARGETS["sm_90a"]
SQUARE = parse("kernel k(%x: f32[64, 4096]) -> (%y: f32[64, 4096]) {\n  %y = mul(%x, %x)\n  return %y\n}")
SQUARE_SMALL = parse("kernel k(%x: f32[5, 64]) -> (%y: f32[5, 64]) {\n  %y = mul(%x, %x)\n  return %y\n}")
ROW_SUM = parse("kernel k(%x: f32[8, 256]) -> (%y: f32[8]) {\n  %y = sum(%x, axes=[1])\n  return %y\n}")
SCALAR_SUM = parse("kernel k(%x: f32[1000003]) -> (%y: f32[]) {\n  %y = sum(%x, axes=[0])\n  return %y\n}")
RELU = PROBLEMS / "elementwise" / "relu_f32.py"
SMALL_RELU = ["--size", "batch_size=16", "--size", "dim=4096"]


def attempt(schedule: ElementwiseSchedule, median_ms: float | None = None, verdict: str = "admitted") -> Attempt:
    return Attempt("p", "k", "hash", schedule.to_dict(), "sm_90a", "cpu", "test", verdict=verdict, median_ms=median_ms)


def knobs_changed(a: object, b: object) -> list[str]:
    return [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]  # type: ignore


# ---- records


def test_records_are_read_back_and_a_line_cut_short_by_a_kill_is_skipped(tmp_path: Path) -> None:
    records = Records(tmp_path)
    first, second = attempt(ElementwiseSchedule(), 1.5), attempt(ElementwiseSchedule(block_size=512), None, "proof")
    records.add(first)
    records.add(second)
    with (tmp_path / RECORDS_FILE).open("a") as out:
        out.write('{"problem": "p", "region": "k", "ir_ha')  # the write a kill interrupted
    again = Records(tmp_path)
    assert [a.to_dict() for a in again.attempts] == [first.to_dict(), second.to_dict()]
    assert again.seen(second.key) is not None and again.seen(second.key).verdict == "proof"  # type: ignore
    assert again.seen(attempt(ElementwiseSchedule(block_size=1024)).key) is None
    assert first.recorded  # the time it finished


# ---- proposers


def test_seeds_start_at_the_default_schedule_and_then_change_one_knob() -> None:
    region = Region(SQUARE, TARGET)
    proposed = Seeds().propose(region, 12)
    assert proposed[0] == default_schedule(SQUARE, TARGET)
    assert len(proposed) == 12 and len({schedule_key(s.to_dict()) for s in proposed}) == 12
    for schedule in proposed[1:]:
        assert len(knobs_changed(schedule, proposed[0])) == 1 and valid(SQUARE, schedule, TARGET)
    assert knobs_changed(proposed[1], proposed[0]) == ["ctas_per_sm"]  # work in flight first


def test_proposers_never_propose_what_was_tried() -> None:
    tried = Seeds().propose(Region(SQUARE, TARGET), 5)
    region = Region(SQUARE, TARGET, [attempt(s, 1.0) for s in tried])
    keys = {schedule_key(s.to_dict()) for s in tried}
    for proposer in (Seeds(), Neighbours(), RandomSearch(0)):
        assert not keys & {schedule_key(s.to_dict()) for s in proposer.propose(region, 8)}


def test_the_beam_search_proposes_the_neighbours_of_the_fastest() -> None:
    fast, slow = ElementwiseSchedule(block_size=512), ElementwiseSchedule(block_size=128)
    region = Region(SQUARE, TARGET, [attempt(slow, 2.0), attempt(fast, 1.0),
                                     attempt(ElementwiseSchedule(block_size=64), None, "proof")])
    proposed = Neighbours().propose(region, 4)
    assert proposed and all(len(knobs_changed(s, fast)) == 1 for s in proposed)


def test_random_search_draws_valid_schedules_with_a_seed() -> None:
    region = Region(SQUARE, TARGET)
    drawn = RandomSearch(7).propose(region, 6)
    assert len(drawn) == 6 and all(valid(SQUARE, s, TARGET) for s in drawn)
    assert drawn == RandomSearch(7).propose(region, 6)


# ---- the gate's CPU stages


def job(kernel=SQUARE, small=SQUARE_SMALL, **changes: object) -> CpuJob:  # type: ignore[no-untyped-def]
    schedule = default_schedule(kernel, TARGET).to_dict()
    return CpuJob(format_kernel(kernel), format_kernel(small) if small else None, schedule, TARGET.name,
                  **changes)  # type: ignore[arg-type]


def test_the_gate_passes_a_lowered_kernel_and_records_each_stage() -> None:
    result = cpu_stages(job())
    assert result["verdict"] == "passed", result["feedback"]
    stages = result["stages"]
    assert stages["proof"]["status"] == "proved" and stages["proof"]["unproved"] == []
    assert stages["emulator"]["status"] == "match" and stages["emulator"]["shapes"] == [[5, 64]]
    assert stages["ptxas"]["status"] == ("passed" if ptxas_path() else "skipped")


@pytest.mark.skipif(ptxas_path() is None, reason="needs ptxas")
def test_the_gate_rejects_ptx_that_does_not_assemble_with_ptxas_message() -> None:
    ptx = lower(SQUARE, default_schedule(SQUARE, TARGET), TARGET).ptx.replace("mul.rn.f32", "mul.rn.f99", 1)
    result = cpu_stages(job(ptx=ptx))
    assert result["verdict"] == "ptxas" and result["feedback"].startswith("ptxas: ") and "proof" not in result["stages"]


def test_the_gate_rejects_a_refuted_kernel_naming_the_obligation_and_the_element() -> None:
    ptx = lower(SQUARE, default_schedule(SQUARE, TARGET), TARGET).ptx.replace("mul.rn.f32", "add.rn.f32", 1)
    result = cpu_stages(job(ptx=ptx))
    assert result["verdict"] == "proof", result["feedback"]
    assert "output values equal the IR's refuted" in result["feedback"] and "as element" in result["feedback"]


def test_without_the_proof_the_emulator_rejects_the_same_wrong_kernel() -> None:
    ptx = lower(SQUARE_SMALL, default_schedule(SQUARE_SMALL, TARGET), TARGET).ptx.replace("mul.rn.f32", "add.rn.f32", 1)
    result = cpu_stages(job(SQUARE_SMALL, None, ptx=ptx, prove=False))
    assert result["verdict"] == "emulator" and "expected" in result["feedback"], result["feedback"]
    assert result["stages"]["proof"]["status"] == "skipped"


def test_an_inconclusive_proof_is_carried_as_such_or_rejected_when_proof_is_required() -> None:
    """A sum over 264 CTAs meets in a workspace, more threads than the prover follows one by
    one: its value obligation is inconclusive."""
    small = parse("kernel k(%x: f32[1003]) -> (%y: f32[]) {\n  %y = sum(%x, axes=[0])\n  return %y\n}")
    carried = cpu_stages(job(SCALAR_SUM, small))
    assert carried["verdict"] == "passed" and carried["stages"]["proof"]["status"] == "inconclusive"
    assert any("output values" in u for u in carried["stages"]["proof"]["unproved"])
    required = cpu_stages(job(SCALAR_SUM, small, require_proof=True))
    assert required["verdict"] == "proof" and "inconclusive" in required["feedback"]


def test_a_row_sum_passes_the_gate_proved() -> None:
    small = parse("kernel k(%x: f32[3, 256]) -> (%y: f32[3]) {\n  %y = sum(%x, axes=[1])\n  return %y\n}")
    result = cpu_stages(job(ROW_SUM, small, require_proof=True))
    assert result["verdict"] == "passed" and result["stages"]["proof"]["status"] == "proved", result["feedback"]


# ---- worker processes


def test_a_worker_that_dies_or_hangs_loses_one_job_and_is_started_again() -> None:
    worker = Worker(0, "agent_doubles:crash_on_marker", timeout_s=5)
    try:
        assert worker.evaluate({}) == {"status": "passed", "served": 1}
        assert worker.evaluate({"raise": True})["status"] == "error"  # an exception: the worker goes on
        assert worker.evaluate({}) == {"status": "passed", "served": 3}
        crashed = worker.evaluate({"crash": True})
        assert crashed["status"] == "crash" and "exit code 1" in crashed["reasons"][0]
        assert worker.evaluate({}) == {"status": "passed", "served": 1}  # a new process
        worker.timeout_s = 1
        assert worker.evaluate({"hang": True})["status"] == "timeout"
        assert worker.evaluate({}) == {"status": "passed", "served": 1} and worker.restarts == 2
    finally:
        worker.close()


# ---- the loop


def test_optimize_without_a_gpu_writes_the_module_says_what_it_skipped_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["optimize", str(RELU), "--out", str(tmp_path), *SMALL_RELU, "--max-trials", "3", "--workers", "0",
                 "--no-gpu"]
    assert main(arguments) == 0
    out = capsys.readouterr()
    assert "skipped: GPU check and timing of candidates: no GPU" in out.out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["module"]["kind"] == "ptx" and report["device"] == "cpu"
    (region,) = report["regions"]
    assert region["attempts"] == 3 and region["best"]["proof"] == "proved" and region["best"]["median_ms"] is None
    assert region["best"]["schedule"] == default_schedule(SQUARE, TARGET).to_dict()  # heuristic order: the default
    assert "class ModelNew" in (tmp_path / "model_new.py").read_text()
    assert "| `relu_f32_0` | 3 |" in (tmp_path / "report.md").read_text()
    lines = (tmp_path / RECORDS_FILE).read_text().splitlines()
    assert len(lines) == 3
    assert main(arguments) == 0
    assert "resuming with 3 recorded attempt(s)" in capsys.readouterr().err
    assert (tmp_path / RECORDS_FILE).read_text().splitlines() == lines  # nothing evaluated twice
    changed = json.loads(lines[0])  # as if the lowering of this schedule had changed since it was judged
    changed["ptx_hash"] = "0" * 16
    (tmp_path / RECORDS_FILE).write_text("\n".join([json.dumps(changed)] + lines[1:]) + "\n")
    assert main(arguments) == 0
    assert "1 recorded attempt(s) lowered to other PTX since: judged again" in capsys.readouterr().err
    again = [json.loads(line) for line in (tmp_path / RECORDS_FILE).read_text().splitlines()[3:]]
    assert [a["schedule"] for a in again] == [changed["schedule"]]  # that schedule alone, judged afresh
    assert again[0]["ptx_hash"] == json.loads(lines[0])["ptx_hash"]


def test_search_with_timings_finds_the_fastest_and_a_crash_or_a_hang_costs_one_candidate(tmp_path: Path) -> None:
    options = OptimizeOptions(TARGET, max_trials=26, cpu_workers=0, prove=False, final_check=False,
                              evaluator="agent_doubles:shaped_times", gpu_timeout_s=3,
                              sizes={"batch_size": 16, "dim": 4096}, log=lambda line: None)
    report = Supervisor(RELU, tmp_path, options).run()
    (region,) = report["regions"]
    assert region["best"]["median_ms"] == 1.0  # block_size 512 with 4 CTAs per SM: no seed has both
    assert region["best"]["schedule"]["block_size"] == 512 and region["best"]["schedule"]["ctas_per_sm"] == 4
    assert region["best"]["proposer"] in ("cost_model", "neighbours")
    attempts = Records(tmp_path).attempts
    crashed = {a.schedule["block_size"] for a in attempts if a.verdict == "crash"}
    assert crashed == {64, 128}  # the one that killed its process and the one that hung
    assert region["verdicts"]["crash"] == sum(a.schedule["block_size"] in (64, 128) for a in attempts) >= 2
    assert region["attempts"] == 26 and region["verdicts"]["admitted"] == 26 - region["verdicts"]["crash"]
    assert region["best"]["of_copy"] == pytest.approx(2**20 / 1e-3 / 1e9 / 3000.0)


def test_one_worker_per_gpu_judges_candidates_side_by_side_and_records_them_in_proposal_order(tmp_path: Path) -> None:
    def search(folder: Path, gpus: int) -> list[Attempt]:
        options = OptimizeOptions(TARGET, max_trials=8, cpu_workers=0, prove=False, final_check=False,
                                  evaluator="agent_doubles:shaped_times", gpu_workers=gpus, gpu_timeout_s=3,
                                  sizes={"batch_size": 16, "dim": 4096}, log=lambda line: None)
        Supervisor(RELU, folder, options).run()
        return Records(folder).attempts

    alone, pair = search(tmp_path / "one", 1), search(tmp_path / "two", 2)
    assert [(a.schedule, a.verdict, a.median_ms) for a in pair] == [(a.schedule, a.verdict, a.median_ms)
                                                                    for a in alone]
    assert {a.stages["gpu"]["gpu_index"] for a in pair if a.admitted} == {0, 1}
    assert {a.stages["gpu"]["gpu_index"] for a in alone if a.admitted} == {0}


# ---- the GPU stage's check, its comparison run on the CPU with launches that stand in for kernels


def interpreter_launch(kernel, wrong: float | None = None):  # type: ignore[no-untyped-def]
    """A launch that writes the interpreter's outputs (element 0 of the first one `wrong`)."""
    import numpy as np
    import torch

    from ir.interp import Precision, run
    from verify.against_ir import from_device, to_device

    def launch(tensors: list[torch.Tensor]) -> None:
        inputs = [from_device(t.numpy(), p.type.dtype, p.type.shape).astype(np.float64) if p.type.dtype.is_float
                  else from_device(t.numpy(), p.type.dtype, p.type.shape) for t, p in zip(tensors, kernel.inputs)]
        for k, (param, value) in enumerate(zip(kernel.outputs, run(kernel, inputs, Precision.FLOAT64))):
            value = np.array(value, np.float64 if param.type.dtype.is_float else value.dtype)
            if k == 0 and wrong is not None:
                value.reshape(-1)[0] = wrong
            tensors[len(kernel.inputs) + k].copy_(torch.from_numpy(to_device(value, param.type.dtype)))

    return launch


def test_the_gpu_stage_check_passes_right_outputs_and_names_a_wrong_element() -> None:
    from verify.kernel_gpu import KernelBench

    kernel = parse("kernel k(%x: bf16[4, 64]) -> (%y: bf16[4, 64], %i: i64[4]) {\n  %y = mul(%x, %x)\n"
                   "  %i = argmax(%x, axes=[1])\n  return %y, %i\n}")
    bench = KernelBench(kernel, device="cpu")
    assert bench.check(interpreter_launch(kernel)) == []
    reasons = bench.check(interpreter_launch(kernel, wrong=-1e9))
    assert len(reasons) == 4 and all("%y[0, 0]" in r and "1 of 256 elements differ" in r for r in reasons), reasons
    assert "inputs 1, second launch" in reasons[-1]  # both cases (normal, extreme inputs), both launches
    unwritten = bench.check(lambda tensors: None)  # outputs left as poisoned: NaN and -7777
    assert any("%y" in r for r in unwritten) and any("%i" in r for r in unwritten)


def test_a_spent_budget_still_judges_each_regions_first_batch_and_nothing_after_it(tmp_path: Path) -> None:
    options = OptimizeOptions(TARGET, budget_s=0.001, max_trials=10, cpu_workers=0, prove=False, gpu=False,
                              final_check=False, sizes={"batch_size": 16, "num_classes": 1000}, log=lambda line: None)
    report = Supervisor(PROBLEMS / "loss" / "cross_entropy_f32.py", tmp_path, options).run()
    assert [r["attempts"] for r in report["regions"]] == [2, 2, 2]  # three regions, the later ones too
    assert report["module"]["kind"] == "ptx"


def test_regions_too_large_to_interpret_are_checked_at_the_largest_capped_shapes_that_are_not() -> None:
    from agents.supervisor import CHECK_ELEMENTS, check_regions
    from ir.frontend import capture, load_problem

    program = capture(load_problem(RELU))
    assert math.prod(program.regions[0].kernel.inputs[0].type.shape) > CHECK_ELEMENTS
    (checked,) = check_regions(RELU, program, {}, lambda line: None).values()
    shape = parse(checked).inputs[0].type.shape
    assert math.prod(shape) <= CHECK_ELEMENTS and shape == (4096, 4096)  # the cap 8192 is still too large
    sizes = {"batch_size": 16, "dim": 4096}
    assert check_regions(RELU, capture(load_problem(RELU, sizes=sizes)), sizes, lambda line: None) == {}


# ---- the cost model


def landscape_ms(schedule: ElementwiseSchedule) -> float:
    """The stand-in GPU's made-up time, with one best: block_size 512, 4 CTAs per SM."""
    from agent_doubles import shaped_ms

    return shaped_ms(schedule.to_dict())


def timed_attempts(schedules: list[ElementwiseSchedule]) -> list[Attempt]:
    from agents.cost_model import kernel_features

    features = kernel_features(SQUARE, TARGET)
    return [dataclasses.replace(attempt(s, landscape_ms(s)), kernel_features=features) for s in schedules]


def test_the_cost_model_learns_the_order_of_schedules_from_records() -> None:
    import random as random_module

    import numpy as np

    from agents.cost_model import features, fitted, kernel_features

    drawn = RandomSearch(3).propose(Region(SQUARE, TARGET), 60)
    train, held_out = drawn[:30], drawn[30:]
    model = fitted(timed_attempts(train))  # type: ignore[arg-type]
    assert model is not None
    kernel = kernel_features(SQUARE, TARGET)
    predicted = model.predict(np.array([features(kernel, s.to_dict(), {}) for s in held_out]))
    measured = [landscape_ms(s) for s in held_out]  # type: ignore[arg-type]
    ranks = [np.argsort(np.argsort(v)) for v in (predicted, measured)]
    assert np.corrcoef(*ranks)[0, 1] > 0.8  # Spearman's rank correlation on schedules it never saw
    shuffled = list(measured)
    random_module.Random(0).shuffle(shuffled)
    assert abs(np.corrcoef(ranks[0], np.argsort(np.argsort(shuffled)))[0, 1]) < 0.5  # not an artefact of the data


def test_the_cost_model_waits_for_timings_and_learns_to_avoid_what_was_rejected() -> None:
    from agents.cost_model import MIN_TRAINING, CostModelProposer

    few = timed_attempts(RandomSearch(1).propose(Region(SQUARE, TARGET), MIN_TRAINING - 1))  # type: ignore[arg-type]
    assert CostModelProposer(few).propose(Region(SQUARE, TARGET), 4) == []
    good = [ElementwiseSchedule(block_size=b, ctas_per_sm=c) for b in (256, 1024) for c in (0, 1, 2, 8, 16)]
    rejected = [dataclasses.replace(a, verdict="crash", median_ms=None) for a in
                timed_attempts([ElementwiseSchedule(block_size=512, ctas_per_sm=c) for c in (0, 1, 2, 8)])]
    region = Region(SQUARE, TARGET, timed_attempts(good) + rejected)
    proposed = CostModelProposer(resources=False).propose(region, 6)
    assert proposed and all(s.block_size != 512 for s in proposed)  # block 512 failed every time it was tried
    assert not {schedule_key(s.to_dict()) for s in proposed} & region.tried()


# ---- the LLM proposer, against a local server speaking the OpenAI chat API


class ChatServer:
    """A local /v1/chat/completions that answers with scripted contents and keeps every request."""

    def __init__(self, answers: list[str], ptx_answers: list[str] | None = None) -> None:
        import http.server
        import threading

        self.answers, self.requests = list(answers), []  # type: ignore[var-annotated]
        self.ptx_answers = list(ptx_answers or [])  # for requests that carry the PTX grammar
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                queue = server.ptx_answers if "structured_outputs" in body else server.answers
                content = queue.pop(0) if queue else '{"schedules": []}'
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()


def test_the_llm_proposer_sends_the_schema_and_feeds_bad_answers_back() -> None:
    from agents.llm import LlmProposer

    good = ElementwiseSchedule(block_size=512, ctas_per_sm=4).to_dict()
    answers = ["Sure! Here are some schedules: block_size=512", json.dumps({"schedules": [{**good, "block_size": 3}]}),
               json.dumps({"schedules": [good]})]
    server = ChatServer(answers)
    try:
        tried = attempt(ElementwiseSchedule(), None, "proof")
        tried.feedback = "proof: output values equal the IR's refuted: thread 3 of CTA 0 stores 2.0 as element 3"
        region = Region(SQUARE, TARGET, [tried])
        proposer = LlmProposer(server.url, "tiny", hint="try bigger blocks")
        assert proposer.propose(region, 2) == []  # prose, not JSON: nothing proposed, the loop goes on
        assert proposer.propose(region, 2) == []  # block_size 3 is not a block size
        assert proposer.propose(region, 2) == [ElementwiseSchedule(block_size=512, ctas_per_sm=4)]
    finally:
        server.close()
    path, first = server.requests[0]
    assert path == "/v1/chat/completions" and first["model"] == "tiny"
    schema = first["response_format"]["json_schema"]["schema"]
    item = schema["properties"]["schedules"]["items"]
    assert item["properties"]["block_size"]["enum"] == [64, 128, 256, 512, 1024]
    assert item["properties"]["kind"]["enum"] == ["elementwise"] and item["additionalProperties"] is False
    asked = first["messages"][1]["content"]
    assert "%y = mul(%x, %x)" in asked and "try bigger blocks" in asked and "stores 2.0 as element 3" in asked
    assert "132 SMs" in asked
    second, third = server.requests[1][1]["messages"][1]["content"], server.requests[2][1]["messages"][1]["content"]
    assert "Sure! Here are some schedules" in second  # the unusable answer is told back
    assert "block_size=3 is not one of" in third


def test_an_unreachable_llm_server_proposes_nothing_and_says_why() -> None:
    from agents.llm import LlmProposer

    proposer = LlmProposer("http://127.0.0.1:9/v1", timeout_s=2)
    assert proposer.propose(Region(SQUARE, TARGET), 2) == [] and "the request failed" in proposer.notes[0]


def test_optimize_takes_the_llm_proposers_schedules_through_the_gate(tmp_path: Path) -> None:
    wrong_kind = json.dumps({"schedules": [{"kind": "row", "block_size": 256}]})
    proposed = json.dumps({"schedules": [ElementwiseSchedule(block_size=1024, unroll=4).to_dict()]})
    server = ChatServer([proposed, wrong_kind])
    try:
        options = OptimizeOptions(TARGET, max_trials=4, cpu_workers=0, gpu=False, final_check=False,
                                  sizes={"batch_size": 16, "dim": 4096}, llm_url=server.url, hint="h",
                                  log=lambda line: None)
        report = Supervisor(RELU, tmp_path, options).run()
    finally:
        server.close()
    attempts = Records(tmp_path).attempts
    from_llm = [a for a in attempts if a.proposer == "llm"]
    assert [a.schedule for a in from_llm] == [ElementwiseSchedule(block_size=1024, unroll=4).to_dict()]
    assert from_llm[0].verdict == "admitted" and from_llm[0].stages["proof"]["status"] == "proved"
    assert report["llm"]["url"] == server.url and report["hint"] == "h" and report["regions"][0]["attempts"] == 4


def test_the_llm_ptx_proposer_sends_our_grammar_and_feeds_unreadable_answers_back() -> None:
    from agents.llm import PTX_GRAMMAR, LlmPtxProposer
    from agents.proposers import WrittenPtx

    reference = lower(SQUARE, default_schedule(SQUARE, TARGET), TARGET).ptx
    fenced = "```ptx\n// a kernel written by hand\n" + reference + "```"
    server = ChatServer([], ["Here is your kernel: it is fast.", fenced, fenced])
    try:
        proposer = LlmPtxProposer(server.url, "tiny", hint="use wider loads")
        region = Region(SQUARE, TARGET)
        assert proposer.propose(region, 1) == []  # prose: our parser cannot read it
        (written,) = proposer.propose(region, 1)
        assert written == WrittenPtx(default_schedule(SQUARE, TARGET), "// a kernel written by hand\n" + reference)
        region.attempts.append(dataclasses.replace(attempt(written.schedule), written_ptx=written.ptx))
        assert proposer.propose(region, 1) == [] and proposer.notes[-1] == "the same PTX as one tried before"
    finally:
        server.close()
    first = server.requests[0][1]
    assert first["structured_outputs"]["grammar"] == PTX_GRAMMAR.read_text() and "response_format" not in first
    asked = first["messages"][1]["content"]
    assert "%y = mul(%x, %x)" in asked and reference in asked and "use wider loads" in asked and "grid" in asked
    assert "not PTX our grammar reads" in server.requests[1][1]["messages"][1]["content"]


def test_optimize_takes_written_ptx_through_the_gate_refutes_a_wrong_one_and_tells_the_model(tmp_path: Path) -> None:
    sizes = {"batch_size": 16, "dim": 4096}
    kernel = capture(load_problem(RELU, sizes=sizes)).regions[0].kernel
    right = lower(kernel, default_schedule(kernel, TARGET), TARGET).ptx
    wrong = right.replace("max.NaN.f32", "min.NaN.f32")  # a ReLU that returns min(x, 0)
    assert wrong != right
    server = ChatServer([], [wrong, "// second try\n" + right])
    try:
        options = OptimizeOptions(TARGET, max_trials=10, cpu_workers=0, gpu=False, final_check=False, sizes=sizes,
                                  llm_url=server.url, llm_ptx=True, log=lambda line: None)
        Supervisor(RELU, tmp_path, options).run()
    finally:
        server.close()
    written = [a for a in Records(tmp_path).attempts if a.proposer == "llm-ptx"]
    assert [a.written_ptx for a in written[:2]] == [wrong, "// second try\n" + right]
    assert written[0].verdict == "proof" and "refuted" in written[0].feedback
    assert written[1].verdict == "admitted" and written[1].stages["proof"]["status"] == "proved"
    assert written[1].ptx_hash == text_hash("// second try\n" + right)
    prompts = [body["messages"][1]["content"] for _, body in server.requests if "structured_outputs" in body]
    assert written[0].feedback[:200] in prompts[1]  # the refutation is told back


def test_the_fastest_kernel_may_be_written_ptx_and_the_module_embeds_it(tmp_path: Path) -> None:
    from agent_doubles import HAND_TUNED, shaped_ms

    sizes = {"batch_size": 16, "dim": 4096}
    kernel = capture(load_problem(RELU, sizes=sizes)).regions[0].kernel
    tuned = f"{HAND_TUNED}\n" + lower(kernel, default_schedule(kernel, TARGET), TARGET).ptx
    server = ChatServer([], [tuned])
    try:
        options = OptimizeOptions(TARGET, max_trials=4, cpu_workers=0, prove=False, final_check=False, sizes=sizes,
                                  evaluator="agent_doubles:shaped_times", llm_url=server.url, llm_ptx=True,
                                  log=lambda line: None)
        report = Supervisor(RELU, tmp_path, options).run()
    finally:
        server.close()
    (region,) = report["regions"]
    assert region["best"]["proposer"] == "llm-ptx"
    assert region["best"]["median_ms"] == pytest.approx(shaped_ms(region["best"]["schedule"]) / 2)
    assert HAND_TUNED in (tmp_path / "model_new.py").read_text()


def test_without_a_gpu_written_ptx_is_admitted_only_if_emulated_or_proved(tmp_path: Path) -> None:
    sizes = {"batch_size": 256, "dim": 4096}  # 8 MB moved: too large to emulate PTX written for these shapes
    kernel = capture(load_problem(RELU, sizes=sizes)).regions[0].kernel
    written = "// unchecked\n" + lower(kernel, default_schedule(kernel, TARGET), TARGET).ptx
    server = ChatServer([], [written])
    try:
        options = OptimizeOptions(TARGET, max_trials=4, cpu_workers=0, prove=False, gpu=False, final_check=False,
                                  sizes=sizes, llm_url=server.url, llm_ptx=True, log=lambda line: None)
        Supervisor(RELU, tmp_path, options).run()
    finally:
        server.close()
    (attempt_,) = [a for a in Records(tmp_path).attempts if a.written_ptx]
    assert attempt_.stages["emulator"]["status"] == "skipped" and attempt_.verdict == "emulator"
    assert "needs the GPU check" in attempt_.feedback


def test_written_ptx_and_the_lowered_ptx_of_one_schedule_are_two_candidates() -> None:
    schedule = ElementwiseSchedule().to_dict()
    lowered = attempt(ElementwiseSchedule(), 1.0)
    written = dataclasses.replace(attempt(ElementwiseSchedule(), 0.9), written_ptx="// x\n")
    assert lowered.key != written.key and candidate_key(schedule) == schedule_key(schedule)
    assert Region(SQUARE, TARGET, [lowered, written]).tried() == {candidate_key(schedule),
                                                                  candidate_key(schedule, "// x\n")}


# ---- the Python API


class ScaledGelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.randn(256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x) * self.scale


def test_the_python_api_returns_a_module_built_on_the_callers_model(tmp_path: Path) -> None:
    import ptxgen

    model, x = ScaledGelu(), torch.randn(64, 256)
    optimized = ptxgen.optimize(model, [x], target="sm_90a", out=tmp_path, gpu=False, max_trials=2, cpu_workers=0,
                                log=lambda line: None)
    assert type(optimized).__name__ == "ModelNew" and optimized.reference.model is model  # the same parameters
    report = optimized.report
    assert report["module"]["kind"] == "ptx" and report["regions"][0]["best"]["proof"] == "proved"
    assert any("no GPU" in s for s in report["skipped"])
    assert (tmp_path / "model_new.py").exists() and (tmp_path / "attempts.jsonl").exists()


def test_a_fault_of_the_gate_on_one_candidate_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.gate as gate

    def broken(*args: object) -> object:
        raise RuntimeError("a bug in the prover")

    monkeypatch.setattr(gate, "prove_kernel", broken)
    result = cpu_stages(job())
    assert result["verdict"] == "error" and "a bug in the prover" in result["feedback"]
    assert "RuntimeError" in result["stages"]["error"] and result["seconds"] >= 0


def test_features_of_an_attempt_read_back_from_disk_are_the_features_it_was_recorded_with(tmp_path: Path) -> None:
    from agents.cost_model import features

    (fresh,) = timed_attempts([ElementwiseSchedule(block_size=512)])
    Records(tmp_path).add(fresh)
    (read,) = Records(tmp_path).attempts
    assert list(read.kernel_features) != list(fresh.kernel_features)  # JSON written with sorted keys
    assert (features(read.kernel_features, read.schedule, {}) == features(fresh.kernel_features, fresh.schedule,
                                                                          {})).all()
