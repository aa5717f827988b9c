"""`without_prints(graph)`: the graph with every `gs.print` removed, in its regions too;
`first_print(graph)` finds one at any depth (an ahead-of-time library refuses prints).

A region's VJP reruns the region's forward inside the backward region (`region_vjp`,
`loop_vjp`); that rerun computes values again but must not print them again, so the backward
region is built from `without_prints` of the VJP graph. Prints themselves need no pass before
codegen: each is a kernel calling back into Python at its place (ir/ops/effects.py).
Regions are shared between ops (`clone_ops`), so this copies instead of editing in place.
"""
from __future__ import annotations

import numpy as np

from ..core import Graph
from ..ops.effects import has_effect
from .rewrite import rewrite_graph


def first_print(graph: Graph):
    """The first `gs.print` of `graph`, its regions included, or None."""
    stack = list(reversed(graph.ops))
    while stack:
        op = stack.pop()
        if op.name == "gs.print":
            return op
        stack.extend(inner for region in reversed(op.regions) for inner in reversed(region.ops))
    return None


def without_prints(graph: Graph) -> Graph:
    """`graph` (itself when it prints nothing) with its prints dropped, at any depth."""
    if not any(has_effect(op) for op in graph.ops):
        return graph

    def token(op, xs, b):          # the print's unused token: dead, so rewrite drops it
        if op.name == "gs.print":
            return b.add_op("gs.constant", (), {"value": np.zeros((), np.int32)})
        return None

    def region_op(op, xs, b):
        news = b.add_region_op(op.name, xs, tuple(without_prints(r) for r in op.regions),
                               op.attrs)
        for old, new in zip(op.results, news):
            new.name = old.name
        return news, True

    return rewrite_graph(graph, token, region_op=region_op)[0]


__all__ = ["first_print", "without_prints"]
