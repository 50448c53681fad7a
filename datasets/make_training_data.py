"""Build training datasets (supervised pairs, preference pairs, trajectories with rewards) from
attempt records, split by problem, with a dataset card. See agents/training_data.py for what each
file holds. Run from the repository root:

    python datasets/make_training_data.py --out datasets/training            # the committed records
    python datasets/make_training_data.py --out DIR RUN_DIR/attempts.jsonl ...  # other records
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.training_data import build  # noqa: E402

DEFAULT_SOURCES = ("papers/optimize/runs/*/attempts.jsonl", "papers/search_efficiency/attempts.jsonl")


def sources(given: list[str]) -> list[Path]:
    """The records files given, or the committed ones; relative to the repository where inside it."""
    paths = [Path(p) for p in given] if given else [p for g in DEFAULT_SOURCES for p in sorted(REPO.glob(g))]
    resolved = [p.resolve() for p in paths]
    missing = [str(p) for p in resolved if not p.is_file()]
    if missing:
        raise SystemExit(f"no records file at: {', '.join(missing)}")
    return [p.relative_to(REPO) if p.is_relative_to(REPO) else p for p in resolved]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="*", help="attempts.jsonl files (default: the committed records)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--problems", type=Path, default=REPO / "datasets" / "problems")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of problems (by a hash of the name) put in the test split")
    parser.add_argument("--test-problems", default="", help="comma-separated problem names for the test split")
    args = parser.parse_args()
    found = sources(args.records)
    os.chdir(REPO)  # records inside the repository are read, and named in the card, relative to it
    card = build(found, args.problems.resolve(), args.out.resolve(), args.test_fraction,
                 [p for p in args.test_problems.split(",") if p])
    for name, counts in card["counts"].items():
        print(f"{name}: {counts['train']} train, {counts['test']} test")
    for reason, count in card["skipped"].items():
        print(f"left out: {reason}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
