"""Static checks of candidate sources: every cheat in a corpus is found by its rule, and no
legitimate candidate is refused (each suite problem as its own ModelNew, an emitted drop-in)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from conftest import PROBLEMS, problem_files

from ptxgen import cli
from verify.static_checks import RULES, check_source

SOFTMAX = PROBLEMS / "reduction" / "softmax_f32.py"
MATMUL_ONLY = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(64, 64), torch.randn(64, 64)]
"""


def candidate(forward: str, init: str = "pass", prelude: str = "", base: str = "nn.Module") -> str:
    """A ModelNew whose forward and __init__ bodies are given; `_kernel` stands for a kernel of its own."""
    return "\n".join([
        "import torch", "import torch.nn as nn", "import torch.nn.functional as F", textwrap.dedent(prelude),
        "def _kernel(x):", "    return torch.empty_like(x)", "",
        f"class ModelNew({base}):", "    def __init__(self):", "        super().__init__()",
        textwrap.indent(textwrap.dedent(init), " " * 8), "",
        "    def forward(self, x):", textwrap.indent(textwrap.dedent(forward), " " * 8), ""])


CHEATS: dict[str, tuple[str, str]] = {
    "torch side stream": (candidate("""
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            return _kernel(x)"""), "side-stream"),
    "stream in inline CUDA": (candidate("return _kernel(x)", prelude='''
        from torch.utils.cpp_extension import load_inline
        SRC = """
        torch::Tensor run(torch::Tensor x) {
            cudaStream_t s; cudaStreamCreate(&s);
            return x;
        }"""
        mod = load_inline("m", cpp_sources=SRC, functions=["run"])'''), "side-stream"),
    "set_stream": (candidate("torch.cuda.set_stream(self.s)\nreturn _kernel(x)"), "side-stream"),
    "thread pool": (candidate("return self.pool.submit(_kernel, x).result()", prelude="""
        from concurrent.futures import ThreadPoolExecutor""", init="self.pool = ThreadPoolExecutor(2)"),
        "concurrency"),
    "thread": (candidate("threading.Thread(target=_kernel, args=(x,)).start()\nreturn x",
                         prelude="import threading"), "concurrency"),
    "fork": (candidate("os.fork()\nreturn _kernel(x)", prelude="import os"), "concurrency"),
    "patched synchronize": (candidate("return _kernel(x)", prelude="torch.cuda.synchronize = lambda: None"),
                            "patching"),
    "patched elapsed_time": (candidate("torch.cuda.Event.elapsed_time = lambda s, e: 1e-3\nreturn _kernel(x)"),
                             "patching"),
    "setattr on time": (candidate("return _kernel(x)", prelude="""
        import time as clock
        setattr(clock, "perf_counter", lambda: 0.0)"""), "patching"),
    "builtins": (candidate("return _kernel(x)", prelude="import builtins\nbuiltins.print = None"), "patching"),
    "tensor subclass": (candidate("return Lazy(x)", prelude="""
        class Lazy(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return super().__torch_function__(func, types, args, kwargs)"""), "lazy-result"),
    "wrapper subclass": (candidate("return torch.Tensor._make_wrapper_subclass(Lazy, x.shape)"), "lazy-result"),
    "future": (candidate("return torch.jit.fork(_kernel, x)"), "lazy-result"),
    "except fallback": (candidate("""
        try:
            return _kernel(x)
        except RuntimeError:
            return self.slow(x)"""), "fallback"),
    "import Model": (candidate("return _kernel(x)", prelude="from problem import Model"), "fallback"),
    "subclass Model": (candidate("return super().forward(x)", prelude="class Model(nn.Module): pass",
                                 base="Model"), "fallback"),
    "held Model called": (candidate("return self.ref(x)", init="self.ref = Model()"), "fallback"),
    "held submodule called": (candidate("return self.ref.norm(x)", init="self.ref = Model()"), "fallback"),
    "F.softmax": (candidate("return F.softmax(x, dim=-1)"), "reference-op"),
    "tensor method": (candidate("y = _kernel(x)\nreturn y.softmax(-1)"), "reference-op"),
    "nn module": (candidate("return self.sm(x)", init="self.sm = nn.Softmax(dim=-1)"), "reference-op"),
    "aten op": (candidate("return torch.ops.aten._softmax.default(x, -1, False)"), "reference-op"),
    "helper calls it": (candidate("return helper(x)", prelude="def helper(t):\n    return torch.softmax(t, 1)"),
                        "reference-op"),
    "renamed op": (candidate("return sm(x, 1)", prelude="functional = torch.nn.functional\nsm = functional.softmax"),
                   "reference-op"),
    "getattr op": (candidate("return getattr(torch, 'softmax')(x, 1)"), "reference-op"),
    "data_ptr key": (candidate("""
        key = x.data_ptr()
        if key not in self.cache:
            self.cache[key] = _kernel(x)
        return self.cache[key]"""), "identity-cache"),
    "id test": (candidate("return self.out if id(x) == self.last else _kernel(x)"), "identity-cache"),
    "same input object": (candidate("return self.out if x is self.last else _kernel(x)"), "identity-cache"),
    "lru_cache": (candidate("return cached(x)", prelude="""
        import functools

        @functools.lru_cache(maxsize=None)
        def cached(t):
            return _kernel(t)"""), "identity-cache"),
    "tf32": (candidate("return _kernel(x)", prelude="torch.backends.cuda.matmul.allow_tf32 = True"), "precision"),
    "matmul precision": (candidate("return _kernel(x)", init='torch.set_float32_matmul_precision("high")'),
                         "precision"),
    "half in forward": (candidate("return _kernel(x.half()).float()"), "precision"),
    "to bfloat16": (candidate("return _kernel(x.to(dtype=torch.bfloat16)).float()"), "precision"),
    "exec": (candidate("return _kernel(x)", prelude="exec('import torch')"), "dynamic-code"),
    "sys.modules": (candidate("return sys.modules['__main__'].reference(x)", prelude="import sys"), "dynamic-code"),
}


