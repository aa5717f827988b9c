"""Index checks: a hidden output through which compiled code reports out-of-range indices.

Compiled gathers and scatters clamp every address they touch, so a bad index never faults;
to never give a silent wrong answer either, `add_index_checks` appends one output to a graph
that has such ops: an i64 vector `[any bad, key_0, value_0, key_1, value_1, ...]` with, per
checked op (a *site*), a key that is non-zero when some index is out of range and the value
of the first such index (row-major). The program raises `index_error(...)` after the native
call when the first element is non-zero. Graphs without gathers are
returned unchanged: their calls do no extra work.

Expects a verified graph; runs before `simplify`, so that a gather whose result is dead (the
forward copy inside a gradient graph) still has its indices checked, as eager mode would.
Guarantees a new graph sharing the input's values, with one more output, and the sites in
the order of their ops.

Per site, with `flat` the indices as a vector of length m and n the axis size:
1. `bad = flat < -n or flat >= n`, in the indices' dtype (an i32 index cannot be out of
   range of an axis longer than 2**31 - 1: such sites are not checked);
2. `key = max(select(bad, m - iota, 0))`: m minus the first bad position, 0 if none;
3. `value = flat[min(m - key, m - 1)]`, a gather always in range;
then the first element is `any(key_k > 0)`. One reduction over the indices per site, fused
with step 1; steps 3 and the concatenation are one small kernel for the whole graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import (Builder, Graph, GraphsporeIndexError, GraphsporeValueError, Loc, Value,
                    building)
from ..types import DType
from .. import ops

# The gradient of a tensor while loop (loop_vjp.py) reads its tape with gathers named
# TAPE_ROW, in range by construction (not checked), and reports a run longer than its tape
# through one checked gather named TAPE_CHECK, whose error names the loop instead.
TAPE_CHECK, TAPE_ROW = "loop_tape", "tape_row"
TAPE_SITE = "while loop gradient tape"
# `for i in range(a, b, step)` with a tensor step (frontend/control_loops.py) raises
# ValueError when the step is zero: a gather of index 1 into a one-element constant.
RANGE_STEP_CHECK, RANGE_STEP_SITE = "range_step_check", "range step"

# op name -> (operand index of the indices, attribute naming the axis they index)
CHECKED = {"gs.gather": (1, "axis"), "gs.scatter_add": (1, "axis"),
           "gs.gather_elements": (1, "dim")}


@dataclass(frozen=True, slots=True)
class IndexSite:
    """One checked op: its short name, the axis its indices address and that axis's size,
    how many indices it has, and its source location."""

    op: str
    axis: int
    size: int
    count: int
    loc: Loc | None


def add_index_checks(graph: Graph) -> tuple[Graph, tuple[IndexSite, ...]]:
    """`graph` with the hidden check output appended, and its sites (see the module doc)."""
    _refuse_checks_in_regions(graph)
    found = [op for op in graph.ops if op.name in CHECKED and _can_fail(op)]
    if not found:
        return graph, ()
    result = Graph(graph.name, list(graph.inputs), list(graph.ops), list(graph.outputs),
                   graph.bindings, graph.updates, graph.loc)
    builder = Builder(result)
    sites, parts, any_bad = [], [], None
    with building(builder):
        for op in found:
            position, attr = CHECKED[op.name]
            axis = op.attrs[attr]
            indices = op.operands[position]
            builder.loc = op.loc
            key, value = _first_out_of_range(indices, op.operands[0].shape[axis])
            what = _SPECIAL_SITES.get(op.result.name, op.name.split(".", 1)[1])
            sites.append(IndexSite(what, axis, op.operands[0].shape[axis],
                                   indices.type.size, op.loc))
            bad = ops.greater(key, 0)
            any_bad = bad if any_bad is None else ops.logical_or(any_bad, bad)
            parts += [key, value]
        builder.loc = graph.loc
        parts = [ops.cast(any_bad, dtype=DType.i64)] + parts
        hidden = ops.concat(*[ops.reshape(v, shape=(1,)) for v in parts], axis=0)
        hidden.name = "index_check"
    result.outputs.append(hidden)
    return result, tuple(sites)


def _refuse_checks_in_regions(graph: Graph) -> None:
    """A gather or scatter inside a region (a tensor if/while/for) would run with clamped
    indices unchecked: refuse it at compile time rather than risk a silent wrong answer."""
    for op in graph.ops:
        for region in op.regions:
            for inner in region.ops:
                if inner.result.name == TAPE_CHECK:
                    raise GraphsporeIndexError(
                        "the gradient of a while loop inside another loop or if whose "
                        "condition is a tensor is not supported yet (its tape could not be "
                        "checked)", inner.loc or op.loc)
                if inner.name in CHECKED and _can_fail(inner) and inner.result.name != TAPE_ROW:
                    short = inner.name.split(".", 1)[1]
                    raise GraphsporeIndexError(
                        f"{short} with tensor indices inside the branch or body of a "
                        f"{op.name[3:]} whose condition is a tensor is not supported yet "
                        f"(its indices could not be checked)", inner.loc or op.loc)
            _refuse_checks_in_regions(region)


_SPECIAL_SITES = {TAPE_CHECK: TAPE_SITE, RANGE_STEP_CHECK: RANGE_STEP_SITE}


def _can_fail(op) -> bool:
    """Whether some index of `op` could be out of range: it has indices, and the axis is not
    longer than the largest value of their dtype."""
    position, attr = CHECKED[op.name]
    indices = op.operands[position]
    size = op.operands[0].shape[op.attrs[attr]]
    return indices.type.size > 0 and size <= np.iinfo(indices.dtype.np).max


def _first_out_of_range(indices: Value, size: int) -> tuple[Value, Value]:
    """i64 scalars (key, value): see the module docstring, steps 1-3."""
    count = indices.type.size
    flat = ops.reshape(indices, shape=(count,))
    bad = ops.logical_or(ops.less(flat, -size), ops.greater_equal(flat, size))
    ramp = ops.iota(shape=(count,), axis=0, dtype=DType.i64)
    key = ops.reduce_max(ops.select(bad, count - ramp, 0), axes=(0,))
    value = ops.gather(flat, ops.minimum(count - key, count - 1), axis=0)
    return key, ops.cast(value, dtype=DType.i64)


def drop_static_checks(graph: Graph, sites: tuple) -> tuple[Graph, tuple]:
    """After simplify: when the check output folded to a constant saying every index is in
    range (constant indices), drop it and its sites; the program then checks nothing."""
    if not sites:
        return graph, sites
    hidden = graph.outputs[-1]
    if hidden.op is None or hidden.op.name != "gs.constant" or hidden.op.attrs["value"][0]:
        return graph, sites
    return Graph(graph.name, graph.inputs, graph.ops, graph.outputs[:-1], graph.bindings,
                 graph.updates, graph.loc), ()


def index_error(sites: tuple, hidden: np.ndarray, updated: bool) -> GraphsporeIndexError:
    """The error for a check output whose first element is non-zero: the first site (in op
    order) with an index out of range, with that index, its axis and the axis size."""
    for k, site in enumerate(sites):
        key, value = int(hidden[1 + 2 * k]), int(hidden[2 + 2 * k])
        if key > 0 and site.op == TAPE_SITE:
            return GraphsporeIndexError(
                f"this while loop ran more than {site.size} iterations, the size of its "
                f"gradient tape: the gradient was not computed", site.loc,
                "raise graphspore.set_context(max_loop_iterations=N) (and "
                "max_loop_tape_bytes) before compiling")
        if key > 0 and site.op == RANGE_STEP_SITE:
            return GraphsporeValueError("range() arg 3 must not be zero", site.loc)
        if key > 0:
            note = (" (the compiled program ran with clamped indices; parameters it updates "
                    "in place may hold wrong values)") if updated else ""
            return GraphsporeIndexError(f"{site.op}: index {value} is out of bounds for axis "
                                        f"{site.axis} with size {site.size}{note}", site.loc)
    return GraphsporeIndexError(f"an index check failed: {hidden.tolist()}")
