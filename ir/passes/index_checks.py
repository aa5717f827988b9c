"""Index checks: a hidden output through which compiled code reports out-of-range indices.

Compiled gathers and scatters clamp every address they touch, so a bad index never faults;
to never give a silent wrong answer either, `add_index_checks` appends one output to a graph
that has such ops: an i64 vector `[any bad, key_0, value_0, key_1, value_1, ...]` with, per
checked op (a *site*), a key that is non-zero when some index is out of range and the value
of the first such index (row-major). The program raises `index_error(...)` after the native
call when the first element is non-zero. Every Parameter update of
such a graph is made conditional on all checks passing (`_guard`): a call that
raises has written no state. Graphs without gathers are returned unchanged: their calls do
no extra work.

Expects a verified graph; runs before `simplify`, so that a gather whose result is dead (the
forward copy inside a gradient graph) still has its indices checked, as eager mode would.
Guarantees a new graph sharing the input's values (cloned when it has updates or checked
regions), with one more output and guarded updates, and the sites in
the order of their ops.

Per site, with `flat` the indices as a vector of length m and n the axis size:
1. `bad = flat < -n or flat >= n`, in the indices' dtype (an i32 index cannot be out of
   range of an axis longer than 2**31 - 1: such sites are not checked);
2. `key = max(select(bad, m - iota, 0))`: m minus the first bad position, 0 if none;
3. `value = flat[min(m - key, m - 1)]`, a gather always in range;
then the first element is `any(key_k > 0)`. One reduction over the indices per site, fused
with step 1; steps 3 and the concatenation are one small kernel for the whole graph.

Sites inside regions (tensor if/while/for) are checked too: their region ops are rebuilt to
yield the pairs as extra results (`_checked_if`, `_checked_loop`: an untaken branch yields
zeros, a loop keeps its first failing iteration's pair and a while stops there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import (Builder, Graph, GraphsporeIndexError, GraphsporeValueError, Loc, Value,
                    building, inline_graph)
from ..types import DType, TensorType
from .. import ops

# The gradient of a tensor while loop (loop_vjp.py) reads its tape with gathers named
# TAPE_ROW, in range by construction (not checked), and reports a run longer than its tape
# through one checked gather named TAPE_CHECK, whose error names the loop instead.
TAPE_CHECK, TAPE_ROW = "loop_tape", "tape_row"
TAPE_SITE = "while loop gradient tape"
# `for i in range(a, b, step)` with a tensor step (frontend/control_loops.py) raises
# ValueError when the step is zero: a gather of index 1 into a one-element constant.
RANGE_STEP_CHECK, RANGE_STEP_SITE = "range_step_check", "range step"
_SPECIAL_SITES = {TAPE_CHECK: TAPE_SITE, RANGE_STEP_CHECK: RANGE_STEP_SITE}

I64_SCALAR = TensorType((), DType.i64)

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
    """`graph` with the hidden check output appended and its updates guarded, and its sites
    (see the module doc)."""
    if not _has_sites(graph):
        return graph, ()
    result, sites, _ = _with_checks(graph, top=True)
    return result, tuple(sites)


def _is_site(op) -> bool:
    return op.name in CHECKED and op.result.name != TAPE_ROW and _can_fail(op)


def _has_sites(graph: Graph) -> bool:
    return any(_is_site(op) or _regions_have_sites(op) for op in graph.ops)


def _regions_have_sites(op) -> bool:
    return any(_has_sites(region) for region in op.regions)


def _with_checks(graph: Graph, top: bool = False
                 ) -> tuple[Graph, list[IndexSite], list[Value]]:
    """A new graph computing `graph`'s outputs and, per site of it or of its regions (in op
    order), an i64 scalar pair (key, value) (module docstring); the sites and the pairs.
    Region ops with sites inside are rebuilt to yield their regions' pairs as extra
    results (`_checked_if`, `_checked_loop`), so the graph is cloned; otherwise it keeps
    the input's ops and values. `top`: `graph` is the whole program; its updates are
    guarded (`_guard`) and the hidden check output is appended."""
    last = max((k for k, op in enumerate(graph.ops)
                if _is_site(op) or _regions_have_sites(op)), default=-1)
    writes = {id(new): weight for weight, new in graph.updates if new is not weight} \
        if top else {}
    regional = bool(writes) or any(_regions_have_sites(op) for op in graph.ops)
    result = Graph(graph.name, list(graph.inputs), [] if regional else list(graph.ops),
                   list(graph.outputs), graph.bindings, list(graph.updates), graph.loc)
    builder = Builder(result)
    env: dict[Value, Value] = {v: v for v in graph.inputs}
    sites, pairs = [], []
    failed, guarded = None, set()
    with building(builder):
        for k, op in enumerate(graph.ops):
            builder.loc = op.loc
            if regional:
                operands = [env[v] for v in op.operands]
                if _regions_have_sites(op):
                    news, found, found_pairs = REGION_CHECKS[op.name](op, operands, builder)
                    sites += found
                    pairs += found_pairs
                elif op.regions:
                    news = builder.add_region_op(op.name, operands, op.regions, op.attrs)
                else:
                    news = (builder.add_op(op.name, operands, op.attrs),)
                for old, new in zip(op.results, news):
                    new.name = old.name
                    env[old] = new
            else:
                env.update((r, r) for r in op.results)
            if _is_site(op):
                position, attr = CHECKED[op.name]
                axis = op.attrs[attr]
                indices = env[op.operands[position]]
                size = op.operands[0].shape[axis]
                what = _SPECIAL_SITES.get(op.result.name, op.name.split(".", 1)[1])
                sites.append(IndexSite(what, axis, size, indices.type.size, op.loc))
                pairs += _first_out_of_range(indices, size)
            if top and k == last:
                failed = _any_failed(pairs)
            elif writes and k > last:
                for old in op.results:
                    if id(old) in writes:
                        env[old] = _guard(failed, env[writes[id(old)]], env[old])
                        guarded.add(id(old))
        if regional:
            result.outputs = [env[v] for v in graph.outputs]
            result.updates = [(w, env[v]) for w, v in graph.updates]
        if top:
            builder.loc = graph.loc
            result.updates = [(w, v if v is w or id(old) in guarded else _guard(failed, w, v))
                              for (w, v), (_, old) in zip(result.updates, graph.updates)]
            parts = [ops.cast(failed, dtype=DType.i64)] + pairs
            hidden = ops.concat(*[ops.reshape(v, shape=(1,)) for v in parts], axis=0)
            hidden.name = "index_check"
            result.outputs.append(hidden)
    return result, sites, pairs


def _any_failed(pairs: list[Value]) -> Value:
    """Bool scalar: some site's key is non-zero."""
    failed = None
    for key in pairs[::2]:
        bad = ops.greater(key, 0)
        failed = bad if failed is None else ops.logical_or(failed, bad)
    return failed


