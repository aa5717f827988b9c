"""Python builtins over tensors inside a compiled function, with Python's own meaning.

A tensor iterates over its first axis (`for row in x`, `zip(x, y)`, `enumerate(x)`,
comprehensions, `tuple(x)`): the loop is unrolled into `x[0], x[1], ...` because shapes are
static. From that rule: `sum(x)` adds the rows, `max(x)`/`min(x)` of a 1-D tensor is its
largest/smallest element, `max(a, b)` of one-element tensors is `maximum(a, b)`, and
`any(x)`/`all(x)` of a 1-D tensor is a bool tensor (its value is known when the graph
runs). `int`, `float`, `bool`, `str` and `Tensor.item()`/`asnumpy()` of a tensor need its
value while parsing: they work when it is known then (`constants.known_value`), and
`int(x)`/`float(x)` of a one-element running tensor is a 0-d cast. `type(x)` is the Tensor
class. `map`/`filter` call functions through the translator, so user functions and lambdas
are inlined. `print(...)` emits `gs.print`: the compiled program prints when it runs.
"""
from __future__ import annotations

import builtins
import functools

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import Value
from ..ir.types import DType
from .constants import known_value
from .operators import BUILTINS as BASE_BUILTINS, op

_TENSOR_CLASS: list = []


def register_tensor_class(cls) -> None:
    """The host Tensor class (`type(x)` of a tensor in a graph); set by graphspore.tensor."""
    _TENSOR_CLASS[:] = [cls]


def rows(x: Value) -> tuple:
    """The first-axis slices of `x`, as `for e in x` sees them."""
    if x.ndim == 0:
        raise TypeError(f"iteration over a 0-d tensor ({x.type})")
    getitem = op("getitem")
    return tuple(getitem(x, i) for i in range(x.shape[0]))


def iterable(x):
    """`x` as a Python iterable: a tensor by its rows, known numpy arrays by their rows."""
    if isinstance(x, Value):
        return rows(x)
    return x


def _spread(fn, materialize=tuple):
    return lambda *args: materialize(fn(*(iterable(a) for a in args)))


def _one_element(name: str, x: Value) -> None:
    if x.size != 1:
        raise ValueError(f"the truth value of a tensor with {x.size} elements "
                         f"({x.type}) is ambiguous")


def _extreme(name: str, reduce: str, pairwise: str, python):
    def call(*args, **kwargs):
        if not any(isinstance(a, Value) for a in args) and not (
                len(args) == 1 and _holds_value(args[0])):
            return python(*args, **kwargs)
        if kwargs:
            raise TypeError("of tensors takes no keyword arguments")
        items = args
        if len(args) == 1:
            only = args[0]
            if isinstance(only, Value):
                _check_vector(name, only)
                return op(reduce)(only, axes=(0,), keep_dims=False)
            items = tuple(only)
        if not items:
            raise ValueError(f"{name}() arg is an empty sequence")
        out = items[0]
        for item in items[1:]:
            for v in (out, item):
                if isinstance(v, Value):
                    _one_element(name, v)
            out = op(pairwise)(out, item)
        return out
    return call


def _check_vector(name: str, x: Value) -> None:
    """Python's rule for a builtin over a tensor's rows: they must be single elements."""
    if x.ndim == 0:
        raise TypeError(f"iteration over a 0-d tensor ({x.type})")
    if x.ndim > 1:
        raise ValueError(f"a {x.ndim}-d tensor iterates over rows, whose truth value is "
                         f"ambiguous; use x.{name}()")


def _holds_value(x) -> bool:
    return isinstance(x, (tuple, list)) and any(isinstance(v, Value) for v in x)


def _sum(items, start=0):
    parts = iterable(items)
    out = start
    for part in parts:
        out = op("add")(out, part) if isinstance(out, Value) or isinstance(part, Value) \
            else out + part
    return out


def _truth_tensor(name: str, items) -> Value | bool:
    """any/all: Python's on known values; a bool tensor when an element is a tensor."""
    combine = "logical_or" if name == "any" else "logical_and"
    if isinstance(items, Value):
        _check_vector(name, items)
        items = rows(items)
    result: Value | bool = name == "all"
    for item in items:
        if isinstance(item, Value):
            _one_element(name, item)
            flag = _as_bool(item)
        else:
            flag = bool(item)
            if flag == (name == "any"):
                return flag if not isinstance(result, Value) else _constant_bool(flag)
            continue
        result = flag if not isinstance(result, Value) else op(combine)(result, flag)
    return result


