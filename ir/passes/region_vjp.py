"""VJP rules of the region ops: the backward of a region reruns the region's forward.

`gs.if`: the gradient is another `gs.if` on the same predicate whose regions are the VJP
graphs of the two branches (`vjp_graph(branch, wrt=active float args, sens=True)` without its
forward outputs): the taken branch's forward reruns inside the backward branch, no residuals
cross the region boundary, only the taken branch is differentiated (no NaN from the untaken
side), and the backward `gs.if` is an ordinary region op, so the pass applies again (grad of
grad). Loops (`gs.while`, `gs.for`) follow in this module.
"""
from __future__ import annotations

from ..core import Graph, current_builder
from .. import ops
from .autodiff import vjp_graph


def backward_region(region: Graph, wrt: list[int], name: str) -> Graph:
    """Region (inputs..., output cotangents...) -> (cotangent of each input in `wrt`)."""
    full = vjp_graph(region, wrt, sens=True, name=name)
    return Graph(name, full.inputs, full.ops, full.outputs[len(region.outputs):],
                 loc=region.loc)


def seeds_for(gs, outs) -> list:
    """The output cotangents as values: zeros where a result has none."""
    return [g if g is not None else ops.zeros_of(o.type) for g, o in zip(gs, outs)]


def vjp_if(gs, outs, pred, *args, regions, active):
    """Cotangents of (pred, *args): one backward `gs.if` (see the module docstring)."""
    wrt = [k for k, flag in enumerate(active[1:]) if flag]
    grads: list = [None] * (1 + len(args))
    if not wrt:
        return tuple(grads)
    then, orelse = regions
    back = (backward_region(then, wrt, f"{then.name}_vjp"),
            backward_region(orelse, wrt, f"{orelse.name}_vjp"))
    results = current_builder().add_region_op("gs.if", (pred, *args, *seeds_for(gs, outs)),
                                              back)
    for k, g in zip(wrt, results):
        grads[1 + k] = g
    return tuple(grads)
