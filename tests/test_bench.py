"""`ptxgen bench`: choosing the problems and schedules, the report and plots from a results file,
the speed-of-light arithmetic, the cache key, the refusal without a GPU (CPU); the whole bench on
a small suite (GPU)."""

from __future__ import annotations

import json
import math
import statistics
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import torch

from agents.records import Attempt, Records, text_hash
from ir import format_kernel
from ir.frontend import capture, load_problem
from ptxgen.bench import (
    BenchError,
    BenchOptions,
    problem_paths,
    row_key,
    run_bench,
    run_folder,
    searched_chooser,
    speed_of_light,
    tolerance_for,
)
from ptxgen.bench_report import render, summary, write_report
from ptxgen.cli import main
from ptxgen.lower import default_schedule
from ptxgen.schedule import schedule_from_dict
from ptxgen.targets import TARGETS

TARGET = TARGETS["sm_90a"]
PROBLEM = '''import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {expression}


rows = {rows}
dim = 4096


def get_inputs():
    return [torch.randn(rows, dim)]


def get_init_inputs():
    return []
'''


def write_suite(root: Path, rows: int = 64) -> Path:
    for name, expression in {"act/relu": "torch.relu(x)", "norm/softmax": "torch.softmax(x, dim=-1)"}.items():
        path = root / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PROBLEM.format(expression=expression, rows=rows))
    return root


CEILINGS = {"copy": {"gb_per_s": 3000.0}, "matmul_tflops": {"bfloat16": 700.0, "float32": 50.0}}


def timed_row(name: str, ours: float, eager: float, compiled: float, io_bytes: int, flops: int = 0,
              glue: int = 0) -> dict:
    check = {"passed": True, "error": 1e-7, "eager_error": 1e-7, "tolerance": 1e-5, "glue": glue}
    row = {"problem": name, "odd": check, "full": check, "io_bytes": io_bytes, "flops": flops, "dtype": "float32",
           "times": {"ours": {"median_ms": ours}, "eager": {"median_ms": eager},
                     "torch.compile": {"median_ms": compiled}}, "schedules": {f"{name}_0": "default"}}
    row["speed_of_light"] = speed_of_light(row, CEILINGS)
    return row


def results_of(rows: list[dict]) -> dict:
    return {"environment": {"device": "Stand-in GPU", "target": "sm_90a", "date": "2026-11-27T00:00:00+00:00",
                            "versions": {"torch": "x"}, "sources": "abc"},
            "ceilings": {**CEILINGS, "copy_after": {"gb_per_s": 2990.0}}, "problems": rows}


# ---- CPU


def test_speed_of_light_takes_the_ceiling_that_binds() -> None:
    memory = timed_row("a", ours=1.0, eager=2.0, compiled=1.0, io_bytes=2_400_000_000)  # 0.8 ms at 3000 GB/s
    assert memory["speed_of_light"]["bound"] == "memory"
    assert memory["speed_of_light"]["fraction"]["ours"] == pytest.approx(0.8)
    compute = timed_row("b", ours=4.0, eager=4.0, compiled=4.0, io_bytes=3_000_000, flops=10**11)  # 2 ms at 50 TF/s
    assert compute["speed_of_light"]["bound"] == "compute"
    assert compute["speed_of_light"]["floor_ms"] == pytest.approx(2.0)


