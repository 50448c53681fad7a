"""Static checks of a candidate's source: known cheats, found in the text of a KernelBench-format
candidate (a file defining `ModelNew`) before it runs; the source is parsed, never imported or run.
Each finding gives its rule, its line, what was found and why it is refused. Mutated inputs, stale
results and wrong values are found at run time, by the empirical checker.

Rules about what forward computes read the forward path: `ModelNew.forward` and, transitively, the
module-level functions, `ModelNew` methods and classes (all their methods) that it names, plus the
classes `ModelNew.__init__` names (its submodules). The other rules read the whole module.

Holding the reference is allowed, running it is not: `self.reference = Model(...)` may hold the
parameters (emitted drop-ins read them with `get_parameter`); calling it, its forward or its direct
submodules, subclassing or importing `Model`, and an `except` handler on the forward path that
calls anything but a logger (a possible fallback) are refused. Handlers that only raise are fine.

Calling the reference's own ops: the ops that `Model.forward` runs (torch functions, `F.*`, aten
ops, tensor methods, its `nn` submodules) are compared with those of the candidate's forward path
by canonical name, so `F.layer_norm`, `nn.LayerNorm` and `x.layer_norm` are one op. Layout and
allocation ops (LAYOUT_OPS) are never refused. Matmul and convolution glue (GLUE_OPS) may be left to
PyTorch (cuBLAS, cuDNN) where the reference uses it too, unless the candidate runs every op of the
reference: then nothing is left to its own kernels and the glue is refused as well. A glue op that
the reference does not use is no reference op; whether it pays off is for the timing to say.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

CANDIDATE_CLASS = "ModelNew"
REFERENCE_CLASS = "Model"
Function = ast.FunctionDef | ast.AsyncFunctionDef
Hit = tuple[int, str]  # a line and what was found there
Op = tuple[str, str]  # an op's name and how the source spells it

OP_SYNONYMS = {"bcewithlogits": "binarycrossentropywithlogits", "bce": "binarycrossentropy", "expit": "sigmoid",
               "clip": "clamp", "multiply": "mul", "divide": "div", "truedivide": "div", "subtract": "sub"}


def canonical(op: str) -> str:
    """One name per op: `layer_norm`, `LayerNorm` -> `layernorm`; `BatchNorm2d` -> `batchnorm`; `MSELoss` -> `mse`."""
    key = re.sub(r"norm[123]d$", "norm", op.lower().replace("_", "")).removesuffix("loss")
    return OP_SYNONYMS.get(key, key)


LAYOUT_OPS = frozenset(map(canonical, [
    "empty", "empty_like", "empty_strided", "new_empty", "zeros", "zeros_like", "view", "view_as", "reshape",
    "contiguous", "is_contiguous", "permute", "transpose", "t", "size", "to", "device", "dtype", "numel", "dim",
    "stride", "data_ptr", "cuda", "cpu", "float", "half", "bfloat16", "flatten", "unflatten", "unsqueeze", "squeeze",
    "expand", "expand_as", "clone", "split", "chunk", "get_parameter", "get_buffer", "Parameter", "Buffer",
    "ModuleList", "ModuleDict", "Sequential"]))
GLUE_OPS = frozenset(map(canonical, [
    "matmul", "mm", "bmm", "addmm", "baddbmm", "linear", "conv1d", "conv2d", "conv3d", "convolution",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]))

# dotted names (imports and uses) refused by rule
STREAM_APIS = ("torch.cuda.Stream", "torch.cuda.stream", "torch.cuda.ExternalStream", "torch.cuda.set_stream",
               "torch.cuda.StreamContext", "torch.cuda.streams", "torch.Stream", "cupy.cuda.Stream")
CONCURRENCY_APIS = ("threading", "_thread", "concurrent", "multiprocessing", "asyncio", "subprocess",
                    "torch.multiprocessing", "os.fork", "os.forkpty", "os.system", "os.popen", "os.posix_spawn")
LAZY_APIS = ("torch.futures", "torch.jit.fork", "torch.jit._fork", "torch.jit.wait")
DYNAMIC_APIS = ("importlib", "runpy", "sys.modules", "sys._getframe", "inspect.currentframe", "inspect.stack",
                "gc.get_objects", "gc.get_referrers", "gc.get_referents")
IDENTITY_DICTS = ("weakref.WeakKeyDictionary", "weakref.WeakValueDictionary")
CACHE_DECORATORS = ("functools.lru_cache", "functools.cache")
# text refused in identifiers and source strings (inline CUDA and C++)
STREAM_TEXT = re.compile(r"\b(?:cuStreamCreate\w*|cudaStreamCreate\w*|getStreamFromPool|setCurrentCUDAStream"
                         r"|cudaStreamPerThread)\b")
THREAD_TEXT = re.compile(r"\bstd::(?:thread|jthread|async)\b|\bpthread_create\b")

PATCHED_ROOTS = {"torch", "time", "builtins"}
SETTINGS = ("torch.backends", "torch._dynamo.config", "torch._inductor.config")  # meant to be set (see precision)
LAZY_BASES = {"Tensor", "TensorBase", "_TensorBase", "TorchFunctionMode", "TorchDispatchMode"}
LAZY_HOOKS = {"__torch_function__", "__torch_dispatch__"}
LAZY_BUILDERS = {"_make_subclass", "_make_wrapper_subclass", "as_subclass"}
PARAMETER_ACCESSORS = {"get_parameter", "get_buffer", "parameters", "named_parameters", "buffers", "named_buffers",
                       "state_dict", "to", "cuda", "cpu", "float", "eval", "train", "requires_grad_"}
LOG_CALLS = {"print", "debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
ADDRESS_LOOKUPS = {"get", "setdefault", "pop"}
PRECISION_FLAGS = {"allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction",
                   "fp32_precision"}
FULL_PRECISION = {False, "ieee", "highest"}
LOW_DTYPES = {"float16", "half", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"}
FLOAT_FACTORIES = {"torch.randn", "torch.rand", "torch.empty", "torch.zeros", "torch.ones", "torch.full"}
FLOAT32 = {"torch.float32", "torch.float"}
DTYPE_CASTS = {"to", "type", "half", "bfloat16", "double", "long", "int", "bool"}
DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__"}


@dataclass(frozen=True)
class Finding:
    """One refused construct: its rule, its line, and a message saying what, where and why."""

    rule: str
    line: int
    message: str


@dataclass(frozen=True)
class Parsed:
    """A parsed source with what the rules look up: its import aliases and a class's forward path."""

    tree: ast.Module
    aliases: dict[str, str]  # a local name -> the dotted path it was imported as
    path: tuple[Function, ...]  # starts at the class's forward
    submodules: dict[str, list[Op]]  # `self.norm` -> the `nn` modules built into it
    globals: frozenset[str]  # names assigned at module level (extensions, modules; not tensors)

    def qualname(self, node: ast.AST | None) -> str | None:
        return qualname(self.aliases, node)

    def path_nodes(self) -> Iterator[ast.AST]:
        return (node for function in self.path for node in ast.walk(function))


