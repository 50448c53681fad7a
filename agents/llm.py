"""The LLM proposer: a chat model behind the OpenAI-compatible API that vLLM serves
(`--llm URL`, e.g. http://localhost:8000/v1, `--llm-model NAME`). Its prompt carries the region's
IR, the target's machine model, the user's hint and the attempts so far with their verdicts (the
gate's feedback: ptxas errors, counterexamples, GPU failures, times). Its answer is constrained by
a JSON schema of the region's schedules (each knob an enum of the values the target allows),
sent as `response_format` (vLLM's structured outputs). What comes back malformed, off the schema
or invalid for the kernel proposes nothing and is told to the model in the next prompt; the loop
goes on either way.

`LlmPtxProposer` asks the same server for the PTX itself, for the launch of the fastest schedule
so far (its lowered PTX shown as the reference to beat), constrained by our PTX grammar
(`verify/ptx.lark`, sent as vLLM's `structured_outputs.grammar`). What our parser cannot read is
told back; what it reads goes through the gate like any kernel (ptxas, the proof, the emulator,
the GPU check at the problem's own shapes)."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from agents.proposers import Region, WrittenPtx, knob_values, valid
from agents.records import Attempt, candidate_key, schedule_key
from ir.kernel import Kernel
from ir.printer import format_kernel
from ptxgen.lower import LaunchConfig, default_schedule, lower
from ptxgen.schedule import Schedule, ScheduleError, schedule_from_dict
from ptxgen.targets import Target

HISTORY = 24  # the latest attempts shown in the prompt
REQUEST_TIMEOUT_S = 120.0
SYSTEM = ("You tune schedules of GPU kernels written in PTX. You answer with JSON only, following the schema: "
          "schedules you expect to run fastest that have not been tried yet. Every schedule you propose is "
          "lowered, assembled, proved equal to the IR, emulated, checked on the GPU and timed.")
PTX_SYSTEM = ("You write PTX kernels for NVIDIA GPUs. You answer with one PTX module only: the kernel the user "
              "describes, equal to its IR on every element, for the target and launch configuration given.")
PTX_GRAMMAR = Path(__file__).resolve().parents[1] / "verify" / "ptx.lark"


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


def ptx_messages(kernel: Kernel, target: Target, launch: LaunchConfig) -> list[dict[str, str]]:
    """The request for a kernel's PTX at a fixed launch (also the prompt of the training data's
    PTX pairs)."""
    cluster = "" if launch.cluster == (1, 1, 1) else f", clusters of {launch.cluster}"
    request = (f"The kernel, in our IR:\n\n{format_kernel(kernel)}\n\nThe GPU: {machine_model(target)}.\n\n"
               f"Write it in PTX ISA {target.ptx_isa} for {target.name}, entry `{kernel.name}`, launched with grid "
               f"{launch.grid}, block {launch.block}, {launch.shared_bytes} bytes of dynamic shared memory{cluster}. "
               "Parameters: a 64-bit global address for each input, then each output, in the IR's order.")
    return [{"role": "system", "content": PTX_SYSTEM}, {"role": "user", "content": request}]


def chat(url: str, body: dict[str, Any], timeout_s: float) -> str:
    """The content of the first choice of an OpenAI-compatible chat completion."""
    request = urllib.request.Request(url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        answer = json.loads(response.read())
    return str(answer["choices"][0]["message"]["content"])


REQUEST_ERRORS = (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError)


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
            content = chat(self.url, body, self.timeout_s)
        except REQUEST_ERRORS as err:
            self.notes.append(f"the request failed: {err}")
            return []
        return self._schedules(region, content, count)

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


def _unfenced(content: str) -> str:
    """The answer without a Markdown code fence around it, if it has one."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip() + "\n"


@dataclasses.dataclass
class LlmPtxProposer:
    """PTX written by the model for the launch of the fastest schedule so far (the default before
    any is timed); one kernel per request."""

    url: str
    model: str = "default"
    hint: str = ""
    timeout_s: float = REQUEST_TIMEOUT_S
    notes: list[str] = dataclasses.field(default_factory=list)
    name: str = "llm-ptx"

    def propose(self, region: Region, count: int) -> list[WrittenPtx]:
        fastest = region.fastest(1)
        base = schedule_from_dict(fastest[0].schedule) if fastest else default_schedule(region.kernel, region.target)
        reference = lower(region.kernel, base, region.target)
        body = {"model": self.model, "temperature": 0.7, "messages": self.messages(region, reference),
                "structured_outputs": {"grammar": PTX_GRAMMAR.read_text()}}
        try:
            content = chat(self.url, body, self.timeout_s)
        except REQUEST_ERRORS as err:
            self.notes.append(f"the request failed: {err}")
            return []
        return self._written(region, base, _unfenced(content))

    def messages(self, region: Region, reference: Any) -> list[dict[str, str]]:
        system, user = ptx_messages(region.kernel, region.target, reference.launch)
        lines = [user["content"], f"A correct kernel for this launch, to beat:\n\n{reference.ptx}"]
        if self.hint:
            lines.append(f"The user's hint: {self.hint}")
        fastest = region.fastest(1)
        if fastest and fastest[0].median_ms is not None:
            lines.append(f"The fastest so far takes {fastest[0].median_ms * 1e3:.1f} us.")
        written = [a for a in region.attempts if a.written_ptx][-HISTORY:]
        if written:
            lines.append("Your kernels so far (PTX hash: verdict):\n" + "\n".join(
                f"- {a.ptx_hash}: {a.verdict} ({a.feedback[:300]})" for a in written))
        if self.notes:
            lines.append("Your previous answers could not be used:\n" + "\n".join(f"- {n}" for n in self.notes[-4:]))
        lines.append("Answer with the whole PTX module.")
        return [system, {"role": "user", "content": "\n\n".join(lines)}]

    def _written(self, region: Region, base: Schedule, text: str) -> list[WrittenPtx]:
        from verify.ptxparse import PtxSyntaxError, parse_ptx

        try:
            parse_ptx(text)
        except PtxSyntaxError as err:
            self.notes.append(f"not PTX our grammar reads: {str(err)[:300]}")
            return []
        if candidate_key(base.to_dict(), text) in region.tried():
            self.notes.append("the same PTX as one tried before")
            return []
        return [WrittenPtx(base, text)]
