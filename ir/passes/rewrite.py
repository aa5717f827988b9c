"""The rewrite driver graph-to-graph passes share: pattern -> replacement rules on one copy loop.

A pass states *what* to replace (a table of rules keyed by op name, or any `replace`
function) and `rewrite_graph` does the rest, the same way for every pass:

1. Copy the inputs (same types, names and bound host objects) into a new graph.
2. For each op in order, with its operands mapped into the new graph and the builder's
   location set to the op's: `replace(op, operands, builder)` may return a replacement
   value (emitting any new ops it needs); otherwise, with `cse`, an op with the same name,
   operands and attributes already emitted is reused (never an effect op, such as
   `gs.print`: each one runs); otherwise the op is copied.
   A region op (`gs.if`, `gs.while`, `gs.for`) goes to `region_op(op, operands, builder)
   -> (new results or None each, changed)` when given (simplify's `simplify_region_op`),
   else it is copied with its regions.
3. Map the outputs and updates; drop ops whose results reach neither (dead code), except
   effect ops and region ops holding one.

A replacement keeps the replaced value's name hint (ops it creates take the op's location),
so dumps keep the user's names. The input graph is never modified. Rules are
`(operands, attrs, result type, builder) -> Value | None`; `apply_rules` tries an op's rules
in order and fits the first replacement to the op's exact type (a cast and/or broadcast).
"""
from __future__ import annotations

import struct
from typing import Callable, Mapping, Sequence

import numpy as np

from ..core import Builder, Graph, Op, Value
from ..ops import EFFECT, OPS
from ..ops.effects import has_effect
from ..types import DType, TensorType

Rule = Callable[[tuple, dict, TensorType, Builder], "Value | None"]
Replace = Callable[[Op, tuple, Builder], "Value | None"]
RegionOp = Callable[[Op, tuple, Builder], tuple]


def rewrite_graph(graph: Graph, replace: Replace, cse: bool = False,
                  region_op: RegionOp | None = None) -> tuple[Graph, bool]:
    """A new graph with `replace` applied to every op (steps 1-3 of the module docstring),
    and whether anything was replaced, merged or removed."""
    result = Graph(graph.name, loc=graph.loc)
    b = Builder(result)
    env: dict[Value, Value] = {}
    for value in graph.inputs:
        env[value] = b.input(value.type, value.name, graph.bindings.get(value))
    seen: dict[tuple, Value] = {}
    changed = False
    for op in graph.ops:
        xs = tuple(env[v] for v in op.operands)
        b.loc = op.loc
        if op.regions:
            if region_op is not None:
                news, folded = region_op(op, xs, b)
                changed |= folded
            else:
                news = b.add_region_op(op.name, xs, op.regions, op.attrs)
            env.update((old, new) for old, new in zip(op.results, news) if new is not None)
            continue
        start = len(result.ops)
        new = replace(op, xs, b)
        if new is not None:
            changed = True
            for added in result.ops[start:]:          # fresh ops take the replaced name
                if added.result.name is None and added.result is new:
                    added.result.name = op.result.name
        else:
            key = (op.name, xs, attrs_key(op.attrs)) if cse else None
            if cse and EFFECT in OPS[op.name].groups:
                key = (op,)                           # every effect runs: never merged
            new = seen.get(key) if cse else None
            if new is not None:
                changed = True
            else:
                new = b.add_op(op.name, xs, op.attrs)
                new.name = op.result.name
                if cse:
                    seen[key] = new
        env[op.result] = new
    result.outputs = [env[v] for v in graph.outputs]
    result.updates = [(env[w], env[v]) for w, v in graph.updates]
    removed = remove_dead(result)
    return result, changed or removed > 0


def apply_rules(rules: Mapping[str, Sequence[Rule]], op: Op, xs: tuple,
                b: Builder) -> Value | None:
    """The first rule of `rules[op.name]` that returns a value, fitted to the op's type."""
    out = op.result.type
    for rule in rules.get(op.name, ()):
        new = rule(xs, op.attrs, out, b)
        if new is not None:
            new = fit(new, out, b)
            if new.type != out:
                raise AssertionError(f"rewrite rule {rule.__name__} changed {op.name}'s "
                                     f"type {out} to {new.type}")
            return new
    return None


def fit(value: Value, out: TensorType, b: Builder) -> Value:
    """`value` converted to exactly `out`: a cast for the dtype, a broadcast for the shape."""
    if value.dtype != out.dtype:
        value = b.add_op("gs.cast", (value,), {"dtype": out.dtype})
    if value.shape != out.shape:
        value = b.add_op("gs.broadcast_to", (value,), {"shape": out.shape})
    return value


def attrs_key(attrs: dict) -> tuple:
    """A hashable key equal exactly when the attributes are equal (for CSE)."""
    return tuple(sorted((name, _value_key(v)) for name, v in attrs.items()))


def _value_key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (float, np.floating)):
        return ("float", struct.pack("<d", float(v)))   # -0.0 != 0.0, NaN == NaN
    if isinstance(v, (tuple, list)):
        return ("seq", tuple(_value_key(x) for x in v))
    if isinstance(v, DType):
        return ("dtype", v.name)
    return (type(v).__name__, v)


def remove_dead(graph: Graph) -> int:
    """Drop ops whose results reach no output or update (effects, and region ops holding
    one, stay), in place; returns how many."""
    live = set(graph.outputs) | {new for _, new in graph.updates}
    kept = []
    for op in reversed(graph.ops):
        if any(r in live for r in op.results) or has_effect(op):
            live.update(op.operands)
            kept.append(op)
    removed = len(graph.ops) - len(kept)
    graph.ops = kept[::-1]
    return removed


__all__ = ["Replace", "Rule", "apply_rules", "attrs_key", "fit", "remove_dead",
           "rewrite_graph"]
