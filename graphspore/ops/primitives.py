"""MindSpore's Primitive classes: `ops.Softmax(axis=-1)(x)`, `ops.Concat(1)((a, b))`, ...

A Primitive is built with its
attributes and called with its inputs, as in MindSpore. Each class is a `_Primitive` whose
`apply(self, *inputs)` is graph code over the functional ops (`ops.softmax`, ...), wrapped by
`gs_op`, so one object works eagerly (Tensors in and out) and inside compiled functions and
Cells, where the frontend sees `__gs_op__` and calls it with IR values; instances may also be
created inside `construct`. Stateless primitives (`ops.Exp()`, `ops.Mul()`) are made by
`_stateless` from the functional op they forward to, instead of one hand-written class each.
`ops.MatMul`, the reductions (`ops.ReduceSum`) and `ops.Gather` follow the same pattern.
"""
from __future__ import annotations

import numpy as np

from . import (array, creation, elementwise, indexing, math as ops_math, names, nn as ops_nn,
               pooling)
from ..eager import gs_op
from ..frontend import operators as methods
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ir.ops.shape import normalize_axis
from ..ir.types import DType


class _Primitive:
    """Base of the Primitive classes: `__call__` forwards the inputs to `apply`."""

    __gs_op__ = True

    def __call__(self, *inputs):
        return self.apply(*inputs)

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({attrs})" if attrs else f"{type(self).__name__}()"


def _stateless(name: str, function, doc: str) -> type:
    """A Primitive class without attributes whose call is `function(*inputs)`."""
    return type(name, (_Primitive,), {"__doc__": doc, "__module__": __name__,
                                      "apply": staticmethod(function)})


# ------------------------------------------------------------------------- stateless

def _public_functions() -> dict:
    """The `ops` functions a stateless Primitive forwards to: one per primitive of the
    registry that has a function (`gs.logical_and` -> `ops.logical_and`), plus the functions
    in names.STATELESS_PRIMITIVES."""
    modules = (array, creation, elementwise, indexing, ops_math, ops_nn)
    functions = {name: getattr(m, name) for m in modules for name in m.__all__}
    wanted = [names.function_name(opdef.short_name) for opdef in ir_ops.OPS.values()
              if ir_ops.ELEMENTWISE in opdef.groups] + list(names.STATELESS_PRIMITIVES)
    return {name: functions[name] for name in wanted if name in functions}


STATELESS = {names.primitive_name(name): _stateless(
                 names.primitive_name(name), function,
                 f"`ops.{names.primitive_name(name)}()(*inputs)`: `ops.{name}(*inputs)`.")
             for name, function in _public_functions().items()}
STATELESS.update({alias: STATELESS[name] for alias, name in names.PRIMITIVE_ALIASES.items()})
globals().update(STATELESS)


# ------------------------------------------------------------------- with attributes

class Softmax(_Primitive):
    """`ops.Softmax(axis=-1)(x)`: softmax along `axis` (an int or a tuple of ints)."""

    def __init__(self, axis=-1):
        self.axis = axis

    @gs_op
    def apply(self, x):
        x = ir_ops.as_value(x)
        axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
        axes = tuple(normalize_axis(a, x.ndim) for a in axes)
        return _op("softmax")(x, axis=axes[0] if len(axes) == 1 else axes)


class LogSoftmax(_Primitive):
    """`ops.LogSoftmax(axis=-1)(x)`: log(softmax(x)) along `axis`, computed stably."""

    def __init__(self, axis=-1):
        self.axis = int(axis)

    def apply(self, x):
        return ops_nn.log_softmax(x, self.axis)


class Concat(_Primitive):
    """`ops.Concat(axis=0)((a, b, ...))`: join tensors along an existing axis."""

    def __init__(self, axis=0):
        self.axis = int(axis)

    def apply(self, tensors):
        return array.concat(tensors, self.axis)


