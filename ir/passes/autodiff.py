"""Reverse-mode autodiff as a graph pass: `vjp_graph(graph, wrt)` -> value-and-gradient graph.

The result is an ordinary graph built from the per-op VJP rules (graph code in the same ops),
so the pass applies to its own output: grad of grad needs nothing more.
"""
from __future__ import annotations

import numpy as np

from ..core import Builder, Graph, GraphsporeError, Value, building, clone_ops
from .. import ops
from .index_checks import TAPE_ROW


def _filled(like: Value, value: float) -> Value:
    """A tensor of `like`'s type filled with `value` (a broadcast constant)."""
    scalar = ops.constant(np.array(value, like.dtype.np))
    return ops.broadcast_to(scalar, shape=like.shape) if like.shape else scalar


def vjp_graph(graph: Graph, wrt: list[int], has_aux: bool = False,
              name: str | None = None, sens: bool = False) -> Graph:
    """Graph computing `graph`'s outputs followed by the gradient for each input in `wrt`.

    Expects a verified graph; `wrt` indexes `graph.inputs` (float inputs only). MindSpore
    semantics: every float output is seeded with a sensitivity of ones (their gradients add),
    or only the first output when `has_aux`. With `sens` (MindSpore's `sens_param`) the seeds
    are explicit instead: the result takes one more unbound input per seeded output, of that
    output's type, after `graph`'s inputs (non-float seeds are accepted and ignored).
    Guarantees one gradient per `wrt` entry with the input's type (zeros when no path leads
    to it).

    1. Copy the forward ops into a new graph, remembering old value -> new value.
    2. Keep only ops on a path from a `wrt` input (forward reachability).
    3. Seed the outputs' cotangents with ones (or the sens inputs); walk the kept ops in reverse; for each op whose
       result has a cotangent, apply its VJP rule at the op's location, sum each operand
       cotangent back to the operand's shape and accumulate it. `stop_gradient` and ops
       without a rule cut the flow. Zero cotangents stay symbolic (absent). A region op
       (several results) gets the tuple of its results' cotangents (None where absent) and
       which operands are active; a region op without a rule raises, never cuts.
    4. Outputs: the forward outputs, then the gradients (materialised zeros where absent).
    """
    result = Graph(name or f"{graph.name}_grad", loc=graph.loc)
    builder = Builder(result)
    with building(builder):
        inputs = [builder.input(v.type, v.name, graph.bindings.get(v)) for v in graph.inputs]
        seeds = graph.outputs[:1] if has_aux else graph.outputs
        seed_values = [builder.input(out.type, f"sens_{k}") for k, out in enumerate(seeds)] \
            if sens else None
        new: dict[Value, Value] = dict(zip(graph.inputs, inputs))

        def record(op, v):
            new.update(zip(op.results, v) if op.regions else [(op.result, v)])
        outputs = clone_ops(graph, inputs, record)
        result.updates = [(new[w], new[v]) for w, v in graph.updates]

        active = {graph.inputs[i] for i in wrt}
        for op in graph.ops:
            if any(x in active for x in op.operands):
                active.update(op.results)

        cotangent: dict[Value, Value] = {}
        for k, out in enumerate(seeds):
            if out in active and out.dtype.is_float:
                seed = seed_values[k] if sens else _filled(new[out], 1.0)
                _accumulate(cotangent, out, seed)

        for op in reversed(graph.ops):
            if op.regions:
                builder.loc = op.loc
                _region_op_vjp(op, new, cotangent, active)
                continue
            g = cotangent.pop(op.result, None)
            rule = ops.OPS[op.name].vjp
            if g is None or rule is None or op.name == "gs.stop_gradient":
                continue
            builder.loc = op.loc
            xs = [new[x] for x in op.operands]
            grads = (_tape_row_vjp(g, *xs) if op.result.name == TAPE_ROW
                     else rule(g, new[op.result], *xs, **op.attrs))
            for x, dx in zip(op.operands, grads):
                if dx is not None and x in active and x.dtype.is_float:
                    _accumulate(cotangent, x, ops.unbroadcast(dx, x.shape))
        builder.loc = graph.loc

        result.outputs = list(outputs)
        for i in wrt:
            x = graph.inputs[i]
            g = cotangent.get(x)
            g = _filled(inputs[i], 0.0) if g is None else g
            g.name = g.name or f"d_{x.name or i}"
            result.outputs.append(g)
    return result


def _region_op_vjp(op, new: dict, cotangent: dict, active: set) -> None:
    """Apply a region op's rule: `vjp(gs, outs, *xs, regions=, active=, **attrs)`."""
    gs = tuple(cotangent.pop(r, None) for r in op.results)
    if all(g is None for g in gs):
        return
    rule = ops.OPS[op.name].vjp
    if rule is None:
        raise GraphsporeError(f"{op.name} has no gradient rule", op.loc)
    flags = tuple(x in active and x.dtype.is_float for x in op.operands)
    grads = rule(gs, tuple(new[r] for r in op.results), *[new[x] for x in op.operands],
                 regions=op.regions, active=flags, **op.attrs)
    for x, dx, flag in zip(op.operands, grads, flags):
        if dx is not None and flag:
            _accumulate(cotangent, x, dx)


def _accumulate(cotangent: dict[Value, Value], x: Value, g: Value) -> None:
    if g.dtype is not x.dtype:
        g = ops.cast(g, dtype=x.dtype)
    cotangent[x] = g if x not in cotangent else add_cotangents(cotangent[x], g)


def _tape_row_vjp(g: Value, tape: Value, t: Value) -> tuple:
    """A loop tape's row t (a gather in range by construction, named TAPE_ROW): its
    cotangent is one row, kept as `update_row(zeros, g, t)` so `add_cotangents` can add it
    in place instead of as a dense scatter into zeros."""
    return (ops.update_row(ops.zeros_of(tape.type), g, t), None)


def add_cotangents(a: Value, b: Value) -> Value:
    """a + b; when one is a single row `update_row(zeros, row, t)`, the row is added into the
    other in place (a loop's tape cotangent costs one row per iteration, not the tape); into
    `update_row(g, r, t)` (the same row just written) it is added to r instead."""
    for acc, one in ((a, b), (b, a)):
        op = one.op
        if op is not None and op.name == "gs.update_row" and _is_zeros(op.operands[0]):
            row, t = op.operands[1], op.operands[2]
            write = acc.op
            if write is not None and write.name == "gs.update_row" and write.operands[2] is t:
                return ops.update_row(write.operands[0], write.operands[1] + row, t)
            old = ops.gather(acc, t, axis=0)
            old.name = TAPE_ROW
            return ops.update_row(acc, old + row, t)
    return a + b


def _is_zeros(v: Value) -> bool:
    op = v.op
    if op is not None and op.name == "gs.broadcast_to":
        op = op.operands[0].op
    return op is not None and op.name == "gs.constant" and not np.any(op.attrs["value"])
