"""Fusion of region ops: a `gs.if`/`gs.while`/`gs.for` is one kernel whose regions are fused
graphs of their own.

How each region's inputs and outputs are homed (read by `lower_regions`):
- `gs.if`: region input i is operand 1 + i, output j is result j (the late-copy logic of
  `fuse` adds the copies where a branch yields an input or yields a value twice).
- `gs.while`: the results are the carried *slots*: the inits are copied in once, the cond
  region reads the slots (and the constant operands) and yields the flag, and the body is
  fused as a graph whose (carried input, new value) pairs are `updates`: a new value is
  computed straight into its slot when it reads the old one only at its own index (fuse's
  in-place update rule), else a copy ends the body.
- `gs.for`: as the body of a while, with input 0 the counter.
"""
from __future__ import annotations

import numpy as np

from ..ir.core import Builder, Graph, Op, Value, building
from ..ir import ops
from .fuse import FusedKernel


def region_kernel(op: Op, name: str, materialised: set[Value], inputs: set[Value],
                  fuse) -> FusedKernel:
    """The kernel of region op `op`; `fuse(graph)` fuses one region."""
    reads = tuple(dict.fromkeys(v for v in op.operands if v in inputs or v in materialised))
    if op.name == "gs.if":
        regions = tuple(fuse(r) for r in op.regions)
    elif op.name == "gs.while":
        cond, body = op.regions
        regions = (fuse(cond), fuse(carried_updates(body, 0, op.attrs["carried"])))
    else:
        regions = (fuse(carried_updates(op.regions[0], 1, op.attrs["carried"])),)
    return FusedKernel(name, op.name[3:], op.result, reads, None, (op,), regions=regions)


def carried_updates(body: Graph, first: int, carried: int) -> Graph:
    """`body` as a graph without outputs whose updates write output k into input first + k.
    A yielded value that is an input other than its own slot, a constant, or yielded twice
    is first copied (`select(true, v, v)`), so no slot is overwritten before it is read."""
    graph = Graph(body.name, list(body.inputs), list(body.ops), [], loc=body.loc)
    slots = body.inputs[first:first + carried]
    news, seen = [], set()
    with building(Builder(graph)):
        for slot, new in zip(slots, body.outputs):
            if new is not slot and (new.op is None or new.op.name == "gs.constant"
                                    or new in seen):
                new = ops.select(ops.constant(np.bool_(True)), new, new)
            seen.add(new)
            news.append(new)
    graph.bindings = {slot: f"carried_{k}" for k, slot in enumerate(slots)}
    graph.updates = list(zip(slots, news))
    return graph
