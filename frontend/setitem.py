"""`x[index] = v` in a compiled function: a functional update that builds a new tensor.

A graph has no mutable tensors, so `x[index] = v` rebinds `x` to `select(mask, new, x)`,
which is differentiable in both `x` (where the mask is false) and `v` (where it is true):
1. an index known while parsing (ints, slices with any step, None, Ellipsis, constant integer
   or bool arrays): numpy applies it to `arange(x.size)` to find the written positions; a
   basic index with positive steps places `v` with `pad` (the inverse of a strided slice),
   any other with a `gather` of `v` from a constant map position -> element of `v`
   (numpy's rule for repeated positions: the last write wins);
2. a bool tensor of `x`'s shape (`x[mask] = v`): `v` must broadcast to `x` (a scalar or a
   tensor of x's shape), the result is `select(mask, v, x)`;
3. an integer tensor of rank 0 or 1 indexing the first axis: each row takes the value of the
   last index naming it, found with a compare against `iota` and a max.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import Value
from ..ir.types import DType
from .operators import op


def setitem(x: Value, index, value) -> Value:
    """The tensor `x` with `x[index]` replaced by `value` (see the module docstring)."""
    items = index if isinstance(index, tuple) else (index,)
    tensors = [item for item in items if isinstance(item, Value)]
    if tensors:
        if len(items) != 1:
            raise IndexError("setitem: a tensor index must be the only index, got "
                             f"{index!r}")
        if tensors[0].dtype.is_bool:
            return _set_masked(x, tensors[0], value)
        return _set_rows(x, tensors[0], value)
    return _set_static(x, _host_index(items), value)


def _host_index(items: tuple):
    """The index as numpy takes it: constant arrays unwrapped, lists made arrays."""
    out = []
    for item in items:
        if isinstance(item, bool) or isinstance(item, (list, np.ndarray)):
            out.append(np.asarray(item))
        else:
            out.append(item)
    return tuple(out)


def _value_like(x: Value, value, shape: tuple) -> Value:
    """`value` in x's dtype, broadcast to `shape` (numpy's assignment rule)."""
    v = ir_ops.as_value(value, like=x.dtype)
    if v.dtype is not x.dtype:
        v = op("cast")(v, dtype=x.dtype)
    try:
        target = np.broadcast_shapes(v.shape, shape)
    except ValueError:
        target = None
    if target != tuple(shape):
        squeezed = tuple(d for d in v.shape if d != 1)
        if squeezed == tuple(d for d in shape if d != 1) and v.size == int(np.prod(shape)):
            return op("reshape")(v, shape=tuple(shape))
        raise ValueError(f"setitem: cannot assign a value of shape {list(v.shape)} to a "
                         f"selection of shape {list(shape)}")
    return v if v.shape == tuple(shape) else op("broadcast_to")(v, shape=tuple(shape))


def _set_static(x: Value, index: tuple, value) -> Value:
    positions = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    try:
        picked = positions[index]
    except IndexError as exc:
        raise IndexError(f"setitem: {exc} (tensor of shape {list(x.shape)})") from None
    picked = np.asarray(picked)
    v = _value_like(x, value, picked.shape)
    mask = np.zeros(x.size, dtype=bool)
    mask[picked.reshape(-1)] = True
    if not mask.any():
        return x
    if mask.all() and _is_identity(picked, x.shape):
        return v if v.shape == x.shape else op("reshape")(v, shape=x.shape)
    placed = _placed_by_pad(x, index, v) if _is_basic(index) else None
    if placed is None:
        source = np.zeros(x.size, dtype=np.int64)
        source[picked.reshape(-1)] = np.arange(picked.size, dtype=np.int64)
        flat = op("reshape")(v, shape=(v.size,))
        placed = op("gather")(flat, ir_ops.constant(source.reshape(x.shape), DType.i64),
                              axis=0)
    return op("select")(ir_ops.constant(mask.reshape(x.shape), DType.bool), placed, x)


def _is_identity(picked: np.ndarray, shape: tuple) -> bool:
    return picked.size == int(np.prod(shape)) and bool(
        (picked.reshape(-1) == np.arange(picked.size)).all())


def _is_basic(index: tuple) -> bool:
    return all(item is None or item is Ellipsis or isinstance(item, (int, np.integer))
               or (isinstance(item, builtins.slice) and (item.step is None or item.step > 0))
               for item in index) and not any(isinstance(i, (bool, np.bool_)) for i in index)


def _placed_by_pad(x: Value, index: tuple, v: Value) -> Value | None:
    """`v` padded with zeros into x's shape at a basic index with positive steps."""
    used = builtins.sum(1 for item in index if item is not None and item is not Ellipsis)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (builtins.slice(None),) * (x.ndim - used) + index[at + 1:]
    index = tuple(item for item in index if item is not None)
    index += (builtins.slice(None),) * (x.ndim - len(index))
    low, high, stride, block = [], [], [], []
    for n, item in zip(x.shape, index):
        if isinstance(item, builtins.slice):
            picked = range(n)[item]
        else:
            picked = range(int(item) % n, int(item) % n + 1)
        if not len(picked):
            return None
        step = picked.step if len(picked) > 1 else 1
        last = picked[0] + (len(picked) - 1) * step
        low.append(picked[0])
        high.append(n - 1 - last)
        stride.append(step)
        block.append(len(picked))
    v = v if v.shape == tuple(block) else op("reshape")(v, shape=tuple(block))
    return op("pad")(v, low=tuple(low), high=tuple(high), stride=tuple(stride))


