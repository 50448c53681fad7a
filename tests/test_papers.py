"""Tables in papers/ are generated: regenerating them from their results files changes nothing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import REPO

PAPERS = sorted(p.parent for p in (REPO / "papers").glob("*/render.py"))
# measured on a GPU; the others (proofs, mutation) on the CPU
GPU_PAPERS = {"suite_eager", "ptx_suite", "checker", "optimize", "search_efficiency", "bench", "bench_defaults",
              "bench_defaults_h200", "verified_ptx_h100", "long_row_costs",
              "logsumexp_launches", "scalar_unroll", "vocab_rows"}


@pytest.mark.parametrize("folder", PAPERS, ids=[p.name for p in PAPERS])
def test_tables_regenerate_from_results(folder: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"render_{folder.name}", folder / "render.py")
    render = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(render)  # type: ignore[union-attr]
    results = json.loads((folder / "results.json").read_text())
    environments = results.get("environments") or [results["environment"]]  # several runs, or one
    device = environments[0]["device"]
    assert device.startswith("NVIDIA") if folder.name in GPU_PAPERS else device
    assert (folder / "README.md").read_text() == render.render(results)


def test_every_paper_folder_is_generated() -> None:
    assert {p.name for p in PAPERS} >= GPU_PAPERS | {"proofs"}


def test_the_paper_is_collected_from_the_results_files_as_they_are() -> None:
    """papers/verified_ptx_h100 names each source by its hash: regenerating a source without the
    paper (python papers/verified_ptx_h100/render.py) leaves it stale, and this fails."""
    spec = importlib.util.spec_from_file_location("render_paper", REPO / "papers" / "verified_ptx_h100" / "render.py")
    render = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(render)  # type: ignore[union-attr]
    assert render.collect() == json.loads((REPO / "papers" / "verified_ptx_h100" / "results.json").read_text())