@dataclass(frozen=True)
class Context:
    """What the rules read: the candidate, and what its reference calls and takes as inputs."""

    candidate: Parsed
    reference_ops: dict[str, str]  # canonical op -> the reference's spelling
    float32_inputs: bool


@dataclass(frozen=True)
class Rule:
    """A check (its hits: lines and what was found) and why what it finds is refused."""

    check: Callable[[Context], Iterable[Hit]]
    why: str


def qualname(aliases: dict[str, str], node: ast.AST | None) -> str | None:
    """`torch.nn.functional.gelu` for `F.gelu`; None unless the name chain starts at an import."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Names bound to imports, and names assigned an imported name (`softmax = torch.softmax`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                        for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            aliases |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
    renamed = [(n.targets[0].id, n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign) and
               isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Name | ast.Attribute)]
    for _ in range(2):  # chains of renames
        aliases |= {name: dotted for name, value in renamed if (dotted := qualname(aliases, value))}
    return aliases


def identifiers(node: ast.AST) -> set[str]:
    names = (n for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute))
    return {n.id if isinstance(n, ast.Name) else n.attr for n in names}


def class_methods(node: ast.ClassDef) -> dict[str, Function]:
    return {n.name: n for n in node.body if isinstance(n, Function)}


def forward_path(tree: ast.Module, entry: str) -> tuple[Function, ...]:
    """`entry.forward` and what it names, transitively (see the module docstring)."""
    functions = {n.name: n for n in tree.body if isinstance(n, Function)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    own = class_methods(classes[entry]) if entry in classes else {}

    def named(name: str) -> list[Function]:
        if name.startswith("__") or name in (entry, REFERENCE_CLASS):
            return []
        if name in classes:
            return list(class_methods(classes[name]).values())
        return [f for f in (functions.get(name), own.get(name)) if f is not None]

    submodules = identifiers(own["__init__"]) & classes.keys() if "__init__" in own else set()
    todo = [f for name in submodules for f in named(name)] + ([own["forward"]] if "forward" in own else [])
    seen: dict[int, Function] = {}
    while todo:
        function = todo.pop()
        if id(function) not in seen:
            seen[id(function)] = function
            todo += [f for name in sorted(identifiers(function)) for f in named(name)]
    return tuple(seen.values())


def module_builds(aliases: dict[str, str], node: ast.AST) -> list[Op]:
    """The `nn` modules built in `node`: `nn.LayerNorm(...)` -> ("LayerNorm", "torch.nn.LayerNorm")."""
    names = [qualname(aliases, c.func) or "" for c in calls(ast.walk(node))]
    return [(n.rsplit(".", 1)[-1], n) for n in names if re.fullmatch(r"torch\.nn\.[A-Z]\w*", n)]


def parse(tree: ast.Module, entry: str) -> Parsed:
    aliases = import_aliases(tree)
    classes = [c for c in tree.body if isinstance(c, ast.ClassDef) and (c.name != REFERENCE_CLASS or c.name == entry)]
    submodules = {ast.unparse(t): module_builds(aliases, v) for c in classes for n in ast.walk(c)
                  for t, v in assignments(n) if v is not None and ast.unparse(t).startswith("self.")}
    names = frozenset(t.id for n in tree.body for t, _ in assignments(n) if isinstance(t, ast.Name))
    return Parsed(tree, aliases, forward_path(tree, entry), {k: v for k, v in submodules.items() if v}, names)


def under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def mentions(parsed: Parsed, prefixes: Iterable[str]) -> Iterator[Hit]:
    """Imports and uses (outermost name chains from an import) of dotted names under `prefixes`."""
    inner = {id(n.value) for n in ast.walk(parsed.tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            yield from ((node.lineno, f"an import of {m}") for m in modules if under(m, prefixes))
        elif isinstance(node, ast.Name | ast.Attribute) and id(node) not in inner:
            name = parsed.qualname(node)
            yield from [(node.lineno, name)] if name and under(name, prefixes) else []


def texts(tree: ast.Module, pattern: re.Pattern[str]) -> Iterator[Hit]:
    """Matches of `pattern` in identifiers and string literals (inline CUDA), docstrings aside."""
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            yield from ((node.lineno, m.group()) for m in pattern.finditer(name))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield from ((node.lineno + node.value.count("\n", 0, m.start()), f"{m.group()} in a source string")
                        for m in pattern.finditer(node.value))


def assignments(node: ast.AST) -> list[tuple[ast.expr, ast.expr | None]]:
    """(target, value) pairs of an assignment; (target, None) of a deletion."""
    if isinstance(node, ast.Assign):
        return [(t, node.value) for t in node.targets]
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [(node.target, node.value)]
    return [(t, None) for t in node.targets] if isinstance(node, ast.Delete) else []


def calls(nodes: Iterable[ast.AST]) -> Iterator[ast.Call]:
    return (n for n in nodes if isinstance(n, ast.Call))


def forbidden(apis: tuple[str, ...], pattern: re.Pattern[str], ctx: Context) -> Iterator[Hit]:
    """Imports and uses of `apis`, and `pattern` in identifiers and source strings."""
    yield from mentions(ctx.candidate, apis)
    yield from texts(ctx.candidate.tree, pattern)


def patched_name(parsed: Parsed, node: ast.AST | None) -> str | None:
    """The dotted name of `node` where it is torch, time or builtins or inside them (settings aside)."""
    name = parsed.qualname(node)
    return name if name and name.split(".")[0] in PATCHED_ROOTS and not under(name, SETTINGS) else None


def assigned_attribute(target: ast.expr) -> ast.expr | None:
    """What an assignment to `target` changes in place: `a.b` for `a.b = v` and `a.b[k] = v`; not a plain name."""
    target = target.value if isinstance(target, ast.Subscript) else target
    return target if isinstance(target, ast.Attribute) else None


def patched_modules(ctx: Context) -> Iterator[Hit]:
    parsed = ctx.candidate
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.stmt):
            targets = [patched_name(parsed, assigned_attribute(t)) for t, _ in assignments(node)]
            yield from ((node.lineno, f"an assignment to {name}") for name in targets if name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            name = patched_name(parsed, node.args[0]) if node.args else None
            yield from [(node.lineno, f"{node.func.id} on {name}")] if name else []
        if isinstance(node, ast.Name) and node.id == "__builtins__":
            yield node.lineno, "a use of __builtins__"
    yield from mentions(parsed, ["builtins"])


def lazy_results(ctx: Context) -> Iterator[Hit]:
    parsed = ctx.candidate
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.ClassDef):
            bases = [parsed.qualname(b) or "" for b in node.bases]
            yield from ((node.lineno, f"class {node.name} subclasses {b}") for b in bases
                        if b.startswith("torch.") and b.rsplit(".", 1)[-1] in LAZY_BASES)
        if isinstance(node, Function) and node.name in LAZY_HOOKS:
            yield node.lineno, f"a {node.name} override"
        if isinstance(node, ast.Attribute) and node.attr in LAZY_BUILDERS:
            yield node.lineno, f"a tensor built with {node.attr}"
    yield from mentions(parsed, LAZY_APIS)


def is_reference_class(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == REFERENCE_CLASS or \
        isinstance(node, ast.Attribute) and node.attr == REFERENCE_CLASS


def reference_runs(tree: ast.Module) -> Iterator[Hit]:
    """Calls of a `Model(...)` instance, of `Model.forward`, of a held instance or of its direct submodules."""
    model = {id(n) for c in tree.body if isinstance(c, ast.ClassDef) and c.name == REFERENCE_CLASS for n in ast.walk(c)}
    nodes = [n for n in ast.walk(tree) if id(n) not in model]
    holders = {ast.unparse(t) for n in nodes for t, v in assignments(n)
               if isinstance(v, ast.Call) and is_reference_class(v.func)}
    for call in calls(nodes):
        func = call.func
        if isinstance(func, ast.Call) and is_reference_class(func.func) or ast.unparse(func) in holders:
            yield call.lineno, f"a call of the reference model ({ast.unparse(func)})"
        elif isinstance(func, ast.Attribute) and func.attr not in PARAMETER_ACCESSORS and \
                (ast.unparse(func.value) in holders or is_reference_class(func.value)):
            yield call.lineno, f"a call of the reference model's {func.attr} ({ast.unparse(func)})"


def handler_calls(handler: ast.ExceptHandler) -> list[ast.Call]:
    """Calls in an except handler, except those in `raise` statements and in logging calls."""
    nodes = [n for statement in handler.body for n in ast.walk(statement)]
    excused = [n for n in nodes if isinstance(n, ast.Raise) or isinstance(n, ast.Call) and
               ast.unparse(n.func).rsplit(".", 1)[-1] in LOG_CALLS]
    inside = {id(m) for n in excused for m in ast.walk(n)}
    return [c for c in calls(nodes) if id(c) not in inside]


def fallback_handlers(parsed: Parsed) -> Iterator[Hit]:
    for function in parsed.path:
        for handler in (n for n in ast.walk(function) if isinstance(n, ast.ExceptHandler)):
            yield from ((c.lineno, f"an except handler in {function.name} calls {ast.unparse(c.func)}, a possible "
                         "fallback") for c in handler_calls(handler))


def reference_fallback(ctx: Context) -> Iterator[Hit]:
    tree = ctx.candidate.tree
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == REFERENCE_CLASS for a in node.names):
            yield node.lineno, f"an import of {REFERENCE_CLASS} from {node.module}"
        if isinstance(node, ast.ClassDef) and node.name == CANDIDATE_CLASS and any(map(is_reference_class, node.bases)):
            yield node.lineno, f"{CANDIDATE_CLASS} subclasses {REFERENCE_CLASS} (and inherits its forward)"
    yield from reference_runs(tree)
    yield from fallback_handlers(ctx.candidate)


def ops_of_call(parsed: Parsed, call: ast.Call) -> list[Op]:
    """The ops a call runs: a torch function, an aten op, a tensor method, or a submodule of self."""
    name = parsed.qualname(call.func)
    if isinstance(call.func, ast.Name) and call.func.id == "getattr" and len(call.args) > 1 and \
            isinstance(call.args[1], ast.Constant) and (parsed.qualname(call.args[0]) or "").startswith("torch"):
        name = f"{parsed.qualname(call.args[0])}.{call.args[1].value}"
    if name is not None:
        parts = name.split(".")
        ok = parts[0] == "torch" and len(parts) > 1 and (parts[1] != "ops" or len(parts) > 3)
        return [(parts[3] if parts[1] == "ops" else parts[-1], name)] if ok else []
    held = call.func.value if isinstance(call.func, ast.Attribute) and call.func.attr == "forward" else call.func
    while isinstance(held, ast.Subscript):
        held = held.value
    root = call.func
    while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
        root = root.func if isinstance(root, ast.Call) else root.value
    if ast.unparse(held) in parsed.submodules:
        return parsed.submodules[ast.unparse(held)]
    if not isinstance(call.func, ast.Attribute) or isinstance(root, ast.Name) and root.id in {"self", *parsed.globals}:
        return []  # a function, or a method of self, of a module or of an extension
    return [(call.func.attr, f"Tensor.{call.func.attr}")]


def ops_called(parsed: Parsed) -> Iterator[tuple[int, str, str]]:
    """(line, op, spelling) of each op the forward path runs."""
    for call in calls(parsed.path_nodes()):
        yield from ((call.lineno, op, spelled) for op, spelled in ops_of_call(parsed, call))


def reference_ops(ctx: Context) -> Iterator[Hit]:
    called: dict[str, Hit] = {}
    for line, op, spelled in ops_called(ctx.candidate):
        called.setdefault(canonical(op), (line, spelled))
    shared = {op: hit for op, hit in called.items() if op in ctx.reference_ops and op not in LAYOUT_OPS}
    everything = bool(shared) and set(ctx.reference_ops) - LAYOUT_OPS <= shared.keys()
    for op, (line, spelled) in sorted(shared.items()):
        if everything or op not in GLUE_OPS:
            yield line, f"a call of {spelled}, the reference's own op {ctx.reference_ops[op]}" + \
                (" (glue, but the candidate runs every op of the reference)" if op in GLUE_OPS else "")


def is_address(node: ast.AST, names: set[str]) -> bool:
    """A tensor's address or identity: `x.data_ptr()`, `id(x)`, `x._cdata`, a name bound to one, or a tuple of them."""
    if isinstance(node, ast.Tuple):
        return any(is_address(e, names) for e in node.elts)
    func = node.func if isinstance(node, ast.Call) else None
    return isinstance(func, ast.Attribute) and func.attr == "data_ptr" or \
        isinstance(func, ast.Name) and func.id == "id" or \
        isinstance(node, ast.Attribute) and node.attr == "_cdata" or isinstance(node, ast.Name) and node.id in names