def _set_masked(x: Value, mask: Value, value) -> Value:
    if mask.shape != x.shape:
        raise IndexError(f"setitem: a bool mask must have the tensor's shape "
                         f"{list(x.shape)}, got {list(mask.shape)}")
    v = ir_ops.as_value(value, like=x.dtype)
    try:
        target = np.broadcast_shapes(v.shape, x.shape)
    except ValueError:
        target = None
    if target != x.shape:
        raise ValueError(f"setitem: x[mask] = v needs v to broadcast to x's shape "
                         f"{list(x.shape)} (the number of true elements is known only "
                         f"when the graph runs), got shape {list(v.shape)}")
    return op("select")(mask, _value_like(x, v, x.shape), x)


def _set_rows(x: Value, index: Value, value) -> Value:
    """x[index] = value for an integer tensor `index` (rank 0 or 1) on the first axis."""
    if index.dtype not in (DType.i32, DType.i64):
        raise IndexError(f"setitem: tensor indices must be int32 or int64, got {index.type}")
    if index.ndim > 1 or x.ndim == 0:
        raise IndexError(f"setitem: an integer tensor index must have rank 0 or 1 and index "
                         f"the first axis, got {index.type} for a tensor {x.type}")
    n, rows = x.shape[0], x.shape[1:]
    k = 1 if index.ndim == 0 else index.shape[0]
    v = _value_like(x, value, ((k,) if index.ndim else ()) + rows)
    if index.ndim == 0:
        index, v = op("reshape")(index, shape=(1,)), op("reshape")(v, shape=(1,) + rows)
    index = op("cast")(index, dtype=DType.i64) if index.dtype is not DType.i64 else index
    index = op("where")(op("less")(index, 0), op("add")(index, n), index)
    row = ir_ops.iota(shape=(n, k), axis=0, dtype=DType.i64)
    hits = op("equal")(row, op("broadcast_to")(op("reshape")(index, shape=(1, k)),
                                               shape=(n, k)))
    order = op("add")(ir_ops.iota(shape=(n, k), axis=1, dtype=DType.i64), 1)
    last = op("reduce_max")(op("where")(hits, order, 0), axes=(1,), keep_dims=False)
    source = op("maximum")(op("sub")(last, 1), 0)
    new_rows = op("gather")(v, source, axis=0)
    written = op("greater")(last, 0)
    mask = op("broadcast_to")(op("reshape")(written, shape=(n,) + (1,) * len(rows)),
                              shape=x.shape)
    return op("select")(mask, new_rows, x)


__all__ = ["setitem"]
