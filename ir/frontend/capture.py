"""Capture a problem's forward pass (torch.export with core ATen decompositions), translate what
the IR covers, partition it into fusion regions, and leave the rest to PyTorch as glue."""

from __future__ import annotations

import dataclasses
import operator
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from ir.frontend.aten import Call, rule_for, tensor_type
from ir.frontend.builder import Builder, Unsupported
from ir.frontend.problem import Problem, ProblemError, describe_error
from ir.frontend.program import Glue, Program, ProgramInput, Region, ValueRef
from ir.frontend.rewrites import sink_gathers
from ir.kernel import Kernel, Param
from ir.ops import MOVEMENT, REDUCTIONS
from ir.typecheck import broadcast_shapes, typecheck

Shape = tuple[int, ...]
Signature = tuple[Shape, tuple[int, ...]]  # (reduced operand's shape, reduced axes)

INPUT_KINDS = {
    InputKind.USER_INPUT: "input",
    InputKind.PARAMETER: "parameter",
    InputKind.BUFFER: "buffer",
    InputKind.CONSTANT_TENSOR: "constant",
}
VIEW_ONLY_NOTE = "views only (no arithmetic): left to PyTorch"
RULE_FAILED = "the IR rule failed on"


# ---------------------------------------------------------------------------------------------
# export


def export_problem(problem: Problem, shapes_only: bool = False) -> tuple[ExportedProgram, list[Any]]:
    """The problem's forward pass as a core-ATen ExportedProgram, and the inputs it was traced on
    (on the meta device with `shapes_only`: no data is made or computed, so production sizes are
    cheap; ops whose decomposition differs there may differ in dead values)."""
    device = "meta" if shapes_only else None
    model, inputs = problem.model(device=device), problem.inputs(device=device)
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as err:
        raise ProblemError(f"{problem.path.name}: Model.forward failed on get_inputs(): "
                           f"{describe_error(err, problem.path)}") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = torch.export.export(model, tuple(inputs)).run_decompositions()
    except Exception as err:
        raise ProblemError(f"{problem.path.name}: torch.export could not capture Model.forward: "
                           f"{type(err).__name__}: {str(err).splitlines()[0]}") from err
    return exported, inputs


# ---------------------------------------------------------------------------------------------
# per-node translation


def _tensor_args(node: torch.fx.Node) -> list[torch.fx.Node]:
    return list(node.all_input_nodes)


def _map_args(value: Any, lookup: Any) -> Any:
    if isinstance(value, torch.fx.Node):
        return lookup(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_args(v, lookup) for v in value)
    return value


def translate(b: Builder, node: torch.fx.Node, lookup: Any) -> str | tuple[str, ...]:
    """Emit `node` into `b`, with its tensor arguments given by `lookup(node) -> IR value`."""
    args, kwargs = list(_map_args(node.args, lookup)), dict(_map_args(node.kwargs, lookup))
    b.start(f"%{node.name}")
    call = Call(b, node, args, kwargs)
    value = rule_for(node)(call)
    return b.finish(value, f"%{node.name}") if isinstance(value, str) else value


@dataclass
class NodeInfo:
    """What translating one node alone shows: supported or why not, and how it may fuse."""

    node: torch.fx.Node
    note: str | None = None
    signatures: frozenset[Signature] = frozenset()
    computes: bool = False
    shapes: tuple[Shape, ...] = ()

    @property
    def supported(self) -> bool:
        return self.note is None

    @property
    def is_const(self) -> bool:
        return self.supported and not _tensor_args(self.node) and self.node.target is not operator.getitem


def _probe_input(b: Builder, node: torch.fx.Node) -> str | tuple[str, ...]:
    val = node.meta.get("val")
    if isinstance(val, (tuple, list)):
        return tuple(b.add_input(f"%{node.name}.{i}", tensor_type(v)).name for i, v in enumerate(val))
    return b.add_input(f"%{node.name}", tensor_type(val)).name


def _output_shapes(node: torch.fx.Node) -> tuple[Shape, ...]:
    val = node.meta.get("val")
    vals = val if isinstance(val, (tuple, list)) else (val,)
    return tuple(tensor_type(v).shape for v in vals if v is not None)


