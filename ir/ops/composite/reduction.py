"""Reduction composites: mean, min, softmax and its log, logsumexp, products, moments, norms,
prefix sums and top-k, written in primitives.

- prod: pairwise products along each axis (the upper half times the lower half, log2(n)
  rounds): exact for zeros, and its gradient comes from the `mul`/`slice` rules.
- cumsum: a Hillis-Steele scan, ceil(log2(n)) rounds of x + shift(x, 2^k) (a `pad` of a
  `slice`): O(n log n) work with no n x n constant (a triangular-matrix product would hold n^2
  elements and turn integer sums into float matmuls); exact for integers; its gradient, a
  reversed scan, comes from the `slice`/`pad` rules.
- topk: k rounds of "largest remaining value, then its first index" (an argmax over the bool
  candidates), so ties and infinities come out in index order; values are masked sums, so
  the gradient reaches exactly the picked elements. O(k n): meant for small k.
"""
from __future__ import annotations

import math

import numpy as np

from ...core import Value
from ...types import DType, to_dtype
from ..elementwise import (abs, cast, equal, exp, log, logical_and, logical_not, logical_or, neg,
                           not_equal, pow, sqrt, stop_gradient)
from ..opdef import as_value, promote_operands
from ..reduce import argmax, reduce_max, reduce_sum
from ..shape import axes_of, concat, normalize_axes, normalize_axis, pad, reshape
from ..source import iota
from .creation import full
from .elementwise import invert, where
from .shape import squeeze, take

__all__ = ["mean", "reduce_min", "softmax", "log_softmax", "logsumexp", "prod", "var", "std",
           "var_mean", "std_mean", "norm", "cumsum", "topk"]


def _float(x) -> Value:
    """x as a Value of a float dtype (int and bool become float32)."""
    return promote_operands(x, to_float=True)[0]


def _count(x: Value, axes: tuple[int, ...]) -> int:
    return int(np.prod([x.shape[a] for a in axes], dtype=np.int64))


def mean(x, axes=None, keep_dims: bool = False) -> Value:
    """Sum over `axes` (None: all) divided by the static element count; ints give float32."""
    x = promote_operands(x, to_float=True)[0]
    axes = normalize_axes(axes, x.ndim)
    if not axes:
        return x
    return reduce_sum(x, axes=axes, keep_dims=keep_dims) / _count(x, axes)  # 0/0: NaN, as numpy


def reduce_min(x, axes=None, keep_dims: bool = False) -> Value:
    """-max(-x); for integers ~max(~x) (order-reversing without overflow, signed or
    unsigned); for bool, not(any(not x))."""
    x = as_value(x)
    if x.dtype.is_bool:
        return logical_not(reduce_max(logical_not(x), axes=axes, keep_dims=keep_dims))
    if x.dtype.is_int:
        return invert(reduce_max(invert(x), axes=axes, keep_dims=keep_dims))
    return neg(reduce_max(neg(x), axes=axes, keep_dims=keep_dims))


def _shifted(x, axes):
    """(x - m, m) with m the kept-dims max, outside the gradient (the shift cancels out)."""
    x = promote_operands(x, to_float=True)[0]
    m = stop_gradient(reduce_max(x, axes=axes, keep_dims=True))
    return x - m, m


def _empty_along(x, axis) -> Value | None:
    """`x` as float when it has no elements along `axis`: softmax's (empty) result, where the
    max it shifts by does not exist."""
    x = promote_operands(x, to_float=True)[0]
    return x if any(x.shape[a] == 0 for a in normalize_axes(axis, x.ndim)) else None


def softmax(x, axis: int = -1) -> Value:
    """exp(x - max) / sum(exp(x - max)) along `axis` (an empty axis gives an empty result)."""
    empty = _empty_along(x, axis)
    if empty is not None:
        return empty
    e = exp(_shifted(x, axis)[0])
    return e / reduce_sum(e, axes=axis, keep_dims=True)


def log_softmax(x, axis: int = -1) -> Value:
    """(x - max) - log(sum(exp(x - max))) along `axis` (an empty axis: an empty result)."""
    empty = _empty_along(x, axis)
    if empty is not None:
        return empty
    z = _shifted(x, axis)[0]
    return z - log(reduce_sum(exp(z), axes=axis, keep_dims=True))


def logsumexp(x, axes=None, keep_dims: bool = False) -> Value:
    """log(sum(exp(x))) over `axes`, shifted by the max for stability."""
    z, m = _shifted(x, axes)
    kept = m + log(reduce_sum(exp(z), axes=axes, keep_dims=True))
    return kept if keep_dims else squeeze(kept, normalize_axes(axes, kept.ndim))


