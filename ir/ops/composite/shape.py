"""Shape composites: unit axes, axis swaps, tiling, repeating, splitting,
flattening, all as reshapes, transposes, broadcasts, slices and concats.

Tiling and repeating are a reshape that inserts a unit axis, a `broadcast_to` over it and a
reshape that merges it, so their gradient is the `broadcast_to` rule (a sum); per-element
repeat counts concatenate broadcast slices. Counts and sizes are Python values known while
the graph is built.
"""
from __future__ import annotations

import numpy as np

from ...core import Value
from ..opdef import as_value
from ..shape import (broadcast_to, concat, normalize_axes, normalize_axis, reshape, slice,
                     transpose)

__all__ = ["expand_dims", "squeeze", "swapaxes", "transpose_nd", "take", "tile",
           "repeat_interleave", "split", "narrow", "flatten"]


def expand_dims(x, axis: int) -> Value:
    """Insert a unit axis at `axis` (in [-rank-1, rank])."""
    x = as_value(x)
    axis = normalize_axis(axis, x.ndim + 1)
    return reshape(x, shape=x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None) -> Value:
    """Drop unit axes: all of them (axis=None) or the given ones, which must have size 1."""
    x = as_value(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of {x.type} has size {x.shape[a]}, not 1")
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return x if shape == x.shape else reshape(x, shape=shape)


def swapaxes(x, axis1: int, axis2: int) -> Value:
    """Exchange two axes."""
    x = as_value(x)
    perm = list(range(x.ndim))
    a, b = normalize_axis(axis1, x.ndim), normalize_axis(axis2, x.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return x if a == b else transpose(x, perm=tuple(perm))


def transpose_nd(x, perm=None) -> Value:
    """numpy.transpose: reverse the axes (perm=None) or permute them."""
    x = as_value(x)
    perm = tuple(reversed(range(x.ndim))) if perm is None else perm
    return transpose(x, perm=perm)


def take(x, axis: int, start: int, stop: int) -> Value:
    """x[..., start:stop, ...] along `axis`."""
    begin, end = [0] * x.ndim, list(x.shape)
    begin[axis], end[axis] = start, stop
    return slice(x, begin=tuple(begin), end=tuple(end))


def ints(values, what: str) -> tuple[int, ...]:
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        return (int(values),)
    if not isinstance(values, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{what} must be a tuple of ints, got {values!r}")
    return tuple(int(v) for v in values)


def _static_array(value):
    """The data of a tensor known while the graph is built (eager, or a graph constant)."""
    if getattr(value, "data", None) is not None:
        return np.asarray(value.data)
    producer = getattr(value, "op", None)
    if producer is not None and producer.name == "gs.constant":
        return np.asarray(producer.attrs["value"])
    return None


def _repeat_axes(x, counts: tuple[int, ...]):
    """x with axis i repeated counts[i] times as whole blocks (numpy.tile on equal ranks)."""
    unit_shape, wide_shape = [], []
    for count, n in zip(counts, x.shape):
        unit_shape += [1, n]
        wide_shape += [count, n]
    wide = broadcast_to(reshape(x, shape=tuple(unit_shape)),
                               shape=tuple(wide_shape))
    return reshape(wide, shape=tuple(c * n for c, n in zip(counts, x.shape)))


def tile(input, dims):
    """Repeat `input` dims[i] times along axis i; the shorter of the shape and `dims` is
    padded with leading ones."""
    x = as_value(input)
    dims = ints(dims, "tile: dims")
    if min(dims, default=0) < 0:
        raise ValueError(f"tile: dims must be >= 0, got {dims}")
    if x.ndim < len(dims):
        x = reshape(x, shape=(1,) * (len(dims) - x.ndim) + x.shape)
    dims = (1,) * (x.ndim - len(dims)) + dims
    return x if all(d == 1 for d in dims) else _repeat_axes(x, dims)


def repeat_interleave(input, repeats, axis=None):
    """Repeat each element `repeats` times along `axis` (None: of the flattened input);
    `repeats` is an int or one count per element (a tuple, list or constant tensor)."""
    x = as_value(input)
    if axis is None:
        x, axis = reshape(x, shape=(x.type.size,)), 0
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    if not isinstance(repeats, (int, np.integer, tuple, list)):
        data = _static_array(repeats)
        if data is None:
            raise ValueError("repeat_interleave: repeats must be known while the graph is "
                             "built; pass an int or a tuple of ints")
        repeats = data.tolist()
    counts = ints(repeats, "repeat_interleave: repeats")
    if len(counts) == 1:
        counts = counts * n
    if len(counts) != n or min(counts, default=0) < 0:
        raise ValueError(f"repeat_interleave: need one non-negative count per element ({n} "
                         f"along axis {axis}), got {counts}")
    if len(set(counts)) == 1:
        count = counts[0]
        unit = x.shape[:axis + 1] + (1,) + x.shape[axis + 1:]
        wide = x.shape[:axis + 1] + (count,) + x.shape[axis + 1:]
        spread = broadcast_to(reshape(x, shape=unit), shape=wide)
        return reshape(spread, shape=x.shape[:axis] + (n * count,) + x.shape[axis + 1:])
    pieces = []
    for i, count in enumerate(counts):
        if count:
            piece = take(x, axis, i, i + 1)
            shape = piece.shape[:axis] + (count,) + piece.shape[axis + 1:]
            pieces.append(broadcast_to(piece, shape=shape))
    return concat(*pieces, axis=axis)


def split(tensor, split_size_or_sections, axis=0):
    """A tuple of pieces along `axis`: equal pieces of an int size (the last may be shorter),
    or pieces of the sizes in a tuple/list, which must add up to the axis length."""
    x = as_value(tensor)
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(
            split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: the split size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(ints(split_size_or_sections, "split: split_size_or_sections"))
        if sum(sizes) != n or min(sizes, default=0) < 0:
            raise ValueError(f"split: sizes {tuple(sizes)} must be non-negative and add up "
                             f"to {n}, the length of axis {axis}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(take(x, axis, start, start + size))
        start += size
    return tuple(pieces)


def narrow(input, axis, start, length):
    """input[..., start:start + length, ...] along `axis` (a negative start counts from the
    end)."""
    x = as_value(input)
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    start, length = int(start), int(length)
    if not -n <= start <= n:
        raise ValueError(f"narrow: start {start} is out of range for axis {axis} of size {n}")
    start = start % n if start < 0 else start
    if length < 0 or start + length > n:
        raise ValueError(f"narrow: start {start} + length {length} exceeds axis {axis} of "
                         f"size {n}")
    return take(x, axis, start, start + length)


def flatten(input, order="C", *, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim (MindSpore 2.x default keeps the batch axis)."""
    if order != "C":
        raise ValueError(f"flatten: only order='C' is supported, got {order!r}")
    x = as_value(input)
    if x.ndim == 0:
        return reshape(x, shape=(1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = int(np.prod(x.shape[start:end + 1], dtype=np.int64))
    shape = x.shape[:start] + (merged,) + x.shape[end + 1:]
    return x if shape == x.shape else reshape(x, shape=shape)
