"""Values known while parsing, and `Tensor(...)` / `mindspore.tensor(...)` inside a graph.

A Value is known at compile time when every op it depends on is a pure op over constants
(no graph input, no random or effectful op): `known_value` then evaluates it with the ops'
numpy references, as the simplifier's constant folding would, so `Tensor.asnumpy()`,
`.item()`, `int(t)`, `bool(t)` work on such values while the graph is built.

`Tensor(data, dtype)` met in a graph builds a constant when `data` is known (a Python
number, nested list, numpy array, a known Value, or host Tensors) and is a cast of the
running value otherwise (`Tensor(x, ms.float32)` on a graph input).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import Value, run_reference
from ..ir.types import promote
from .operators import op, to_dtype

MAX_FOLDED_ELEMENTS = 1 << 20       # never evaluate large intermediate tensors while parsing
_IMPURE = frozenset({"effect", "random"})


def known_value(v: Value) -> np.ndarray | None:
    """The data of `v` if it is computable from constants alone, else None."""
    if v.data is not None:
        return v.data
    memo: dict = {}
    stack = [v]
    while stack:                                  # iterative: deep chains do not recurse
        top = stack[-1]
        if top in memo:
            stack.pop()
            continue
        if top.data is not None:
            memo[top] = top.data
            stack.pop()
            continue
        opn = top.op
        if opn is None or top.size > MAX_FOLDED_ELEMENTS or _is_impure(opn.name):
            return None
        pending = [o for o in opn.operands if o not in memo]
        if pending:
            stack.extend(pending)
            continue
        memo[top] = np.asarray(run_reference(opn, [memo[o] for o in opn.operands], opn.loc),
                               dtype=top.dtype.np)
        stack.pop()
    return memo[v]


def _is_impure(name: str) -> bool:
    opdef = ir_ops.OPS.get(name)
    return opdef is None or bool(_IMPURE & set(opdef.groups))


def host_data(x):
    """`x` with known Values replaced by their numpy data (nested in lists/tuples); raises
    LookupError if a Value is known only at run time."""
    if isinstance(x, Value):
        data = known_value(x)
        if data is None:
            raise LookupError(x)
        return data
    if isinstance(x, (list, tuple)):
        return type(x)(host_data(item) for item in x)
    return x


def construct_tensor(cls, *args, **kwargs):
    """`cls(*args, **kwargs)` for a host Tensor class called inside a graph."""
    data = args[0] if args else kwargs.pop("input_data", None)
    rest = args[1:]
    dtype = rest[0] if rest else kwargs.get("dtype")
    try:
        host = host_data(data)
    except LookupError:
        return _running_tensor(data, dtype)
    if isinstance(data, Value) and dtype is None:
        return data                          # Tensor(known_tensor): the same value
    return cls(host, *rest, **kwargs)


def _running_tensor(data, dtype) -> Value:
    """`Tensor(x)` of a value known only at run time: x itself, or stacked, cast."""
    if isinstance(data, (list, tuple)):
        parts = [ir_ops.as_value(d) if not isinstance(d, Value) else d for d in data]
        parts = [p if isinstance(p, Value) else _running_tensor(p, None) for p in parts]
        value = _stack(parts)
    else:
        value = data
    if dtype is None or value.dtype is to_dtype(dtype):
        return value
    return op("cast")(value, dtype=to_dtype(dtype))


def _stack(parts: list) -> Value:
    dtype = parts[0].dtype
    for p in parts[1:]:
        dtype = promote(dtype, p.dtype)
    rows = [op("reshape")(op("cast")(p, dtype=dtype) if p.dtype is not dtype else p,
                          shape=(1,) + p.shape) for p in parts]
    return op("concat")(*rows, axis=0)




def _item(x: Value, *index):
    return _known(x, "item").item(*index)


def _known(x: Value, method: str) -> np.ndarray:
    data = known_value(x)
    if data is None:
        raise TypeError(f"Tensor.{method}() needs the tensor's value while the graph is "
                        f"built; this one ({x.type}) is known only when the graph runs")
    return data


COMPILE_TIME_METHODS = {
    "item": _item, "asnumpy": lambda x: _known(x, "asnumpy").copy(),
    "numpy": lambda x: _known(x, "numpy").copy(), "tolist": lambda x: _known(x, "tolist").tolist(),
}
for _method in COMPILE_TIME_METHODS.values():
    _method.__gs_op__ = True          # called with the Value while parsing, never inlined


__all__ = ["known_value", "host_data", "construct_tensor", "COMPILE_TIME_METHODS",
           "MAX_FOLDED_ELEMENTS"]
