"""How many thread-block clusters of each long-row schedule the GPU holds at once
(cuOccupancyMaxActiveClusters), against the SMs it has: clusters must fit within one GPC, so a
cluster size that does not divide a GPC's CTA slots leaves SMs idle.

    python papers/ptx_suite/clusters.py --out FILE   (then: run.py --out papers/ptx_suite --merge results.json FILE)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ir.frontend.capture import capture  # noqa: E402
from ir.frontend.problem import load_problem  # noqa: E402
from ptxgen import launcher  # noqa: E402
from ptxgen.lower import default_schedule, lower  # noqa: E402
from ptxgen.runtime import Runtime  # noqa: E402
from ptxgen.schedule import ScheduleError, schedule_from_dict  # noqa: E402
from ptxgen.targets import default_target  # noqa: E402

PROBLEMS = [f"rowsweep/{kind}_{dtype}_{n}" for kind in ("softmax", "layernorm") for dtype in ("bf16", "f32")
            for n in (65536, 262144)]
VARIANTS = [dict(threads_per_row=t, block_size=t, cluster=k, cache_row=False, shared_row=True, unroll=2, online=False)
            for t in (256, 512, 1024) for k in (2, 4, 8, 16)]


def active_clusters(function: Any, grid: int, block: int, cluster: int, shared: int) -> int:
    cu = launcher.driver()
    attributes = cu.CUfunction_attribute
    launcher.check(cu.cuFuncSetAttribute(function, attributes.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared),
                   "cuFuncSetAttribute")
    launcher.check(cu.cuFuncSetAttribute(function, attributes.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                   "cuFuncSetAttribute")
    config = cu.CUlaunchConfig()
    config.gridDimX, config.gridDimY, config.gridDimZ = grid, 1, 1
    config.blockDimX, config.blockDimY, config.blockDimZ = block, 1, 1
    config.sharedMemBytes = shared
    attribute = cu.CUlaunchAttribute()
    attribute.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
    attribute.value.clusterDim.x, attribute.value.clusterDim.y, attribute.value.clusterDim.z = cluster, 1, 1
    config.attrs = [attribute]
    config.numAttrs = 1
    return int(launcher.check(cu.cuOccupancyMaxActiveClusters(function, config), "cuOccupancyMaxActiveClusters"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runtime = Runtime()
    target = default_target()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = []
    for name in PROBLEMS:
        (region,) = capture(load_problem(REPO / "datasets" / "problems" / f"{name}.py"), shapes_only=True).regions
        kernel = region.kernel
        for knobs in [{}] + VARIANTS:
            try:
                schedule = schedule_from_dict({**default_schedule(kernel, target).to_dict(), **knobs})
                lowered = lower(kernel, schedule, target)
            except ScheduleError:
                continue
            launch = lowered.launch
            cluster, block = launch.cluster[0], launch.block[0]
            held = active_clusters(runtime.load(lowered), launch.grid[0], block, cluster, launch.shared_bytes)
            row = {"problem": name, "default": not knobs, "block": block, "cluster": cluster,
                   "shared_bytes": launch.shared_bytes, "active_clusters": held, "active_ctas": held * cluster,
                   "sms": sms}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "date": date, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