def identity_test(left: ast.expr, op: ast.cmpop, right: ast.expr, addresses: set[str], tensors: set[str]) -> bool:
    """`ptr in cache`, `x in seen`, `ptr == self.last`, `x is self.last`; not `x is None`, not `p == q`."""
    identities = addresses | tensors if isinstance(op, ast.In | ast.NotIn | ast.Is | ast.IsNot) else addresses
    if isinstance(op, ast.In | ast.NotIn):
        return is_address(left, identities) and not isinstance(right, ast.List | ast.Tuple | ast.Set)
    kinds = [is_address(e, identities) for e in (left, right)]
    other = right if kinds[0] else left
    return isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot) and kinds[0] != kinds[1] and \
        not isinstance(other, ast.Constant)


def identity_uses(function: Function, entry: bool) -> Iterator[Hit]:
    """Address lookups and tests; tensors are the inputs of the candidate's forward and arguments annotated so."""
    arguments = function.args.args[1:] if entry else function.args.args + function.args.kwonlyargs
    tensors = {a.arg for a in arguments if entry or a.annotation and ast.unparse(a.annotation).endswith("Tensor")}
    addresses = {t.id for n in ast.walk(function) for t, v in assignments(n)
                 if isinstance(t, ast.Name) and v is not None and is_address(v, set())}
    for node in ast.walk(function):
        keys = [node.slice] if isinstance(node, ast.Subscript) else node.keys if isinstance(node, ast.Dict) else \
            node.args[:1] if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ADDRESS_LOOKUPS else []
        if any(k is not None and is_address(k, addresses) for k in keys) or \
                isinstance(node, ast.Compare) and any(identity_test(*test, addresses, tensors) for test in
                                                      zip([node.left, *node.comparators], node.ops, node.comparators)):
            yield node.lineno, f"a lookup or test by tensor address in {function.name}: {ast.unparse(node)}"


