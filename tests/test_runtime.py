"""Running PTX: without a GPU the error says why; with one (tests marked gpu) kernels run,
bad PTX carries the driver's log, and launches beyond the target's limits are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ir import parse
from ptxgen.lower import LaunchConfig, lower
from ptxgen.runtime import GpuUnavailable, LaunchError, PtxLoadError, Runtime, check_launch
from ptxgen.schedule import ElementwiseSchedule
from ptxgen.targets import TARGETS

KERNEL = parse("kernel relu(%x: f32[1000]) -> (%y: f32[1000]) {\n"
               "  %z = const(0.0) : f32\n  %y = maximum(%x, %z)\n  return %y\n}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_without_a_gpu_running_says_why() -> None:
    with pytest.raises(GpuUnavailable, match="lowering and ptxas checks work without one"):
        Runtime()


def test_launches_beyond_the_target_are_refused_before_the_driver() -> None:
    lowered = lower(KERNEL, ElementwiseSchedule(), TARGETS["sm_90a"])
    too_big = dataclasses.replace(lowered, launch=LaunchConfig((1, 1, 1), (2048, 1, 1)))
    with pytest.raises(LaunchError, match="2048 threads per block exceed sm_90a's 1024"):
        check_launch(too_big, [], TARGETS["sm_90a"])
    with pytest.raises(LaunchError, match="takes 2 tensors, got 0"):
        check_launch(lowered, [], TARGETS["sm_90a"])


@pytest.mark.gpu
@pytest.mark.parametrize("use_ptxas", [True, False], ids=["cubin", "driver-jit"])
def test_a_kernel_runs_and_matches_torch(use_ptxas: bool) -> None:
    runtime = Runtime(use_ptxas=use_ptxas)
    lowered = lower(KERNEL, ElementwiseSchedule(), TARGETS["sm_90a"])
    x = torch.randn(1000, device="cuda")
    y = torch.full_like(x, float("nan"))
    runtime.launch(lowered, [x, y])
    torch.cuda.synchronize()
    assert torch.equal(y, torch.relu(x))


@pytest.mark.gpu
@pytest.mark.parametrize("use_ptxas", [True, False], ids=["cubin", "driver-jit"])
def test_ptx_the_driver_rejects_carries_its_log(use_ptxas: bool) -> None:
    runtime = Runtime(use_ptxas=use_ptxas)
    lowered = lower(KERNEL, ElementwiseSchedule(), TARGETS["sm_90a"])
    broken = dataclasses.replace(lowered, ptx=lowered.ptx.replace("max.NaN.f32", "maxx.f32"))
    with pytest.raises(PtxLoadError, match="maxx") as caught:
        runtime.load(broken)
    assert "line" in str(caught.value)


@pytest.mark.gpu
def test_model_new_on_the_gpu_matches_the_interpreter() -> None:
    """A captured problem at odd shapes: the emitted ModelNew against the IR interpreter in float64."""
    from conftest import PROBLEMS

    from ir.frontend import capture, load_problem, run_program
    from ptxgen.emit import emit_model_new, load_model_new
    from ptxgen.lower import lower_all
    from ptxgen.targets import default_target

    path = PROBLEMS / "elementwise" / "gelu_gate_bf16.py"
    problem = load_problem(path, sizes={"batch_size": 37, "dim": 1003})
    program = capture(problem)
    target = default_target()
    kernels = lower_all([r.kernel for r in program.regions], target)
    module = load_model_new(emit_model_new(path, program, kernels, target.name, problem.overrides))
    inputs = problem.inputs(seed=5)
    got = module.ModelNew(*problem.init_inputs()).cuda()(*[x.cuda() for x in inputs])
    (want,) = run_program(program, inputs)
    torch.testing.assert_close(got.cpu().double(), want, rtol=1.6e-2, atol=1e-2)
