"""On the CPU, from the pools run.py measured (attempts.jsonl): how many trials search needs to
reach within 3% of the fastest schedule in a region's pool, guided by the cost model or at random.

- Random: drawing the pool in random order without replacement, the expected trial of the first
  schedule within 3% of the best is (N + 1) / (K + 1), for N candidates of which K are that fast.
- Cost model: trained first on the other problems' attempts only (leave one problem out), it ranks
  the pool; the top candidate is tried, its result (a time, or a rejection) joins the training
  set, the model is fitted again, and so on until a schedule within 3% of the best is tried.
  Deterministic.

Writes results.json; render.py makes README.md from it.

    python papers/search_efficiency/replay.py [--records FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agents.cost_model import CostModel, features, training_set  # noqa: E402
from agents.records import Attempt, read_attempts  # noqa: E402

WITHIN = 1.03
MIN_POOL = 8  # timed candidates a region needs to be replayed


def guided_trials(pool: list[Attempt], history: list[Attempt], goal: float) -> int:
    """The trial at which the cost-model-guided order first reaches `goal` (ms)."""
    tried: list[Attempt] = []
    left = list(pool)
    while left:
        found = training_set(history + tried)
        if found is None:
            pick = left[0]
        else:
            model = CostModel.fit(*found)
            rows = np.array([features(a.kernel_features, a.schedule, a.resources) for a in left])
            pick = left[int(np.argmin(model.predict(rows)))]
        left.remove(pick)
        tried.append(pick)
        if pick.admitted and pick.median_ms is not None and pick.median_ms <= goal:
            return len(tried)
    return len(tried)


def replay(attempts: list[Attempt]) -> dict[str, Any]:
    regions: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        regions.setdefault((a.problem, a.region), []).append(a)
    rows = []
    for (problem, region), pool in sorted(regions.items()):
        timed = [a.median_ms for a in pool if a.admitted and a.median_ms is not None]
        if len(timed) < MIN_POOL:
            continue
        goal = min(timed) * WITHIN
        hits = sum(t <= goal for t in timed)
        history = [a for a in attempts if a.problem != problem]
        default = pool[0]  # run.py records the default schedule first
        rows.append({"problem": problem, "region": region, "pool": len(pool), "timed": len(timed), "within": hits,
                     "best_ms": min(timed), "default_ms": default.median_ms,
                     "random_trials": (len(pool) + 1) / (hits + 1),
                     "guided_trials": guided_trials(pool, history, goal)})
    environments = sorted({(a.device, a.recorded[:10], a.versions.get("torch", ""), a.versions.get("cuda", ""))
                           for a in attempts})
    return {"within": WITHIN, "regions": rows,
            "environments": [{"device": d, "date": day, "torch": t, "cuda": c} for d, day, t, c in environments]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--records", type=Path, default=here / "attempts.jsonl")
    parser.add_argument("--out", type=Path, default=here)
    args = parser.parse_args()
    results = replay(list(read_attempts(args.records)))
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
