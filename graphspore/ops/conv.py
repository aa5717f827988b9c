"""`mindspore.ops` convolution over NCHW images: conv2d, unfold and fold, on the window
primitives (`ir/ops/conv.py`); pooling is in pooling.py.

A convolution is the `gs.conv2d` primitive (groups, stride, dilation, explicit pads), its
gradients `gs.conv2d_input_grad` and `gs.conv2d_filter_grad` (codegen: per-image packing and
register-tiled products, `codegen/lower_conv.py`); the bias is an elementwise add the forward
kernel takes as its epilogue. `nn.Conv2d` calls the `conv2d_nchw` form.

Padding follows MindSpore: 'valid' (none), 'same' (output size ceil(H / s), the extra row or
column at the bottom/right), 'pad' (explicit `padding`: an int, or (top, bottom, left, right)).
"""
from __future__ import annotations

from ..eager import gs_op
from ..frontend.operators import op as _op


def pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair (TypeError otherwise)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def check_pad_mode(pad_mode: str, padding) -> tuple[str, tuple[int, int, int, int]]:
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


def pad_amounts(mode, pads, height, width, kernel, stride, dilation):
    """(top, bottom, left, right) for an input of (height, width)."""
    if mode == "same":
        top, bottom = _same_pads(height, kernel[0], stride[0], dilation[0])
        left, right = _same_pads(width, kernel[1], stride[1], dilation[1])
        return top, bottom, left, right
    return pads


def out_size(size, kernel, stride, dilation):
    return (size - (kernel - 1) * dilation - 1) // stride + 1



@gs_op
def conv2d_nchw(x, weight, bias, stride, pads, dilation, group):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/group, kh, kw), plus bias (O,)
    unless it is None: (N, O, Ho, Wo). One `gs.conv2d` (its VJP the input- and weight-
    gradient primitives); the bias add is elementwise, fused into the kernel's epilogue."""
    out = _op("conv2d")(x, weight, stride=stride, dilation=dilation, pads=pads, groups=group)
    if bias is not None:
        out = out + _op("reshape")(bias, shape=(1, weight.shape[0], 1, 1))
    return out


def _image(x, what):
    if len(x.shape) != 4:
        raise ValueError(f"{what} expects an NCHW input of rank 4, got shape {tuple(x.shape)}")


@gs_op
def conv2d(input, weight, bias=None, stride=1, pad_mode="valid", padding=0, dilation=1,
           groups=1):
    """2-D cross-correlation of (N, C, H, W) with weight (O, C/groups, kh, kw) (+ bias)."""
    _image(input, "conv2d")
    if len(weight.shape) != 4 or weight.shape[1] * groups != input.shape[1] \
            or weight.shape[0] % groups:
        raise ValueError(f"conv2d: weight {tuple(weight.shape)} does not fit input "
                         f"{tuple(input.shape)} with groups={groups}")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    mode, pads = check_pad_mode(pad_mode, padding)
    kernel = tuple(weight.shape[2:])
    pads = pad_amounts(mode, pads, input.shape[2], input.shape[3], kernel, stride, dilation)
    return conv2d_nchw(input, weight, bias, stride, pads, dilation, groups)


def _window(kernel_size, dilation, padding, stride):
    top, left = pair(padding, "padding")
    return dict(kernel=pair(kernel_size, "kernel_size"), stride=pair(stride, "stride"),
                dilation=pair(dilation, "dilation"), pads=(top, top, left, left))


@gs_op
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding windows as columns: (N, C*kh*kw, L), L = Ho*Wo (im2col per image)."""
    _image(input, "unfold")
    n = input.shape[0]
    cols = _op("im2col")(input, **_window(kernel_size, dilation, padding, stride))
    cols = _op("reshape")(cols, shape=(cols.shape[0], n, cols.shape[1] // n))
    return _op("transpose")(cols, perm=(1, 0, 2))


@gs_op
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of unfold: columns (N, C*kh*kw, L) summed back into (N, C, *output_size)."""
    if len(input.shape) != 3:
        raise ValueError(f"fold expects (N, C*kh*kw, L), got shape {tuple(input.shape)}")
    n, rows, length = input.shape
    window = _window(kernel_size, dilation, padding, stride)
    channels = rows // (window["kernel"][0] * window["kernel"][1])
    cols = _op("reshape")(_op("transpose")(input, perm=(1, 0, 2)), shape=(rows, n * length))
    return _op("col2im")(cols, image=(n, channels) + pair(output_size, "output_size"),
                         **window)


__all__ = ["conv2d", "unfold", "fold"]
