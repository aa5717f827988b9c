"""Movement primitives: reshape, broadcast_to, transpose, reverse, slice, pad, concat.

They move elements without arithmetic. Attributes in the IR are canonical (tuples of
non-negative Python ints, one entry per axis); the op functions accept what users write
(negative axes, a -1 in a shape, None and negative slice bounds) and normalise it first, through
`AttrOpDef`, so `infer` only validates. `pad` is the inverse of a strided `slice`, which makes
the two each other's VJP.
"""
from __future__ import annotations

import builtins
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core import current_builder, Value
from ..types import TensorType
from .opdef import OpDef, register, as_value, promote_operands, MOVEMENT, VIEW

__all__ = ["reshape", "broadcast_to", "transpose", "reverse", "slice", "pad", "concat"]


# ------------------------------------------------------------ attribute normalisation

@dataclass(frozen=True, slots=True)
class AttrOpDef(OpDef):
    """An OpDef whose call also normalises attributes: `normalize(*operands, **attrs)` gets
    the prepared operand Values and returns canonical attrs, or None when the op would be the
    identity on its first operand (a reduction over no axes), in which case nothing is emitted.
    Keeping this in the call (not in `infer`) keeps the IR canonical and `infer` a checker."""

    normalize: Callable[..., dict | None] | None = None

    def __call__(self, *operands, **attrs) -> Value:
        operands = (self.prepare(*operands) if self.prepare is not None
                    else tuple(as_value(x) for x in operands))
        if self.normalize is not None:
            attrs = self.normalize(*operands, **attrs)
            if attrs is None:
                return operands[0]
        return current_builder().add_op(self.name, operands, attrs)


