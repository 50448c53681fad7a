"""The LLM proposer: a chat model behind the OpenAI-compatible API that vLLM serves
(`--llm URL`, e.g. http://localhost:8000/v1, `--llm-model NAME`). Its prompt carries the region's
IR, the target's machine model, the user's hint and the attempts so far with their verdicts (the
gate's feedback: ptxas errors, counterexamples, GPU failures, times). Its answer is constrained by
a JSON schema of the region's schedules (each knob an enum of the values the target allows),
sent as `response_format` (vLLM's structured outputs). What comes back malformed, off the schema
or invalid for the kernel proposes nothing and is told to the model in the next prompt; the loop
goes on either way."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any

from agents.proposers import Region, knob_values, valid
from agents.records import Attempt, schedule_key
from ir.printer import format_kernel
from ptxgen.lower import default_schedule
from ptxgen.schedule import Schedule, ScheduleError, schedule_from_dict
from ptxgen.targets import Target

HISTORY = 24  # the latest attempts shown in the prompt
REQUEST_TIMEOUT_S = 120.0
SYSTEM = ("You tune schedules of GPU kernels written in PTX. You answer with JSON only, following the schema: "
          "schedules you expect to run fastest that have not been tried yet. Every schedule you propose is "
          "lowered, assembled, proved equal to the IR, emulated, checked on the GPU and timed.")


def schedule_schema(region: Region) -> dict[str, Any]:
    """The JSON schema of a list of the region's schedules: every knob an enum of its values."""
    kind = default_schedule(region.kernel, region.target).to_dict()["kind"]
    knobs = knob_values(region.kernel, region.target)
    properties: dict[str, Any] = {"kind": {"type": "string", "enum": [kind]}}
    for name, values in knobs.items():
        properties[name] = {"type": "boolean"} if all(isinstance(v, bool) for v in values) else \
            {"type": "integer", "enum": list(values)}
    item = {"type": "object", "properties": properties, "required": sorted(properties), "additionalProperties": False}
    return {"type": "object", "properties": {"schedules": {"type": "array", "items": item}},
            "required": ["schedules"], "additionalProperties": False}


def machine_model(target: Target) -> str:
    return (f"{target.name} ({target.product}): {target.sm_count} SMs, {target.max_threads_per_sm} threads and "
            f"{target.shared_memory_per_sm // 1024} KiB shared memory per SM, {target.l2_bytes // 2**20} MiB L2, "
            f"{target.dram_bandwidth / 1e12:.2f} TB/s DRAM, clusters of up to {target.max_cluster_size} CTAs, "
            f"features: {', '.join(sorted(f.value for f in target.features))}")


def _history_line(attempt: Attempt) -> str:
    knobs = json.dumps(attempt.schedule, sort_keys=True)
    if attempt.admitted and attempt.median_ms is not None:
        return f"- {knobs}: admitted, {attempt.median_ms * 1e3:.1f} us"
    return f"- {knobs}: {attempt.verdict}" + (f" ({attempt.feedback[:300]})" if attempt.feedback else "")


def prompt(region: Region, hint: str, count: int, notes: list[str]) -> str:
    lines = [f"The kernel, in our IR:\n\n{format_kernel(region.kernel)}", f"The GPU: {machine_model(region.target)}."]
    if hint:
        lines.append(f"The user's hint: {hint}")
    tried = region.attempts[-HISTORY:]
    if tried:
        lines.append("Attempts so far (schedule: verdict):\n" + "\n".join(_history_line(a) for a in tried))
    if notes:
        lines.append("Your previous answers could not be used:\n" + "\n".join(f"- {n}" for n in notes[-4:]))
    lines.append(f"Propose {count} new schedules, fastest first.")
    return "\n\n".join(lines)


@dataclasses.dataclass
class LlmProposer:
    url: str
    model: str = "default"
    hint: str = ""
    timeout_s: float = REQUEST_TIMEOUT_S
    notes: list[str] = dataclasses.field(default_factory=list)  # what went wrong with its answers, told back to it
    name: str = "llm"

    def propose(self, region: Region, count: int) -> list[Schedule]:
        body = {"model": self.model, "temperature": 0.7,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": prompt(region, self.hint, count, self.notes)}],
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "schedules", "schema": schedule_schema(region),
                                                    "strict": True}}}
        try:
            content = self._chat(body)
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as err:
            self.notes.append(f"the request failed: {err}")
            return []
        return self._schedules(region, content, count)

    def _chat(self, body: dict[str, Any]) -> str:
        request = urllib.request.Request(self.url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            answer = json.loads(response.read())
        return str(answer["choices"][0]["message"]["content"])

    def _schedules(self, region: Region, content: str, count: int) -> list[Schedule]:
        try:
            proposed = json.loads(content)["schedules"]
            if not isinstance(proposed, list):
                raise TypeError("'schedules' is not a list")
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            self.notes.append(f"not JSON of the schema ({err}): {content[:200]!r}")
            return []
        chosen, tried = [], region.tried()
        for knobs in proposed[:count]:
            try:
                schedule = schedule_from_dict(knobs)
            except (ScheduleError, TypeError, AttributeError) as err:
                self.notes.append(f"{json.dumps(knobs)[:200]}: {err}")
                continue
            if not valid(region.kernel, schedule, region.target):
                self.notes.append(f"{json.dumps(knobs)[:200]}: not valid for this kernel on {region.target.name}")
            elif schedule_key(schedule.to_dict()) in tried:
                self.notes.append(f"{json.dumps(knobs)[:200]}: tried already")
            else:
                chosen.append(schedule)
                tried.add(schedule_key(schedule.to_dict()))
        return chosen