def _guard(failed: Value, weight: Value, new: Value) -> Value:
    """A Parameter's new value written only if every check passed: `select(failed, weight,
    new)`, so a call that raises leaves the program's state (weights, optimizer moments,
    step counters, BatchNorm statistics) bit-identical. Placed right after `new` when that
    comes after the last check, its uses read the guarded value too, so a new value read
    again (a momentum buffer) is still computed in place in its weight's buffer; otherwise
    (a step counter that a checked gather reads) it guards only the final write."""
    return ops.select(failed, weight, new)


def _zero() -> Value:
    return ops.constant(np.int64(0))


def _checked_if(op, operands, builder):
    """`gs.if` whose branches also yield the pairs of both branches' sites (the untaken
    branch's as zeros): (results, sites, pairs)."""
    branches = [_with_checks(region) for region in op.regions]
    counts = [len(found_pairs) for _, _, found_pairs in branches]
    regions = []
    for k, (region, _, found_pairs) in enumerate(branches):
        with building(Builder(region)):
            before = [_zero() for _ in range(sum(counts[:k]))]
            after = [_zero() for _ in range(sum(counts[k + 1:]))]
            region.outputs = list(region.outputs) + before + found_pairs + after
        regions.append(region)
    results = builder.add_region_op(op.name, operands, regions, op.attrs)
    n = len(op.results)
    return (results[:n], [site for _, found, _ in branches for site in found],
            list(results[n:]))