def analyze(node: torch.fx.Node) -> NodeInfo:
    """Translate `node` on its own, to learn whether and how it can be part of a region."""
    b = Builder()
    try:
        inputs = {a: _probe_input(b, a) for a in _tensor_args(node)}
        translate(b, node, inputs.__getitem__)
        shapes = _output_shapes(node)
    except Unsupported as why:
        return NodeInfo(node, note=str(why))
    except Exception as err:  # a rule that breaks on an unforeseen form: PyTorch runs the op
        return NodeInfo(node, note=f"{RULE_FAILED} {node.target}: {type(err).__name__}: {err}")
    signatures = frozenset((b.type_of(i.args[0]).shape, i.attr("axes")) for i in b.instrs if i.op in REDUCTIONS)
    computes = any(i.op not in MOVEMENT for i in b.instrs)
    return NodeInfo(node, None, signatures, computes, shapes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# partition into fusion regions


@dataclass(eq=False)
class Group:
    """Nodes that run as one step: a region (one kernel) or a single glue op."""

    infos: list[NodeInfo] = field(default_factory=list)
    glue: bool = False

    @property
    def nodes(self) -> list[torch.fx.Node]:
        return [i.node for i in self.infos]


def _fits(shape: Shape, domain: Shape, axes: tuple[int, ...]) -> bool:
    reduced = tuple(n for d, n in enumerate(domain) if d not in axes)
    return broadcast_shapes(shape, domain) == domain or shape == reduced


def fusible(infos: list[NodeInfo]) -> bool:
    """One kernel can do these nodes: at most one reduction shape, every value fits its domain."""
    signatures = set().union(*(i.signatures for i in infos))
    shapes = [s for i in infos for s in i.shapes]
    if len(signatures) > 1:
        return False
    if not signatures:
        return broadcast_shapes(*shapes) is not None
    domain, axes = signatures.pop()
    return all(_fits(s, domain, axes) for s in shapes)


class Partition:
    """Greedy fusion in program order: each node joins its producers' regions when one kernel can
    do them all and no cycle through other steps appears, else one producer's, else a new one."""

    def __init__(self, infos: list[NodeInfo]) -> None:
        self.infos = {i.node: i for i in infos}
        self.position = {i.node: k for k, i in enumerate(infos)}
        self.group_of: dict[torch.fx.Node, Group] = {}
        self.groups: list[Group] = []
        for info in infos:
            self._place(info)

    def _producers(self, info: NodeInfo) -> list[Group]:
        found: list[Group] = []
        for arg in _tensor_args(info.node):
            group = self.group_of.get(arg)
            if group is not None and not group.glue and group not in found:
                found.append(group)
        return found

    def _place(self, info: NodeInfo) -> None:
        if info.is_const:
            return  # inlined into each region that uses it; glue where PyTorch needs it
        if info.node.target is operator.getitem:
            producer = self.group_of[info.node.args[0]]  # type: ignore[index]
            self._commit(info, [producer] if not producer.glue else [], glue=producer.glue)
            return
        if not info.supported:
            self._commit(info, [], glue=True)
            return
        producers = self._producers(info)
        candidates = [producers] + [[p] for p in reversed(producers)] if producers else []
        for chosen in candidates:
            merged = [i for g in chosen for i in g.infos] + [info]
            if fusible(merged) and self._acyclic(chosen, info):
                self._commit(info, chosen, glue=False)
                return
        self._commit(info, [], glue=False)

    def _commit(self, info: NodeInfo, chosen: list[Group], glue: bool) -> None:
        group = Group(sorted([i for g in chosen for i in g.infos] + [info], key=self._order), glue)
        self.groups = [g for g in self.groups if g not in chosen] + [group]
        for member in group.infos:
            self.group_of[member.node] = group

    def _order(self, info: NodeInfo) -> int:
        return self.position[info.node]

    def _edges(self, assign: dict[torch.fx.Node, Any]) -> dict[Any, set[Any]]:
        edges: dict[Any, set[Any]] = {}
        for node, group in assign.items():
            for arg in _tensor_args(node):
                source = assign.get(arg)
                if source is not None and source is not group:
                    edges.setdefault(source, set()).add(group)
        return edges

    def _acyclic(self, chosen: list[Group], info: NodeInfo) -> bool:
        merged = object()
        assign: dict[torch.fx.Node, Any] = {n: (merged if g in chosen else g) for n, g in self.group_of.items()}
        assign[info.node] = merged
        edges = self._edges(assign)
        state: dict[Any, int] = {}

        def visit(group: Any) -> bool:  # False on a back edge
            state[group] = 1
            for succ in edges.get(group, ()):
                if state.get(succ) == 1 or (succ not in state and not visit(succ)):
                    return False
            state[group] = 2
            return True

        return all(visit(g) for g in set(assign.values()) if g not in state)

    def ordered(self) -> list[Group]:
        """Groups in an order where every group follows the groups it reads from."""
        edges = self._edges(dict(self.group_of))
        indegree = {g: 0 for g in self.groups}
        for targets in edges.values():
            for t in targets:
                indegree[t] += 1
        ready = [g for g in self.groups if indegree[g] == 0]
        result = []
        while ready:
            ready.sort(key=lambda g: self._order(g.infos[0]))
            group = ready.pop(0)
            result.append(group)
            for t in edges.get(group, ()):
                indegree[t] -= 1
                if indegree[t] == 0:
                    ready.append(t)
        return result


# ---------------------------------------------------------------------------------------------
# building the program


def _kernel_name(problem_name: str, index: int) -> str:
    stem = re.sub(r"\W", "_", problem_name)
    return f"{stem if stem[:1].isalpha() else 'k_' + stem}_{index}"


class ProgramBuilder:
    def __init__(self, name: str, exported: ExportedProgram) -> None:
        self.name = name
        self.exported = exported
        self.graph = exported.graph_module.graph
        self.calls = [n for n in self.graph.nodes if n.op == "call_function"]
        self.output_node = next(n for n in self.graph.nodes if n.op == "output")
        self.infos = {n: analyze(n) for n in self.calls}

    def inputs(self) -> tuple[tuple[ProgramInput, ...], dict[str, torch.Tensor]]:
        items, state = [], {}
        placeholders = {n.name: n for n in self.graph.nodes if n.op == "placeholder"}
        position = 0
        for spec in self.exported.graph_signature.input_specs:
            node = placeholders[spec.arg.name]
            kind = INPUT_KINDS.get(spec.kind, spec.kind.name.lower())
            val = node.meta.get("val")
            type_ = tensor_type(val) if isinstance(val, torch.Tensor) and _ir_typed(val) else None
            if kind == "input":
                source = str(position)
                position += 1
            else:
                source = spec.target or spec.arg.name
                tensors = {**self.exported.state_dict, **self.exported.constants}
                state[node.name] = tensors[source]
            items.append(ProgramInput(node.name, kind, source, type_))
        return tuple(items), state

    def _consumers_outside(self, node: torch.fx.Node, group: Group) -> bool:
        return any(u is self.output_node or u not in group.nodes for u in node.users)

    def region(self, group: Group, index: int) -> Region:
        b = Builder()
        params: list[Param] = []
        feeds: list[str] = []
        env: dict[torch.fx.Node, Any] = {}

        def lookup(arg: torch.fx.Node) -> Any:
            if arg not in env:
                if self.infos.get(arg) is not None and self.infos[arg].is_const:
                    env[arg] = translate(b, arg, lookup)
                else:
                    params.append(b.add_input(f"%{arg.name}", tensor_type(arg.meta["val"])))
                    feeds.append(arg.name)
                    env[arg] = params[-1].name
            return env[arg]

        for node in group.nodes:
            env[node] = translate(b, node, lookup)
        outputs = [n for n in group.nodes
                   if isinstance(env[n], str) and self._consumers_outside(n, group)]
        kernel = Kernel(_kernel_name(self.name, index), tuple(params),
                        tuple(Param(f"%{n.name}", tensor_type(n.meta["val"])) for n in outputs),
                        tuple(b.instrs), tuple(env[n] for n in outputs))
        return Region(typecheck(kernel), tuple(feeds), tuple(n.name for n in outputs))

    def glue(self, node: torch.fx.Node, note: str) -> Glue:
        ref = lambda n: ValueRef(n.name)  # noqa: E731
        return Glue(node.name, node.target, tuple(_map_args(node.args, ref)),
                    dict(_map_args(node.kwargs, ref)), note)

    def _glue_consts(self, regions_nodes: set[torch.fx.Node]) -> Iterator[Glue]:
        """Constants that glue ops or the program's outputs read are made by PyTorch too."""
        for node in self.calls:
            if self.infos[node].is_const and any(u not in regions_nodes for u in node.users):
                yield self.glue(node, "a constant read by PyTorch")

    def build(self) -> Program:
        partition = Partition(list(self.infos.values()))
        groups = partition.ordered()
        for group in groups:
            if not group.glue and not any(i.computes for i in group.infos):
                group.glue = True
        region_nodes = {n for g in groups if not g.glue for n in g.nodes}
        steps: list[Region | Glue] = list(self._glue_consts(region_nodes))
        for group in groups:
            if group.glue:
                steps += [self.glue(i.node, i.note or VIEW_ONLY_NOTE) for i in group.infos]
            else:
                steps.append(self.region(group, len([s for s in steps if isinstance(s, Region)])))
        inputs, state = self.inputs()
        outputs = tuple(_map_args(self.output_node.args[0], lambda n: ValueRef(n.name)))
        return Program(self.name, inputs, tuple(steps), outputs, state)


def _ir_typed(val: torch.Tensor) -> bool:
    try:
        tensor_type(val)
        return True
    except Unsupported:
        return False


def capture(problem: Problem, shapes_only: bool = False, rewrite: bool = True) -> Program:
    """The problem's forward pass as fusion regions (IR kernels) and glue (`shapes_only`: traced on
    the meta device, for lowering at production sizes without computing anything; `rewrite`: with
    the exact graph rewrites of `ir.frontend.rewrites`)."""
    exported, _ = export_problem(problem, shapes_only)
    rewrites = sink_gathers(exported.graph_module.graph) if rewrite else []
    return dataclasses.replace(ProgramBuilder(problem.name, exported).build(), rewrites=tuple(rewrites))

