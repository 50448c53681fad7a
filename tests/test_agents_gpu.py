"""The GPU worker's evaluator and `ptxgen optimize` end to end, on the GPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import PROBLEMS
from test_agents import SQUARE, TARGET

from agents.supervisor import OptimizeOptions, Supervisor
from agents.workers import Worker
from ir import format_kernel
from ptxgen.lower import default_schedule, lower

pytestmark = pytest.mark.gpu


def job(ptx: str | None = None) -> dict[str, object]:
    lowered = lower(SQUARE, default_schedule(SQUARE, TARGET), TARGET)
    return {"kernel": format_kernel(SQUARE), "ptx": ptx or lowered.ptx, "launch": dataclasses.asdict(lowered.launch),
            "params": list(lowered.params), "target": TARGET.name, "schedule": lowered.schedule.to_dict()}


def test_the_gpu_worker_checks_and_times_a_kernel_and_rejects_a_wrong_one() -> None:
    worker = Worker(0)
    try:
        described = worker.evaluate({"describe": True})
        assert described["status"] == "passed" and described["copy_gb_per_s"] > 100
        right = worker.evaluate(job())
        assert right["status"] == "passed" and right["timing"]["median_ms"] > 0, right
        assert right["moved_bytes"] == 2 * 64 * 4096 * 4
        wrong = worker.evaluate(job(str(job()["ptx"]).replace("mul.rn.f32", "add.rn.f32", 1)))
        assert wrong["status"] == "failed" and "expected" in wrong["reasons"][0], wrong
    finally:
        worker.close()


def test_optimize_on_the_gpu_times_candidates_and_checks_the_module(tmp_path: Path) -> None:
    options = OptimizeOptions(TARGET, budget_s=60, max_trials=6, sizes={"batch_size": 64, "dim": 65536},
                              log=lambda line: None)
    report = Supervisor(PROBLEMS / "elementwise" / "relu_f32.py", tmp_path, options).run()
    (region,) = report["regions"]
    assert region["best"]["median_ms"] > 0 and 0 < region["best"]["of_copy"] < 1.2
    assert report["check"]["timing"]["eager"] > 0
    assert report["module"]["kind"] == "ptx" or "slower than" in report["module"]["reason"]
    assert json.loads((tmp_path / "report.json").read_text())["device"].startswith("NVIDIA")


def test_the_python_api_returns_a_module_that_computes_what_the_model_does(tmp_path: Path) -> None:
    import torch
    from test_agents import ScaledGelu

    import ptxgen

    model, x = ScaledGelu().cuda(), torch.randn(4096, 256, device="cuda")
    optimized = ptxgen.optimize(model, [x], out=tmp_path, budget_s=30, max_trials=4, log=lambda line: None)
    torch.testing.assert_close(optimized(x), model(x), rtol=1e-5, atol=1e-5)
    assert optimized.report["device"].startswith("NVIDIA")
