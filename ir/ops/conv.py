"""Window primitives of convolution and pooling over NCHW images: the convolution and its two
gradients (conv2d, conv2d_input_grad, conv2d_filter_grad), im2col and its adjoint col2im,
max_pool2d and its gradient.

`conv2d(x, w)` is MindSpore's Conv2D (cross-correlation, NCHW, weight (O, C/groups, kh, kw),
stride, dilation, explicit pads (top, bottom, left, right), groups). Its VJP is the other two,
and the three are linear in each operand and transpose into each other, so autodiff of a
convolution to any order is these three ops:

    <h, input_grad(g, w)> = <conv2d(h, w), g> = <filter_grad(h, g), w>

Codegen lowers them to per-image packing (im2col into a scratch buffer) and register-tiled
matrix products on both cores (`codegen/lower_conv.py`).

`im2col` packs the taps of every output position into one matrix, rows ``(c, i, j)`` (the
weight's order reshaped to (O, C*kh*kw)) and columns ``(n, ho, wo)``:

    cols[(c*kh + i)*kw + j, (n*Ho + ho)*Wo + wo] = x[n, c, ho*sh + i*dh - top, wo*sw + j*dw - left]

(zero where that falls in the padding), so a convolution is one matrix product
``W (O, C*kh*kw) @ cols`` and its weight gradient ``dY @ cols.T``. `col2im` is the adjoint
(each column element added back where it was read): the input gradient of a convolution is
``col2im(W.T @ dY)``. The two are each other's VJP, so autodiff of a convolution is matrix
products and these two kernels, to any order.

`max_pool2d` takes the maximum over each (unpadded) window; callers pad with -FLOAT_MAX
first. Its VJP routes the cotangent to the first maximum of each window in row-major order
(as PyTorch does), one kernel `max_pool2d_grad(x, g)`.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, is_half_float
from .opdef import register, as_value, LINALG
from .shape import AttrOpDef

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_filter_grad", "im2col", "col2im",
           "max_pool2d", "max_pool2d_grad"]

WINDOW = "window"            # group: own kernels with per-tap loop nests (codegen/lower_window.py)
CONV = frozenset({WINDOW, LINALG})   # the convolutions: products (epilogues) over windows


def _pair(value, name):
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair)


def _pads(value):
    pads = (value,) * 4 if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pads) != 4 or any(int(p) < 0 for p in pads):
        raise ValueError(f"pads must be (top, bottom, left, right) >= 0, got {value!r}")
    return tuple(int(p) for p in pads)


def _window_attrs(kernel, stride=1, dilation=1, pads=0) -> dict:
    return {"kernel": _pair(kernel, "kernel"), "stride": _pair(stride, "stride"),
            "dilation": _pair(dilation, "dilation"), "pads": _pads(pads)}


def output_size(size, kernel, stride, dilation, low=0, high=0) -> int:
    """Output positions along one axis (floor mode)."""
    return (size + low + high - (kernel - 1) * dilation - 1) // stride + 1


def window_geometry(image, kernel, stride, dilation, pads):
    """(Ho, Wo) of an (N, C, H, W) image; ValueError when the window does not fit."""
    ho = output_size(image[2], kernel[0], stride[0], dilation[0], pads[0], pads[1])
    wo = output_size(image[3], kernel[1], stride[1], dilation[1], pads[2], pads[3])
    if ho < 1 or wo < 1:
        raise ValueError(f"the window {kernel} (dilation {dilation}) does not fit the image "
                         f"{tuple(image[2:])} padded by {pads}")
    return ho, wo


def valid_range(out, size, tap, stride, low):
    """The output positions [first, last] whose tap ``tap`` (already times the dilation)
    reads inside the unpadded axis of length ``size``: 0 <= o*stride + tap - low < size."""
    first = max(0, -(-(low - tap) // stride))
    last = min(out - 1, (size - 1 + low - tap) // stride)
    return first, last


def _check_image(x: TensorType, what: str) -> None:
    if x.rank != 4 or not x.dtype.is_float:
        raise TypeError(f"{what} expects a float NCHW tensor of rank 4, got {x}")


# ------------------------------------------------------------------------- im2col, col2im

def _infer_im2col(x: TensorType, *, kernel, stride, dilation, pads) -> TensorType:
    _check_image(x, "im2col")
    ho, wo = window_geometry(x.shape, kernel, stride, dilation, pads)
    n, c = x.shape[:2]
    return TensorType((c * kernel[0] * kernel[1], n * ho * wo), x.dtype)


def _taps(shape, kernel, stride, dilation, pads):
    """(i, j, rows, cols) slices of the padded image for every tap, in (i, j) order."""
    ho, wo = window_geometry(shape, kernel, stride, dilation, pads)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            yield i, j, (slice(top, top + (ho - 1) * stride[0] + 1, stride[0]),
                         slice(left, left + (wo - 1) * stride[1] + 1, stride[1]))


def _padded(x, pads):
    return np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))


def _reference_im2col(x, *, kernel, stride, dilation, pads):
    n, c = x.shape[:2]
    ho, wo = window_geometry(x.shape, kernel, stride, dilation, pads)
    xp = _padded(x, pads)
    cols = np.empty((c, kernel[0], kernel[1], n * ho * wo), x.dtype)
    for i, j, (rows, columns) in _taps(x.shape, kernel, stride, dilation, pads):
        cols[:, i, j] = xp[:, :, rows, columns].transpose(1, 0, 2, 3).reshape(c, -1)
    return cols.reshape(c * kernel[0] * kernel[1], n * ho * wo)


def _vjp_im2col(g, out, x, **attrs):
    return (col2im(g, image=x.shape, **attrs),)


def _normalize_col2im(cols, *, image, **window) -> dict:
    return {"image": tuple(int(d) for d in image), **_window_attrs(**window)}


def _infer_col2im(cols: TensorType, *, image, kernel, stride, dilation, pads) -> TensorType:
    if len(image) != 4:
        raise ValueError(f"image must be (N, C, H, W), got {image}")
    expected = _infer_im2col(TensorType(image, cols.dtype), kernel=kernel, stride=stride,
                             dilation=dilation, pads=pads)
    if cols.shape != expected.shape:
        raise ValueError(f"columns of an image {image} with window {kernel} have "
                         f"shape {expected.shape}, got {cols}")
    return TensorType(tuple(image), cols.dtype)


def _reference_col2im(cols, *, image, kernel, stride, dilation, pads):
    n, c, h, w = image
    ho, wo = window_geometry(image, kernel, stride, dilation, pads)
    xp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), cols.dtype)
    taps = cols.reshape(c, kernel[0], kernel[1], n, ho, wo)
    for i, j, (rows, columns) in _taps(image, kernel, stride, dilation, pads):
        xp[:, :, rows, columns] += taps[:, i, j].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(xp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w])


def _vjp_col2im(g, out, cols, *, image, **attrs):
    return (im2col(g, **attrs),)


im2col = register(AttrOpDef(
    "gs.im2col", _infer_im2col, _reference_im2col, _vjp_im2col, frozenset({WINDOW}),
    'window taps as matrix columns: `%c = "gs.im2col"(%x) {kernel = array<i64: 3, 3>, '
    'stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>} : '
    '(tensor<2x3x8x8xf32>) -> tensor<27x128xf32>`',
    lambda x: (as_value(x),), lambda x, **attrs: _window_attrs(**attrs)))

col2im = register(AttrOpDef(
    "gs.col2im", _infer_col2im, _reference_col2im, _vjp_col2im, frozenset({WINDOW}),
    'the adjoint of im2col (columns added back to the image): `%x = "gs.col2im"(%c) '
    '{image = array<i64: 2, 3, 8, 8>, kernel = array<i64: 3, 3>, ...} : '
    '(tensor<27x128xf32>) -> tensor<2x3x8x8xf32>`',
    lambda cols: (as_value(cols),), _normalize_col2im))


# ------------------------------------------------------------- convolution and its gradients

def _conv_attrs(stride=1, dilation=1, pads=0, groups=1) -> dict:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return {"stride": _pair(stride, "stride"), "dilation": _pair(dilation, "dilation"),
            "pads": _pads(pads), "groups": int(groups)}


def _check_filter(x_channels: int, w: tuple, groups: int) -> None:
    if len(w) != 4 or w[1] * groups != x_channels or w[0] % groups:
        raise ValueError(f"a weight of shape {tuple(w)} (O, C/groups, kh, kw) does not fit "
                         f"{x_channels} input channels with groups={groups}")


def _infer_conv(x: TensorType, w: TensorType, *, stride, dilation, pads, groups) -> TensorType:
    _check_image(x, "conv2d")
    if w.dtype is not x.dtype:
        raise TypeError(f"conv2d expects input and weight of one dtype, got {x} and {w}")
    _check_filter(x.shape[1], w.shape, groups)
    ho, wo = window_geometry(x.shape, w.shape[2:], stride, dilation, pads)
    return TensorType((x.shape[0], w.shape[0], ho, wo), x.dtype)


def _wide(*arrays):
    """float16 and bfloat16 are computed in float32 (rounded once at the end, as codegen
    does)."""
    return [a.astype(np.float32) if is_half_float(a.dtype) else a for a in arrays]


def _group_columns(x, kernel, stride, dilation, pads, groups):
    """The im2col matrix of each group's channels: [(C/g*kh*kw, N*Ho*Wo)] * groups."""
    per = x.shape[1] // groups
    return [_reference_im2col(np.ascontiguousarray(x[:, g * per:(g + 1) * per]), kernel=kernel,
                              stride=stride, dilation=dilation, pads=pads)
            for g in range(groups)]


