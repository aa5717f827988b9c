"""VJP rules of the region ops: the backward of a region reruns the region's forward.

`gs.if`: the gradient is another `gs.if` on the same predicate whose regions are the VJP
graphs of the two branches (`vjp_graph(branch, wrt=active float args, sens=True)` without its
forward outputs): the taken branch's forward reruns inside the backward branch, no residuals
cross the region boundary, only the taken branch is differentiated (no NaN from the untaken
side), and the backward `gs.if` is an ordinary region op, so the pass applies again (grad of
grad). Loops (`gs.while`, `gs.for`): `loop_vjp`.
"""
from __future__ import annotations

import numpy as np

from ..core import Builder, Graph, building, current_builder
from .. import ops
from .loop_vjp import backward_graph, emit_tape_checks


def seeds_for(gs, outs) -> list:
    """The output cotangents as values: zeros where a result has none."""
    return [g if g is not None else ops.zeros_of(o.type) for g, o in zip(gs, outs)]


def vjp_if(gs, outs, pred, *args, regions, active):
    """Cotangents of (pred, *args): one backward `gs.if` (see the module docstring). A loop
    inside a branch hoists its tape overflow check out of the branch as a flag (the other
    branch yields false), checked after the backward `gs.if` (loop_vjp, step 5)."""
    wrt = [k for k, flag in enumerate(active[1:]) if flag]
    grads: list = [None] * (1 + len(args))
    if not wrt:
        return tuple(grads)
    then, orelse = regions
    (back_then, then_sites), (back_else, else_sites) = (
        backward_graph(r, wrt, f"{r.name}_vjp") for r in (then, orelse))
    _pad_flags(back_then, len(wrt), before=0, after=len(else_sites))
    _pad_flags(back_else, len(wrt), before=len(then_sites), after=0)
    results = current_builder().add_region_op("gs.if", (pred, *args, *seeds_for(gs, outs)),
                                              (back_then, back_else))
    emit_tape_checks(results[len(wrt):], then_sites + else_sites)
    for k, g in zip(wrt, results):
        grads[1 + k] = g
    return tuple(grads)


def _pad_flags(back: Graph, grads: int, before: int, after: int) -> None:
    """Give `back` false flags for the other branch's hoisted checks, around its own."""
    if before or after:
        with building(Builder(back)):
            false = ops.constant(np.bool_(False))
        outs = back.outputs
        back.outputs = outs[:grads] + [false] * before + outs[grads:] + [false] * after
