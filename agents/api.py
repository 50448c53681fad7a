"""`ptxgen.optimize(model, example_inputs, target=...)`: the search on a model instance, in the
spirit of `torch.compile`. The model and the example inputs are saved beside a problem file that
loads them (KernelBench format), the supervisor runs on it, and the module it writes is returned
built on the caller's own model, so that it shares its parameters."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agents.supervisor import OptimizeOptions, Supervisor

PROBLEM = '''"""Written by ptxgen.optimize: the model and example inputs it was given, saved beside this file."""

from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.load(_HERE / "model.pt", weights_only=False)

    def forward(self, *inputs):
        return self.model(*inputs)


def get_inputs():
    return [t.clone() for t in torch.load(_HERE / "inputs.pt")]


def get_init_inputs():
    return []
'''


def write_problem(model: torch.nn.Module, example_inputs: Sequence[torch.Tensor], folder: Path) -> Path:
    """The problem file for `model` on `example_inputs` (both saved on the CPU beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(copy.deepcopy(model).cpu().eval(), folder / "model.pt")
    torch.save([t.detach().cpu() for t in example_inputs], folder / "inputs.pt")
    path = folder / "problem.py"
    path.write_text(PROBLEM)
    return path


def optimize(model: torch.nn.Module, example_inputs: Sequence[torch.Tensor], target: str | None = None,
             out: str | Path | None = None, **options: Any) -> torch.nn.Module:
    """A drop-in module for `model` on inputs shaped like `example_inputs`: our verified kernels
    where they won, PyTorch where not (`module.report` says which, and why). `options` are
    OptimizeOptions' fields (budget_s, max_trials, require_proof, gpu, ...); `out` keeps the run
    (records, report, model_new.py) and lets it resume."""
    from ptxgen.emit import load_model_new
    from ptxgen.targets import default_target, get_target

    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="ptxgen-"))
    problem = write_problem(model, example_inputs, folder / "problem")
    if type(model).__module__ == "__main__":
        options.setdefault("final_check", False)  # the checker's own process could not unpickle the model
    settings = OptimizeOptions(get_target(target) if target else default_target(), **options)
    report = Supervisor(problem, folder, settings).run()
    module = load_model_new((folder / "model_new.py").read_text(), f"ptxgen_optimized_{id(model):x}")
    module._HERE = problem.parent  # the saved model, which the module's Model loads first
    optimized = module.ModelNew()
    optimized.reference.model = model  # the caller's parameters, not the saved copy's
    optimized.report = report
    device = next((t.device for t in example_inputs if isinstance(t, torch.Tensor)), torch.device("cpu"))
    return optimized.to(device)
