"""Composites: functions written once in terms of primitives.

They emit primitives into the current builder, so they work unchanged in eager mode and while
a graph is built, and they need no VJP, lowering or test row of their own: autodiff and codegen
see only primitives. Attribute arguments (axes, shapes, indices) must be Python values known
while the graph is built.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from ..core import Value
from ..types import DType, broadcast_shapes
from .opdef import as_value, constant, promote_operands, is_number
from .elementwise import (abs, cast, div, equal, exp, greater, less_equal, log, logical_not,
                          maximum, minimum, neg, relu, select, stop_gradient, sub)
from .reduce import reduce_max, reduce_sum
from .shape import (broadcast_to, concat, int_tuple, normalize_axes, normalize_axis, reshape,
                    slice, transpose)
from .linalg import matmul
from .indexing import gather
from .source import iota

__all__ = ["relu6", "leaky_relu", "softplus", "square", "reciprocal", "mean",
           "reduce_min", "softmax", "log_softmax", "logsumexp", "matmul_nd", "one_hot",
           "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "expand_dims", "squeeze",
           "full", "zeros", "ones", "zeros_like", "ones_like", "where", "clip_by_value",
           "swapaxes", "transpose_nd", "reverse", "getitem"]


# ----------------------------------------------------------------------- activations

def relu6(x) -> Value:
    """min(max(x, 0), 6)."""
    return minimum(relu(x), 6)


def leaky_relu(x, alpha: float = 0.2) -> Value:
    """x where x > 0, alpha * x elsewhere (MindSpore's default alpha is 0.2)."""
    x = as_value(x)
    return select(greater(x, 0), x, x * alpha)


def softplus(x) -> Value:
    """log(1 + exp(x)) computed as max(x, 0) + log(1 + exp(-|x|)), which never overflows."""
    x = promote_operands(x, to_float=True)[0]
    return maximum(x, 0) + log(1 + exp(neg(abs(x))))


def square(x) -> Value:
    """x * x."""
    x = as_value(x)
    return x * x


def reciprocal(x) -> Value:
    """1 / x (float result)."""
    return div(1, x)


# ------------------------------------------------------------------------ reductions

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
    """-max(-x); for bool, not(any(not x))."""
    x = as_value(x)
    if x.dtype.is_bool:
        return logical_not(reduce_max(logical_not(x), axes=axes, keep_dims=keep_dims))
    return neg(reduce_max(neg(x), axes=axes, keep_dims=keep_dims))


def _shifted(x, axes):
    """(x - m, m) with m the kept-dims max, outside the gradient (the shift cancels out)."""
    x = promote_operands(x, to_float=True)[0]
    m = stop_gradient(reduce_max(x, axes=axes, keep_dims=True))
    return x - m, m


def softmax(x, axis: int = -1) -> Value:
    """exp(x - max) / sum(exp(x - max)) along `axis`."""
    e = exp(_shifted(x, axis)[0])
    return e / reduce_sum(e, axes=axis, keep_dims=True)


def log_softmax(x, axis: int = -1) -> Value:
    """(x - max) - log(sum(exp(x - max))) along `axis`."""
    z = _shifted(x, axis)[0]
    return z - log(reduce_sum(exp(z), axes=axis, keep_dims=True))


def logsumexp(x, axes=None, keep_dims: bool = False) -> Value:
    """log(sum(exp(x))) over `axes`, shifted by the max for stability."""
    z, m = _shifted(x, axes)
    kept = m + log(reduce_sum(exp(z), axes=axes, keep_dims=True))
    return kept if keep_dims else squeeze(kept, normalize_axes(axes, kept.ndim))


# ----------------------------------------------------------------------------- linalg

def matmul_nd(a, b) -> Value:
    """numpy.matmul semantics: 1-D operands gain then lose a unit axis; batch dims broadcast.

    A 2-D right operand folds the batch into rows (one matmul); a 2-D left operand folds it
    into columns; otherwise the batch is unrolled into one matmul per matrix."""
    a, b = promote_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul_nd: operands must have rank >= 1, got {a.type} and {b.type}")
    if a.ndim == 1 or b.ndim == 1:
        drop = (-2,) * (a.ndim == 1) + (-1,) * (b.ndim == 1)
        a = reshape(a, shape=(1,) + a.shape) if a.ndim == 1 else a
        b = reshape(b, shape=b.shape + (1,)) if b.ndim == 1 else b
        return squeeze(matmul_nd(a, b), drop)
    if a.ndim == 2 and b.ndim == 2:
        return matmul(a, b)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    (m, k), n = a.shape[-2:], b.shape[-1]
    if b.ndim == 2:
        a = broadcast_to(a, shape=batch + (m, k))
        return reshape(matmul(reshape(a, shape=(-1, k)), b), shape=batch + (m, n))
    b = broadcast_to(b, shape=batch + b.shape[-2:])
    if a.ndim == 2:
        perm = (len(batch),) + tuple(range(len(batch))) + (len(batch) + 1,)
        cols = reshape(transpose(b, perm=perm), shape=(k, -1))        # k x (batch*n)
        out = reshape(matmul(a, cols), shape=(m,) + batch + (n,))
        return transpose(out, perm=tuple(range(1, len(batch) + 1)) + (0, len(batch) + 1))
    a = reshape(broadcast_to(a, shape=batch + (m, k)), shape=(-1, m, k))
    b = reshape(b, shape=(-1, k, n))
    rows = [matmul(reshape(getitem(a, i), shape=(m, k)), reshape(getitem(b, i), shape=(k, n)))
            for i in range(a.shape[0])]
    return reshape(concat(*rows, axis=0), shape=batch + (m, n))


# ---------------------------------------------------------------------------- shapes

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


def reverse(x, axis: int) -> Value:
    """x[..., ::-1, ...] along `axis`, as a concat of unit slices in reverse order."""
    x = as_value(x)
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    if n <= 1:
        return x
    pick = lambda i: slice(x, begin=(0,) * axis + (i,), end=x.shape[:axis] + (i + 1,))
    return concat(*[pick(i) for i in reversed(range(n))], axis=axis)


# ---------------------------------------------------------------------------- creation

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


def where(cond, x, y) -> Value:
    """select(cond, x, y): numpy.where with broadcasting."""
    return select(cond, x, y)


def clip_by_value(x, clip_value_min=None, clip_value_max=None) -> Value:
    """min(max(x, lo), hi); a None bound is not applied."""
    x = as_value(x)
    x = x if clip_value_min is None else maximum(x, clip_value_min)
    return x if clip_value_max is None else minimum(x, clip_value_max)


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


# ------------------------------------------------------------------------------ losses

def _reduce_loss(loss: Value, reduction: str) -> Value:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return reduce_sum(loss, axes=None)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def binary_cross_entropy_with_logits(logits, label, weight=None, pos_weight=None,
                                     reduction: str = "mean") -> Value:
    """MindSpore's BCEWithLogitsLoss, in the stable form
    (1 - y) x + (1 + (pw - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)), which for pw = 1 is
    max(x, 0) - x y + log(1 + exp(-|x|)); times `weight`, then reduced."""
    x, y = promote_operands(logits, label, to_float=True)
    weight, pos_weight = (None if w is None else as_value(w, x.dtype) for w in (weight, pos_weight))
    soft = log(1 + exp(neg(abs(x))))
    if pos_weight is None:
        loss = maximum(x, 0) - x * y + soft
    else:
        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * (soft + maximum(neg(x), 0))
    return _reduce_loss(loss if weight is None else loss * weight, reduction)


def mse_loss(prediction, target, reduction: str = "mean") -> Value:
    """(prediction - target)^2, reduced."""
    return _reduce_loss(square(sub(prediction, target)), reduction)


def l1_loss(prediction, target, reduction: str = "mean") -> Value:
    """|prediction - target|, reduced."""
    return _reduce_loss(abs(sub(prediction, target)), reduction)


# ---------------------------------------------------------------------------- indexing

def getitem(x, index) -> Value:
    """Python indexing: ints (negative ones count from the end), slices (any step), None (a
    new unit axis), Ellipsis, and at most one integer tensor (see `_getitem_tensor`).

    One strided `slice` reads the ascending range of every axis; axes with negative steps are
    then reversed; a final `reshape` drops int-indexed axes and inserts the None axes."""
    x = as_value(x)
    items = index if isinstance(index, tuple) else (index,)
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
    for a in flipped:
        out = reverse(out, a)
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