def identity_caches(ctx: Context) -> Iterator[Hit]:
    parsed = ctx.candidate
    for function in parsed.path:
        yield from identity_uses(function, entry=function is parsed.path[0] and function.name == "forward")
        for decorator in function.decorator_list:
            name = parsed.qualname(decorator.func if isinstance(decorator, ast.Call) else decorator) or ""
            yield from [(decorator.lineno, f"{name} on {function.name}")] if under(name, CACHE_DECORATORS) else []
    yield from mentions(parsed, IDENTITY_DICTS)


def precision_casts(parsed: Parsed) -> Iterator[Hit]:
    """Casts below float32 on the forward path: `.half()`, `.to(torch.bfloat16)`, `dtype=torch.float16`, autocast."""
    for call in calls(parsed.path_nodes()):
        method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        values = [*call.args, *(k.value for k in call.keywords)] if method in ("to", "type") else \
            [k.value for k in call.keywords if k.arg == "dtype"]
        dtypes = [(parsed.qualname(v) or "").split(".") for v in values]
        if method in ("half", "bfloat16") or any(d[0] == "torch" and d[-1] in LOW_DTYPES for d in dtypes) or \
                (parsed.qualname(call.func) or "").endswith("autocast"):
            yield call.lineno, f"{ast.unparse(call)} on the forward path, with float32 reference inputs"