def test_report_and_plots_come_from_the_results_file(tmp_path: Path) -> None:
    rows = [timed_row("act/relu", 1.0, 2.0, 1.1, 2_700_000_000),
            timed_row("norm/softmax", 2.0, 3.0, 1.0, 3_000_000_000),
            {"problem": "odd/one", "not_lowered": "a region with a scatter"},
            {"problem": "odd/two", "failure": "RuntimeError: boom"}]
    results = results_of(rows)
    facts = summary(results)
    assert facts["timed"] == 2 and facts["passed"] == 2 and facts["not_lowered"] == 1 and facts["failed"] == 1
    assert facts["geomean"]["eager"] == pytest.approx(statistics.geometric_mean([2.0, 1.5]))
    assert facts["geomean"]["torch.compile"] == pytest.approx(math.sqrt(1.1 * 0.5))
    assert facts["geomean_best"] == pytest.approx(math.sqrt(1.1 * 0.5))
    assert facts["memory_bound_ours_alone"] == 2 and facts["reaching_target"] == 1  # 90% and 50% of copy
    write_report(results, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert "| `act/relu` |" in text and "| 2.00 | 1.10 | memory | 90% |" in text
    assert "not lowered: a region with a scatter" in text and "failed: RuntimeError: boom" in text
    assert "3,000 GB/s (2,990 after the suite)" in text
    for plot in ("speedup.svg", "speed_of_light.svg"):
        tree = ElementTree.parse(tmp_path / plot)
        bars = [r for r in tree.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title")
                is not None]
        assert len(bars) == 4  # two problems, two bars each
    titles = [t.text for t in ElementTree.parse(tmp_path / "speedup.svg").iter("{http://www.w3.org/2000/svg}title")]
    assert "norm/softmax torch.compile: 0.500" in titles


def test_a_check_tolerates_a_multiple_of_eagers_error_where_eager_errs_more_than_the_dtypes() -> None:
    assert tolerance_for(torch.float32, 1e-7) == 1e-5  # the dtype's own
    assert tolerance_for(torch.float32, 3.5e-5) == pytest.approx(1.4e-4)  # a sum of 4096 float32 terms
    assert tolerance_for(torch.bfloat16, 1e-3) == 1.6e-2


def test_report_names_its_schedules_and_tolerance_rule() -> None:
    results = results_of([timed_row("act/relu", 1.0, 2.0, 1.1, 2_700_000_000)])
    assert "every kernel at its default schedule" in render(results)
    assert "never below" not in render(results)  # results written before the rule: the dtype's alone
    results["options"] = {"schedules": "papers/optimize/runs", "optimize_s": 0.0, "eager_slack": 4.0}
    text = render(results)
    assert "the best each `ptxgen optimize` run in `papers/optimize/runs` timed" in text
    assert "never below 4 times eager's own error" in text


def test_report_counts_glue_problems_out_of_the_bandwidth_target() -> None:
    results = results_of([timed_row("f/linear", 1.0, 1.0, 1.0, 2_900_000_000, glue=1)])
    assert summary(results)["memory_bound_ours_alone"] == 0
    assert "0 reach 85%" in render(results)


def test_problem_selection_and_its_errors(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    assert [p.name for p in problem_paths(suite, ())] == ["relu.py", "softmax.py"]
    assert [p.name for p in problem_paths(suite, ("norm/",))] == ["softmax.py"]
    with pytest.raises(BenchError, match="no problem file"):
        problem_paths(suite, ("nothing",))
    with pytest.raises(BenchError, match="not a folder"):
        problem_paths(tmp_path / "missing", ())


def test_bench_without_a_gpu_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", str(write_suite(tmp_path / "suite")), "--out", str(tmp_path / "out")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


def test_optimize_takes_seconds_and_replaces_recorded_schedules(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path / "suite"))
    for extra in (["--optimize", "0"], ["--optimize", "5", "--schedules", str(tmp_path)]):
        with pytest.raises(SystemExit):
            main(["bench", suite, "--out", str(tmp_path / "out"), *extra])


def test_searched_schedules_are_the_fastest_admitted_on_this_device(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    kernel = capture(load_problem(suite / "act" / "relu.py")).regions[0].kernel
    base = default_schedule(kernel, TARGET).to_dict()
    records = Records(run_folder(tmp_path / "runs", "act/relu"))
    for knobs, ms, device, verdict in [({"block_size": 128}, 0.9, "GPU A", "admitted"),
                                       ({"block_size": 512}, 0.7, "GPU A", "admitted"),
                                       ({"block_size": 1024}, 0.5, "GPU B", "admitted"),  # another device
                                       ({"block_size": 64}, 0.1, "GPU A", "proof"),  # refused
                                       ({"block_size": 256}, 0.2, "GPU A", "written")]:  # PTX a proposer wrote
        records.add(Attempt("relu", kernel.name, text_hash(format_kernel(kernel)), {**base, **knobs}, TARGET.name,
                            device, "seeds", verdict="admitted" if verdict == "written" else verdict, median_ms=ms,
                            written_ptx="// written\n" if verdict == "written" else ""))
    choose, used = searched_chooser(tmp_path / "runs", "act/relu", "GPU A")
    assert choose(kernel, TARGET) == schedule_from_dict({**base, "block_size": 512})
    assert used == {kernel.name: "search"}
    choose, used = searched_chooser(tmp_path / "runs", "act/relu", "GPU C")
    assert choose(kernel, TARGET) == default_schedule(kernel, TARGET) and used == {}
    choose, _ = searched_chooser(None, "act/relu", "GPU A")
    assert choose(kernel, TARGET) == default_schedule(kernel, TARGET)


def test_a_measurement_is_reused_only_for_the_same_module_device_and_timing() -> None:
    key = row_key("problem", "module", "GPU A", 15, True)
    assert key == row_key("problem", "module", "GPU A", 15, True)
    assert len({key, row_key("problem", "module'", "GPU A", 15, True), row_key("problem", "module", "GPU B", 15, True),
                row_key("problem", "module", "GPU A", 30, True), row_key("problem'", "module", "GPU A", 15, True),
                row_key("problem", "module", "GPU A", 15, False)}) == 6


# ---- GPU


@pytest.mark.gpu
def test_bench_checks_times_and_reuses_measurements(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", rows=4096)
    options = BenchOptions(suite, tmp_path / "out", reps=5, workers=2, log=lambda _: None)
    results = run_bench(options)
    assert [r["problem"] for r in results["problems"]] == ["act/relu", "norm/softmax"]
    for row in results["problems"]:
        assert row["odd"]["passed"] and row["full"]["passed"], row
        assert set(row["times"]) == {"ours", "eager", "torch.compile"}
        assert 0 < row["speed_of_light"]["fraction"]["ours"] <= 1.0
        assert not row.get("cached")
    again = run_bench(options)
    assert all(r.get("cached") for r in again["problems"])
    assert [r["times"] for r in again["problems"]] == [r["times"] for r in results["problems"]]
    write_report(again, tmp_path / "out")
    assert "2 timed (2 of them measured in an earlier run" in (tmp_path / "out" / "results.md").read_text()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["problems"][0]["problem"] == "act/relu"


@pytest.mark.gpu
def test_bench_can_search_first_and_then_uses_what_the_search_admitted(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", rows=4096)
    options = BenchOptions(suite, tmp_path / "out", reps=5, workers=2, optimize_s=3.0, log=lambda _: None)
    results = run_bench(options)
    assert results["options"]["optimize_s"] == 3.0
    for row in results["problems"]:
        assert (run_folder(tmp_path / "out" / "runs", row["problem"]) / "attempts.jsonl").exists()
        assert set(row["schedules"].values()) == {"search"}, row["schedules"]
        assert row["odd"]["passed"] and row["full"]["passed"]
