"""Conv2d, MaxPool2d and AvgPool2d in NCHW, built from strided slices (no dedicated kernels).

For a kernel (kh, kw) with stride s and dilation d over the padded input, tap (i, j) of every
output position is the strided slice
    x[:, :, i*d : i*d + (Ho-1)*s + 1 : s, j*d : j*d + (Wo-1)*s + 1 : s]   -> (N, C, Ho, Wo).
Conv2d concatenates the kh*kw taps into the im2col matrix (N*Ho*Wo, C*kh*kw), ordered
(c, i, j) like the weight reshaped to (O, C*kh*kw), and does one matmul; pooling folds the taps
with `maximum` or `add`. Autodiff sees only slice, pad, concat, reshape, transpose and matmul.

Padding follows MindSpore: 'valid' (none), 'same' (output size ceil(H / s), the extra row or
column at the bottom/right), 'pad' (explicit `padding`: an int, or (top, bottom, left, right)).
"""
from __future__ import annotations

import math

from .. import ops
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


def _taps(x, kernel, stride, dilation, out_h, out_w):
    """The kh*kw strided slices (N, C, Ho, Wo) of `x`, in (i, j) row-major order."""
    taps = ()           # a tuple: the frontend folds `+` on tuples, not list.append
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            begin = (0, 0, top, left)
            end = (x.shape[0], x.shape[1], top + (out_h - 1) * stride[0] + 1,
                   left + (out_w - 1) * stride[1] + 1)
            taps = taps + (ops.strided_slice(x, begin, end, (1, 1, stride[0], stride[1])),)
    return taps


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
        if group != 1:
            raise ValueError(f"Conv2d: only group=1 is supported, got group={group}")
        if data_format != "NCHW":
            raise ValueError(f"Conv2d: only data_format='NCHW' is supported, got "
                             f"'{data_format}'")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.pad_mode, self.pads = _check_pad_mode(pad_mode, padding)
        self.has_bias = bool(has_bias)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(Tensor(initial_array(weight_init, shape, dtype)), name="weight")
        if self.has_bias:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(fan_in))
            self.bias = Parameter(Tensor(initial_array(bias_init, (self.out_channels,), dtype)),
                                  name="bias")

    def construct(self, x):
        pads, out_h, out_w = self._geometry(x)
        if pads != (0, 0, 0, 0):
            x = ops.pad(x, (pads[2], pads[3], pads[0], pads[1]))
        n, c = x.shape[0], x.shape[1]
        taps = self._taps_of(x, out_h, out_w)
        windows = len(taps)
        cols = ops.concat([ops.reshape(t, (n, c, 1, out_h * out_w)) for t in taps], 2)
        cols = ops.reshape(cols, (n, c * windows, out_h * out_w))
        cols = ops.reshape(ops.transpose(cols, (0, 2, 1)), (n * out_h * out_w, c * windows))
        kernel = ops.reshape(self.weight, (self.out_channels, c * windows))
        out = ops.matmul(cols, ops.transpose(kernel, (1, 0)))
        if self.has_bias:
            out = out + self.bias
        out = ops.reshape(out, (n, out_h, out_w, self.out_channels))
        return ops.transpose(out, (0, 3, 1, 2))

    def _taps_of(self, x, out_h, out_w):
        return _taps(x, self.kernel_size, self.stride, self.dilation, out_h, out_w)

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
        pads, out_h, out_w = self._geometry(x)
        if pads != (0, 0, 0, 0):
            torch_pads = (pads[2], pads[3], pads[0], pads[1])
            inside = ops.pad(ops.ones_like(x), torch_pads)
            x = ops.pad(x, torch_pads) + (inside - 1.0) * _FLOAT_MAX
        taps = _taps(x, self.kernel_size, self.stride, self.dilation, out_h, out_w)
        out = taps[0]
        for tap in taps[1:]:
            out = ops.maximum(out, tap)
        return out


class AvgPool2d(_Pool2d):
    """Mean over each window (padded zeros count, as with count_include_pad=True)."""

    def construct(self, x):
        pads, out_h, out_w = self._geometry(x)
        if pads != (0, 0, 0, 0):
            x = ops.pad(x, (pads[2], pads[3], pads[0], pads[1]))
        taps = _taps(x, self.kernel_size, self.stride, self.dilation, out_h, out_w)
        out = taps[0]
        for tap in taps[1:]:
            out = out + tap
        return out * (1.0 / len(taps))


__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d"]
