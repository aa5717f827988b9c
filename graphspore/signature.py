"""Abstract signatures of calls: what a compiled graph is specialised to, and the cache key.

A Tensor argument becomes its `TensorType`; Python numbers, strings, None and tuples, lists
and dicts of them are part of the signature by value (they are folded while parsing);
functions, Cells and Primitives by identity (the graph inlines that very object).
"""
from __future__ import annotations

import numpy as np

from .ir import DType, TensorType, GraphsporeError


def abstract(value, where: str):
    """The abstract value of one argument: a TensorType, or a hashable Python constant."""
    if getattr(value, "__gs_tensor__", False):
        return value.ir_type
    if isinstance(value, np.ndarray):
        exact = DType.exactly(value.dtype)
        if exact is None:
            wanted = DType.from_numpy(value.dtype)   # raises for complex, strings, uint64...
            raise TypeError(f"{where}: a numpy array of dtype {value.dtype.str} "
                            f"({value.dtype.name}) cannot be read by compiled code, which "
                            f"takes {np.dtype(wanted.np).name} in this machine's byte order: "
                            f"pass Tensor(x) (converts it) or "
                            f"x.astype(np.{np.dtype(wanted.np).name})")
        return TensorType(value.shape, exact)
    if value is None or isinstance(value, (bool, int, float, str, np.number)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(abstract(v, where) for v in value)
    if isinstance(value, dict):
        return {k: abstract(v, f"{where}[{k!r}]") for k, v in value.items()}
    if callable(value) or isinstance(value, DType) or hasattr(value, "ir_dtype"):
        return value              # functions, Cells, Primitives, dtypes: used while parsing
    raise TypeError(f"{where}: unsupported argument type {type(value).__name__}; expected a "
                    f"Tensor, a Python number, a string, None, a function, Cell or Primitive, "
                    f"or a tuple, list or dict of them")


def cache_key(args: tuple, kwargs: dict) -> tuple:
    """A hashable key for a call: tensors by (shape, dtype), constants by value and type."""
    key = []
    for a in args:
        arr = getattr(a, "_array", None)
        if arr is not None:
            key.append((arr.shape, arr.dtype))
        elif isinstance(a, np.ndarray):
            key.append((a.shape, a.dtype, "np"))
        elif isinstance(a, (tuple, list)):
            key.append((type(a), cache_key(tuple(a), {})))
        elif isinstance(a, dict):
            key.append((dict, tuple(a), cache_key(tuple(a.values()), {})))
        elif isinstance(a, (float, np.floating)):
            # by bits: NaN != NaN would miss the cache on every call, and 0.0 == -0.0 would
            # reuse a graph folded with the other zero's sign
            key.append((type(a), float(a).hex()))
        elif isinstance(a, (bool, int, str, np.integer, np.bool_)) or a is None:
            key.append((type(a), a))
        else:
            key.append((type(a), _object_key(a)))
    if kwargs:
        key.append(tuple(sorted((k, cache_key((v,), {})) for k, v in kwargs.items())))
    return tuple(key)


def flatten_tensors(args) -> list:
    """Host arrays of the tensor arguments, depth-first, in the order the graph takes them."""
    out = []
    for a in args:
        arr = getattr(a, "_array", None)
        if arr is not None:
            out.append(arr)
        elif isinstance(a, np.ndarray):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(flatten_tensors(a))
        elif isinstance(a, dict):
            out.extend(flatten_tensors(tuple(a.values())))
    return out


def _object_key(obj):
    """A Primitive instance by its class and attributes (`ops.Softmax(1)` made twice is one
    graph); functions, Cells and other objects by identity (the graph inlines that object)."""
    if getattr(type(obj), "__gs_op__", False) and not getattr(obj, "__gs_cell__", False):
        try:
            attrs = tuple(sorted(vars(obj).items()))
            hash(attrs)
            return ("primitive", attrs)
        except TypeError:
            pass
    return _Identity(obj)


class _Identity:
    """A cache-key part equal only to itself for the same object (no user __eq__/__hash__:
    a Cell or Primitive is one graph per instance, as MindSpore compiles them)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return type(other) is _Identity and other.obj is self.obj


def check_differentiable(t: TensorType, what: str) -> None:
    if not t.dtype.is_float:
        raise TypeError(f"cannot take the gradient with respect to {what}: it is a "
                        f"{t.dtype.name} tensor ({t}); gradients exist only for float tensors")


__all__ = ["abstract", "cache_key", "flatten_tensors", "check_differentiable",
           "GraphsporeError"]
