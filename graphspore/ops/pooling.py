"""`mindspore.ops` max and average pooling over NCHW images, with MindSpore 2.x's modes:
explicit padding, dilation (max), `ceil_mode`, `return_indices` (max), `count_include_pad` and
`divisor_override` (average). Composites over the window primitives (`ir/ops/conv.py`), so
autodiff, vmap and the compiled kernels come from those.

Geometry along one axis of size H, kernel k, stride s, dilation d, padding (low, high):

    floor mode  out = (H + low + high - (k-1)*d - 1) // s + 1
    ceil mode   out = ceil((H + low + high - (k-1)*d - 1) / s) + 1, minus one when the last
                window would start at or beyond H + low (it must start inside the input or
                its low padding), as MindSpore's MaxPool3DWithArgmax and AvgPool3D infer it.

The windows then cover ``(out-1)*s + (k-1)*d + 1`` padded positions: the input is padded (or
cut) to exactly that. Max pooling pads with the dtype's lowest value, so padding never wins;
its indices are flattened per (N, C) plane of the unpadded input (``h * W + w``, int64, the
first maximum in row-major tap order, the one its gradient is routed to). Average pooling
sums the zero-padded window and divides by a constant divisor map: `divisor_override`, else
the window clipped to the padded input (count_include_pad=True) or to the input itself.
"""
from __future__ import annotations

import numpy as np

from ..eager import gs_op
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ir.types import DType


def pool_pair(value, what: str) -> tuple[int, int]:
    """An int, a 1-tuple or a pair of ints as a pair (TypeError / ValueError otherwise)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{what} must be an int or a tuple of one or two ints, got {value!r}")
    return pair


def positive_pair(value, what: str) -> tuple[int, int]:
    pair = pool_pair(value, what)
    if min(pair) < 1:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return pair


def symmetric_pads(padding, what: str = "padding") -> tuple[int, int, int, int]:
    """MindSpore's pooling `padding`: an int or (pad_h, pad_w), as (top, bottom, left, right)."""
    top, left = pool_pair(padding, what)
    if min(top, left) < 0:
        raise ValueError(f"{what} must be non-negative, got {padding!r}")
    return top, top, left, left


def axis_size(size, kernel, stride, dilation, low, high, ceil_mode) -> int:
    """Output positions along one axis (the module docstring's formulas)."""
    span = size + low + high - (kernel - 1) * dilation - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + low:
        out -= 1
    return out


class Geometry:
    """Where the windows of a pooling fall on an (.., H, W) image: output size and the
    padding that makes the windows cover the padded input exactly."""

    def __init__(self, shape, kernel, stride, dilation, pads, ceil_mode, what):
        self.height, self.width = int(shape[-2]), int(shape[-1])
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.top, self.left = pads[0], pads[2]
        self.out = (axis_size(self.height, kernel[0], stride[0], dilation[0], pads[0], pads[1],
                              ceil_mode),
                    axis_size(self.width, kernel[1], stride[1], dilation[1], pads[2], pads[3],
                              ceil_mode))
        if min(self.out) < 1:
            raise ValueError(f"{what}: the window {kernel} (stride {stride}, dilation "
                             f"{dilation}) does not fit the input {tuple(shape)} padded by "
                             f"{tuple(pads)}: the output would be {self.out}")
        self.covered = tuple((o - 1) * s + (k - 1) * d + 1 for o, s, k, d
                             in zip(self.out, stride, kernel, dilation))
        # padding after the input (negative: rows/columns no window reads)
        self.bottom = self.covered[0] - self.height - self.top
        self.right = self.covered[1] - self.width - self.left

    def window_starts(self, axis: int) -> np.ndarray:
        """The unpadded coordinate of each window's first tap along axis 0 (H) or 1 (W)."""
        low = self.top if axis == 0 else self.left
        return np.arange(self.out[axis]) * self.stride[axis] - low


