"""Region ops: tensor-dependent control flow (`gs.if`, `gs.while`, `gs.for`) and the tape
write `gs.update_row`.

A region is a closed `Graph`: its inputs are block arguments fed by the op's operands, its
outputs are the values it yields. Types (checked by `infer`, which gets `regions=`):
- `gs.if(pred, *args) (then, else)`: pred is a one-element bool; both regions take `args` and
  yield the same types, which are the op's results.
- `gs.while(*carried, *consts) (cond, body) {carried = k}`: cond (carried, consts) -> one
  bool; body (carried, consts) -> carried; results: the final carried values.
- `gs.for(count, *carried, *consts) (body) {carried = k, reverse = b}`: count a 0-d i64;
  body (i: 0-d i64, carried, consts) -> carried, for i = 0..count-1 (count-1..0 if reverse).
References run the regions on the reference interpreter. VJP rules live in
`ir.passes.region_vjp`; an op whose rule is missing raises when differentiated.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..core import Builder, Graph, Value, building, current_builder
from ..types import DType, TensorType
from .indexing import gather
from .opdef import OpDef, as_value, constant, register
from .shape import broadcast_to

REGION = "region"          # group: ops holding regions (multi-result, no scalar lowering)
COUNTER = TensorType((), DType.i64)


def _types(values) -> list[TensorType]:
    return [v.type for v in values]


def _check_region(region: Graph, inputs: Sequence[TensorType], what: str) -> None:
    got = _types(region.inputs)
    if got != list(inputs):
        raise TypeError(f"the {what} region takes ({_join(got)}), the operands give "
                        f"({_join(inputs)})")


def _join(types) -> str:
    return ", ".join(str(t) for t in types)


def _check_pred(t: TensorType, what: str) -> None:
    if not t.dtype.is_bool or t.size != 1 or t.rank > 1:
        raise TypeError(f"the {what} must be a one-element bool tensor (shape () or (1,)), "
                        f"got {t}")


# ------------------------------------------------------------------------------------ if

def _infer_if(pred, *args, regions):
    if len(regions) != 2:
        raise TypeError(f"gs.if needs two regions (then, else), got {len(regions)}")
    _check_pred(pred, "condition")
    then, orelse = regions
    _check_region(then, args, "then")
    _check_region(orelse, args, "else")
    a, b = _types(then.outputs), _types(orelse.outputs)
    if a != b:
        raise TypeError(f"the branches yield different types: ({_join(a)}) and ({_join(b)})")
    return tuple(a)


def _run(region: Graph, arrays):
    from ..interpreter import run
    return run(region, list(arrays))


def _reference_if(pred, *args, regions):
    return _run(regions[0] if bool(np.asarray(pred).reshape(-1)[0]) else regions[1], args)


def _vjp_if(*args, **kwargs):
    from ..passes.region_vjp import vjp_if
    return vjp_if(*args, **kwargs)


if_ = register(OpDef("gs.if", _infer_if, _reference_if, _vjp_if, frozenset({REGION}),
                     "%r:2 = \"gs.if\"(%p, %x) ({then}, {else}): run one region of two"))


# --------------------------------------------------------------------------------- while

def _infer_while(*operands, regions, carried):
    if len(regions) != 2:
        raise TypeError(f"gs.while needs two regions (cond, body), got {len(regions)}")
    if not 0 <= carried <= len(operands):
        raise TypeError(f"carried = {carried} with {len(operands)} operands")
    cond, body = regions
    _check_region(cond, operands, "cond")
    _check_region(body, operands, "body")
    if len(cond.outputs) != 1:
        raise TypeError(f"the cond region must yield one bool, yields {len(cond.outputs)}")
    _check_pred(cond.outputs[0].type, "loop condition")
    state = [v for v in operands[:carried]]
    if _types(body.outputs) != state:
        raise TypeError(f"the body yields ({_join(_types(body.outputs))}), the carried values "
                        f"are ({_join(state)})")
    return tuple(state)


def _reference_while(*arrays, regions, carried):
    cond, body = regions
    state, consts = list(arrays[:carried]), list(arrays[carried:])
    while bool(np.asarray(_run(cond, state + consts)[0]).reshape(-1)[0]):
        state = list(_run(body, state + consts))
    return state


def _vjp_while(*args, **kwargs):
    from ..passes.loop_vjp import vjp_while
    return vjp_while(*args, **kwargs)


while_ = register(OpDef("gs.while", _infer_while, _reference_while, _vjp_while,
                        frozenset({REGION}),
                        "%r = \"gs.while\"(%x) ({cond}, {body}) {carried = 1}"))


# ----------------------------------------------------------------------------------- for

def _infer_for(count, *operands, regions, carried, reverse=False):
    if len(regions) != 1:
        raise TypeError(f"gs.for needs one region (body), got {len(regions)}")
    if count != COUNTER:
        raise TypeError(f"the trip count must be a {COUNTER}, got {count}")
    if not 0 <= carried <= len(operands):
        raise TypeError(f"carried = {carried} with {len(operands)} operands")
    (body,) = regions
    _check_region(body, [COUNTER, *operands], "body")
    state = list(operands[:carried])
    if _types(body.outputs) != state:
        raise TypeError(f"the body yields ({_join(_types(body.outputs))}), the carried values "
                        f"are ({_join(state)})")
    return tuple(state)


def _reference_for(count, *arrays, regions, carried, reverse=False):
    (body,) = regions
    state, consts = list(arrays[:carried]), list(arrays[carried:])
    steps = range(int(count))
    for i in (reversed(steps) if reverse else steps):
        state = list(_run(body, [np.array(i, np.int64)] + state + consts))
    return state


def _vjp_for(*args, **kwargs):
    from ..passes.loop_vjp import vjp_for
    return vjp_for(*args, **kwargs)


for_ = register(OpDef("gs.for", _infer_for, _reference_for, _vjp_for, frozenset({REGION}),
                      "%r = \"gs.for\"(%n, %x) ({body}) {carried = 1, reverse = false}"))


# ---------------------------------------------------------------------------- update_row

def _infer_update_row(x, row, i):
    if x.rank == 0:
        raise TypeError(f"needs a tensor of rank >= 1, got {x}")
    if row != TensorType(x.shape[1:], x.dtype):
        raise TypeError(f"the row must be {TensorType(x.shape[1:], x.dtype)}, got {row}")
    if i.rank != 0 or not i.dtype.is_int:
        raise TypeError(f"the row index must be a 0-d integer tensor, got {i}")
    return x


def _reference_update_row(x, row, i):
    i = int(i)
    if not -x.shape[0] <= i < x.shape[0]:
        raise IndexError(f"row {i} is out of bounds for axis 0 with size {x.shape[0]}")
    out = np.array(x, copy=True)
    out[i] = row
    return out


def zeros_of(t: TensorType) -> Value:
    """A zero tensor of type `t` (a scalar constant broadcast)."""
    zero = constant(np.zeros((), t.dtype.np))
    return broadcast_to(zero, shape=t.shape) if t.shape else zero


def _vjp_update_row(g, out, x, row, i):
    """The row's cotangent is row i of g, in range wherever the write was (the writes are
    loop tapes, in range by construction): a tape read, unchecked."""
    from ..passes.index_checks import TAPE_ROW
    g_row = gather(g, i, axis=0)
    g_row.name = TAPE_ROW
    return (update_row(g, zeros_of(row.type), i), g_row, None)


update_row = register(OpDef("gs.update_row", _infer_update_row, _reference_update_row,
                            _vjp_update_row, frozenset(),
                            "%t = \"gs.update_row\"(%tape, %row, %i): tape with tape[i] = row"))


# ------------------------------------------------------------------------ building regions

def region(fn: Callable[..., object], types: Sequence[TensorType],
           names: Sequence[str | None] | None = None, name: str = "region") -> Graph:
    """A closed region graph: inputs of `types`, outputs `fn(*inputs)` (a Value or a tuple
    of Values; Python numbers become constants). `fn` may only use its inputs."""
    graph = Graph(name)
    builder = Builder(graph)
    names = list(names or [None] * len(types))
    with building(builder):
        inputs = [builder.input(t, n) for t, n in zip(types, names)]
        out = fn(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        graph.outputs = [as_value(o) for o in outs]
    return graph


def if_op(pred: Value, args: Sequence[Value], then_fn, else_fn) -> tuple[Value, ...]:
    """`gs.if` over regions traced from two functions of `args`."""
    types = _types(args)
    regions = (region(then_fn, types, name="then"), region(else_fn, types, name="else"))
    return current_builder().add_region_op("gs.if", (pred, *args), regions)


def while_op(carried: Sequence[Value], consts: Sequence[Value], cond_fn,
             body_fn) -> tuple[Value, ...]:
    """`gs.while` over regions traced from `cond_fn(*carried, *consts)` and `body_fn`."""
    types = _types(carried) + _types(consts)
    regions = (region(cond_fn, types, name="cond"), region(body_fn, types, name="body"))
    return current_builder().add_region_op("gs.while", (*carried, *consts), regions,
                                           {"carried": len(carried)})


def for_op(count: Value, carried: Sequence[Value], consts: Sequence[Value], body_fn,
           reverse: bool = False) -> tuple[Value, ...]:
    """`gs.for` over a region traced from `body_fn(i, *carried, *consts)`."""
    types = [COUNTER] + _types(carried) + _types(consts)
    regions = (region(body_fn, types, name="body"),)
    return current_builder().add_region_op("gs.for", (count, *carried, *consts), regions,
                                           {"carried": len(carried), "reverse": reverse})


__all__ = ["update_row", "region", "if_op", "while_op", "for_op", "zeros_of"]
