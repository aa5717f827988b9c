"""The IR verifier: the invariants every pass expects and must preserve.

`verify(graph)` checks, in one walk over the op list:
1. inputs are distinct graph inputs (no producing op);
2. every op name is registered in `ir.ops.OPS` and the op's results are fresh values that
   point back to the op (result i has index i);
3. SSA order: every operand is an input or the result of an earlier op;
4. every result type equals `infer(operand types, **attrs)` of the op's definition (region
   ops: `infer(..., regions=...)` checks each region's signature against the operands, and
   every region is itself a verified graph without bindings or updates);
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
        for k, result in enumerate(op.results):
            if not isinstance(result, Value) or result.op is not op or result.index != k:
                _fail(graph, op, f"{where}: result #{k} does not point back to its op")
            if result in defined:
                _fail(graph, op, f"{where}: result {_name(result)} is defined twice")
        if op.regions:
            _verify_regions(graph, op, where)
        try:
            if op.regions:
                expected = tuple(opdef.infer(*[v.type for v in op.operands],
                                             regions=op.regions, **op.attrs))
            else:
                expected = (opdef.infer(*[v.type for v in op.operands], **op.attrs),)
        except (ValueError, TypeError) as exc:
            _fail(graph, op, f"{where}: type inference failed: {exc}")
        got = tuple(r.type for r in op.results)
        if expected != got and not op.regions:
            _fail(graph, op, f"{where}: result type is {got[0] if got else None}, but the "
                             f"operands and attributes give {expected[0]}")
        if expected != got:
            shown = lambda ts: ", ".join(str(t) for t in ts)  # noqa: E731
            _fail(graph, op, f"{where}: result types are ({shown(got)}), but the operands, "
                             f"attributes and regions give ({shown(expected)})")
        defined.update(op.results)

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


def _verify_regions(graph: Graph, op: Op, where: str) -> None:
    from .ops import REGION, OPS
    if REGION not in OPS[op.name].groups:
        _fail(graph, op, f"{where}: only region ops hold regions")
    for k, region in enumerate(op.regions):
        if not isinstance(region, Graph):
            _fail(graph, op, f"{where}: region #{k} is {region!r}, not a Graph")
        if region.bindings or region.updates:
            _fail(graph, op, f"{where}: region #{k} has bindings or updates (regions are "
                             f"closed: weights come in as operands, updates go out as results)")
        verify(region)


def _name(value) -> str:
    if not isinstance(value, Value):
        return repr(value)
    return f"%{value.name}: {value.type}" if value.name else f"<unnamed {value.type}>"


def _fail(graph: Graph, op: Op | None, message: str):
    loc = op.loc if op is not None and op.loc is not None else graph.loc
    raise VerifyError(f"graph {graph.name}: {message}", loc)