def _checked_loop(op, operands, builder):
    """`gs.while` / `gs.for` carrying the pairs of its body's sites (the first failing
    iteration's are kept); a while also stops after an iteration that failed, or when
    its condition's indices are out of range, so a clamped index never makes it run on
    (or forever). The condition's pairs come from one more evaluation of the condition
    after the loop, on the final state: every earlier evaluation was in range."""
    carried = op.attrs["carried"]
    first = 1 if op.name == "gs.for" else 0                  # gs.for: count, index i
    body_at = len(op.regions) - 1
    body, body_sites, body_pairs = _with_checks(op.regions[body_at])
    n = len(body_pairs)
    split = first + carried
    olds = [Value(I64_SCALAR, None, f"index_check_{j}") for j in range(n)]
    body.inputs = body.inputs[:split] + olds + body.inputs[split:]
    with building(Builder(body)):
        merged = []
        for j in range(0, n, 2):
            failed = ops.greater(olds[j], 0)
            merged += [ops.select(failed, olds[j], body_pairs[j]),
                       ops.select(failed, olds[j + 1], body_pairs[j + 1])]
        body.outputs = list(body.outputs) + merged
    regions = [body]
    cond_sites, post = [], None
    if op.name == "gs.while":
        checked, cond_sites, cond_pairs = _with_checks(op.regions[0])
        post = Graph(checked.name, list(checked.inputs), list(checked.ops),
                     list(checked.outputs) + cond_pairs, loc=checked.loc)
        cond_olds = [Value(I64_SCALAR, None, f"index_check_{j}") for j in range(n)]
        cond = Graph(checked.name, checked.inputs[:split] + cond_olds + checked.inputs[split:],
                     list(checked.ops), [], loc=checked.loc)
        with building(Builder(cond)):
            flag = checked.outputs[0]
            for key in cond_olds[::2] + cond_pairs[::2]:
                flag = ops.logical_and(flag, ops.equal(key, 0))
            cond.outputs = [flag]
        regions = [cond, body]
    inits = [_zero() for _ in range(n)]
    results = builder.add_region_op(op.name, operands[:split] + inits + operands[split:],
                                    regions, dict(op.attrs, carried=carried + n))
    pairs = list(results[carried:carried + n])
    if post is not None and cond_sites:
        pairs += inline_graph(post, list(results[:carried]) + operands[split:])[1:]
    return results[:carried], body_sites + cond_sites, pairs


REGION_CHECKS = {"gs.if": _checked_if, "gs.while": _checked_loop, "gs.for": _checked_loop}


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


def index_error(sites: tuple, hidden: np.ndarray) -> GraphsporeIndexError:
    """The error for a check output whose first element is non-zero: the first site (in op
    order) with an index out of range, with that index, its axis and the axis size. (No
    Parameter was written: the updates are guarded, `_guard`.)"""
    for k, site in enumerate(sites):
        key, value = int(hidden[1 + 2 * k]), int(hidden[2 + 2 * k])
        if key > 0 and site.op == TAPE_SITE:
            return GraphsporeIndexError(
                f"this loop ran more than {site.size} iterations, the size of its "
                f"gradient tape: the gradient was not computed", site.loc,
                "raise graphspore.set_context(max_loop_iterations=N) (and "
                "max_loop_tape_bytes) before compiling")
        if key > 0 and site.op == RANGE_STEP_SITE:
            return GraphsporeValueError("range() arg 3 must not be zero", site.loc)
        if key > 0:
            return GraphsporeIndexError(f"{site.op}: index {value} is out of bounds for axis "
                                        f"{site.axis} with size {site.size}", site.loc)
    return GraphsporeIndexError(f"an index check failed: {hidden.tolist()}")
