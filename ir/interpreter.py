"""The reference interpreter: evaluates a graph op by op with each op's numpy reference.

It is the oracle compiled code is tested against and the engine behind eager mode, so it does
no optimisation and checks every result against the type the IR promised.
"""
from __future__ import annotations

import numpy as np

from .core import Graph, Value, run_reference


def _bind_inputs(graph: Graph, arrays) -> dict[Value, np.ndarray]:
    """Values for every graph input: `arrays` gives all inputs in order, or only the args
    (then weights are read from their bound host objects' `asnumpy()`)."""
    arrays = list(arrays)
    if len(arrays) == len(graph.inputs):
        pairs = list(zip(graph.inputs, arrays))
    elif len(arrays) == len(graph.args):
        supplied = iter(arrays)
        pairs = [(v, graph.bindings[v].asnumpy() if v in graph.bindings else next(supplied))
                 for v in graph.inputs]
    else:
        raise ValueError(f"{graph.name} takes {len(graph.inputs)} inputs "
                         f"({len(graph.args)} without weights), got {len(arrays)} arrays")
    env = {}
    for value, array in pairs:
        array = np.asarray(array)
        if array.shape != value.shape:
            raise ValueError(f"input {value.name or '?'} of {graph.name} expects "
                             f"{value.type}, got an array of shape {array.shape}")
        env[value] = array.astype(value.dtype.np, copy=False)
    return env


def run_region_op(op, arrays) -> list[np.ndarray]:
    """A region op's results on `arrays`: its reference runs its regions with `run`."""
    from .ops import OPS
    results = OPS[op.name].reference(*arrays, regions=op.regions, **op.attrs)
    return [np.asarray(r) for r in results]


def _evaluate(graph: Graph, arrays) -> dict[Value, np.ndarray]:
    env = _bind_inputs(graph, arrays)
    for op in graph.ops:
        args = [env[v] for v in op.operands]
        if op.regions:
            env.update((v, a.astype(v.dtype.np, copy=False))
                       for v, a in zip(op.results, run_region_op(op, args)))
            continue
        data = np.asarray(run_reference(op, args, op.loc))
        expected = op.result.type
        if data.shape != expected.shape:
            raise AssertionError(f"{op.name}: reference gave shape {data.shape}, the IR "
                                 f"says {expected}")
        env[op.result] = data.astype(expected.dtype.np, copy=False)
    return env


def run(graph: Graph, arrays) -> list[np.ndarray]:
    """Evaluate `graph` on `arrays` (all inputs in order, or the args only) -> its outputs."""
    env = _evaluate(graph, arrays)
    return [env[v] for v in graph.outputs]


def run_with_updates(graph: Graph, arrays) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """Like `run`, also returning the graph's in-place updates as
    {index of the weight in graph.inputs: its new array}; applying them is the caller's job."""
    env = _evaluate(graph, arrays)
    index = {v: i for i, v in enumerate(graph.inputs)}
    return [env[v] for v in graph.outputs], {index[w]: env[v] for w, v in graph.updates}