def precision_downgrades(ctx: Context) -> Iterator[Hit]:
    parsed = ctx.candidate
    for node in ast.walk(parsed.tree):
        for target, value in assignments(node) if isinstance(node, ast.stmt) else []:
            name = parsed.qualname(assigned_attribute(target)) or ""
            if name.rsplit(".", 1)[-1] in PRECISION_FLAGS and \
                    not (isinstance(value, ast.Constant) and value.value in FULL_PRECISION):
                yield node.lineno, f"{name} = {ast.unparse(value) if value else '(deleted)'}"
        if isinstance(node, ast.Call) and parsed.qualname(node.func) == "torch.set_float32_matmul_precision" and \
                not (node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "highest"):
            yield node.lineno, ast.unparse(node)
    yield from precision_casts(parsed) if ctx.float32_inputs else []


def dynamic_code(ctx: Context) -> Iterator[Hit]:
    parsed = ctx.candidate
    yield from ((c.lineno, f"a call of {c.func.id}") for c in calls(ast.walk(parsed.tree))
                if isinstance(c.func, ast.Name) and c.func.id in DYNAMIC_BUILTINS and c.func.id not in parsed.aliases)
    yield from mentions(parsed, DYNAMIC_APIS)


RULES: dict[str, Rule] = {
    "side-stream": Rule(partial(forbidden, STREAM_APIS, STREAM_TEXT), "work on another stream escapes the timing"),
    "concurrency": Rule(partial(forbidden, CONCURRENCY_APIS, THREAD_TEXT), "work in another thread or process "
                        "escapes the timing"),
    "patching": Rule(patched_modules, "replacing attributes of torch, time or builtins can fake timings or results"),
    "lazy-result": Rule(lazy_results, "a tensor subclass, dispatch mode or future can defer the work past the timing"),
    "fallback": Rule(reference_fallback, "running the reference (or falling back to it) times PyTorch"),
    "reference-op": Rule(reference_ops, "calling the op under test times PyTorch, not the candidate's kernels"),
    "identity-cache": Rule(identity_caches, "results cached by tensor address or identity go stale"),
    "precision": Rule(precision_downgrades, "computing below the reference's float32 precision changes the results"),
    "dynamic-code": Rule(dynamic_code, "code built or looked up at run time escapes these checks"),
}


