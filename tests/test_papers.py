"""Tables in papers/ are generated: regenerating them from their results files changes nothing."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO


def test_suite_eager_table_regenerates_from_results() -> None:
    folder = REPO / "papers" / "suite_eager"
    spec = importlib.util.spec_from_file_location("render", folder / "render.py")
    render = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(render)  # type: ignore[union-attr]
    results = json.loads((folder / "results.json").read_text())
    assert results["environment"]["device"].startswith("NVIDIA")
    assert (folder / "README.md").read_text() == render.render(results)
