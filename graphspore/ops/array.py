"""`mindspore.ops` array functions: shapes (reshape, transpose, squeeze, concat, pad, ...),
tiling and repeating, splitting, grids and ramps, masked fills and sums of many tensors.

Shapes, counts and split sizes are Python values known while the graph is built. Tiling and
repeating are a reshape that inserts a unit axis, a `broadcast_to` over it and a reshape that
merges it, so their gradient is the `broadcast_to` rule (a sum); per-element repeat counts
concatenate broadcast slices.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..eager import gs_op
from ..frontend import operators as methods
from ..frontend.operators import op as _op, to_dtype
from ..ir import ops as ir_ops
from ..ir.ops import composite
from ..ir.ops.shape import axes_of, normalize_axis
from ..ir.types import DType

# Composites that are public ops functions under their own names.
COMPOSITES = {name: gs_op(getattr(composite, name)) for name in (
    "tile", "repeat_interleave", "split", "narrow", "flatten")}
globals().update(COMPOSITES)








# ---------------------------------------------------------------------------- shapes

@gs_op
def reshape(input, shape):
    """`input` with a new shape (one entry may be -1)."""
    return methods.reshape(input, tuple(np.atleast_1d(shape)) if shape != () else ())


@gs_op
def transpose(input, input_perm):
    """Permute the axes of `input` by `input_perm`."""
    return methods.transpose(input, tuple(input_perm))


permute = transpose


@gs_op
def expand_dims(input_x, axis):
    """Insert a size-1 axis at `axis`."""
    return _op("expand_dims")(input_x, axis=int(axis))


unsqueeze = expand_dims


@gs_op
def squeeze(input, axis=None):
    """Remove size-1 axes (all of them, or those in `axis`)."""
    return _op("squeeze")(input, axis=axis)


@gs_op
def broadcast_to(input, shape):
    """Broadcast to `shape`; -1 keeps the input's size on that axis."""
    x = ir_ops.as_value(input)
    shape = tuple(int(s) for s in shape)
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(shape))
    return x if shape == x.shape else _op("broadcast_to")(x, shape=shape)




@gs_op
def concat(tensors, axis=0):
    """Join tensors along an existing axis (dtypes promoted to a common one)."""
    values = ir_ops.promote_operands(*tensors)
    return _op("concat")(*values, axis=normalize_axis(axis, values[0].ndim))


cat = concat


@gs_op
def stack(tensors, axis=0):
    """Join tensors along a new axis."""
    values = ir_ops.promote_operands(*tensors)
    axis = int(axis) % (values[0].ndim + 1)
    return _op("concat")(*[_op("expand_dims")(v, axis=axis) for v in values], axis=axis)


@gs_op
def flip(input, dims):
    """`input` reversed along each axis in `dims` (a list or tuple of ints): one index map
    i -> n-1-i per axis, as x[::-1]; its gradient is the same flip of the cotangent."""
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"flip: dims must be a list or tuple of ints, got {dims!r} "
                        f"({type(dims).__name__})")
    x = ir_ops.as_value(input)
    return _op("reverse")(x, axes=axes_of(x, tuple(dims)))


@gs_op
def strided_slice(input_x, begin, end, strides, begin_mask=0, end_mask=0, ellipsis_mask=0,
                  new_axis_mask=0, shrink_axis_mask=0):
    """`input_x[begin:end:strides]` per axis (masks other than 0 are not supported)."""
    if begin_mask or end_mask or ellipsis_mask or new_axis_mask or shrink_axis_mask:
        raise ValueError("strided_slice: masks are not supported; index with x[...] instead")
    index = tuple(slice(b, e, s) for b, e, s in zip(begin, end, strides))
    return _op("getitem")(input_x, index)