class Stack(_Primitive):
    """`ops.Stack(axis=0)((a, b, ...))`: join tensors along a new axis."""

    def __init__(self, axis=0):
        self.axis = int(axis)

    def apply(self, tensors):
        return array.stack(tensors, self.axis)


class Squeeze(_Primitive):
    """`ops.Squeeze(axis=())(x)`: drop the given unit axes, or every unit axis for ()."""

    def __init__(self, axis=()):
        self.axis = axis

    def apply(self, x):
        return array.squeeze(x, None if self.axis == () else self.axis)


class ReverseV2(_Primitive):
    """`ops.ReverseV2(axis)(x)`: `ops.flip(x, axis)`."""

    def __init__(self, axis):
        self.axis = axis

    def apply(self, x):
        return array.flip(x, self.axis)


class OneHot(_Primitive):
    """`ops.OneHot(axis=-1)(indices, depth, on_value, off_value)`: one-hot rows along a new
    axis; the output takes on_value's dtype."""

    def __init__(self, axis=-1):
        self.axis = int(axis)

    def apply(self, indices, depth, on_value, off_value):
        return creation.one_hot(indices, depth, on_value, off_value, self.axis)


class Argmax(_Primitive):
    """`ops.Argmax(axis=-1, output_type=mindspore.int32)(x)`: index of the first maximum."""

    def __init__(self, axis=-1, output_type=DType.i32):
        self.axis = int(axis)
        self.output_type = methods.to_dtype(output_type)
        if self.output_type not in (DType.i32, DType.i64):
            raise TypeError(f"Argmax: output_type must be int32 or int64, got {output_type}")

    @gs_op
    def apply(self, x):
        return _op("cast")(methods.argmax(ir_ops.as_value(x), self.axis), dtype=self.output_type)


class ArgMaxWithValue(_Primitive):
    """`ops.ArgMaxWithValue(axis=0, keep_dims=False)(x)`: (int64 index of the first maximum,
    the maximum) along `axis`."""

    def __init__(self, axis=0, keep_dims=False):
        self.axis, self.keep_dims = int(axis), bool(keep_dims)

    def apply(self, x):
        values, index = ops_math.max(x, self.axis, self.keep_dims)
        return index, values


class BatchMatMul(_Primitive):
    """`ops.BatchMatMul(transpose_a=False, transpose_b=False)(x, y)`: matrix products over
    the leading (broadcast) axes, optionally transposing the last two axes of either side."""

    def __init__(self, transpose_a=False, transpose_b=False):
        self.transpose_a, self.transpose_b = bool(transpose_a), bool(transpose_b)

    @gs_op
    def apply(self, x, y):
        x, y = ir_ops.as_value(x), ir_ops.as_value(y)
        if x.ndim < 2 or y.ndim < 2:
            raise ValueError(f"BatchMatMul: operands need rank >= 2, got {x.type} and {y.type}")
        x = _op("swapaxes")(x, -1, -2) if self.transpose_a else x
        y = _op("swapaxes")(y, -1, -2) if self.transpose_b else y
        return _op("matmul_nd")(x, y)


class LayerNorm(_Primitive):
    """`ops.LayerNorm(begin_norm_axis=1, begin_params_axis=1, epsilon=1e-7)(x, gamma, beta)`:
    (y, mean, variance) with y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, the
    statistics over the axes from begin_norm_axis on, kept as unit axes (MindSpore <= 2.2's
    outputs; from 2.3 its docs name the third output rstd)."""

    def __init__(self, begin_norm_axis=1, begin_params_axis=1, epsilon=1e-7):
        self.begin_norm_axis, self.begin_params_axis = int(begin_norm_axis), int(begin_params_axis)
        self.epsilon = float(epsilon)

    @gs_op
    def apply(self, x, gamma, beta):
        x = ir_ops.promote_operands(x, to_float=True)[0]
        start = normalize_axis(self.begin_norm_axis, x.ndim)
        params = x.shape[normalize_axis(self.begin_params_axis, x.ndim):]
        gamma, beta = ir_ops.as_value(gamma, x.dtype), ir_ops.as_value(beta, x.dtype)
        for name, value in (("gamma", gamma), ("beta", beta)):
            if value.shape != params:
                raise ValueError(f"LayerNorm: {name} must have shape {params}, got "
                                 f"{value.type}")
        axes = tuple(range(start, x.ndim))
        mean = _op("mean")(x, axes=axes, keep_dims=True)
        centered = x - mean
        variance = _op("mean")(centered * centered, axes=axes, keep_dims=True)
        y = centered / _op("sqrt")(variance + self.epsilon)
        return y * gamma + beta, mean, variance


