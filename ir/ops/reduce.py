"""Reductions: reduce_sum and reduce_max over a set of axes, and argmax along one axis.

In the IR `axes` is a non-empty, sorted tuple of distinct non-negative ints. The op functions
accept None (every axis), an int, or negative axes, and a reduction over no axes (a rank-0
operand with axis=None) emits nothing and returns its operand. reduce_sum of a bool tensor
counts: the op function casts it to i64 first.

reduce_max's gradient is shared equally between tied maxima (g * (x == max) / ties), as in
MindSpore and TensorFlow: it is the average of the one-hot subgradients, symmetric in the ties,
and it keeps the rule free of index arithmetic.
"""
from __future__ import annotations

import numpy as np

from ..core import Value
from ..types import DType, TensorType, is_half_float
from .opdef import register, as_value, REDUCE, NONDIFF
from .elementwise import cast, equal
from .shape import AttrOpDef, normalize_axes, normalize_axis, reshape, broadcast_to

__all__ = ["reduce_sum", "reduce_max", "argmax"]


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the reduced axes set to 1 (the keep_dims result shape)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _keep(v: Value, shape: tuple[int, ...]) -> Value:
    return v if v.shape == shape else reshape(v, shape=shape)


def _normalize_reduce(x: Value, *, axes=None, keep_dims=False) -> dict | None:
    axes = normalize_axes(axes, x.ndim)
    return {"axes": axes, "keep_dims": bool(keep_dims)} if axes else None


def _infer_reduce(x: TensorType, *, axes: tuple, keep_dims: bool) -> TensorType:
    if not (isinstance(axes, tuple) and axes and list(axes) == sorted(set(axes))
            and all(isinstance(a, int) and 0 <= a < x.rank for a in axes)):
        raise ValueError(f"axes must be a non-empty sorted tuple of distinct axes of {x}, "
                         f"got {axes!r}")
    if not isinstance(keep_dims, bool):
        raise TypeError(f"keep_dims must be a bool, got {keep_dims!r}")
    if keep_dims:
        return x.with_shape(kept_shape(x.shape, axes))
    return x.with_shape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _infer_sum(x: TensorType, **attrs) -> TensorType:
    if x.dtype.is_bool:
        raise TypeError(f"expected a numeric tensor, got {x} (cast bools to an integer type)")
    return _infer_reduce(x, **attrs)


def _prepare_sum(x):
    x = as_value(x)
    return (cast(x, dtype=DType.i64) if x.dtype.is_bool else x,)


def _vjp_sum(g, out, x, *, axes, keep_dims):
    return (broadcast_to(_keep(g, kept_shape(x.shape, axes)), shape=x.shape),)


def _reference_sum(x, *, axes, keep_dims):
    """float16 and bfloat16 are summed in float32 and rounded once (as codegen does)."""
    if is_half_float(x.dtype):           # float16, bfloat16
        return np.sum(x.astype(np.float32), axis=axes, keepdims=keep_dims).astype(x.dtype)
    return np.sum(x, axis=axes, keepdims=keep_dims, dtype=x.dtype)


reduce_sum = register(AttrOpDef(
    "gs.reduce_sum", _infer_sum,
    _reference_sum,
    _vjp_sum, frozenset({REDUCE}),
    '`%y = "gs.reduce_sum"(%x) {axes = array<i64: 1>, keep_dims = false} : '
    '(tensor<2x3xf32>) -> tensor<2xf32>`', _prepare_sum, _normalize_reduce))


def _vjp_max(g, out, x, *, axes, keep_dims):
    kept = kept_shape(x.shape, axes)
    mask = cast(equal(x, _keep(out, kept)), dtype=g.dtype)
    return (_keep(g, kept) * mask / reduce_sum(mask, axes=axes, keep_dims=True),)


def _infer_max(x: TensorType, *, axes: tuple, keep_dims: bool) -> TensorType:
    # max has no identity: numpy rejects it over an empty axis, and so does the compiler
    # (a compiled -inf would disagree with eager mode).
    if any(x.shape[a] == 0 for a in axes if 0 <= a < x.rank):
        raise ValueError(f"zero-size array to reduction operation maximum which has no "
                         f"identity: {x} over axes {axes}")
    return _infer_reduce(x, axes=axes, keep_dims=keep_dims)


reduce_max = register(AttrOpDef(
    "gs.reduce_max", _infer_max,
    lambda x, *, axes, keep_dims: np.max(x, axis=axes, keepdims=keep_dims),
    _vjp_max, frozenset({REDUCE}),
    'Ties share the gradient: `%y = "gs.reduce_max"(%x) {axes = array<i64: 0, 1>, '
    'keep_dims = false} : (tensor<2x3xf32>) -> tensor<f32>`',
    lambda x: (as_value(x),), _normalize_reduce))


# ------------------------------------------------------------------------------ argmax

def _normalize_argmax(x: Value, *, axis=-1, keep_dims=False) -> dict:
    return {"axis": normalize_axis(axis, x.ndim), "keep_dims": bool(keep_dims)}


def _infer_argmax(x: TensorType, *, axis: int, keep_dims: bool) -> TensorType:
    if x.rank == 0 or not (isinstance(axis, int) and 0 <= axis < x.rank):
        raise ValueError(f"axis must be an axis of a tensor of rank >= 1, got axis {axis!r} "
                         f"for {x}")
    return _infer_max(x, axes=(axis,), keep_dims=keep_dims).with_dtype(DType.i64)


def _reference_argmax(x, *, axis, keep_dims):
    index = np.argmax(x, axis=axis)                  # first occurrence, like numpy
    return np.expand_dims(index, axis) if keep_dims else index


argmax = register(AttrOpDef(
    "gs.argmax", _infer_argmax, _reference_argmax, None, frozenset({REDUCE, NONDIFF}),
    'Index of the first maximum: `%i = "gs.argmax"(%x) {axis = 1 : i64, keep_dims = false} '
    ': (tensor<2x3xf32>) -> tensor<2xi64>`', lambda x: (as_value(x),), _normalize_argmax))
