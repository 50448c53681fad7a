"""Refutations replayed concretely: the inputs a refutation's model chose (every byte of every
input the kernel reads) are given to the CPU emulator at the kernel's real shapes, and only the
CTAs whose threads the model names are run (all of them where a byte is claimed never written).
What the emulator then does is compared with what the refutation claims: a fault out of bounds, a
byte written twice, an input changed, a shared-memory race, a barrier some threads skip, a byte
never written, an element stored with the value the proof said, an input element never read
(made NaN, the outputs do not change).

A replay that shows the claim says so; one that does not is reported as such, beside the
refutation (a refuted kernel stays refuted until shown otherwise, and a refutation the emulator
does not reproduce points at the prover or the emulator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import z3

from ir.interp import Precision, run
from ir.kernel import Kernel
from verify.against_ir import from_device
from verify.emulate import Emulation, EmulationError, Launch, emulate
from verify.ir_symbolic import describe
from verify.semantics import NotModelled

REPLAY_BYTES = 256 * 2**20  # kernels whose buffers hold more than this in all are not replayed on the CPU
REPLAY_LANES = 2**20  # a replay that must run every CTA runs only launches of at most this many threads
FAULTS = {"in bounds": ("out_of_bounds", "misaligned"), "no shared-memory race": ("race",),
          "no barrier under divergent control": ("barrier_divergence",)}


@dataclass(frozen=True)
class Replayable:
    """What a replay needs of the kernel: its PTX and launch, its parameters' PTX names, sizes and
    user names, which of them are outputs, and the IR (for values)."""

    ptx: str
    launch: Launch
    params: list[str]
    sizes: list[int]
    names: list[str]
    outputs: set[int]
    ir: Kernel | None = None
    entry: str | None = None


def chosen_bytes(model: z3.ModelRef, array: z3.ArrayRef) -> dict | None:
    """A byte array as a model gives it: {"default": byte, "bytes": {offset: byte}} (None where the
    model's value is not a constant array with stores on it)."""
    term = model[array]
    entries: dict[int, int] = {}
    while term is not None and z3.is_store(term):
        entries.setdefault(term.arg(1).as_long(), term.arg(2).as_long())  # the outermost store holds
        term = term.arg(0)
    if term is None or not (z3.is_K(term) and z3.is_bv_value(term.arg(0))):
        return None
    return {"default": term.arg(0).as_long(), "bytes": entries}


def filled(size: int, chosen: dict | None) -> np.ndarray:
    """`size` bytes as `chosen_bytes` describes them (zeros where nothing was chosen)."""
    data = np.zeros(size, np.uint8)
    if chosen is not None:
        data[:] = chosen["default"]
        for offset, byte in chosen["bytes"].items():
            if 0 <= offset < size:
                data[offset] = byte
    return data


def arguments(kernel: Replayable, witness: dict) -> list[np.ndarray]:
    """Each parameter's bytes: an input's as the model chose them, an output's zero."""
    memory = witness.get("memory", {})
    return [filled(size, memory.get(param)) for param, size in zip(kernel.params, kernel.sizes)]


def replay(name: str, witness: dict, kernel: Replayable) -> str:
    """What the emulator shows of the refuted obligation `name` (its model: `witness`)."""
    if not witness:
        return ""
    output = witness.get("output")
    if output is not None and output not in kernel.params:
        return f"not replayed: the emulator counts the writes of the kernel's arguments, not of the workspace {output}"
    total = sum(kernel.sizes)
    if total > REPLAY_BYTES:
        return f"not replayed on the emulator: the buffers hold {total} bytes"
    every_cta = "ctas" not in witness
    if every_cta and kernel.launch.ctas * kernel.launch.threads > REPLAY_LANES:
        return f"not replayed on the emulator: all {kernel.launch.ctas} CTAs would have to run"
    args = arguments(kernel, witness)
    before = [a.copy() for a in args]
    counted = kernel.outputs | ({kernel.params.index(witness["input"])} if "input" in witness else set())
    try:
        emulation = emulate(kernel.ptx, kernel.launch, args, counted, kernel.entry,
                            ctas=None if every_cta else witness["ctas"])
    except NotModelled as err:
        return f"not replayed: the emulator does not model {err}"
    except EmulationError as err:
        expected = next((kinds for prefix, kinds in FAULTS.items() if name.startswith(prefix)), ())
        verb = "reproduced on the emulator" if err.kind in expected else "the emulator stops at another fault"
        return f"{verb} ({where(witness)}): {err.kind}: {err}"
    check = next((fn for test, fn in CHECKS if test(name)), None)
    if check is None:
        return f"not reproduced on the emulator ({where(witness)}): it runs without the fault claimed"
    return check(witness, kernel, emulation, before)


def where(witness: dict) -> str:
    ctas = witness.get("ctas")
    return f"CTA {', '.join(map(str, ctas))} run" if ctas else "every CTA run"


def inputs_written(witness: dict, kernel: Replayable, emulation: Emulation, before: list[np.ndarray]) -> str:
    """Bytes of the input stored to (whether or not the value stored differs from what was there)."""
    index = kernel.params.index(witness["input"])
    written = kernel.sizes[index] - emulation.unwritten.get(index, kernel.sizes[index])
    verdict = "reproduced on the emulator" if written else "not reproduced on the emulator"
    return f"{verdict} ({where(witness)}): {written} byte(s) of the input {kernel.names[index]} stored to"


def written_twice(witness: dict, kernel: Replayable, emulation: Emulation, before: list[np.ndarray]) -> str:
    index = kernel.params.index(witness["output"])
    count = emulation.rewritten.get(index, 0)
    verdict = "reproduced on the emulator" if count else "not reproduced on the emulator"
    return f"{verdict} ({where(witness)}): {count} byte(s) of {kernel.names[index]} written more than once"


def never_written(witness: dict, kernel: Replayable, emulation: Emulation, before: list[np.ndarray]) -> str:
    index = kernel.params.index(witness["output"])
    count = emulation.unwritten.get(index, 0)
    verdict = "reproduced on the emulator" if count else "not reproduced on the emulator"
    return f"{verdict} ({where(witness)}): {count} byte(s) of {kernel.names[index]} never written"


def stored_value(witness: dict, kernel: Replayable, emulation: Emulation, before: list[np.ndarray]) -> str:
    """The element the proof named, as the emulator stores it, beside the interpreter's value."""
    ir = kernel.ir
    if ir is None:
        return ""
    index = kernel.params.index(witness["output"])
    output = ir.outputs[index - len(ir.inputs)]
    dtype, element = output.type.dtype, witness["element"]
    raw = emulation.arguments[index].view(np.uint8)[element * dtype.itemsize:(element + 1) * dtype.itemsize]
    stored = int.from_bytes(raw.tobytes(), "little")
    inputs = [from_device(a, p.type.dtype, p.type.shape) for a, p in zip(before, ir.inputs)]
    want = run(ir, [v.astype(np.float64) if p.type.dtype.is_float else v for v, p in zip(inputs, ir.inputs)],
               Precision.FLOAT64)[index - len(ir.inputs)].reshape(-1)[element]
    verdict = "reproduced on the emulator" if stored == witness["got"] else "not reproduced on the emulator"
    return (f"{verdict} ({where(witness)}): element {element} of {kernel.names[index]} is stored as "
            f"{describe(stored, dtype)}; the interpreter in float64 gives {float(want):.9g}")


def unread_element(witness: dict, kernel: Replayable, emulation: Emulation, before: list[np.ndarray]) -> str:
    """The element never read, made NaN (its bytes all ones) in a second run: the outputs stay
    bit for bit the same, though the IR's would turn NaN."""
    index = kernel.params.index(witness["unread"])
    itemsize = kernel.ir.inputs[index].type.dtype.itemsize if kernel.ir is not None else 1
    element = witness["byte"] // itemsize
    poisoned = [a.copy() for a in before]
    poisoned[index][element * itemsize:(element + 1) * itemsize] = 0xFF
    again = emulate(kernel.ptx, kernel.launch, poisoned, kernel.outputs, kernel.entry)
    same = all(np.array_equal(emulation.arguments[i], again.arguments[i]) for i in sorted(kernel.outputs))
    verdict = "reproduced on the emulator" if same else "not reproduced on the emulator"
    return (f"{verdict} ({where(witness)}): with element {element} of {kernel.names[index]} NaN, the outputs "
            f"{'stay bit for bit the same' if same else 'change'}")


Check = Callable[[dict, Replayable, Emulation, list[np.ndarray]], str]
CHECKS: list[tuple[Callable[[str], bool], Check]] = [
    (lambda name: name == "inputs unchanged", inputs_written),
    (lambda name: name.endswith("written at most once"), written_twice),
    (lambda name: name.endswith("written at least once"), never_written),
    (lambda name: name == "output values equal the IR's", stored_value),
    (lambda name: name.endswith("read in full"), unread_element),
]