# ------------------------------------------------- products, reductions, gathers

class MatMul:
    """MindSpore's `ops.MatMul(transpose_a=False, transpose_b=False)`: a rank-2 product that
    reads its operands transposed (no copy; its gradient needs no transposes either)."""

    __gs_op__ = True

    def __init__(self, transpose_a=False, transpose_b=False):
        self.transpose_a, self.transpose_b = bool(transpose_a), bool(transpose_b)
        flags = dict(transpose_a=self.transpose_a, transpose_b=self.transpose_b)
        self._apply = gs_op(lambda a, b: ir_ops.matmul(a, b, **flags))

    def __call__(self, x, y):
        return self._apply(x, y)


class _Reduction:
    """MindSpore's reduction Primitives: `ops.ReduceSum(keep_dims=False)(x, axis=())`,
    where an empty `axis` means every axis."""

    __gs_op__ = True
    _function = None

    def __init__(self, keep_dims=False):
        self.keep_dims = bool(keep_dims)

    def __call__(self, x, axis=()):
        return type(self)._function(x, None if axis == () else axis, self.keep_dims)


class ReduceSum(_Reduction):
    _function = staticmethod(ops_math.sum)


class ReduceMean(_Reduction):
    _function = staticmethod(ops_math.mean)


class ReduceMax(_Reduction):
    _function = staticmethod(ops_math.amax)


class ReduceMin(_Reduction):
    _function = staticmethod(ops_math.amin)


class Gather:
    """MindSpore's `ops.Gather(batch_dims=0)`: `Gather()(input_params, input_indices, axis)`."""

    __gs_op__ = True

    def __init__(self, batch_dims=0):
        self.batch_dims = int(batch_dims)

    def __call__(self, input_params, input_indices, axis):
        return indexing.gather(input_params, input_indices, axis, self.batch_dims)


class Dropout2D(_Primitive):
    """`ops.Dropout2D(keep_prob=0.5)(x)`: `(output, mask)` for an (N, C, H, W) x, each channel
    kept with probability keep_prob (scaled by 1 / keep_prob) or zeroed; mask is bool, x's
    shape."""

    def __init__(self, keep_prob=0.5):
        if isinstance(keep_prob, bool) or not isinstance(keep_prob, float):
            raise TypeError(f"Dropout2D: keep_prob must be a float, got {keep_prob!r}")
        if not 0.0 <= keep_prob <= 1.0:
            raise ValueError(f"Dropout2D: keep_prob must be in [0.0, 1.0], got {keep_prob}")
        self.keep_prob = keep_prob

    def __call__(self, x):
        if self.keep_prob == 0.0:
            out, scale = ops_nn.dropout2d(x, 1.0), creation.zeros_like(x)
        else:
            out, scale = ops_nn.channel_dropout(x, 1.0 - self.keep_prob)
        mask = array.broadcast_to(elementwise.not_equal(scale, 0), tuple(x.shape))
        return out, mask


class GatherD:
    """MindSpore's `ops.GatherD()`: `GatherD()(x, dim, index)`, the same as gather_elements."""

    __gs_op__ = True

    def __call__(self, x, dim, index):
        return indexing.gather_elements(x, dim, index)


# ------------------------------------------------------- scans, splits and unique values

