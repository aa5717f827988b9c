"""The IR verifier: the invariants every pass expects and must preserve.

`verify(graph)` checks, in one walk over the op list:
1. inputs are distinct graph inputs (no producing op);
2. every op name is registered in `ir.ops.OPS` and the op's result is a fresh value that
   points back to the op;
3. SSA order: every operand is an input or the result of an earlier op;
4. every result type equals `infer(operand types, **attrs)` of the op's definition;
5. outputs are defined; bindings are on inputs; each update assigns a defined value of the
   same type to a bound (weight) input, at most once per weight.
A failure raises `VerifyError` naming the op, its location and the problem.
"""
from __future__ import annotations

from .core import Graph, GraphsporeError, Op, Value


class VerifyError(GraphsporeError):
    """A broken IR invariant (a bug in a pass or in the frontend, not in the user's program)."""


def verify(graph: Graph) -> None:
    """Raise `VerifyError` at the first broken invariant of `graph`; return None if it holds."""
    from .ops import OPS

    defined: set[Value] = set()
    for index, value in enumerate(graph.inputs):
        if not isinstance(value, Value):
            _fail(graph, None, f"input #{index} is {value!r}, not a Value")
        if value in defined:
            _fail(graph, None, f"input #{index} ({_name(value)}) appears twice")
        if value.op is not None:
            _fail(graph, None, f"input #{index} ({_name(value)}) is produced by {value.op.name}")
        defined.add(value)

    for position, op in enumerate(graph.ops):
        where = f"{op.name} (op #{position})"
        opdef = OPS.get(op.name)
        if opdef is None:
            _fail(graph, op, f"{where}: unknown op name '{op.name}'")
        for k, operand in enumerate(op.operands):
            if not isinstance(operand, Value):
                _fail(graph, op, f"{where}: operand #{k} is {operand!r}, not a Value")
            if operand not in defined:
                _fail(graph, op, f"{where}: operand #{k} ({_name(operand)}) is used before it "
                                 f"is defined")
        result = op.result
        if not isinstance(result, Value) or result.op is not op:
            _fail(graph, op, f"{where}: result does not point back to its op")
        if result in defined:
            _fail(graph, op, f"{where}: result {_name(result)} is defined twice")
        try:
            expected = opdef.infer(*[v.type for v in op.operands], **op.attrs)
        except (ValueError, TypeError) as exc:
            _fail(graph, op, f"{where}: type inference failed: {exc}")
        if expected != result.type:
            _fail(graph, op, f"{where}: result type is {result.type}, but the operands and "
                             f"attributes give {expected}")
        defined.add(result)

    for index, value in enumerate(graph.outputs):
        if value not in defined:
            _fail(graph, None, f"output #{index} ({_name(value)}) is not defined in the graph")
    inputs = set(graph.inputs)
    for value in graph.bindings:
        if value not in inputs:
            _fail(graph, None, f"binding on {_name(value)}, which is not a graph input")
    seen: set[Value] = set()
    for weight, new in graph.updates:
        if weight not in graph.bindings:
            _fail(graph, None, f"update of {_name(weight)}, which is not a bound weight input")
        if weight in seen:
            _fail(graph, None, f"weight {_name(weight)} is updated twice")
        seen.add(weight)
        if new not in defined:
            _fail(graph, None, f"update of {_name(weight)} uses {_name(new)}, which is not "
                               f"defined in the graph")
        if new.type != weight.type:
            _fail(graph, None, f"update of {_name(weight)}: weight is {weight.type}, new value "
                               f"is {new.type}")


def _name(value) -> str:
    if not isinstance(value, Value):
        return repr(value)
    return f"%{value.name}: {value.type}" if value.name else f"<unnamed {value.type}>"


def _fail(graph: Graph, op: Op | None, message: str):
    loc = op.loc if op is not None and op.loc is not None else graph.loc
    raise VerifyError(f"graph {graph.name}: {message}", loc)
