"""Conv2d, MaxPool2d and AvgPool2d in NCHW, on the window primitives (`ir/ops/conv.py`).

A convolution is ``W (O, C*kh*kw) @ im2col(x)`` (one packed matrix of taps, rows (c, i, j),
columns (n, ho, wo)), then the bias and a transpose to NCHW; with groups, one product per
group. Autodiff gives the weight gradient ``dY @ cols.T`` and the input gradient
``col2im(W.T @ dY)``: matrix products on the register tiles or BLAS, plus the two window
kernels. MaxPool2d is `max_pool2d` (its VJP one `max_pool2d_grad` kernel); AvgPool2d sums the
columns of `im2col` (its VJP one `col2im`).

Padding follows MindSpore: 'valid' (none), 'same' (output size ceil(H / s), the extra row or
column at the bottom/right), 'pad' (explicit `padding`: an int, or (top, bottom, left, right)).
"""
from __future__ import annotations

import math

from ..eager import gs_op
from ..frontend.operators import op as _op
from .cell import Cell
from .init import HeUniform, Uniform, initial_array
from .layers import _pair
from ..tensor_type import Parameter, Tensor

_FLOAT_MAX = 3.4028234663852886e38


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _check_pad_mode(pad_mode: str, padding) -> tuple[str, tuple[int, int, int, int]]:
    mode = pad_mode.lower()
    if mode not in ("same", "valid", "pad"):
        raise ValueError(f"pad_mode must be 'same', 'valid' or 'pad', got '{pad_mode}'")
    if isinstance(padding, int):
        pads = (padding,) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = tuple(int(p) for p in padding)
    else:
        raise TypeError(f"padding must be an int or (top, bottom, left, right), got {padding!r}")
    if mode != "pad" and any(pads):
        raise ValueError(f"padding must be 0 unless pad_mode is 'pad' (pad_mode='{pad_mode}', "
                         f"padding={padding!r})")
    return mode, pads


def _pad_amounts(mode, pads, height, width, kernel, stride, dilation):
    """(top, bottom, left, right) for an input of (height, width)."""
    if mode == "same":
        top, bottom = _same_pads(height, kernel[0], stride[0], dilation[0])
        left, right = _same_pads(width, kernel[1], stride[1], dilation[1])
        return top, bottom, left, right
    return pads


def _out_size(size, kernel, stride, dilation):
    return (size - (kernel - 1) * dilation - 1) // stride + 1


