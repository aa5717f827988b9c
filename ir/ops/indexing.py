"""Indexing primitives: gather, gather_elements and scatter_add.

- `gather(x, indices, axis=a)` is numpy's `take` (MindSpore's Gather, batch_dims=0): the
  result's shape is `x.shape[:a] + indices.shape + x.shape[a+1:]`.
- `gather_elements(x, index, dim=d)` is MindSpore's GatherD (torch.gather): the result has
  `index`'s shape and `out[p] = x[p with p[d] := index[p]]`; `index` has x's rank and is no
  larger than x on every axis but `d`.
- `scatter_add(x, indices, updates, axis=a)` is gather's transpose: a copy of x with each
  slice of `updates` added where gather would have read it (duplicates accumulate).

Indices are i32 or i64; negative ones count from the end (-n <= i < n). The references raise
IndexError naming the first out-of-range index (row-major), its axis and the axis size; the
builder adds the op and the user's line. Compiled code clamps every address it touches, and a
hidden output computed by `ir.passes.index_checks` makes the program raise the same error.

Why gather_elements is a primitive: written as a gather from the flattened x, an index out of
range on `d` would land in a neighbouring row, a silent wrong answer; the primitive checks it
against `x.shape[d]`. Its VJP does scatter into the flattened x (no fourth primitive): entries
out of range on `d` get a flat index out of range for the flat view too, so that scatter's own
check fires even without the forward op.
"""
from __future__ import annotations

import numpy as np

from ..core import Value
from ..types import DType, TensorType
from .opdef import register, as_value, constant, promote_operands, GATHER
from .elementwise import cast, greater_equal, less, logical_and, select
from .shape import AttrOpDef, broadcast_to, normalize_axis, reshape
from .source import iota

__all__ = ["gather", "gather_elements", "scatter_add"]

INDEXING = "indexing"


def check_bounds(indices: np.ndarray, size: int, axis: int) -> None:
    """Raise IndexError naming the first index outside [-size, size) in row-major order."""
    flat = np.asarray(indices).reshape(-1)
    bad = (flat < -size) | (flat >= size)
    if bad.any():
        first = flat[int(np.argmax(bad))]
        raise IndexError(f"index {first} is out of bounds for axis {axis} with size {size}")


def _check_indices(indices: TensorType, x: TensorType, axis: int, what: str) -> None:
    if indices.dtype not in (DType.i32, DType.i64):
        raise TypeError(f"{what} must be int32 or int64, got {indices}")
    if x.rank == 0 or not (isinstance(axis, int) and 0 <= axis < x.rank):
        raise ValueError(f"axis {axis!r} is not an axis of {x}")
    if x.shape[axis] == 0 and indices.size:
        raise ValueError(f"axis {axis} of {x} is empty: every index would be out of range")


def _zeros(shape: tuple[int, ...], dtype: DType) -> Value:
    scalar = constant(np.zeros((), dtype.np))
    return broadcast_to(scalar, shape=shape) if shape else scalar


def _indexing_op(name, infer, reference, vjp, doc, prepare, normalize, gather=True
                 ) -> AttrOpDef:
    """An indexing op; a `gather` (the default) is an index map through loaded positions."""
    groups = frozenset({INDEXING, GATHER} if gather else {INDEXING})
    return register(AttrOpDef(name, infer, reference, vjp, groups, doc, prepare, normalize))


# ------------------------------------------------------------------------------ gather

def gathered_shape(x: tuple, indices: tuple, axis: int) -> tuple[int, ...]:
    """The shape of gather(x, indices, axis): x's axis replaced by the indices' shape."""
    return tuple(x[:axis]) + tuple(indices) + tuple(x[axis + 1:])


def _infer_gather(x: TensorType, indices: TensorType, *, axis: int) -> TensorType:
    _check_indices(indices, x, axis, "indices")
    return x.with_shape(gathered_shape(x.shape, indices.shape, axis))


def _reference_gather(x, indices, *, axis):
    check_bounds(indices, x.shape[axis], axis)
    return np.take(x, indices, axis=axis)


gather = _indexing_op(
    "gs.gather", _infer_gather, _reference_gather,
    lambda g, out, x, indices, *, axis: (
        scatter_add(_zeros(x.shape, x.dtype), indices, g, axis=axis), None),
    'numpy take: `%y = "gs.gather"(%x, %i) {axis = 0 : i64} : (tensor<5x3xf32>, '
    'tensor<2x4xi32>) -> tensor<2x4x3xf32>`',
    lambda x, indices: (as_value(x), as_value(indices)),
    lambda x, indices, *, axis=0: {"axis": normalize_axis(axis, x.ndim)})