@pytest.mark.parametrize("name", CHEATS)
def test_each_cheat_is_found_by_its_rule_alone(name: str) -> None:
    source, rule = CHEATS[name]
    findings = check_source(source, SOFTMAX.read_text())
    assert {f.rule for f in findings} == {rule}, findings
    assert all(f.message.startswith(f"candidate.py:{f.line}: ") for f in findings)


def test_every_rule_has_a_cheat() -> None:
    assert set(RULES) == {rule for _, rule in CHEATS.values()}


def test_glue_ops_are_allowed_unless_they_are_all_the_reference_does() -> None:
    glue = candidate("return _kernel(torch.matmul(x, x))")
    assert check_source(glue, SOFTMAX.read_text()) == []
    [finding] = check_source(glue, MATMUL_ONLY)
    assert finding.rule == "reference-op" and "runs every op of the reference" in finding.message


def test_casts_are_findings_only_against_float32_inputs() -> None:
    bf16 = PROBLEMS / "reduction" / "layernorm_bf16.py"
    assert check_source(CHEATS["half in forward"][0], bf16.read_text()) == []
    assert check_source(CHEATS["half in forward"][0]) == []


def test_legitimate_patterns_pass() -> None:
    source = candidate("""
        if x.data_ptr() % 16 != 0 or x.data_ptr() == 0:
            x = x.contiguous().clone()
        if self.bias is None and x.data_ptr() != self.out.data_ptr():
            stream = torch.cuda.current_stream().cuda_stream
        return _kernel(load() and x.float()).view(x.shape)""", prelude="""
        def load():
            try:
                from cuda.bindings import driver
            except ImportError as err:
                raise RuntimeError(f"no driver: {type(err).__name__}") from err
            return driver
        """, init="self.bias = None\nself.reference = Model()\nself.w = self.reference.get_parameter('w')")
    assert check_source(source, SOFTMAX.read_text()) == []
    holder = candidate("return ext.layer_norm(x, self.norm.weight, self.norm.bias)",
                       init="self.norm = nn.LayerNorm(64)", prelude="ext = load_inline('ln', functions=['layer_norm'])")
    assert check_source(holder, (PROBLEMS / "reduction" / "layernorm_f32.py").read_text()) == []


def test_findings_carry_lines_and_messages() -> None:
    source = candidate("return F.softmax(x, dim=-1)")
    [finding] = check_source(source, SOFTMAX.read_text(), filename="mine.py")
    line = source.splitlines().index("        return F.softmax(x, dim=-1)") + 1
    assert finding.line == line
    assert finding.message.startswith(f"mine.py:{line}: a call of torch.nn.functional.softmax, the reference's own "
                                      "op torch.softmax")


def test_a_syntax_error_is_a_finding() -> None:
    [finding] = check_source("class ModelNew(nn.Module):\n    def forward(self, x)\n        return x\n")
    assert (finding.rule, finding.line) == ("syntax", 2)


@pytest.mark.parametrize("path", problem_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_problem_as_its_own_candidate_passes_every_rule_but_reference_op(path: Path) -> None:
    source = path.read_text()
    findings = check_source(re.sub(r"\bclass Model\b", "class ModelNew", source), source, path.name)
    assert [f for f in findings if f.rule != "reference-op"] == []


def test_an_emitted_drop_in_passes_every_rule(tmp_path: Path) -> None:
    assert cli.main(["lower", str(SOFTMAX), "--out", str(tmp_path), "--shrink", "64"]) == 0
    assert check_source((tmp_path / "model_new.py").read_text(), SOFTMAX.read_text(), "model_new.py") == []
