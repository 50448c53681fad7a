"""Loading KernelBench-format problem files: `Model`, `get_inputs`, `get_init_inputs` and
module-level size constants, which can be overridden (or all shrunk) before inputs are made."""

from __future__ import annotations

import contextlib
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REQUIRED_NAMES = ("Model", "get_inputs")


class ProblemError(Exception):
    """A problem file that cannot be loaded, built or run; the message says which and why."""


@dataclass
class Problem:
    """A loaded problem. Size constants may be changed before `model()` and `inputs()`."""

    path: Path
    module: types.ModuleType
    overrides: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def size_constants(self) -> dict[str, int]:
        """Module-level integer constants (the problem's sizes), after overrides."""
        return {k: v for k, v in vars(self.module).items()
                if not k.startswith("_") and type(v) is int}

    def init_inputs(self) -> list[Any]:
        get_init_inputs = getattr(self.module, "get_init_inputs", None)
        return list(_call(self, get_init_inputs, "get_init_inputs()")) if get_init_inputs else []

    def inputs(self, seed: int = 0, device: str | None = None) -> list[Any]:
        """`get_inputs()` drawn after seeding torch with `seed` (on `device` if given: "meta" gives
        shapes and dtypes without data)."""
        torch.manual_seed(seed)
        with torch.device(device) if device else contextlib.nullcontext():
            return list(_call(self, self.module.get_inputs, "get_inputs()"))

    def model(self, seed: int = 0, device: str | None = None) -> torch.nn.Module:
        """`Model(*get_init_inputs())` built after seeding torch: the same weights every time."""
        torch.manual_seed(seed)
        with torch.device(device) if device else contextlib.nullcontext():
            init = self.init_inputs()
            model = _call(self, lambda: self.module.Model(*init), "Model(*get_init_inputs())")
        return model.eval()


def _call(problem: Problem, fn: Any, what: str) -> Any:
    try:
        return fn()
    except Exception as err:  # a user's code failed: report it as the problem's error
        raise ProblemError(f"{problem.path.name}: {what} failed: {describe_error(err, problem.path)}") from err


def describe_error(err: BaseException, path: Path) -> str:
    """`Type: message (file:line)` with the deepest frame in the problem file."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename) == path]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def _execute(path: Path) -> types.ModuleType:
    try:
        source = path.read_text()
    except OSError as err:
        raise ProblemError(f"cannot read problem file {path}: {err.strerror}") from None
    name = f"ptxgen_problem_{path.stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as err:
        raise ProblemError(f"{path.name}:{err.lineno}: syntax error: {err.msg}") from None
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as err:
        raise ProblemError(f"{path.name}: importing failed: {describe_error(err, path)}") from err
    finally:
        sys.modules.pop(name, None)
    return module


def load_problem(path: str | Path, sizes: Mapping[str, int] | None = None,
                 shrink_to: int | None = None) -> Problem:
    """Load `path`; `sizes` sets named constants, `shrink_to` caps every integer constant."""
    path = Path(path).resolve()
    module = _execute(path)
    missing = [n for n in REQUIRED_NAMES if not callable(getattr(module, n, None))]
    if missing:
        raise ProblemError(f"{path.name}: a KernelBench problem defines {', '.join(REQUIRED_NAMES)}; "
                           f"missing: {', '.join(missing)}")
    problem = Problem(path, module)
    constants = problem.size_constants()
    overrides = {k: shrink_to for k, v in constants.items() if shrink_to is not None and v > shrink_to}
    unknown = sorted(set(sizes or {}) - set(constants))
    if unknown:
        raise ProblemError(f"{path.name}: no size constant named {', '.join(unknown)}; "
                           f"its constants are {', '.join(sorted(constants)) or 'none'}")
    overrides.update(sizes or {})
    for key, value in overrides.items():
        setattr(module, key, value)
    problem.overrides = overrides
    return problem