def normalize_axis(axis, rank: int) -> int:
    """A Python int axis in [-rank, rank) as a non-negative int (ValueError outside it, as
    numpy's AxisError; TypeError for a non-integer)."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int, got {axis!r} ({type(axis).__name__})") from None
    if not -rank <= axis < builtins.max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % builtins.max(rank, 1)


def normalize_axes(axes, rank: int) -> tuple[int, ...]:
    """None -> every axis; an int or a sequence -> sorted distinct non-negative axes."""
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = tuple(sorted({normalize_axis(a, rank) for a in axes}))
    if len(out) != len(tuple(axes)):
        raise ValueError(f"repeated axis in {tuple(axes)}")
    return out


def axes_of(x: Value, axis) -> tuple[int, ...]:
    """The axes of `x` named by `axis` (an int, a sequence, or None for every axis) as a
    sorted tuple of distinct non-negative ints. As numpy and MindSpore: an axis out of range
    is a ValueError, a repeated axis (also as -1 and rank-1) a ValueError, a non-integer a
    TypeError."""
    if axis is None:
        return tuple(range(x.ndim))
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r} "
                        f"({type(axis).__name__})")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {a!r} "
                            f"({type(a).__name__}) in {axis!r}")
        if not -x.ndim <= a < max(x.ndim, 1):
            raise ValueError(f"axis {a!r} is out of range for a tensor of rank {x.ndim} "
                             f"({x.type})")
        out.append(int(a) % max(x.ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {tuple(axes)!r} for a tensor of rank {x.ndim}")
    return tuple(sorted(out))


def int_tuple(values, name: str) -> tuple[int, ...]:
    """A sequence (or a single int) as a tuple of Python ints."""
    if isinstance(values, (int, np.integer)):
        values = (values,)
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {values!r}") from None


def _check_per_axis(x: TensorType, **named) -> None:
    for name, values in named.items():
        if not (isinstance(values, tuple) and len(values) == x.rank
                and all(isinstance(v, int) and v >= 0 for v in values)):
            raise ValueError(f"{name} must be {x.rank} non-negative ints for {x}, got {values!r}")


def movement(name: str, infer, reference, vjp, doc: str, normalize, view: bool = True
             ) -> AttrOpDef:
    """A movement op; a `view` (the default) is an index map a consumer evaluates in place."""
    groups = frozenset({MOVEMENT, VIEW} if view else {MOVEMENT})
    return register(AttrOpDef(name, infer, reference, vjp, groups, doc, None, normalize))


# ----------------------------------------------------------------------------- reshape

def _normalize_reshape(x: Value, *, shape) -> dict:
    shape = int_tuple(shape, "shape")
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known and x.type.size % known == 0:
            shape = tuple(x.type.size // known if d == -1 else d for d in shape)
    return {"shape": shape}


def _infer_reshape(x: TensorType, *, shape: tuple) -> TensorType:
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"shape must be non-negative ints, got {shape!r}")
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ValueError(f"cannot reshape {x} ({x.size} elements) to {tuple(shape)}")
    return x.with_shape(shape)


reshape = movement(
    "gs.reshape", _infer_reshape, lambda x, *, shape: np.reshape(x, shape),
    lambda g, out, x, *, shape: (reshape(g, shape=x.shape),),
    '`%y = "gs.reshape"(%x) {shape = array<i64: 6>} : (tensor<2x3xf32>) -> tensor<6xf32>`',
    _normalize_reshape)


# ------------------------------------------------------------------------ broadcast_to

def _normalize_broadcast(x: Value, *, shape) -> dict:
    # MindSpore's BroadcastTo: -1 keeps the operand's size on that (right-aligned) axis.
    shape = int_tuple(shape, "shape")
    lead = len(shape) - x.ndim
    return {"shape": tuple(x.shape[i - lead] if d == -1 and i >= lead else d
                           for i, d in enumerate(shape))}


def _infer_broadcast(x: TensorType, *, shape: tuple) -> TensorType:
    shape = tuple(shape)
    ok = len(shape) >= x.rank and all(isinstance(d, int) and d >= 0 for d in shape)
    if not ok or any(a != b and a != 1 for a, b in zip(reversed(x.shape), reversed(shape))):
        raise ValueError(f"cannot broadcast {x} to shape {shape}")
    return x.with_shape(shape)


def _vjp_broadcast(g, out, x, *, shape):
    from . import unbroadcast                    # defined after this module is imported
    return (unbroadcast(g, x.shape),)


broadcast_to = movement(
    "gs.broadcast_to", _infer_broadcast,
    lambda x, *, shape: np.broadcast_to(x, shape).copy(), _vjp_broadcast,
    'numpy broadcasting: `%y = "gs.broadcast_to"(%x) {shape = array<i64: 4, 3>} : '
    '(tensor<3xf32>) -> tensor<4x3xf32>`', _normalize_broadcast)


# --------------------------------------------------------------------------- transpose

def _normalize_transpose(x: Value, *, perm) -> dict:
    return {"perm": tuple(normalize_axis(a, x.ndim) for a in int_tuple(perm, "perm"))}


def _infer_transpose(x: TensorType, *, perm: tuple) -> TensorType:
    if sorted(perm) != list(range(x.rank)):
        raise ValueError(f"perm {perm!r} is not a permutation of the axes of {x}")
    return x.with_shape(tuple(x.shape[a] for a in perm))


transpose = movement(
    "gs.transpose", _infer_transpose, lambda x, *, perm: np.transpose(x, perm).copy(),
    lambda g, out, x, *, perm: (transpose(g, perm=tuple(np.argsort(perm).tolist())),),
    '`%y = "gs.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> '
    'tensor<3x2xf32>`', _normalize_transpose)


# ----------------------------------------------------------------------------- reverse

def _normalize_reverse(x: Value, *, axes) -> dict | None:
    # Axes of size <= 1 read the same element reversed or not; with none left it is x.
    axes = tuple(a for a in normalize_axes(axes, x.ndim) if x.shape[a] > 1)
    return {"axes": axes} if axes else None


def _infer_reverse(x: TensorType, *, axes: tuple) -> TensorType:
    if not (isinstance(axes, tuple) and list(axes) == sorted(set(axes))
            and all(isinstance(a, int) and 0 <= a < x.rank for a in axes)):
        raise ValueError(f"axes must be sorted distinct axes of {x}, got {axes!r}")
    return x


reverse = movement(
    "gs.reverse", _infer_reverse, lambda x, *, axes: np.flip(x, axes).copy(),
    lambda g, out, x, *, axes: (reverse(g, axes=axes),),
    'x[::-1] along each of `axes`, the index map i -> n-1-i: `%y = "gs.reverse"(%x) '
    '{axes = array<i64: 0>} : (tensor<5xf32>) -> tensor<5xf32>`', _normalize_reverse)


# ------------------------------------------------------------------------------- slice

def slice_length(begin: int, end: int, stride: int) -> int:
    """Number of elements of x[begin:end:stride] for 0 <= begin <= end."""
    return (end - begin + stride - 1) // stride


def _normalize_slice(x: Value, *, begin, end, strides=None) -> dict:
    """Python-slice semantics per axis: None means the whole axis, negative bounds count from
    the end and are clamped; missing trailing axes are taken whole."""
    begin, end = list(begin), list(end)
    strides = list(strides) if strides is not None else [1] * len(begin)
    if not len(begin) == len(end) == len(strides) <= x.ndim:
        raise ValueError(f"slice: begin, end and strides need one entry per axis of {x.type}")
    out_b, out_e, out_s = [], [], []
    for axis, n in enumerate(x.shape):
        b, e, s = ((begin[axis], end[axis], strides[axis]) if axis < len(begin)
                   else (None, None, 1))
        s = 1 if s is None else operator.index(s)
        if s < 1:
            raise ValueError(f"slice: strides must be >= 1, got {s} (reverse with getitem)")
        b, e, _ = builtins.slice(b, e, s).indices(n)
        out_b.append(b)
        out_e.append(builtins.max(b, e))
        out_s.append(s)
    return {"begin": tuple(out_b), "end": tuple(out_e), "strides": tuple(out_s)}


def _infer_slice(x: TensorType, *, begin: tuple, end: tuple, strides: tuple) -> TensorType:
    _check_per_axis(x, begin=begin, end=end, strides=strides)
    for axis, (b, e, s, n) in enumerate(zip(begin, end, strides, x.shape)):
        if not (b <= e <= n and s >= 1):
            raise ValueError(f"axis {axis}: need 0 <= begin <= end <= {n} and stride >= 1, "
                             f"got {b}:{e}:{s}")
    return x.with_shape(tuple(slice_length(*bes) for bes in zip(begin, end, strides)))


def _reference_slice(x, *, begin, end, strides):
    return x[tuple(builtins.slice(*bes) for bes in zip(begin, end, strides))].copy()


def _vjp_slice(g, out, x, *, begin, end, strides):
    # Scatter g back to where the slice read it: high pads up to the axis length.
    high = tuple(n - b - builtins.max(m - 1, 0) * s - builtins.min(m, 1)
                 for n, b, s, m in zip(x.shape, begin, strides, g.shape))
    return (pad(g, low=begin, high=high, stride=strides),)


slice = movement(
    "gs.slice", _infer_slice, _reference_slice, _vjp_slice,
    'x[begin:end:strides] per axis: `%y = "gs.slice"(%x) {begin = array<i64: 1>, '
    'end = array<i64: 5>, strides = array<i64: 2>} : (tensor<6xf32>) -> tensor<2xf32>`',
    _normalize_slice)


# --------------------------------------------------------------------------------- pad

def _normalize_pad(x: Value, *, low, high, stride=None) -> dict:
    stride = (1,) * x.ndim if stride is None else int_tuple(stride, "stride")
    return {"low": int_tuple(low, "low"), "high": int_tuple(high, "high"), "stride": stride}


def _padded_extent(n: int, low: int, high: int, stride: int) -> int:
    return low + (n - 1) * stride + 1 + high if n else low + high


def _infer_pad(x: TensorType, *, low: tuple, high: tuple, stride: tuple) -> TensorType:
    _check_per_axis(x, low=low, high=high, stride=stride)
    if builtins.min(stride, default=1) < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return x.with_shape(tuple(_padded_extent(*a) for a in zip(x.shape, low, high, stride)))


def _reference_pad(x, *, low, high, stride):
    shape = tuple(_padded_extent(*a) for a in zip(x.shape, low, high, stride))
    out = np.zeros(shape, x.dtype)
    out[tuple(builtins.slice(lo, lo + n * s, s) for n, lo, s in zip(x.shape, low, stride))] = x
    return out


def _vjp_pad(g, out, x, *, low, high, stride):
    end = tuple(lo + (n - 1) * s + 1 if n else lo for n, lo, s in zip(x.shape, low, stride))
    return (slice(g, begin=low, end=end, strides=stride),)


pad = movement(
    "gs.pad", _infer_pad, _reference_pad, _vjp_pad,
    'out[low + i*stride] = x[i], zeros elsewhere: `%y = "gs.pad"(%x) {low = array<i64: 1>, '
    'high = array<i64: 0>, stride = array<i64: 2>} : (tensor<2xf32>) -> tensor<4xf32>`',
    _normalize_pad, view=False)


# ------------------------------------------------------------------------------ concat

def _normalize_concat(*xs: Value, axis=0) -> dict:
    if not xs:
        raise ValueError("concat needs at least one operand")
    return {"axis": normalize_axis(axis, xs[0].ndim)}


def _infer_concat(*xs: TensorType, axis: int) -> TensorType:
    if not xs or xs[0].rank == 0:
        raise ValueError(f"expected one or more tensors of rank >= 1, got {list(xs)}")
    first = xs[0]
    for x in xs[1:]:
        if (x.dtype is not first.dtype or x.rank != first.rank
                or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                       if i != axis)):
            raise ValueError(f"operands must agree in dtype and in every dim but axis {axis}, "
                             f"got {', '.join(str(t) for t in xs)}")
    if not 0 <= axis < first.rank:
        raise ValueError(f"axis {axis} out of range for {first}")
    total = builtins.sum(x.shape[axis] for x in xs)
    return first.with_shape(first.shape[:axis] + (total,) + first.shape[axis + 1:])


def _vjp_concat(g, out, *xs, axis):
    offsets = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
    return tuple(slice(g, begin=tuple(b if i == axis else 0 for i in range(g.ndim)),
                       end=tuple(e if i == axis else n for i, n in enumerate(g.shape)))
                 for b, e in zip(offsets, offsets[1:]))


concat = register(AttrOpDef(
    "gs.concat", _infer_concat, lambda *xs, axis: np.concatenate(xs, axis), _vjp_concat,
    frozenset({MOVEMENT}),
    'Join along `axis`: `%z = "gs.concat"(%x, %y) {axis = 0 : i64} : (tensor<2xf32>, '
    'tensor<3xf32>) -> tensor<5xf32>`',
    lambda *xs: promote_operands(*xs) if xs else (), _normalize_concat))