# ------------------------------------------------------------------------- scatter_add

def _infer_scatter_add(x: TensorType, indices: TensorType, updates: TensorType, *,
                       axis: int) -> TensorType:
    _check_indices(indices, x, axis, "indices")
    if x.dtype.is_bool or updates.dtype is not x.dtype:
        raise TypeError(f"x and updates must be numeric of one dtype, got {x} and {updates}")
    expected = gathered_shape(x.shape, indices.shape, axis)
    if updates.shape != expected:
        raise ValueError(f"updates must have shape {expected} (x's axis {axis} replaced by "
                         f"the indices' shape), got {updates}")
    return x


def _reference_scatter_add(x, indices, updates, *, axis):
    check_bounds(indices, x.shape[axis], axis)
    out = x.copy()
    np.add.at(out, (slice(None),) * axis + (indices,), updates)
    return out


def _prepare_scatter_add(x, indices, updates):
    x, updates = promote_operands(x, updates)
    return x, as_value(indices), updates


scatter_add = _indexing_op(
    "gs.scatter_add", _infer_scatter_add, _reference_scatter_add,
    lambda g, out, x, indices, updates, *, axis: (
        g, None, gather(g, indices, axis=axis)),
    'x with updates added at gather\'s positions: `%y = "gs.scatter_add"(%x, %i, %u) '
    '{axis = 0 : i64} : (tensor<5xf32>, tensor<3xi64>, tensor<3xf32>) -> tensor<5xf32>`',
    _prepare_scatter_add,
    lambda x, indices, updates, *, axis=0: {"axis": normalize_axis(axis, x.ndim)},
    gather=False)


# --------------------------------------------------------------------- gather_elements

def _infer_gather_elements(x: TensorType, index: TensorType, *, dim: int) -> TensorType:
    _check_indices(index, x, dim, "index")
    if index.rank != x.rank or any(i > n for a, (i, n) in enumerate(zip(index.shape, x.shape))
                                   if a != dim):
        raise ValueError(f"index must have x's rank and be no larger than x on every axis but "
                         f"{dim}, got {index} for {x}")
    return x.with_shape(index.shape)


def _reference_gather_elements(x, index, *, dim):
    check_bounds(index, x.shape[dim], dim)
    window = tuple(slice(None) if a == dim else slice(0, n) for a, n in enumerate(index.shape))
    return np.take_along_axis(x[window], index.astype(np.int64), axis=dim)


def flat_positions(shape: tuple[int, ...], index: Value, dim: int) -> Value:
    """Row-major offsets into a tensor of `shape` of the elements gather_elements reads, as a
    flat i64 vector; an index out of range on `dim` gives the offset `size` (out of range)."""
    n, size = shape[dim], int(np.prod(shape, dtype=np.int64))
    strides = [int(np.prod(shape[axis + 1:], dtype=np.int64)) for axis in range(len(shape))]
    i = cast(index, dtype=DType.i64)
    wrapped = select(less(i, 0), i + n, i)
    offset = wrapped * strides[dim]
    for axis in range(len(shape)):
        if axis != dim and index.shape[axis] > 1:
            offset = offset + iota(shape=index.shape, axis=axis, dtype=DType.i64) * strides[axis]
    inside = logical_and(greater_equal(wrapped, 0), less(wrapped, n))
    return reshape(select(inside, offset, size), shape=(index.type.size,))


def _vjp_gather_elements(g, out, x, index, *, dim):
    flat = scatter_add(_zeros((x.type.size,), x.dtype), flat_positions(x.shape, index, dim),
                       reshape(g, shape=(g.type.size,)), axis=0)
    return (reshape(flat, shape=x.shape), None)


gather_elements = _indexing_op(
    "gs.gather_elements", _infer_gather_elements, _reference_gather_elements,
    _vjp_gather_elements,
    'out[i][j] = x[i][index[i][j]] for dim = 1: `%y = "gs.gather_elements"(%x, %i) '
    '{dim = 1 : i64} : (tensor<3x5xf32>, tensor<3x2xi64>) -> tensor<3x2xf32>`',
    lambda x, index: (as_value(x), as_value(index)),
    lambda x, index, *, dim=0: {"dim": normalize_axis(dim, x.ndim)})
