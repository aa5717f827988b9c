"""Conv2d in NCHW: a Cell over the functional form in ops/conv.py (the conv2d
primitive, groups included), with MindSpore's defaults, initialisers and padding modes ('valid',
'same', 'pad'). Pooling Cells are in pooling.py."""
from __future__ import annotations

import math

from ..ops.conv import (check_pad_mode as _check_pad_mode, conv2d_nchw, out_size as _out_size,
                        pad_amounts as _pad_amounts)
from .cell import Cell
from .init import HeUniform, Uniform, initial_array
from .layers import _pair
from ..tensor_type import Parameter, Tensor



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


__all__ = ["Conv2d"]
