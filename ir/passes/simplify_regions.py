"""simplify's handling of region ops (`gs.if`, `gs.while`, `gs.for`).

Per region op, inside one simplify round:
1. every region is simplified on its own (it is a closed graph);
2. a `gs.if` whose predicate is a constant is replaced by its taken region, inlined;
3. results nobody reads are dropped from a `gs.if` (and the yields from both regions), and
   the whole op when none is read, unless a branch prints (`has_effect`);
4. operands no region reads are dropped (the captures of a `gs.if`, a loop's constants);
   a loop's carried values are kept.
"""
from __future__ import annotations

from typing import Callable

from ..core import Builder, Graph, Op, Value, building, clone_ops
from .. import ops as _ops  # noqa: F401  (registers the ops clone_ops emits)
from ..ops.effects import has_effect


def used_values(graph: Graph) -> set[Value]:
    """Every value read by an op, an output or an update of `graph`."""
    used = set(graph.outputs) | {v for _, v in graph.updates}
    for op in graph.ops:
        used.update(op.operands)
    return used


def simplify_region_op(op: Op, xs: tuple, b: Builder, used: set[Value],
                       simplify: Callable[[Graph], Graph]) -> tuple[list, bool]:
    """The values replacing `op.results` (None for dropped ones) and whether anything was
    folded or dropped (steps 1-4 of the module docstring)."""
    regions = [simplify(r) for r in op.regions]
    if op.name == "gs.if":
        flag = _constant_flag(xs[0])
        if flag is not None:
            with building(b):
                outs = clone_ops(regions[0 if flag else 1], list(xs[1:]))
            for old, new in zip(op.results, outs):
                new.name = new.name or old.name
            return outs, True
        keep = [j for j, r in enumerate(op.results) if r in used]
        if not keep and not has_effect(op):
            return [None] * len(op.results), True
        regions = [_with_outputs(r, keep) for r in regions]
        first, changed = 1, len(keep) < len(op.results)
    else:
        keep = list(range(len(op.results)))
        first, changed = (op.attrs["carried"] if op.name == "gs.while"
                          else 1 + op.attrs["carried"]), False
    shift = -1 if op.name == "gs.if" else 0          # operand k is region input k + shift
    operands = list(xs)
    unread = [k for k in range(first, len(xs))
              if all(r.inputs[k + shift] not in used_values(r) for r in regions)]
    if unread:
        changed = True
        regions = [Graph(r.name, list(r.inputs), r.ops, r.outputs, loc=r.loc) for r in regions]
        for k in reversed(unread):
            del operands[k]
            for r in regions:
                del r.inputs[k + shift]
    results = b.add_region_op(op.name, operands, regions, op.attrs)
    out: list = [None] * len(op.results)
    for j, new in zip(keep, results):
        new.name = op.results[j].name
        out[j] = new
    return out, changed


def _constant_flag(pred: Value):
    if pred.op is not None and pred.op.name == "gs.constant":
        return bool(pred.op.attrs["value"].reshape(-1)[0])
    return None


def _with_outputs(region: Graph, keep: list[int]) -> Graph:
    return Graph(region.name, list(region.inputs), region.ops,
                 [region.outputs[j] for j in keep], loc=region.loc)