def _fit(x, geometry: Geometry):
    """x cut to the rows/columns the windows read and padded with zeros around them."""
    n, c = x.shape[0], x.shape[1]
    keep_h = geometry.height + min(geometry.bottom, 0)
    keep_w = geometry.width + min(geometry.right, 0)
    if (keep_h, keep_w) != (geometry.height, geometry.width):
        x = _op("slice")(x, begin=(0, 0, 0, 0), end=(n, c, keep_h, keep_w))
    low = (0, 0, geometry.top, geometry.left)
    high = (0, 0, max(geometry.bottom, 0), max(geometry.right, 0))
    if any(low) or any(high):
        x = _op("pad")(x, low=low, high=high, stride=(1, 1, 1, 1))
    return x


def _inside_mask(geometry: Geometry) -> np.ndarray:
    """True on the padded grid where a position lies inside the input."""
    rows = np.arange(geometry.covered[0]) - geometry.top
    cols = np.arange(geometry.covered[1]) - geometry.left
    return ((rows >= 0) & (rows < geometry.height))[:, None] & \
        ((cols >= 0) & (cols < geometry.width))[None, :]


def _taps(x, geometry: Geometry):
    """(i, j, the tap's strided view (N, C, Ho, Wo)) of the fitted input, row-major."""
    n, c = x.shape[0], x.shape[1]
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = (geometry.kernel, geometry.stride,
                                              geometry.dilation, geometry.out)
    for i in range(kh):
        for j in range(kw):
            begin = (0, 0, i * dh, j * dw)
            end = (n, c, i * dh + (ho - 1) * sh + 1, j * dw + (wo - 1) * sw + 1)
            yield i, j, _op("slice")(x, begin=begin, end=end, strides=(1, 1, sh, sw))


def _check_float_image(x, what):
    if len(x.shape) != 4:
        raise ValueError(f"{what} expects an NCHW input of rank 4, got shape {tuple(x.shape)}")
    if not x.dtype.is_float:
        raise TypeError(f"{what} expects a float tensor, got {x.dtype.name}")


@gs_op
def max_pool_window(x, kernel, stride, pads, dilation, ceil_mode=False, return_indices=False,
                    what="max_pool2d"):
    """Maximum over each window of x (N, C, H, W); with `return_indices` also the int64
    position of each maximum in its (N, C) plane of x."""
    x = ir_ops.as_value(x)
    _check_float_image(x, what)
    geometry = Geometry(x.shape, kernel, stride, dilation, pads, ceil_mode, what)
    fitted = _fit(x, geometry)
    if fitted is not x and not _inside_mask(geometry).all():
        lowest = ir_ops.constant(np.array(np.finfo(x.dtype.np).min, x.dtype.np), x.dtype)
        fitted = _op("where")(ir_ops.constant(_inside_mask(geometry)), fitted, lowest)
    best = _op("max_pool2d")(fitted, kernel=kernel, stride=stride, dilation=dilation)
    if not return_indices:
        return best
    rows, cols = geometry.window_starts(0), geometry.window_starts(1)
    indices = None
    for i, j, tap in reversed(list(_taps(fitted, geometry))):   # the first maximum wins
        at = ((rows + i * dilation[0])[:, None] * geometry.width
              + (cols + j * dilation[1])[None, :]).astype(np.int64)
        at = ir_ops.constant(at, DType.i64)
        indices = at if indices is None else _op("where")(_op("equal")(tap, best), at, indices)
    if indices.shape != best.shape:                              # a 1x1 kernel
        indices = _op("broadcast_to")(indices, shape=tuple(best.shape))
    return best, indices


def avg_divisors(geometry: Geometry, pads, count_include_pad, divisor_override) -> np.ndarray:
    """The divisor of every output position (Ho, Wo), float64."""
    if divisor_override:
        return np.full(geometry.out, float(divisor_override))
    counts = []
    for axis, size in ((0, geometry.height), (1, geometry.width)):
        start = geometry.window_starts(axis)
        end = start + geometry.kernel[axis]
        if count_include_pad:
            high = pads[1] if axis == 0 else pads[3]
            counts.append(np.minimum(end, size + high) - start)
        else:
            counts.append(np.minimum(end, size) - np.maximum(start, 0))
    divisors = (counts[0][:, None] * counts[1][None, :]).astype(np.float64)
    if (divisors <= 0).any():
        raise ValueError(f"avg_pool2d: a window of {geometry.kernel} lies entirely in the "
                         f"padding {tuple(pads)} (count_include_pad=False): padding must be "
                         f"at most half the kernel")
    return divisors