def _reference_conv(x, w, *, stride, dilation, pads, groups):
    xw, ww = _wide(x, w)
    n, o = x.shape[0], w.shape[0]
    ho, wo = window_geometry(x.shape, w.shape[2:], stride, dilation, pads)
    rows = ww.reshape(groups, o // groups, -1)
    cols = _group_columns(xw, w.shape[2:], stride, dilation, pads, groups)
    out = np.concatenate([r @ c for r, c in zip(rows, cols)])          # (O, N*Ho*Wo)
    return np.ascontiguousarray(out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)).astype(x.dtype)


def _vjp_conv(g, out, x, w, **attrs):
    return (conv2d_input_grad(g, w, image=x.shape, **attrs),
            conv2d_filter_grad(x, g, kernel=w.shape[2:], **attrs))


def _check_cotangent(g: TensorType, expected: TensorType) -> None:
    if g != expected:
        raise ValueError(f"the convolution's output cotangent must be {expected}, got {g}")


def _normalize_input_grad(g, w, *, image, **conv) -> dict:
    return {"image": tuple(int(d) for d in image), **_conv_attrs(**conv)}


def _infer_input_grad(g: TensorType, w: TensorType, *, image, stride, dilation, pads,
                      groups) -> TensorType:
    if len(image) != 4:
        raise ValueError(f"image must be (N, C, H, W), got {image}")
    x = TensorType(tuple(image), g.dtype)
    _check_cotangent(g, _infer_conv(x, w, stride=stride, dilation=dilation, pads=pads,
                                    groups=groups))
    return x


