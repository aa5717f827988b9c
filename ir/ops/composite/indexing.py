"""Python indexing (`x[1:3, None, idx]`) as slices, reversals, reshapes and one gather."""
from __future__ import annotations

import builtins
import operator

import numpy as np

from ...core import Value
from ...types import DType
from ..indexing import gather
from ..opdef import as_value
from ..shape import reshape, reverse, slice, transpose

__all__ = ["getitem"]


def _bool_index(item):
    """`x[True]` adds a unit axis, as `x[None]` (numpy, MindSpore); `x[False]` would select
    nothing along a new axis, which MindSpore refuses: IndexError."""
    if item is True or isinstance(item, np.bool_) and item:
        return None
    if item is False or isinstance(item, np.bool_):
        raise IndexError("getitem: a bool index must be True (a new unit axis, as None); "
                         "False would select nothing")
    return item


def getitem(x, index) -> Value:
    """Python indexing: ints (negative ones count from the end), slices (any step), None or
    True (a new unit axis), Ellipsis, and at most one integer tensor (see `_getitem_tensor`).

    One strided `slice` reads the ascending range of every axis; axes with negative steps are
    then reversed (one `reverse`, an index map); a final `reshape` drops int-indexed axes and inserts the None axes."""
    x = as_value(x)
    items = tuple(_bool_index(item) for item in (index if isinstance(index, tuple)
                                                  else (index,)))
    tensors = [k for k, item in enumerate(items) if isinstance(item, Value)]
    if tensors:
        return _getitem_tensor(x, items, tensors)
    for item in items:
        if not (item is None or item is Ellipsis or isinstance(item, (builtins.slice, int,
                                                                       np.integer))
                ) or isinstance(item, (bool, np.bool_)):
            raise TypeError(f"getitem: index {item!r} is not an int, slice, None or ...; "
                            f"index with an integer tensor (or ops.gather) instead")
    used = builtins.sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > x.ndim or builtins.sum(1 for item in items if item is Ellipsis) > 1:
        raise IndexError(f"getitem: too many indices for {x.type}: {index!r}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (builtins.slice(None),) * (x.ndim - used) + items[at + 1:]
    else:
        items = items + (builtins.slice(None),) * (x.ndim - used)
    begin, end, strides, flipped, shape, axis = [], [], [], [], [], 0
    for item in items:
        if item is None:
            shape.append(1)
            continue
        n = x.shape[axis]
        if isinstance(item, builtins.slice):
            picked = range(n)[item]
            lo = builtins.min(picked[0], picked[-1]) if len(picked) else 0
            step = builtins.abs(picked.step)
            begin.append(lo)
            end.append(lo + (len(picked) - 1) * step + 1 if len(picked) else lo)
            strides.append(step)
            shape.append(len(picked))
            if picked.step < 0 and len(picked) > 1:
                flipped.append(axis)
        else:
            i = operator.index(item)
            if not -n <= i < n:
                raise IndexError(f"getitem: index {i} is out of bounds for axis {axis} "
                                 f"of size {n}")
            begin.append(i % n)
            end.append(i % n + 1)
            strides.append(1)
        axis += 1
    out = x
    if (tuple(begin), tuple(end), tuple(strides)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        out = slice(x, begin=tuple(begin), end=tuple(end), strides=tuple(strides))
    if flipped:
        out = reverse(out, axes=tuple(flipped))
    return out if out.shape == tuple(shape) else reshape(out, shape=tuple(shape))


def _getitem_tensor(x: Value, items: tuple, tensors: list[int]) -> Value:
    """x[items] where items[k] is an integer tensor: basic indexing with a full slice in its
    place, then a gather on the axis that slice left. As in numpy, ints are advanced indices
    too: when one is not next to the tensor, the gathered axes move to the front."""
    if len(tensors) > 1:
        raise IndexError(f"getitem: only one tensor index is supported, got {len(tensors)}")
    k = tensors[0]
    index = items[k]
    if index.dtype.is_bool:
        raise IndexError("getitem: boolean mask indexing is not supported: the result's shape "
                         "would depend on the mask's values; use ops.select(mask, x, 0)")
    if index.dtype not in (DType.i32, DType.i64):
        raise IndexError(f"getitem: tensor indices must be int32 or int64, got {index.type}")
    out = getitem(x, items[:k] + (builtins.slice(None),) + items[k + 1:])
    used = builtins.sum(1 for item in items if item is not None and item is not Ellipsis)
    axis = builtins.sum(x.ndim - used if item is Ellipsis else 0 if _is_int(item) else 1
                        for item in items[:k])
    out = gather(out, index, axis=axis)
    advanced = [p for p, item in enumerate(items) if p == k or _is_int(item)]
    if index.ndim and advanced[-1] - advanced[0] != len(advanced) - 1 and axis:
        moved = tuple(range(axis, axis + index.ndim))
        out = transpose(out, perm=moved + tuple(a for a in range(out.ndim) if a not in moved))
    return out


def _is_int(item) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))