def _product_along(x, axis: int):
    """The product over `axis`, kept as a unit axis: halves multiplied pairwise."""
    n = x.shape[axis]
    if n == 0:
        shape = x.shape[:axis] + (1,) + x.shape[axis + 1:]
        return full(shape, 1, x.dtype)
    while n > 1:
        half = n // 2
        product = take(x, axis, 0, half) * take(x, axis, half, 2 * half)
        x = product if n % 2 == 0 else concat(product, take(x, axis, 2 * half, n),
                                                     axis=axis)
        n = x.shape[axis]
    return x


def prod(input, axis=None, keep_dims=False, dtype=None):
    """Product of the elements over `axis` (None: every axis); bool counts as int64."""
    x = as_value(input)
    if dtype is not None:
        x = cast(x, dtype=to_dtype(dtype))
    elif x.dtype.is_bool:
        x = cast(x, dtype=DType.i64)
    axes = axes_of(x, axis)
    for a in axes:
        x = _product_along(x, a)
    if keep_dims or not axes:
        return x
    return reshape(x, shape=tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _moments(input, axis, ddof, keepdims):
    """(variance with divisor N - ddof, mean), both reduced over `axis`."""
    if isinstance(ddof, bool):
        ddof = int(ddof)
    if not isinstance(ddof, (int, np.integer)):
        raise TypeError(f"ddof must be an int or a bool, got {ddof!r}")
    x = _float(input)
    axes = axes_of(x, axis)
    center = mean(x, axes=axes, keep_dims=True)
    centered = x - center
    total = reduce_sum(centered * centered, axes=axes, keep_dims=bool(keepdims))
    variance = total / (_count(x, axes) - int(ddof))
    if not keepdims and axes:
        center = reshape(center, shape=variance.shape)
    return variance, center


def var(input, axis=None, ddof=0, keepdims=False):
    """Variance over `axis` (None: every axis) with divisor N - ddof (ddof=True: N - 1)."""
    return _moments(input, axis, ddof, keepdims)[0]


def std(input, axis=None, ddof=0, keepdims=False):
    """Standard deviation: sqrt(var(input, axis, ddof, keepdims))."""
    return sqrt(_moments(input, axis, ddof, keepdims)[0])


def var_mean(input, axis=None, ddof=0, keepdims=False):
    """The tuple (variance, mean) over `axis`."""
    return _moments(input, axis, ddof, keepdims)


def std_mean(input, axis=None, ddof=0, keepdims=False):
    """The tuple (standard deviation, mean) over `axis`."""
    variance, mean = _moments(input, axis, ddof, keepdims)
    return sqrt(variance), mean


def _vector_norm(x, ord, axes):
    """sum(|x|^ord)^(1/ord) over `axes` (kept), with ord None/2, inf, -inf and 0 special."""
    if isinstance(ord, str):
        raise TypeError(f"norm: ord={ord!r} is a matrix norm; give dim as a 2-tuple")
    if ord is None or ord == 2:
        return sqrt(reduce_sum(x * x, axes=axes, keep_dims=True))
    size = abs(x)
    if ord == math.inf:
        return reduce_max(size, axes=axes, keep_dims=True)
    if ord == -math.inf:
        return reduce_min(size, axes=axes, keep_dims=True)
    if ord == 0:
        nonzero = cast(not_equal(x, 0), dtype=x.dtype)
        return reduce_sum(nonzero, axes=axes, keep_dims=True)
    total = reduce_sum(pow(size, float(ord)), axes=axes, keep_dims=True)
    return pow(total, 1.0 / float(ord))


def _matrix_norm(x, ord, rows: int, cols: int):
    """Frobenius and induced 1/inf norms over the axes (rows, cols), kept."""
    if ord is None or ord == "fro":
        return sqrt(reduce_sum(x * x, axes=(rows, cols), keep_dims=True))
    if ord in ("nuc", 2, -2):
        raise ValueError(f"norm: ord={ord!r} needs singular values, which graphspore does "
                         f"not compute; use ord=None/'fro', 1, -1, inf or -inf")
    if ord not in (1, -1, math.inf, -math.inf):
        raise ValueError(f"norm: ord={ord!r} is not a matrix norm (expected None, 'fro', 1, "
                         f"-1, inf or -inf)")
    along = rows if ord in (1, -1) else cols          # 1: column sums; inf: row sums
    sums = reduce_sum(abs(x), axes=along, keep_dims=True)
    pick = reduce_max if ord > 0 else reduce_min
    return pick(sums, axes=(rows, cols), keep_dims=True)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """Vector norm (dim an int, or None with ord None: the flattened 2-norm) or matrix norm
    (dim a 2-tuple, or None for a 2-D input with ord given), as MindSpore's `ops.norm`."""
    x = as_value(A)
    if dtype is not None:
        x = cast(x, dtype=to_dtype(dtype))
    x = _float(x)
    if dim is None:
        if ord is None:
            dims = tuple(range(x.ndim))
        elif x.ndim in (1, 2):
            dims = tuple(range(x.ndim))
        else:
            raise ValueError(f"norm: with ord={ord!r} and dim=None the input must be 1-D or "
                             f"2-D, got {x.type}")
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        if not 1 <= len(dims) <= 2:
            raise ValueError(f"norm: dim must be an int or a tuple of 1 or 2 ints, got {dim!r}")
    axes = tuple(normalize_axis(a, x.ndim) for a in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"norm: dim {dim!r} names the same axis twice")
    matrix = len(axes) == 2 and not (dim is None and ord is None)
    out = _matrix_norm(x, ord, *axes) if matrix else _vector_norm(x, ord, axes)
    if keepdim:
        return out
    return reshape(out, shape=tuple(d for i, d in enumerate(x.shape) if i not in axes))


def cumsum(x, axis, dtype=None):
    """Inclusive prefix sums along `axis` (a Hillis-Steele scan; see the module docstring)."""
    x = as_value(x)
    if dtype is not None:
        x = cast(x, dtype=to_dtype(dtype))
    elif x.dtype.is_bool:
        x = cast(x, dtype=DType.i64)
    axis = normalize_axis(axis, x.ndim)
    n, shift = x.shape[axis], 1
    while shift < n:
        low, high = [0] * x.ndim, [0] * x.ndim
        low[axis] = shift
        moved = pad(take(x, axis, 0, n - shift), low=tuple(low), high=tuple(high))
        x = x + moved
        shift *= 2
    return x


def topk(input, k, dim=None, largest=True, sorted=True):  # noqa: A002  (MindSpore's names)
    """The k largest (or smallest) entries along `dim` (default: the last axis) and their
    int32 indices, in order, equal values by ascending index; see the module docstring."""
    x = as_value(input)
    if x.ndim == 0 or x.dtype.is_bool:
        raise TypeError(f"topk: expected a numeric tensor of rank >= 1, got {x.type}")
    axis = normalize_axis(-1 if dim is None else dim, x.ndim)
    n = x.shape[axis]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] for {x.type} along axis "
                         f"{axis}, got {k!r}")
    if x.dtype.is_float:
        sentinel = -math.inf if largest else math.inf
    else:
        info = np.iinfo(x.dtype.np)
        sentinel = int(info.min if largest else info.max)
    best = reduce_max if largest else reduce_min
    position = iota(shape=x.shape, axis=axis, dtype=DType.i64)
    taken = full(x.shape, False, DType.bool)
    values, indices = [], []
    for _ in range(int(k)):
        remaining = where(taken, sentinel, x)
        target = best(remaining, axes=(axis,), keep_dims=True)
        candidate = logical_and(logical_not(taken),
                                       equal(remaining, target))
        index = argmax(cast(candidate, dtype=DType.i32), axis=axis,
                              keep_dims=True)
        hit = equal(position, index)
        values.append(reduce_sum(where(hit, x, 0), axes=(axis,),
                                        keep_dims=True))
        indices.append(index)
        taken = logical_or(taken, hit)
    if not values:
        shape = x.shape[:axis] + (0,) + x.shape[axis + 1:]
        return full(shape, 0, x.dtype), full(shape, 0, DType.i32)
    if not sorted:
        values, indices = _in_input_order(x, taken, position, axis, int(k))
    value = values[0] if len(values) == 1 else concat(*values, axis=axis)
    index = indices[0] if len(indices) == 1 else concat(*indices, axis=axis)
    return value, cast(index, dtype=DType.i32)


def _in_input_order(x, taken, position, axis: int, k: int):
    """The k taken entries in ascending index order (topk's sorted=False, as MindSpore's CPU
    kernel returns them): slot j holds the taken entry whose rank along the axis is j."""
    rank = cumsum(cast(taken, dtype=DType.i64), axis) - 1
    values, indices = [], []
    for j in range(k):
        hit = logical_and(taken, equal(rank, j))
        values.append(reduce_sum(where(hit, x, 0), axes=(axis,), keep_dims=True))
        indices.append(reduce_sum(where(hit, position, 0), axes=(axis,), keep_dims=True))
    return values, indices
