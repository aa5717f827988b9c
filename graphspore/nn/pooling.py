"""MaxPool2d and AvgPool2d: Cells over the pooling composites of ops/pooling.py, with
MindSpore 2.x's arguments and checks.

MaxPool2d: `padding`, `dilation`, `return_indices` and `ceil_mode` only with pad_mode='pad'
(ValueError otherwise, as MindSpore, whose 'pad' mode is MaxPool3DWithArgmax); padding at
most half the kernel. AvgPool2d: `ceil_mode`, `count_include_pad` and `divisor_override` in
every pad mode, a non-zero `padding` only in 'pad' mode; with all of them at their defaults
'same' padding does not count in the divisor (MindSpore runs that case on its AvgPool kernel,
oneDNN's exclude-padding average). Both take (N, C, H, W) or (C, H, W).
"""
from __future__ import annotations

from ..eager import gs_op
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ops.conv import pad_amounts
from ..ops.pooling import (avg_pool_window, max_pool_window, positive_pair, symmetric_pads,
                           check_max_pads, divisor_of, flag_of)
from .cell import Cell


def _pad_mode(pad_mode, what):
    if not isinstance(pad_mode, str) or pad_mode.upper() not in ("VALID", "SAME", "PAD"):
        raise ValueError(f"{what}: pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")
    return pad_mode.upper()


def _pads(x, pad_mode, padding, kernel, stride, dilation):
    if pad_mode == "SAME":
        return pad_amounts("same", None, x.shape[-2], x.shape[-1], kernel, stride, dilation)
    return padding


def _images(x, pool, what):
    """pool(x) for (N, C, H, W); (C, H, W) gets a batch axis for the call."""
    if len(x.shape) not in (3, 4):
        raise ValueError(f"{what} expects an input of rank 3 or 4 (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    if len(x.shape) == 4:
        return pool(x)
    out = pool(_op("reshape")(x, shape=(1,) + tuple(x.shape)))
    drop = lambda y: _op("reshape")(y, shape=tuple(y.shape[1:]))  # noqa: E731
    return tuple(drop(y) for y in out) if isinstance(out, tuple) else drop(out)


@gs_op
def max_pool_images(x, kernel, stride, pad_mode, padding, dilation, ceil_mode, return_indices):
    """nn.MaxPool2d's computation (rank 3 or 4, any pad mode)."""
    return _images(ir_ops.as_value(x), lambda images: max_pool_window(
        images, kernel, stride, _pads(images, pad_mode, padding, kernel, stride, dilation),
        dilation, ceil_mode, return_indices, "MaxPool2d"), "MaxPool2d")


@gs_op
def avg_pool_images(x, kernel, stride, pad_mode, padding, ceil_mode, count_include_pad,
                    divisor_override):
    """nn.AvgPool2d's computation (rank 3 or 4, any pad mode)."""
    return _images(ir_ops.as_value(x), lambda images: avg_pool_window(
        images, kernel, stride, _pads(images, pad_mode, padding, kernel, stride, (1, 1)),
        ceil_mode, count_include_pad, divisor_override, "AvgPool2d"), "AvgPool2d")


class _Pool2d(Cell):
    """Kernel, stride and pad mode shared by the two pooling Cells."""

    def __init__(self, kernel_size, stride, pad_mode, padding, data_format):
        super().__init__()
        what = type(self).__name__
        if data_format != "NCHW":
            raise ValueError(f"{what}: only data_format='NCHW' is supported, got "
                             f"{data_format!r}")
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = positive_pair(stride, "stride")
        self.pad_mode = _pad_mode(pad_mode, what)
        self.padding = symmetric_pads(padding)
        if self.pad_mode != "PAD" and any(self.padding):
            raise ValueError(f"{what}: padding must be 0 unless pad_mode is 'pad' (pad_mode="
                             f"'{pad_mode}', padding={padding!r})")

    def extend_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"pad_mode={self.pad_mode}")


class MaxPool2d(_Pool2d):
    """Maximum over each window; padded positions never win. With return_indices=True the
    output is (values, argmax), argmax int64 flattened per (N, C) plane of the input."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, dilation=1,
                 return_indices=False, ceil_mode=False, data_format="NCHW"):
        super().__init__(kernel_size, stride, pad_mode, padding, data_format)
        self.dilation = positive_pair(dilation, "dilation")
        self.return_indices = flag_of(return_indices, "return_indices", "MaxPool2d")
        self.ceil_mode = flag_of(ceil_mode, "ceil_mode", "MaxPool2d")
        if self.pad_mode != "PAD" and (self.dilation != (1, 1) or self.return_indices
                                       or self.ceil_mode):
            raise ValueError(f"MaxPool2d: dilation, return_indices and ceil_mode can not be "
                             f"set to non-default values when pad_mode is not 'pad', got "
                             f"pad_mode='{pad_mode}'")
        check_max_pads(self.kernel_size, self.padding, "MaxPool2d")

    def construct(self, x):
        return max_pool_images(x, self.kernel_size, self.stride, self.pad_mode, self.padding,
                               self.dilation, self.ceil_mode, self.return_indices)


class AvgPool2d(_Pool2d):
    """Mean over each window: the sum over `divisor_override` if given, else over the window
    counted with the padding (count_include_pad=True) or without it."""

    def __init__(self, kernel_size=1, stride=1, pad_mode="valid", padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, data_format="NCHW"):
        super().__init__(kernel_size, stride, pad_mode, padding, data_format)
        self.ceil_mode = flag_of(ceil_mode, "ceil_mode", "AvgPool2d")
        self.count_include_pad = flag_of(count_include_pad, "count_include_pad", "AvgPool2d")
        if divisor_override == 0:
            raise ValueError("AvgPool2d: divisor_override can not be 0")
        self.divisor_override = divisor_of(divisor_override, "AvgPool2d")
        # MindSpore runs the defaults on its AvgPool kernel, whose 'same' padding does not
        # count in the divisor, and anything else on AvgPool3D, which follows the flags
        classic = (self.pad_mode != "PAD" and not self.ceil_mode and self.count_include_pad
                   and not self.divisor_override)
        self._counts_padding = self.count_include_pad and not (
            classic and self.pad_mode == "SAME")

    def construct(self, x):
        return avg_pool_images(x, self.kernel_size, self.stride, self.pad_mode, self.padding,
                               self.ceil_mode, self._counts_padding, self.divisor_override)


__all__ = ["MaxPool2d", "AvgPool2d"]