@gs_op
def avg_pool_window(x, kernel, stride, pads, ceil_mode=False, count_include_pad=True,
                    divisor_override=None, what="avg_pool2d"):
    """Window sums of the zero-padded x (N, C, H, W) over the divisor map."""
    x = ir_ops.as_value(x)
    _check_float_image(x, what)
    geometry = Geometry(x.shape, kernel, stride, (1, 1), pads, ceil_mode, what)
    n, c = x.shape[0], x.shape[1]
    fitted = _fit(x, geometry)
    planes = _op("reshape")(fitted, shape=(n * c, 1) + tuple(fitted.shape[2:]))
    cols = _op("im2col")(planes, kernel=kernel, stride=stride, dilation=(1, 1),
                         pads=(0, 0, 0, 0))
    sums = _op("reshape")(_op("reduce_sum")(cols, axes=(0,)), shape=(n, c) + geometry.out)
    divisors = avg_divisors(geometry, pads, count_include_pad, divisor_override)
    if np.all(divisors == divisors.flat[0]):
        return sums * (1.0 / float(divisors.flat[0]))
    return sums * ir_ops.constant((1.0 / divisors).astype(x.dtype.np), x.dtype)


def check_max_pads(kernel, pads, what):
    if pads[0] > kernel[0] // 2 or pads[2] > kernel[1] // 2:
        raise ValueError(f"{what}: padding ({pads[0]}, {pads[2]}) must be at most half the "
                         f"kernel {kernel}")


def divisor_of(divisor_override, what):
    if divisor_override is None:
        return 0
    if not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override,
                                                                          bool):
        raise TypeError(f"{what}: divisor_override must be an int, got {divisor_override!r}")
    if divisor_override < 0:
        raise ValueError(f"{what}: divisor_override must be positive, got {divisor_override}")
    return int(divisor_override)


def flag_of(value, name, what):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: {name} must be a bool, got {value!r}")
    return bool(value)


@gs_op
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
               ceil_mode=False):
    """`ops.max_pool2d`: maximum over each window of (N, C, H, W); `padding` an int or
    (pad_h, pad_w), at most half the kernel; with `return_indices` also the argmax (int64)."""
    kernel = positive_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else positive_pair(stride, "stride")
    pads = symmetric_pads(padding)
    check_max_pads(kernel, pads, "max_pool2d")
    return max_pool_window(x, kernel, stride, pads, positive_pair(dilation, "dilation"),
                           flag_of(ceil_mode, "ceil_mode", "max_pool2d"),
                           flag_of(return_indices, "return_indices", "max_pool2d"))


def _avg_pads(padding) -> tuple[int, int, int, int]:
    """ops.avg_pool2d's `padding`: an int or (top, bottom, left, right)."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = tuple(int(p) for p in padding)
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pads = (int(padding),) * 4
    else:
        raise TypeError(f"avg_pool2d: padding must be an int or (top, bottom, left, right), "
                        f"got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"avg_pool2d: padding must be non-negative, got {padding!r}")
    return pads


@gs_op
def avg_pool2d(input_x, kernel_size=1, stride=1, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=0):
    """`ops.avg_pool2d`: mean over each window of (N, C, H, W); `padding` an int or (top,
    bottom, left, right); divisor `divisor_override` if non-zero, else the window counted
    with (count_include_pad) or without the padding."""
    kernel = positive_pair(kernel_size, "kernel_size")
    stride = positive_pair(stride, "stride")
    return avg_pool_window(input_x, kernel, stride, _avg_pads(padding),
                           flag_of(ceil_mode, "ceil_mode", "avg_pool2d"),
                           flag_of(count_include_pad, "count_include_pad", "avg_pool2d"),
                           divisor_of(divisor_override, "avg_pool2d"))


__all__ = ["max_pool2d", "avg_pool2d"]
