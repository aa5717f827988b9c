"""Creation composites: constants broadcast to a shape (never a host-sized array), and
one-hot encodings."""
from __future__ import annotations

import operator

import numpy as np

from ...core import Value
from ...types import DType
from ..elementwise import cast, equal, select
from ..opdef import as_value, constant, is_number
from ..shape import broadcast_to, int_tuple, normalize_axis
from ..source import iota
from .shape import expand_dims

__all__ = ["full", "zeros", "ones", "zeros_like", "ones_like", "one_hot"]


def full(shape, value, dtype: DType | None = None) -> Value:
    """A tensor of `shape` filled with `value` (a constant broadcast to the shape)."""
    shape = int_tuple(shape, "shape")
    if is_number(value) or isinstance(value, np.ndarray):
        scalar = constant(value, dtype)
    else:
        scalar = as_value(value)
        scalar = scalar if dtype is None or scalar.dtype is dtype else cast(scalar, dtype=dtype)
    if scalar.ndim:
        raise ValueError(f"full: value must be a scalar, got {scalar.type}")
    return scalar if shape == () else broadcast_to(scalar, shape=shape)


def zeros(shape, dtype: DType = DType.f32) -> Value:
    """full(shape, 0, dtype)."""
    return full(shape, 0, dtype)


def ones(shape, dtype: DType = DType.f32) -> Value:
    """full(shape, 1, dtype)."""
    return full(shape, 1, dtype)


def zeros_like(x, dtype: DType | None = None) -> Value:
    """Zeros with x's shape and dtype (or `dtype`)."""
    x = as_value(x)
    return full(x.shape, 0, dtype or x.dtype)


def ones_like(x, dtype: DType | None = None) -> Value:
    """Ones with x's shape and dtype (or `dtype`)."""
    x = as_value(x)
    return full(x.shape, 1, dtype or x.dtype)


def one_hot(indices, depth: int, on_value=1.0, off_value=0.0, axis: int = -1) -> Value:
    """on_value where iota == index along a new axis `axis` of size `depth`, else off_value;
    indices outside [0, depth) give a row of off_value."""
    indices = as_value(indices)
    if not indices.dtype.is_int:
        raise TypeError(f"one_hot: indices must be integers, got {indices.type}")
    axis = normalize_axis(axis, indices.ndim + 1)
    shape = indices.shape[:axis] + (operator.index(depth),) + indices.shape[axis:]
    ramp = iota(shape=shape, axis=axis, dtype=indices.dtype)
    return select(equal(ramp, expand_dims(indices, axis)), on_value, off_value)