def _reference_input_grad(g, w, *, image, stride, dilation, pads, groups):
    gw, ww = _wide(g, w)
    n, o, ho, wo = g.shape
    per = image[1] // groups
    rows = ww.reshape(groups, o // groups, -1)
    dy = gw.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)        # (g, O/g, N*Ho*Wo)
    parts = [_reference_col2im(r.T @ d, image=(n, per) + tuple(image[2:]), kernel=w.shape[2:],
                               stride=stride, dilation=dilation, pads=pads)
             for r, d in zip(rows, dy)]
    return np.concatenate(parts, axis=1).astype(g.dtype)


def _vjp_input_grad(h, out, g, w, *, image, **attrs):
    return (conv2d(h, w, **attrs), conv2d_filter_grad(h, g, kernel=w.shape[2:], **attrs))


def _normalize_filter_grad(x, g, *, kernel, **conv) -> dict:
    return {"kernel": _pair(kernel, "kernel"), **_conv_attrs(**conv)}


def _infer_filter_grad(x: TensorType, g: TensorType, *, kernel, stride, dilation, pads,
                       groups) -> TensorType:
    _check_image(x, "conv2d_filter_grad")
    if g.rank != 4 or g.shape[1] % groups or x.shape[1] % groups:
        raise ValueError(f"conv2d_filter_grad: channels of {x} and {g} do not split into "
                         f"{groups} groups")
    w = TensorType((g.shape[1], x.shape[1] // groups) + tuple(kernel), x.dtype)
    _check_cotangent(g, _infer_conv(x, w, stride=stride, dilation=dilation, pads=pads,
                                    groups=groups))
    return w


def _reference_filter_grad(x, g, *, kernel, stride, dilation, pads, groups):
    xw, gw = _wide(x, g)
    o = g.shape[1]
    cols = _group_columns(xw, kernel, stride, dilation, pads, groups)
    dy = gw.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)
    dw = np.concatenate([d @ c.T for d, c in zip(dy, cols)])             # (O, C/g*kh*kw)
    return dw.reshape((o, x.shape[1] // groups) + tuple(kernel)).astype(x.dtype)


def _vjp_filter_grad(h, out, x, g, *, kernel, **attrs):
    return (conv2d_input_grad(g, h, image=x.shape, **attrs), conv2d(x, h, **attrs))


conv2d = register(AttrOpDef(
    "gs.conv2d", _infer_conv, _reference_conv, _vjp_conv, CONV,
    'cross-correlation of NCHW images with (O, C/groups, kh, kw) filters: `%y = "gs.conv2d"'
    '(%x, %w) {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, pads = array<i64: 1, '
    '1, 1, 1>, groups = 1 : i64} : (tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>) -> '
    'tensor<2x4x8x8xf32>`',
    lambda x, w: (as_value(x), as_value(w)), lambda x, w, **attrs: _conv_attrs(**attrs)))

conv2d_input_grad = register(AttrOpDef(
    "gs.conv2d_input_grad", _infer_input_grad, _reference_input_grad, _vjp_input_grad, CONV,
    'the input gradient of conv2d (its adjoint in x): `%dx = "gs.conv2d_input_grad"(%dy, %w) '
    '{image = array<i64: 2, 3, 8, 8>, stride = ..., groups = 1 : i64} : '
    '(tensor<2x4x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<2x3x8x8xf32>`',
    lambda g, w: (as_value(g), as_value(w)), _normalize_input_grad))

conv2d_filter_grad = register(AttrOpDef(
    "gs.conv2d_filter_grad", _infer_filter_grad, _reference_filter_grad, _vjp_filter_grad, CONV,
    'the weight gradient of conv2d (its adjoint in w): `%dw = "gs.conv2d_filter_grad"(%x, %dy) '
    '{kernel = array<i64: 3, 3>, stride = ..., groups = 1 : i64} : '
    '(tensor<2x3x8x8xf32>, tensor<2x4x8x8xf32>) -> tensor<4x3x3x3xf32>`',
    lambda x, g: (as_value(x), as_value(g)), _normalize_filter_grad))


# ----------------------------------------------------------------------------- max pooling

def _normalize_pool(*operands, kernel, stride=None, dilation=1) -> dict:
    attrs = _window_attrs(kernel, kernel if stride is None else stride, dilation)
    del attrs["pads"]
    return attrs


def _infer_max_pool(x: TensorType, *, kernel, stride, dilation) -> TensorType:
    _check_image(x, "max_pool2d")
    ho, wo = window_geometry(x.shape, kernel, stride, dilation, (0, 0, 0, 0))
    return x.with_shape(x.shape[:2] + (ho, wo))


def _pool_taps(x, kernel, stride, dilation):
    return [x[:, :, rows, columns] for _, _, (rows, columns)
            in _taps(x.shape, kernel, stride, dilation, (0, 0, 0, 0))]


def _reference_max_pool(x, *, kernel, stride, dilation):
    return np.max(np.stack(_pool_taps(x, kernel, stride, dilation)), axis=0)


def _first_maxima(taps):
    """For each tap, where it is the first maximum of its window (row-major tap order)."""
    best = np.max(np.stack(taps), axis=0)
    found = np.zeros(best.shape, bool)
    chosen = []
    for tap in taps:
        take = (tap == best) & ~found
        found |= take
        chosen.append(take)
    return chosen


def _vjp_max_pool(g, out, x, **attrs):
    return (max_pool2d_grad(x, g, **attrs),)


def _infer_max_pool_grad(x: TensorType, g: TensorType, **attrs) -> TensorType:
    out = _infer_max_pool(x, **attrs)
    if g != out:
        raise ValueError(f"the cotangent must be {out}, got {g}")
    return x


def _reference_max_pool_grad(x, g, *, kernel, stride, dilation):
    dx = np.zeros_like(x)
    taps = _pool_taps(x, kernel, stride, dilation)
    windows = list(_taps(x.shape, kernel, stride, dilation, (0, 0, 0, 0)))
    for take, (_, _, (rows, columns)) in zip(_first_maxima(taps), windows):
        dx[:, :, rows, columns] += np.where(take, g, 0).astype(x.dtype)
    return dx


def _vjp_max_pool_grad(h, out, x, g, **attrs):
    """Linear in g: its transpose gathers h at each window's first maximum; in x it is
    piecewise constant (no gradient)."""
    from .elementwise import equal, logical_and, logical_not, logical_or, maximum, select
    from .shape import slice as slice_op
    kernel, stride, dilation = attrs["kernel"], attrs["stride"], attrs["dilation"]
    n, c = x.shape[:2]

    def tap(v, rows, columns):
        return slice_op(v, begin=(0, 0, rows.start, columns.start),
                        end=(n, c, rows.stop, columns.stop), strides=(1, 1) + stride)
    windows = [w for _, _, w in _taps(x.shape, kernel, stride, dilation, (0, 0, 0, 0))]
    values = [tap(x, *w) for w in windows]
    best = values[0]
    for v in values[1:]:
        best = maximum(best, v)
    found, total = None, None
    zero = g * 0.0
    for v, w in zip(values, windows):
        hit = equal(v, best)
        take = hit if found is None else logical_and(hit, logical_not(found))
        found = hit if found is None else logical_or(found, hit)
        term = select(take, tap(h, *w), zero)
        total = term if total is None else total + term
    return (None, total)


max_pool2d = register(AttrOpDef(
    "gs.max_pool2d", _infer_max_pool, _reference_max_pool, _vjp_max_pool, frozenset({WINDOW}),
    'maximum over each window: `%y = "gs.max_pool2d"(%x) {kernel = array<i64: 2, 2>, '
    'stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>} : (tensor<2x3x8x8xf32>) -> '
    'tensor<2x3x4x4xf32>`',
    lambda x: (as_value(x),), _normalize_pool))

max_pool2d_grad = register(AttrOpDef(
    "gs.max_pool2d_grad", _infer_max_pool_grad, _reference_max_pool_grad, _vjp_max_pool_grad,
    frozenset({WINDOW}),
    'the cotangent of max_pool2d routed to each window\'s first maximum: '
    '`%dx = "gs.max_pool2d_grad"(%x, %g) {kernel = array<i64: 2, 2>, ...} : '
    '(tensor<2x3x8x8xf32>, tensor<2x3x4x4xf32>) -> tensor<2x3x8x8xf32>`',
    lambda x, g: (as_value(x), as_value(g)), _normalize_pool))