def _as_bool(x: Value) -> Value:
    x = op("reshape")(x, shape=()) if x.shape else x
    return x if x.dtype.is_bool else op("not_equal")(x, 0)


def _constant_bool(flag: bool) -> Value:
    return ir_ops.constant(np.array(flag), DType.bool)


def _scalar(name: str, python, dtype: DType | None):
    def call(x=0, *rest):
        if not isinstance(x, Value):
            return python(x, *rest)
        data = known_value(x)
        if data is not None:
            if data.size != 1:
                raise TypeError(f"only one-element tensors can be converted to "
                                f"Python scalars, got shape {list(x.shape)}")
            return python(data.reshape(()).item(), *rest)
        if dtype is None:
            raise TypeError(f"{name}() of a tensor needs its value while the graph is built; "
                            f"it is known only when the graph runs ({x.type})")
        if x.size != 1:
            raise TypeError(f"only one-element tensors can be converted to Python scalars, "
                            f"got shape {list(x.shape)}")
        x = op("reshape")(x, shape=()) if x.shape else x
        return x if x.dtype is dtype else op("cast")(x, dtype=dtype)
    return call


def _str(x=""):
    if isinstance(x, Value):
        data = known_value(x)
        if data is None:
            raise TypeError(f"str() of a tensor needs its value while the graph is built; "
                            f"it is known only when the graph runs ({x.type})")
        return str(data)
    return str(x)


def _type(x, *rest):
    if isinstance(x, Value) and not rest:
        if not _TENSOR_CLASS:
            raise TypeError("type() of a tensor: the Tensor class is not registered")
        return _TENSOR_CLASS[0]
    return type(x, *rest)


def _sequence_of(materialize):
    """tuple()/list(): rows of tensors; numpy arrays element by element (as numpy does)."""
    def call(items=()):
        if isinstance(items, np.ndarray):
            return materialize(items[i] if items.ndim > 1 else items[i].item()
                               for i in range(items.shape[0]))
        return materialize(iterable(items))
    return call


GRAPH_BUILTINS = {
    **BASE_BUILTINS,
    "tuple": _sequence_of(tuple), "list": _sequence_of(list),
    "enumerate": _spread(lambda it, start=0: builtins.enumerate(it, start)),
    "zip": _spread(builtins.zip), "reversed": _spread(builtins.reversed),
    "sum": _sum, "any": functools.partial(_truth_tensor, "any"),
    "all": functools.partial(_truth_tensor, "all"),
    "max": _extreme("max", "reduce_max", "maximum", builtins.max),
    "min": _extreme("min", "reduce_min", "minimum", builtins.min),
    "int": _scalar("int", int, DType.i64), "float": _scalar("float", float, DType.f32),
    "bool": _scalar("bool", bool, None), "str": _str, "type": _type,
}


def emit_print(*items) -> None:
    """`gs.print` of `items`, one line each: strings and Python values as their text (known
    while parsing), tensors when the graph runs (MindSpore's Print). Tuples and lists that
    hold tensors print element by element."""
    strings: list[str] = []
    operands: list[Value] = []
    layout: list[int] = []
    for item in _flat_items(items):
        if isinstance(item, Value):
            layout.append(len(operands))
            operands.append(item)
        else:
            layout.append(-1 - len(strings))
            strings.append(item if isinstance(item, str) else str(item))
    ir_ops.print_(*operands, strings=tuple(strings), layout=tuple(layout))


def _flat_items(items):
    for item in items:
        if isinstance(item, (tuple, list)) and _holds_value(item):
            yield from _flat_items(item)
        else:
            yield item


class CallingBuiltins:
    """Builtins that call functions (`map`, `filter`): the translator inlines the callee.
    Expects `call` and `truth` from the Translator."""

    def builtin_map(self, node, fn, *its):
        if not its:
            raise TypeError("map() must have at least two arguments.")
        return tuple(self.call(node, fn, items, {})
                     for items in builtins.zip(*(iterable(it) for it in its)))

    def builtin_print(self, node, *items, sep=" ", end="\n", file=None, flush=False):
        if file is not None:
            raise TypeError("print(file=...) is not supported in a compiled function; "
                            "prints go to stdout")
        emit_print(*items)

    def builtin_filter(self, node, fn, items):
        out = []
        for item in iterable(items):
            keep = item if fn is None else self.call(node, fn, (item,), {})
            if self.truth(node, keep):
                out.append(item)
        return tuple(out)


__all__ = ["GRAPH_BUILTINS", "CallingBuiltins", "emit_print", "rows", "iterable",
           "register_tensor_class"]