def float32_inputs(reference: Parsed) -> bool:
    """Whether the reference's get_inputs creates a float32 tensor: a factory without dtype, or with float32."""
    nodes = [n for f in reference.tree.body if isinstance(f, Function) and f.name == "get_inputs" for n in ast.walk(f)]
    cast = {id(n.value) for n in nodes if isinstance(n, ast.Attribute) and n.attr in DTYPE_CASTS}
    return any(reference.qualname(c.func) in FLOAT_FACTORIES and id(c) not in cast and
               all(reference.qualname(k.value) in FLOAT32 for k in c.keywords if k.arg == "dtype")
               for c in calls(nodes))


def context(tree: ast.Module, reference: str | None) -> Context:
    candidate = parse(tree, CANDIDATE_CLASS)
    if reference is None:
        return Context(candidate, {}, False)
    ref = parse(ast.parse(reference), REFERENCE_CLASS)
    ops = {canonical(op): spelled for _, op, spelled in ops_called(ref)}
    return Context(candidate, ops, float32_inputs(ref))


def check_source(candidate: str, reference: str | None = None, filename: str = "candidate.py") -> list[Finding]:
    """Every rule's findings on the `candidate` source, checked against the `reference` problem's source."""
    try:
        tree = ast.parse(candidate, filename)
    except SyntaxError as err:
        return [Finding("syntax", err.lineno or 0, f"{filename}:{err.lineno}: {err.msg}: the candidate does not parse")]
    ctx = context(tree, reference)
    findings = {Finding(rule, line, f"{filename}:{line}: {what}: {RULES[rule].why}")
                for rule in RULES for line, what in RULES[rule].check(ctx)}
    return sorted(findings, key=lambda f: (f.line, f.rule, f.message))
