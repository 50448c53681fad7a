"""Exact rewrites of the exported graph before partitioning, as a table of rules.

One rule so far: a gather of a (log-)softmax reads a few elements of each row of a tensor that
PyTorch (and a naive lowering) writes in full. The gathered elements are an elementwise function of
the gathered inputs and of row statistics (the row's maximum and the log or the sum of its
exponentials), so the gather is moved before that function:

    gather(log_softmax(x, d), d, i)  ->  ((gather(x, d, i) - amax(x, d)) - log(sum(exp(x - amax(x, d)), d)))
    gather(softmax(x, d), d, i)      ->  exp(gather(x, d, i) - amax(x, d)) / sum(exp(x - amax(x, d)), d)

Each element goes through the same operations in the same order and precision as in the IR
rule of the (log-)softmax (`ir/frontend/aten.py`), so the result is the same bit for bit; the row
statistics become a reduction kernel that reads `x` once and writes one value per row (cross-entropy
no longer writes the whole log-softmax and reads it back)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

aten = torch.ops.aten
HALF = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class RowStats:
    """The row statistics of a (log-)softmax over `dim`, in its compute dtype."""

    amax: torch.fx.Node
    sum_exp: torch.fx.Node


class GraphEditor:
    """Adds ATen calls before a node, each with its traced value (a fake tensor)."""

    def __init__(self, graph: torch.fx.Graph, anchor: torch.fx.Node, prefix: str) -> None:
        self.graph, self.anchor, self.prefix = graph, anchor, prefix

    def call(self, role: str, target: Any, *args: Any, **kwargs: Any) -> torch.fx.Node:
        """`target(*args, **kwargs)`, named `{prefix}_{role}` (FX appends a number if taken)."""
        with self.graph.inserting_before(self.anchor):
            node = self.graph.create_node("call_function", target, args, kwargs, name=f"{self.prefix}_{role}")
        values = torch.fx.node.map_arg((args, kwargs), lambda n: n.meta["val"])
        with _fake_mode(self.anchor):
            node.meta["val"] = target(*values[0], **values[1])
        return node

    def to(self, role: str, node: torch.fx.Node, dtype: torch.dtype) -> torch.fx.Node:
        if node.meta["val"].dtype == dtype:
            return node
        return self.call(role, torch.ops.prims.convert_element_type.default, node, dtype)


def _fake_mode(node: torch.fx.Node) -> Any:
    fake = torch._guards.detect_fake_mode([node.meta["val"]])
    return fake if fake is not None else torch._subclasses.fake_tensor.FakeTensorMode()


def _row_stats(e: GraphEditor, x: torch.fx.Node, dim: int) -> RowStats:
    amax = e.call("rowmax", aten.amax.default, x, [dim], True)
    exps = e.call("exp", aten.exp.default, e.call("shifted", aten.sub.Tensor, x, amax))
    return RowStats(amax, e.call("rowsum", aten.sum.dim_IntList, exps, [dim], True))


def _log_softmax_at(e: GraphEditor, picked: torch.fx.Node, stats: RowStats) -> torch.fx.Node:
    shifted = e.call("picked_shifted", aten.sub.Tensor, picked, stats.amax)  # (x - max) - log(sum): the rule's order
    return e.call("picked", aten.sub.Tensor, shifted, e.call("logsum", aten.log.default, stats.sum_exp))


def _softmax_at(e: GraphEditor, picked: torch.fx.Node, stats: RowStats) -> torch.fx.Node:
    exps = e.call("picked_exp", aten.exp.default, e.call("picked_shifted", aten.sub.Tensor, picked, stats.amax))
    return e.call("picked", aten.div.Tensor, exps, stats.sum_exp)


GATHERED_FORMS: dict[Any, Callable[[GraphEditor, torch.fx.Node, RowStats], torch.fx.Node]] = {
    aten._log_softmax.default: _log_softmax_at,  # gather(log_softmax(x)) -> gather(x) - max - log(sum)
    aten._softmax.default: _softmax_at,  # gather(softmax(x)) -> exp(gather(x) - max) / sum
}


def _gathered_softmax(gather: torch.fx.Node) -> torch.fx.Node | None:
    """The (log-)softmax a gather reads, where the gather is its only reader, along the same axis,
    with an index of the input's extent on every other axis."""
    source, dim, index = gather.args[:3]
    if gather.kwargs.get("sparse_grad") or not isinstance(source, torch.fx.Node):
        return None
    if source.target not in GATHERED_FORMS or len(source.users) != 1:
        return None
    rank = source.meta["val"].dim()
    if rank == 0 or source.args[1] % rank != dim % rank:
        return None
    shape, index_shape = source.meta["val"].shape, index.meta["val"].shape
    return source if all(index_shape[k] == shape[k] for k in range(rank) if k != dim % rank) else None


def _sink_gather(graph: torch.fx.Graph, gather: torch.fx.Node, softmax: torch.fx.Node) -> None:
    e = GraphEditor(graph, gather, softmax.name)
    x, dim, out_dtype = softmax.args[0], softmax.args[1] % softmax.meta["val"].dim(), softmax.meta["val"].dtype
    compute = torch.float32 if out_dtype in HALF else out_dtype  # the IR rule's compute dtype
    stats = _row_stats(e, e.to("input", x, compute), dim)
    gathered = e.call("gather", aten.gather.default, x, dim, gather.args[2])
    picked = GATHERED_FORMS[softmax.target](e, e.to("picked_input", gathered, compute), stats)
    result = e.to("picked_rounded", picked, out_dtype)
    gather.replace_all_uses_with(result)
    graph.erase_node(gather)
    graph.erase_node(softmax)


def sink_gathers(graph: torch.fx.Graph) -> list[str]:
    """Apply the gather rule wherever it matches; what was rewritten, one line each."""
    done = []
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is aten.gather.default:
            softmax = _gathered_softmax(node)
            if softmax is not None:
                done.append(f"%{node.name} = gather(%{softmax.name}) reads %{softmax.args[0].name} at the gathered "
                            f"positions and the rows' statistics (%{softmax.name} is not written)")
                _sink_gather(graph, node, softmax)
    return done