class CumSum(_Primitive):
    """`ops.CumSum(exclusive=False, reverse=False)(x, axis)`: prefix sums along `axis`;
    `exclusive` leaves each element out of its own sum, `reverse` sums from the end."""

    def __init__(self, exclusive=False, reverse=False):
        self.exclusive, self.reverse = bool(exclusive), bool(reverse)

    @gs_op
    def apply(self, x, axis):
        x = ir_ops.as_value(x)
        axis = normalize_axis(int(axis), x.ndim)
        source = _op("reverse")(x, axes=axis) if self.reverse else x
        out = _op("cumsum")(source, axis)
        if self.exclusive:
            out = out - (source if source.dtype is out.dtype else _op("cast")(
                source, dtype=out.dtype))
        return _op("reverse")(out, axes=axis) if self.reverse else out


class Split(_Primitive):
    """`ops.Split(axis=0, output_num=1)(x)`: `output_num` equal pieces along `axis` (the
    axis length must divide evenly, as in MindSpore)."""

    def __init__(self, axis=0, output_num=1):
        self.axis, self.output_num = int(axis), int(output_num)
        if self.output_num < 1:
            raise ValueError(f"Split: output_num must be positive, got {output_num}")

    @gs_op
    def apply(self, x):
        x = ir_ops.as_value(x)
        n = x.shape[normalize_axis(self.axis, x.ndim)]
        if n % self.output_num:
            raise ValueError(f"Split: the length {n} of axis {self.axis} of {x.type} is not "
                             f"divisible by output_num={self.output_num}")
        return tuple(_op("split")(x, n // self.output_num, self.axis))


class Unique(_Primitive):
    """`ops.Unique()(x)`: `(y, idx)`, the sorted distinct values of `x` and for every element
    of `x` the position of its value in `y` (int32). The size of `y` depends on the values,
    so inside a compiled function `x` must be known while the graph is built."""

    @gs_op
    def apply(self, x):
        from ..frontend.constants import known_value
        x = ir_ops.as_value(x)
        data = known_value(x)
        if data is None:
            raise ValueError(f"Unique: the number of distinct values of {x.type} is known only "
                             f"when the graph runs, and compiled shapes are static; call it "
                             f"outside the compiled function, or on a tensor known while "
                             f"parsing")
        values, inverse = np.unique(data.reshape(-1), return_inverse=True)
        return (ir_ops.constant(values.astype(x.dtype.np), x.dtype),
                ir_ops.constant(inverse.reshape(x.shape).astype(np.int32), DType.i32))


class HookBackward(_Primitive):
    """`ops.HookBackward(hook_fn, cell_id="")(x)`: the identity whose gradient goes through
    `hook_fn((grad,))` when the backward pass runs; a returned Tensor replaces the gradient
    (graphspore/gradient_hooks.py: in compiled backward passes, so in both modes)."""

    def __init__(self, hook_fn, cell_id=""):
        if not callable(hook_fn):
            raise TypeError(f"HookBackward: hook_fn must be a Python function, got "
                            f"{type(hook_fn).__name__}")
        self.hook_fn, self.cell_id = hook_fn, cell_id

    def __call__(self, *inputs):
        from ..gradient_hooks import hook_backward
        if len(inputs) != 1:
            raise TypeError(f"HookBackward takes one tensor, got {len(inputs)} inputs")
        return hook_backward(inputs[0], self.hook_fn)


class _Pool(_Primitive):
    """Shared attributes of the pooling Primitives: `kernel_size`, `strides`, `pad_mode`
    ('same' or 'valid'), NCHW only."""

    def __init__(self, kernel_size=1, strides=1, pad_mode="valid", data_format="NCHW"):
        what = type(self).__name__
        if data_format != "NCHW":
            raise ValueError(f"{what}: only data_format='NCHW' is supported, got "
                             f"{data_format!r}")
        if not isinstance(pad_mode, str) or pad_mode.lower() not in ("same", "valid"):
            raise ValueError(f"{what}: pad_mode must be 'same' or 'valid', got {pad_mode!r}")
        self.kernel_size = pooling.positive_pair(kernel_size, "kernel_size")
        self.strides = pooling.positive_pair(strides, "strides")
        self.pad_mode = pad_mode.upper()

    def _pads(self, x):
        from .conv import pad_amounts
        if self.pad_mode == "VALID":
            return (0, 0, 0, 0)
        return pad_amounts("same", None, x.shape[-2], x.shape[-1], self.kernel_size,
                           self.strides, (1, 1))


class MaxPool(_Pool):
    """`ops.MaxPool(kernel_size, strides, pad_mode)(x)`: max pooling of (N, C, H, W)."""

    @gs_op
    def apply(self, x):
        x = ir_ops.as_value(x)
        return pooling.max_pool_window(x, self.kernel_size, self.strides, self._pads(x), (1, 1),
                                       what="MaxPool")


class AvgPool(_Pool):
    """`ops.AvgPool(kernel_size, strides, pad_mode)(x)`: average pooling of (N, C, H, W);
    'same' padding does not count in the divisor (MindSpore's CPU AvgPool, oneDNN's
    pooling_avg)."""

    @gs_op
    def apply(self, x):
        x = ir_ops.as_value(x)
        return pooling.avg_pool_window(x, self.kernel_size, self.strides, self._pads(x),
                                       count_include_pad=False, what="AvgPool")


class MaxPoolWithArgmax(_Pool):
    """`ops.MaxPoolWithArgmax(kernel_size, strides, pad_mode)(x)`: (output, mask), the mask
    the int32 position of each maximum in its (N, C) plane of x."""

    @gs_op
    def apply(self, x):
        x = ir_ops.as_value(x)
        out, at = pooling.max_pool_window(x, self.kernel_size, self.strides, self._pads(x),
                                          (1, 1), return_indices=True,
                                          what="MaxPoolWithArgmax")
        return out, _op("cast")(at, dtype=DType.i32)


class MaxPoolWithArgmaxV2(_Primitive):
    """`ops.MaxPoolWithArgmaxV2(kernel_size, strides=None, pads=0, dilation=(1, 1),
    ceil_mode=False, argmax_type=int64)(x)`: (output, argmax), as `ops.max_pool2d` with
    return_indices=True."""

    def __init__(self, kernel_size, strides=None, pads=0, dilation=(1, 1), ceil_mode=False,
                 argmax_type=DType.i64):
        self.kernel_size = pooling.positive_pair(kernel_size, "kernel_size")
        self.strides = self.kernel_size if strides is None else pooling.positive_pair(
            strides, "strides")
        self.pads = pooling.symmetric_pads(pads, "pads")
        pooling.check_max_pads(self.kernel_size, self.pads, "MaxPoolWithArgmaxV2")
        self.dilation = pooling.positive_pair(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self.argmax_type = methods.to_dtype(argmax_type)
        if self.argmax_type not in (DType.i32, DType.i64):
            raise TypeError(f"MaxPoolWithArgmaxV2: argmax_type must be int32 or int64, got "
                            f"{argmax_type!r}")

    @gs_op
    def apply(self, x):
        out, at = pooling.max_pool_window(x, self.kernel_size, self.strides, self.pads,
                                          self.dilation, self.ceil_mode, True,
                                          "MaxPoolWithArgmaxV2")
        if self.argmax_type is DType.i32:
            at = _op("cast")(at, dtype=DType.i32)
        return out, at


__all__ = [*STATELESS, "Softmax", "LogSoftmax", "Concat", "Stack", "Squeeze", "ReverseV2", "OneHot",
           "Argmax", "ArgMaxWithValue", "BatchMatMul", "LayerNorm", "MatMul", "ReduceSum",
           "ReduceMean", "ReduceMax", "ReduceMin", "Gather", "GatherD", "CumSum", "Split",
           "Unique", "Dropout2D", "HookBackward", "MaxPool", "AvgPool", "MaxPoolWithArgmax",
           "MaxPoolWithArgmaxV2"]
