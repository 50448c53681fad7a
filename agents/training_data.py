"""Training data from attempt records (`attempts.jsonl` of `ptxgen optimize` and of the search
papers): JSONL in the formats training libraries read (TRL's conversational prompt-completion and
preference formats; Hugging Face `datasets` loads them with `load_dataset("json", ...)`).

- `sft_schedule`: prompt = the region's IR and the target (the very prompt the LLM proposer sends,
  with no history); completion = the fastest admitted schedule, as the JSON the proposer's schema
  asks for. A model tuned on it answers `ptxgen optimize --llm` directly.
- `sft_ptx`: prompt = the IR, the target and the launch configuration; completion = the PTX of the
  fastest admitted kernel (lowered again here, or as a proposer wrote it), kept only if its hash is
  the one the gate checked.
- `preference_schedule`: chosen = an admitted schedule among the fastest; rejected = one measured
  slower by more than the noise margin in the same run, or one the gate refused.
- `trajectories`: each run's attempts at a region in the order they were judged, each with a reward
  gated on correctness (0 unless admitted) that grows with the log of the speedup over the run's
  reference (the default schedule's time).

Timings are compared only within one record file (measured side by side, same device). Rows whose
IR or PTX cannot be reproduced from the current sources (the IR hash or PTX hash differs) are
dropped and counted. The split is by problem: no problem is in both train and test."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agents.llm import SYSTEM as SCHEDULE_SYSTEM
from agents.llm import prompt, ptx_messages
from agents.proposers import Region
from agents.records import Attempt, candidate_key, read_attempts, schedule_key, text_hash
from ir.kernel import Kernel
from ir.printer import format_kernel
from ptxgen.lower import default_schedule, lower
from ptxgen.schedule import schedule_from_dict
from ptxgen.targets import Target, TargetError, get_target

NOISE_MARGIN = 0.03  # timings within 3% of each other are not a preference
TOP_CHOSEN = 3  # chosen sides of preference pairs: the fastest few of a region
REFUSED = frozenset({"ptxas", "proof", "emulator", "gpu", "crash"})  # the gate's refusals ("error" is ours)
MIN_REWARD = 0.05  # the least an admitted kernel earns, however slow
FILES = ("sft_schedule", "sft_ptx", "preference_schedule", "trajectories")
CPU_DEVICES = frozenset({"", "cpu"})


@dataclasses.dataclass(frozen=True)
class Episode:
    """One run's attempts at one region on one device, in the order they were judged."""

    source: str
    problem: str
    kernel: Kernel
    target: Target
    device: str
    attempts: tuple[Attempt, ...]

    @property
    def timed(self) -> list[Attempt]:
        """Admitted schedules (lowered, not PTX a proposer wrote) with a time, fastest first."""
        return [a for a in self.timed_kernels if not a.written_ptx]

    @property
    def timed_kernels(self) -> list[Attempt]:
        """Admitted kernels with a time, written PTX included, fastest first."""
        found = [a for a in self.attempts if a.admitted and a.median_ms is not None]
        return sorted(found, key=lambda a: (a.median_ms, candidate_key(a.schedule, a.written_ptx)))

    @property
    def reference_ms(self) -> float | None:
        """The default schedule's time in this run, else the median of the admitted times."""
        default = default_schedule(self.kernel, self.target).to_dict()
        for attempt in self.timed:
            if schedule_key(attempt.schedule) == schedule_key(default):
                return attempt.median_ms
        times = sorted(a.median_ms for a in self.timed if a.median_ms is not None)
        return times[len(times) // 2] if times else None


# ---- finding each record's region

def problem_index(problems: Path) -> dict[str, str]:
    """Each name records use for a problem (its file stem, or its path under the suite without
    `.py`) -> the path under the suite, the problem's one name in the datasets."""
    index: dict[str, str] = {}
    for path in sorted(problems.rglob("*.py")):
        canonical = str(path.relative_to(problems).with_suffix(""))
        index.update({path.stem: canonical, canonical: canonical})
    return index


class Kernels:
    """The regions of each problem, captured once, found by (problem, region name, IR hash)."""

    def __init__(self, problems: Path, log: Callable[[str], None]) -> None:
        self.problems, self.names, self.log = problems, problem_index(problems), log
        self.captured: dict[str, dict[str, Kernel] | str] = {}  # its regions, or why it cannot be captured

    def canonical(self, problem: str) -> str | None:
        return self.names.get(problem)

    def find(self, problem: str, region: str, ir_hash: str) -> Kernel | str:
        """The kernel of `problem` (a canonical name), or why none fits."""
        if problem not in self.captured:
            self.captured[problem] = self._capture(problem)
        regions = self.captured[problem]
        if isinstance(regions, str):
            return regions
        kernel = regions.get(region)
        if kernel is None:
            return "region not in the problem any more"
        return kernel if text_hash(format_kernel(kernel)) == ir_hash else "IR changed since it was recorded"

    def _capture(self, problem: str) -> dict[str, Kernel] | str:
        from ir.frontend import capture, load_problem

        self.log(f"capturing {problem}")
        try:
            program = capture(load_problem(self.problems / f"{problem}.py"))
        except Exception as err:  # a problem that no longer loads: its records are counted out, not fatal
            self.log(f"{problem}: {type(err).__name__}: {err}")
            return "problem does not capture any more"
        return {r.kernel.name: r.kernel for r in program.regions}


def episodes(sources: Iterable[Path], kernels: Kernels, skipped: Counter[str]) -> list[Episode]:
    """The records of each file grouped by (problem, region, target, device); attempts without a
    GPU time (CPU-only runs) and regions that cannot be reproduced are counted as skipped."""
    found: list[Episode] = []
    for source in sources:
        groups: dict[tuple[str, str, str, str, str], list[Attempt]] = {}
        for attempt in read_attempts(source):
            if attempt.device in CPU_DEVICES:
                skipped["no GPU time (recorded without a GPU)"] += 1
                continue
            problem = kernels.canonical(attempt.problem)
            if problem is None:
                skipped["problem not in the suite"] += 1
                continue
            key = (problem, attempt.region, attempt.ir_hash, attempt.target, attempt.device)
            groups.setdefault(key, []).append(attempt)
        for (problem, region, ir_hash, target_name, device), attempts in sorted(groups.items()):
            episode = _episode(str(source), problem, region, ir_hash, target_name, device, attempts, kernels)
            if isinstance(episode, str):
                skipped[episode] += len(attempts)
            else:
                found.append(episode)
    return found


def _episode(source: str, problem: str, region: str, ir_hash: str, target_name: str, device: str,
             attempts: list[Attempt], kernels: Kernels) -> Episode | str:
    try:
        target = get_target(target_name)
    except TargetError:
        return f"unknown target {target_name}"
    kernel = kernels.find(problem, region, ir_hash)
    if isinstance(kernel, str):
        return kernel
    ordered = tuple(sorted(attempts, key=lambda a: a.recorded))  # stable: same-second attempts keep file order
    return Episode(source, problem, kernel, target, device, ordered)


# ---- prompts and answers

def schedule_messages(kernel: Kernel, target: Target) -> list[dict[str, str]]:
    """The LLM proposer's own request for one schedule, with no history."""
    return [{"role": "system", "content": SCHEDULE_SYSTEM},
            {"role": "user", "content": prompt(Region(kernel, target), "", 1, [])}]


def schedule_answer(schedule: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": json.dumps({"schedules": [schedule]}, sort_keys=True)}]


def reward(attempt: Attempt, reference_ms: float | None) -> float:
    """0 unless admitted by the gate; else 1 + ln(reference / time), at least MIN_REWARD."""
    if not attempt.admitted or attempt.median_ms is None or not reference_ms:
        return 0.0
    return max(MIN_REWARD, 1.0 + math.log(reference_ms / attempt.median_ms))


def _proof(attempt: Attempt) -> str:
    return str(attempt.stages.get("proof", {}).get("status", "not run"))


def _common(episode: Episode) -> dict[str, Any]:
    return {"problem": episode.problem, "region": episode.kernel.name, "target": episode.target.name,
            "device": episode.device, "source": episode.source}


# ---- the four datasets

def sft_schedule_row(episode: Episode) -> dict[str, Any] | None:
    timed = episode.timed
    if not timed:
        return None
    best, reference = timed[0], episode.reference_ms
    return {"prompt": schedule_messages(episode.kernel, episode.target), "completion": schedule_answer(best.schedule),
            **_common(episode), "median_ms": best.median_ms,
            "speedup": (reference / best.median_ms) if reference and best.median_ms else None,
            "proof": _proof(best), "attempts": len(episode.attempts)}


def sft_ptx_row(episode: Episode, skipped: Counter[str]) -> dict[str, Any] | None:
    timed = episode.timed_kernels
    if not timed:
        return None
    best = timed[0]
    lowered = lower(episode.kernel, schedule_from_dict(best.schedule), episode.target)
    ptx = best.written_ptx or lowered.ptx  # what a proposer wrote, or the lowering's, at the schedule's launch
    if text_hash(ptx) != best.ptx_hash:
        skipped["PTX changed since it was checked (sft_ptx)"] += 1
        return None
    return {"prompt": ptx_messages(episode.kernel, episode.target, lowered.launch),
            "completion": [{"role": "assistant", "content": ptx}], **_common(episode),
            "median_ms": best.median_ms, "proof": _proof(best), "ptx_hash": best.ptx_hash,
            "written_by": best.proposer if best.written_ptx else "ptxgen"}


def preference_rows(episode: Episode) -> list[dict[str, Any]]:
    timed = episode.timed
    refused = [a for a in episode.attempts if a.verdict in REFUSED and not a.written_ptx]
    messages = schedule_messages(episode.kernel, episode.target)
    rows = []
    for chosen in timed[:TOP_CHOSEN]:
        assert chosen.median_ms is not None
        slower = [a for a in timed if a.median_ms is not None and a.median_ms > chosen.median_ms * (1 + NOISE_MARGIN)]
        for rejected in slower + refused:
            rows.append({"prompt": messages, "chosen": schedule_answer(chosen.schedule),
                         "rejected": schedule_answer(rejected.schedule), **_common(episode),
                         "chosen_ms": chosen.median_ms, "rejected_ms": rejected.median_ms,
                         "rejected_verdict": rejected.verdict, "chosen_proof": _proof(chosen)})
    return rows


def trajectory_row(episode: Episode) -> dict[str, Any]:
    reference = episode.reference_ms
    steps = [{"proposer": a.proposer, "schedule": json.dumps(a.schedule, sort_keys=True), "verdict": a.verdict,
              "feedback": a.feedback, "median_ms": a.median_ms, "proof": _proof(a), "reward": reward(a, reference),
              "written_ptx_hash": a.ptx_hash if a.written_ptx else ""}
             for a in episode.attempts]
    return {"prompt": schedule_messages(episode.kernel, episode.target), **_common(episode),
            "reference_ms": reference, "steps": steps, "best_reward": max((s["reward"] for s in steps), default=0.0)}


# ---- split, deduplication, output

def problem_split(problems: Iterable[str], test_fraction: float, test_problems: Iterable[str] = ()) -> dict[str, str]:
    """problem -> 'train' or 'test'. By a hash of the name (stable as problems are added) unless
    named; at least one problem on each side where there are two or more."""
    names = sorted(set(problems))
    named = set(test_problems)
    if named:
        return {p: "test" if p in named else "train" for p in names}
    fraction = {p: int(hashlib.sha256(p.encode()).hexdigest()[:8], 16) / 2**32 for p in names}
    split = {p: "test" if fraction[p] < test_fraction else "train" for p in names}
    if len(names) >= 2 and "test" not in split.values():
        split[min(names, key=fraction.__getitem__)] = "test"
    if len(names) >= 2 and "train" not in split.values():
        split[max(names, key=fraction.__getitem__)] = "train"
    return split


def _identity(row: dict[str, Any]) -> str:
    """What makes two rows the same example: the text a trainer sees."""
    keys = [k for k in ("prompt", "completion", "chosen", "rejected", "steps") if k in row]
    return json.dumps([row[k] for k in keys], sort_keys=True)


def deduplicated(rows: list[dict[str, Any]], skipped: Counter[str], name: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        identity = _identity(row)
        if identity in seen:
            skipped[f"duplicate ({name})"] += 1
            continue
        seen.add(identity)
        kept.append(row)
    return kept


Row = dict[str, Any]


def best_episode_rows(episodes_: list[Episode], make: Callable[[Episode], Row | None]) -> list[Row]:
    """One row per (region IR, target, device): from the run that timed the most admitted schedules."""
    best: dict[tuple[str, str, str], Episode] = {}
    for episode in episodes_:
        key = (format_kernel(episode.kernel), episode.target.name, episode.device)
        if key not in best or len(episode.timed) > len(best[key].timed):
            best[key] = episode
    rows = [make(e) for e in best.values()]
    return [r for r in rows if r is not None]


def datasets_of(found: list[Episode], skipped: Counter[str]) -> dict[str, list[dict[str, Any]]]:
    tables = {"sft_schedule": best_episode_rows(found, sft_schedule_row),
              "sft_ptx": best_episode_rows(found, lambda e: sft_ptx_row(e, skipped)),
              "preference_schedule": [r for e in found for r in preference_rows(e)],
              "trajectories": [trajectory_row(e) for e in found]}
    return {name: deduplicated(rows, skipped, name) for name, rows in tables.items()}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def build(sources: list[Path], problems: Path, out: Path, test_fraction: float = 0.2,
          test_problems: Iterable[str] = (), log: Callable[[str], None] = print) -> dict[str, Any]:
    """Writes OUT/{name}.{train,test}.jsonl for each dataset, OUT/card.json and OUT/README.md
    (the dataset card); returns the card."""
    skipped: Counter[str] = Counter()
    found = episodes(sources, Kernels(problems, log), skipped)
    tables = datasets_of(found, skipped)
    split = problem_split([e.problem for e in found], test_fraction, test_problems)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for name, rows in tables.items():
        counts[name] = {}
        for side in ("train", "test"):
            chosen = [r for r in rows if split[r["problem"]] == side]
            write_jsonl(out / f"{name}.{side}.jsonl", chosen)
            counts[name][side] = len(chosen)
    card = _card(sources, found, split, counts, skipped)
    card["proofs"] = {"sft_schedule": dict(Counter(r["proof"] for r in tables["sft_schedule"])),
                      "preference_schedule (chosen)": dict(Counter(r["chosen_proof"]
                                                                   for r in tables["preference_schedule"]))}
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out / "README.md").write_text(render_card(card))
    return card


def _source_facts(path: Path, found: list[Episode]) -> dict[str, Any]:
    attempts = [a for e in found if e.source == str(path) for a in e.attempts]
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "attempts_used": len(attempts), "devices": sorted({a.device for a in attempts}),
            "first": min((a.recorded for a in attempts), default=""),
            "last": max((a.recorded for a in attempts), default=""),
            "versions": sorted({json.dumps(a.versions, sort_keys=True) for a in attempts})}


def _card(sources: list[Path], found: list[Episode], split: dict[str, str], counts: dict[str, dict[str, int]],
          skipped: Counter[str]) -> dict[str, Any]:
    return {"built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sources": [_source_facts(p, found) for p in sources],
            "split": {side: sorted(p for p, s in split.items() if s == side) for side in ("train", "test")},
            "counts": counts, "skipped": dict(sorted(skipped.items())),
            "verdicts": dict(sorted(Counter(a.verdict for e in found for a in e.attempts).items())),
            "noise_margin": NOISE_MARGIN, "top_chosen": TOP_CHOSEN, "min_reward": MIN_REWARD}


def _counted(name: str, counts: dict[str, int]) -> str:
    return f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def render_card(card: dict[str, Any]) -> str:
    lines = ["# Training data from verified PTX search records", "",
             f"Built {card['built']} by `datasets/make_training_data.py` from attempt records of `ptxgen optimize` "
             "and the search papers. Licence: Apache-2.0, as the project.", "",
             "Load with Hugging Face `datasets`: `load_dataset(\"json\", data_files={\"train\": "
             "\"sft_schedule.train.jsonl\", \"test\": \"sft_schedule.test.jsonl\"})`. Prompts and completions are "
             "TRL's conversational format (lists of `{role, content}` messages).", "",
             "| file | train | test | what a row is |", "|---|---:|---:|---|"]
    meaning = {"sft_schedule": "IR + target -> the fastest admitted schedule (the LLM proposer's JSON answer)",
               "sft_ptx": "IR + target + launch -> the fastest admitted kernel's PTX (hash-checked)",
               "preference_schedule": f"chosen: one of the {card['top_chosen']} fastest admitted; rejected: "
                                      f"slower by more than {card['noise_margin']:.0%} in the same run, or refused by "
                                      "the gate",
               "trajectories": "a run's attempts in order, each with its verdict, time and reward"}
    lines += [f"| `{name}` | {c['train']} | {c['test']} | {meaning[name]} |" for name, c in card["counts"].items()]
    lines += ["", f"Split by problem (no problem on both sides). Test: {', '.join(card['split']['test']) or 'none'}. "
              f"Train: {', '.join(card['split']['train']) or 'none'}.", "",
              f"Reward: 0 unless the gate admitted the kernel (ptxas, proof not refuted, CPU emulator, GPU check); "
              f"else max({card['min_reward']}, 1 + ln(reference / time)), the reference being the default "
              "schedule's time in the same run. Each row's `proof` says whether the proof was complete "
              "(`proved`) or admitted as `inconclusive` (the reason is in the records).", "",
              "Proof status of the answers taught: " + "; ".join(_counted(n, c) for n, c in card["proofs"].items())
              + " (`skipped`: records of a search run without proofs; filter on the column to keep proved ones).", "",
              "Verdicts of the attempts used: " + ", ".join(f"{k} {v}" for k, v in card["verdicts"].items()) + ".",
              "", "## Sources", "", "| records | attempts used | devices | recorded | sha256 |",
              "|---|---:|---|---|---|"]
    lines += [f"| `{s['path']}` | {s['attempts_used']} | {', '.join(s['devices'])} | {s['first']} - {s['last']} | "
              f"`{s['sha256'][:16]}` |" for s in card["sources"]]
    lines += ["", "## Left out", ""]
    lines += [f"- {reason}: {count}" for reason, count in card["skipped"].items()] or ["- nothing"]
    return "\n".join(lines) + "\n"