@gs_op
def conv2d_nchw(x, weight, bias, stride, pads, dilation, group):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/group, kh, kw), plus bias (O,)
    unless it is None: (N, O, Ho, Wo)."""
    n, channels = x.shape[0], x.shape[1]
    out_channels, kernel = weight.shape[0], tuple(weight.shape[2:])
    window = dict(kernel=kernel, stride=stride, dilation=dilation, pads=pads)
    per_group, outputs_per_group = channels // group, out_channels // group
    taps = per_group * kernel[0] * kernel[1]
    kernel_matrix = _op("reshape")(weight, shape=(out_channels, taps))
    products = []
    for g in range(group):
        part = x if group == 1 else _op("slice")(
            x, begin=(0, g * per_group, 0, 0), end=(n, (g + 1) * per_group) + tuple(x.shape[2:]))
        rows = kernel_matrix if group == 1 else _op("slice")(
            kernel_matrix, begin=(g * outputs_per_group, 0), end=((g + 1) * outputs_per_group,
                                                                  taps))
        products.append(_op("matmul")(rows, _op("im2col")(part, **window)))
    out = products[0] if group == 1 else _op("concat")(*products, axis=0)
    if bias is not None:
        out = out + _op("reshape")(bias, shape=(out_channels, 1))
    cols = out.shape[1] // n
    out = _op("reshape")(out, shape=(out_channels, n, cols))
    out = _op("transpose")(out, perm=(1, 0, 2))
    height, width = _out_sizes(x.shape, kernel, stride, dilation, pads)
    return _op("reshape")(out, shape=(n, out_channels, height, width))


def _out_sizes(shape, kernel, stride, dilation, pads):
    return (_out_size(shape[2] + pads[0] + pads[1], kernel[0], stride[0], dilation[0]),
            _out_size(shape[3] + pads[2] + pads[3], kernel[1], stride[1], dilation[1]))


@gs_op
def max_pool2d_nchw(x, kernel, stride, pads, dilation):
    """Maximum over each window; padded positions never win (they hold -FLOAT_MAX)."""
    if any(pads):
        low, high = (0, 0, pads[0], pads[2]), (0, 0, pads[1], pads[3])
        inside = _op("pad")(_op("ones_like")(x), low=low, high=high)
        x = _op("pad")(x, low=low, high=high) + (inside - 1.0) * _FLOAT_MAX
    return _op("max_pool2d")(x, kernel=kernel, stride=stride, dilation=dilation)


@gs_op
def avg_pool2d_nchw(x, kernel, stride, pads, dilation):
    """Mean over each window, padded zeros counted (count_include_pad=True)."""
    n, c = x.shape[0], x.shape[1]
    planes = _op("reshape")(x, shape=(n * c, 1) + tuple(x.shape[2:]))
    cols = _op("im2col")(planes, kernel=kernel, stride=stride, dilation=dilation, pads=pads)
    mean = _op("reduce_sum")(cols, axes=(0,)) * (1.0 / (kernel[0] * kernel[1]))
    height, width = _out_sizes(x.shape, kernel, stride, dilation, pads)
    return _op("reshape")(mean, shape=(n, c, height, width))


class _Window(Cell):
    """Shared geometry of convolution and pooling windows."""

    def _geometry(self, x):
        if len(x.shape) != 4:
            raise ValueError(f"{type(self).__name__} expects an NCHW input of rank 4, got shape "
                             f"{tuple(x.shape)}")
        pads = _pad_amounts(self.pad_mode, self.pads, x.shape[2], x.shape[3],
                            self.kernel_size, self.stride, self.dilation)
        out_h = _out_size(x.shape[2] + pads[0] + pads[1], self.kernel_size[0], self.stride[0],
                          self.dilation[0])
        out_w = _out_size(x.shape[3] + pads[2] + pads[3], self.kernel_size[1], self.stride[1],
                          self.dilation[1])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"{type(self).__name__}: input {tuple(x.shape)} is smaller than "
                             f"the kernel {self.kernel_size}")
        return pads, out_h, out_w


class Conv2d(_Window):
    """2-D convolution (cross-correlation) over NCHW input; weight (O, C/group, kh, kw).

    Defaults as MindSpore 2.x: pad_mode='same', has_bias=False, weight HeUniform(sqrt(5)),
    bias Uniform(1/sqrt(fan_in)) with fan_in = C * kh * kw.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same",
                 padding=0, dilation=1, group=1, has_bias=False, weight_init=None,
                 bias_init=None, data_format="NCHW", dtype=None):
        super().__init__()
        if group < 1 or in_channels % group or out_channels % group:
            raise ValueError(f"Conv2d: group={group} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.group = int(group)
        if data_format != "NCHW":
            raise ValueError(f"Conv2d: only data_format='NCHW' is supported, got "
                             f"'{data_format}'")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.pad_mode, self.pads = _check_pad_mode(pad_mode, padding)
        self.has_bias = bool(has_bias)
        shape = (self.out_channels, self.in_channels // self.group) + self.kernel_size
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(Tensor(initial_array(weight_init, shape, dtype)), name="weight")
        if self.has_bias:
            fan_in = self.in_channels // self.group * self.kernel_size[0] * self.kernel_size[1]
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(fan_in))
            self.bias = Parameter(Tensor(initial_array(bias_init, (self.out_channels,), dtype)),
                                  name="bias")

    def construct(self, x):
        pads, _, _ = self._geometry(x)
        return conv2d_nchw(x, self.weight, self.bias if self.has_bias else None, self.stride,
                           pads, self.dilation, self.group)

    def extend_repr(self) -> str:
        return (f"input_channels={self.in_channels}, output_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"pad_mode={self.pad_mode}, padding={self.pads}, has_bias={self.has_bias}")


class _Pool2d(_Window):
    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1,
                 data_format="NCHW"):
        super().__init__()
        if data_format != "NCHW":
            raise ValueError(f"{type(self).__name__}: only data_format='NCHW' is supported")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.pad_mode, self.pads = _check_pad_mode(pad_mode, padding)

    def extend_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"pad_mode={self.pad_mode}")


class MaxPool2d(_Pool2d):
    """Maximum over each window; padded positions never win (they hold -FLOAT_MAX)."""

    def construct(self, x):
        pads, _, _ = self._geometry(x)
        return max_pool2d_nchw(x, self.kernel_size, self.stride, pads, self.dilation)


class AvgPool2d(_Pool2d):
    """Mean over each window (padded zeros count, as with count_include_pad=True)."""

    def construct(self, x):
        pads, _, _ = self._geometry(x)
        return avg_pool2d_nchw(x, self.kernel_size, self.stride, pads, self.dilation)


__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d"]