@gs_op
def pad(input_x, padding, mode="constant", value=None):
    """Constant padding; `padding` pairs run from the last axis backwards (torch order)."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    x = ir_ops.as_value(input_x)
    padding = tuple(int(p) for p in padding)
    if len(padding) % 2 or len(padding) > 2 * x.ndim or builtins.min(padding, default=0) < 0:
        raise ValueError(f"pad: padding must be non-negative pairs for at most {x.ndim} axes"
                         f", got {padding}")
    low, high = [0] * x.ndim, [0] * x.ndim
    for i in range(len(padding) // 2):
        low[x.ndim - 1 - i], high[x.ndim - 1 - i] = padding[2 * i], padding[2 * i + 1]
    attrs = dict(low=tuple(low), high=tuple(high), stride=(1,) * x.ndim)
    out = _op("pad")(x, **attrs)
    if value is None or value == 0:
        return out
    border = _op("sub")(1, _op("pad")(_op("ones_like")(x), **attrs))
    return _op("add")(out, _op("mul")(border, value))


@gs_op
def shape(input_x):
    """The static shape of a tensor, as a tuple of ints."""
    return ir_ops.as_value(input_x).shape


@gs_op
def rank(input_x):
    """The number of axes of a tensor."""
    return ir_ops.as_value(input_x).ndim


@gs_op
def size(input_x):
    """The number of elements of a tensor, as a Python int."""
    return ir_ops.as_value(input_x).type.size


# ------------------------------------------------------------------------- repeating








# ------------------------------------------------------------------------- splitting






# ----------------------------------------------------------------------- grids, ramps


@gs_op
def linspace(start, end, steps):
    """`steps` evenly spaced values from start to end inclusive (float32 unless start or end
    is a float64 tensor); computed in float64 so the ends are exact."""
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"linspace: steps must be >= 1, got {steps}")
    ends = [ir_ops.as_value(v) for v in (start, end) if not ir_ops.is_number(v)]
    dtype = DType.f64 if any(v.dtype is DType.f64 for v in ends) else DType.f32
    first, last = (v if ir_ops.is_number(v) else _op("cast")(
        _op("reshape")(ir_ops.as_value(v), shape=()), dtype=DType.f64) for v in (start, end))
    ramp = ir_ops.iota(shape=(steps,), axis=0, dtype=DType.f64)
    if steps == 1:
        out = ramp * 0 + first
    else:
        out = ramp * ((last - first) / (steps - 1)) + first
    return out if dtype is DType.f64 else _op("cast")(out, dtype=dtype)


@gs_op
def eye(n, m=None, dtype=None):
    """An n x m matrix (m defaults to n) with ones on the diagonal; float32 by default."""
    n = int(n)
    m = n if m is None else int(m)
    if n < 0 or m < 0:
        raise ValueError(f"eye: sizes must be non-negative, got n={n}, m={m}")
    rows = ir_ops.iota(shape=(n, m), axis=0, dtype=DType.i64)
    cols = ir_ops.iota(shape=(n, m), axis=1, dtype=DType.i64)
    return _op("cast")(_op("equal")(rows, cols),
                       dtype=DType.f32 if dtype is None else to_dtype(dtype))


@gs_op
def meshgrid(*inputs, indexing="xy"):
    """Coordinate grids from 1-D tensors: 'ij' gives shape (n1, n2, ...), 'xy' swaps the
    first two axes (Cartesian indexing). Returns a tuple with one grid per input."""
    if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
        inputs = tuple(inputs[0])
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    values = [ir_ops.as_value(v) for v in inputs]
    if not values or any(v.ndim != 1 for v in values):
        raise ValueError("meshgrid: expected one or more 1-D tensors, got "
                         + ", ".join(str(v.type) for v in values))
    shape = [v.shape[0] for v in values]
    place = list(range(len(values)))
    if indexing == "xy" and len(values) > 1:
        shape[0], shape[1] = shape[1], shape[0]
        place[0], place[1] = 1, 0
    grids = []
    for v, at in zip(values, place):
        view = [1] * len(values)
        view[at] = v.shape[0]
        grids.append(_op("broadcast_to")(_op("reshape")(v, shape=tuple(view)),
                                         shape=tuple(shape)))
    return tuple(grids)


# --------------------------------------------------------------------- combinations




@gs_op
def addn(x):
    """The elementwise sum of a tuple or list of tensors of one shape."""
    if not isinstance(x, (tuple, list)) or not x:
        raise TypeError(f"addn: expected a non-empty tuple or list of tensors, got "
                        f"{type(x).__name__}")
    values = [ir_ops.as_value(v) for v in x]
    if len({v.shape for v in values}) > 1:
        raise ValueError("addn: all tensors must have one shape, got "
                         + ", ".join(str(v.type) for v in values))
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


__all__ = [*COMPOSITES, "reshape", "transpose", "permute", "expand_dims", "unsqueeze",
           "squeeze", "broadcast_to", "concat", "cat", "stack", "flip", "strided_slice", "pad",
           "shape", "rank", "size", "linspace", "eye", "meshgrid", "addn"]
