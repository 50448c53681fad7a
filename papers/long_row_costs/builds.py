"""On the CPU: the builds that papers/long_row_costs times. For each problem, its default
kernels as `ptxgen lower` writes them ("default"), and two edits of their PTX that compute wrong
values and are timed only, to tell what a row kernel shared by a cluster of CTAs pays for the
cluster:

- "nosync": no cluster barrier, and each CTA reads its own partials where it read its peers'
  (`mapa` to its own rank): the same loads, stores, arithmetic and launch, without waiting for the
  other CTAs of the cluster;
- "nocluster": the same, launched without clusters (no `.reqnctapercluster`; the rank and the
  cluster's index computed from %ctaid.x as the cluster launch numbers them): the same CTAs placed
  wherever the scheduler likes, not a cluster's worth at once in one GPC.

    python papers/long_row_costs/builds.py --out DIR [--match PARTS]

writes DIR/{default,nosync,nocluster}/FOLDER/model_new.py (FOLDER: the problem's path below
datasets/problems with '/' as '__'), each edited kernel assembled by ptxas first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ptxgen.ptxas import assemble  # noqa: E402

PROBLEMS = tuple(f"rowsweep/{op}_{dtype}_{length}" for length in (65536, 262144)
                 for op in ("softmax", "layernorm", "rmsnorm", "logsumexp") for dtype in ("f32", "bf16"))
EMBEDDED_PTX = re.compile(r"\"ptx\": '''\\\n(.*?)'''", re.S)
EDITS = {"nosync": False, "nocluster": True}  # build -> launched without clusters


def unsynchronised(ptx: str, without_clusters: bool) -> str:
    """The kernel with no cluster barrier, each CTA reading its own partials (rank 0, its only
    one, where launched without clusters)."""
    rank = re.search(r"mov\.u32 (%r\d+), %cluster_ctarank;", ptx)
    if rank is None:
        return ptx
    ptx = re.sub(r"\n\s*barrier\.cluster\.[\w.]+;", "", ptx)
    own = "0" if without_clusters else rank.group(1)
    ptx = re.sub(r"(mapa\.shared::cluster\.u32 %r\d+, %r\d+), \d+;", rf"\1, {own};", ptx)
    return _unclustered(ptx, rank.group(1)) if without_clusters else ptx


def _unclustered(ptx: str, rank: str) -> str:
    size = int(re.search(r"\.reqnctapercluster (\d+)", ptx).group(1))  # type: ignore[union-attr]
    shift = size.bit_length() - 1
    ptx = re.sub(r"\.reqnctapercluster \d+, 1, 1\n", "", ptx)
    ptx = ptx.replace(f"mov.u32 {rank}, %cluster_ctarank;",
                      f"mov.u32 {rank}, %ctaid.x;\n\tand.b32 {rank}, {rank}, {size - 1};")
    for special, counted in (("%clusterid.x", "%ctaid.x"), ("%nclusterid.x", "%nctaid.x")):
        found = re.search(rf"mov\.u32 (%r\d+), {re.escape(special)};", ptx)
        if found is not None:
            r = found.group(1)
            ptx = ptx.replace(found.group(0), f"mov.u32 {r}, {counted};\n\tshr.u32 {r}, {r}, {shift};")
    return ptx


def edited_module(source: str, without_clusters: bool) -> str:
    for ptx in EMBEDDED_PTX.findall(source):
        edited = unsynchronised(ptx, without_clusters)
        assemble(edited, "sm_90a")
        source = source.replace(ptx, edited)
    if without_clusters:
        source = re.sub(r"\"cluster\": \d+,", "\"cluster\": 1,", source)
    return source


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    parts = [m for m in args.match.split(",") if m]
    for name in PROBLEMS:
        if parts and not any(m in name for m in parts):
            continue
        folder = name.replace("/", "__")
        default = args.out / "default" / folder
        subprocess.run([sys.executable, "-m", "ptxgen.cli", "lower", str(REPO / "datasets" / "problems" / f"{name}.py"),
                        "--out", str(default)], check=True, cwd=REPO, capture_output=True)
        source = (default / "model_new.py").read_text()
        for build, without_clusters in EDITS.items():
            (args.out / build / folder).mkdir(parents=True, exist_ok=True)
            (args.out / build / folder / "model_new.py").write_text(edited_module(source, without_clusters))
        print(f"{name}: {len(EMBEDDED_PTX.findall(source))} kernel(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
