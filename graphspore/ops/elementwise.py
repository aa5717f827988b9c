"""`mindspore.ops`: the functional API, with MindSpore 2.4's names and signatures.

Every function is graph code over IR values wrapped by `gs_op`: inside a graph the frontend
calls it with Values; eagerly it takes Tensors and returns Tensors, running each op's numpy
reference. The functions translate MindSpore's calling conventions (negative axes, `dim` vs
`axis`, shapes given as ints, dtypes as `mindspore.float32`) into the IR's primitives and
composites, looked up by name (`frontend.operators.op`), so this module holds no arithmetic.
Random draws (`randn`, `rand`, `randint`) are host data from the seeded global generator and
are refused inside compiled functions, where they would freeze into constants.
"""
from __future__ import annotations

import builtins

import numpy as np

from .frontend import operators as methods
from .frontend.operators import op as _op, normalize_axes
from .ir import ops as ir_ops
from .ir.types import DType
from .eager import gs_op

# ------------------------------------------------------------------------- elementwise


def _binary(name: str, doc: str):
    def function(input, other):
        return _op(name)(input, other)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return gs_op(function)


def _unary(name: str, doc: str):
    def function(input):
        return _op(name)(input)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return gs_op(function)


add = _binary("add", "`input + other` with broadcasting and MindSpore's type promotion.")
sub = _binary("sub", "`input - other`.")
mul = _binary("mul", "`input * other`.")
maximum = _binary("maximum", "Elementwise maximum.")
minimum = _binary("minimum", "Elementwise minimum.")
equal = _binary("equal", "`input == other` (bool).")
not_equal = _binary("not_equal", "`input != other` (bool).")
less = _binary("less", "`input < other` (bool).")
less_equal = _binary("less_equal", "`input <= other` (bool).")
greater = _binary("greater", "`input > other` (bool).")
greater_equal = _binary("greater_equal", "`input >= other` (bool).")
logical_and = _binary("logical_and", "Elementwise and of bool tensors.")
logical_or = _binary("logical_or", "Elementwise or of bool tensors.")
neg = _unary("neg", "`-input`.")
exp = _unary("exp", "e**input (float32 for int inputs).")
log = _unary("log", "Natural logarithm.")
sqrt = _unary("sqrt", "Square root.")
tanh = _unary("tanh", "Hyperbolic tangent.")
sigmoid = _unary("sigmoid", "1 / (1 + exp(-input)).")
sin = _unary("sin", "Sine (float32 for int inputs).")
cos = _unary("cos", "Cosine (float32 for int inputs).")
relu = _unary("relu", "max(input, 0).")
abs = _unary("abs", "|input|.")  # noqa: A001  (MindSpore's name)
sign = _unary("sign", "-1, 0 or 1 by the sign of input.")
floor = _unary("floor", "Round down.")
logical_not = _unary("logical_not", "Elementwise not of a bool tensor.")
square = _unary("square", "input * input.")
reciprocal = _unary("reciprocal", "1 / input.")
stop_gradient = _unary("stop_gradient", "The value of input; no gradient flows through it.")
lt, le, gt, ge, ne = less, less_equal, greater, greater_equal, not_equal
negative, absolute = neg, abs


@gs_op
def div(input, other, *, rounding_mode=None):
    """`input / other` (true division: int/int is float32); `rounding_mode` 'floor' or
    'trunc' rounds the quotient and keeps an integer dtype for integer inputs."""
    if rounding_mode is None:
        return _op("div")(input, other)
    if rounding_mode == "floor":
        return methods.floor_divide(input, other)
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got "
                         f"{rounding_mode!r}")
    if not methods._result_dtype(input, other).is_float:
        # Exact on integers: the floor quotient, one up where it rounded away from zero.
        floored, rest = _op("floor_div")(input, other), _op("floor_mod")(input, other)
        away = _op("logical_and")(_op("not_equal")(rest, 0), _op("not_equal")(
            _op("less")(rest, 0), _op("less")(input, 0)))
        return _op("select")(away, _op("add")(floored, 1), floored)
    quotient = _op("div")(input, other)
    return _op("mul")(_op("sign")(quotient), _op("floor")(_op("abs")(quotient)))


divide, true_divide = div, _binary("div", "`input / other`.")
floor_divide = gs_op(methods.floor_divide)


@gs_op
def pow(input, exponent):  # noqa: A001  (MindSpore's name)
    """`input ** exponent`."""
    return _op("pow")(input, exponent)


@gs_op
def select(cond, input, other):
    """`input` where `cond` is True, else `other` (broadcast; numbers allowed)."""
    return _op("where")(cond, input, other)


@gs_op
def where(condition, input, other):
    """Same as `select`: MindSpore 2.x `ops.where(condition, input, other)`."""
    return _op("where")(condition, input, other)


@gs_op
def cast(input, dtype):
    """`input` converted to `dtype` (a mindspore dtype)."""
    return methods.astype(input, dtype)


@gs_op
def clamp(input, min=None, max=None):  # noqa: A002  (MindSpore's names)
    """Limit input to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    out = input if min is None else _op("maximum")(input, min)
    return out if max is None else _op("minimum")(out, max)


clip = clamp


@gs_op
def clip_by_value(x, clip_value_min=None, clip_value_max=None):
    """MindSpore's `clip_by_value`: clamp with its argument names."""
    return clamp.__wrapped__(x, clip_value_min, clip_value_max)


# -------------------------------------------------------------------------- linear algebra

@gs_op
def matmul(input, other):
    """numpy matmul semantics: 1-D operands are vectors, leading axes batch."""
    return _op("matmul_nd")(input, other)


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


# ----------------------------------------------------------------------------- shapes

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
def flatten(input, order="C", *, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim (MindSpore 2.x default keeps the batch axis)."""
    if order != "C":
        raise ValueError(f"flatten: only order='C' is supported, got {order!r}")
    x = ir_ops.as_value(input)
    if x.ndim == 0:
        return methods.reshape(x, (1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = int(np.prod(x.shape[start:end + 1], dtype=np.int64))
    return methods.reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


@gs_op
def concat(tensors, axis=0):
    """Join tensors along an existing axis (dtypes promoted to a common one)."""
    values = ir_ops.promote_operands(*tensors)
    return _op("concat")(*values, axis=int(axis) % builtins.max(values[0].ndim, 1))


cat = concat


@gs_op
def stack(tensors, axis=0):
    """Join tensors along a new axis."""
    values = ir_ops.promote_operands(*tensors)
    axis = int(axis) % (values[0].ndim + 1)
    return _op("concat")(*[_op("expand_dims")(v, axis=axis) for v in values], axis=axis)


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


# ------------------------------------------------------------------------- reductions

@gs_op
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over `dim` (None: every axis)."""
    return methods.tensor_sum(input, dim, dtype, keepdim)


@gs_op
def mean(input, axis=None, keep_dims=False):
    """Mean over `axis` (None: every axis)."""
    return methods.tensor_mean(input, axis, keep_dims)


def _reduce(name, x, axis, keep):
    axes = normalize_axes(x, axis)
    return _op(name)(x, axes=axes, keep_dims=bool(keep)) if axes else x


@gs_op
def amax(input, axis=None, keepdims=False):
    """Maximum over `axis` (None: every axis)."""
    return _reduce("reduce_max", ir_ops.as_value(input), axis, keepdims)


@gs_op
def amin(input, axis=None, keepdims=False):
    """Minimum over `axis` (None: every axis)."""
    return _reduce("reduce_min", ir_ops.as_value(input), axis, keepdims)


@gs_op
def argmax(input, dim=None, keepdim=False):
    """Index of the maximum along `dim` (None: of the flattened input), int64."""
    return methods.argmax(input, dim, keepdim)


@gs_op
def argmin(input, axis=None, keepdims=False):
    """Index of the minimum (the first one on ties), int64."""
    x = ir_ops.as_value(input)
    x = x if x.dtype.is_float else _op("cast")(x, dtype=DType.f32)
    return methods.argmax(_op("neg")(x), axis, keepdims)


@gs_op
def max(input, axis=None, keepdims=False, *, initial=None, where=None):  # noqa: A001
    """MindSpore's `ops.max`: the tuple (maximum values, their indices) along `axis`."""
    if where is not None:
        raise ValueError("max: the 'where' argument is not supported")
    x = ir_ops.as_value(input)
    values = _reduce("reduce_max", x, axis, keepdims)
    values = values if initial is None else _op("maximum")(values, initial)
    return values, methods.argmax(x, axis, keepdims)


@gs_op
def min(input, axis=None, keepdims=False, *, initial=None, where=None):  # noqa: A001
    """MindSpore's `ops.min`: the tuple (minimum values, their indices) along `axis`."""
    if where is not None:
        raise ValueError("min: the 'where' argument is not supported")
    x = ir_ops.as_value(input)
    values = _reduce("reduce_min", x, axis, keepdims)
    values = values if initial is None else _op("minimum")(values, initial)
    return values, argmin.__wrapped__(x, axis, keepdims)


@gs_op
def softmax(input, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`."""
    x = ir_ops.as_value(input)
    return _op("softmax")(x, axis=int(axis) % builtins.max(x.ndim, 1))


@gs_op
def log_softmax(logits, axis=-1):
    """log(softmax(logits)) along `axis`, computed stably."""
    x = ir_ops.as_value(logits)
    return _op("log_softmax")(x, axis=int(axis) % builtins.max(x.ndim, 1))


@gs_op
def logsumexp(input, axis, keep_dims=False):
    """log(sum(exp(input))) over `axis`."""
    x = ir_ops.as_value(input)
    return _op("logsumexp")(x, axes=normalize_axes(x, axis), keep_dims=bool(keep_dims))


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
    _function = staticmethod(sum)


class ReduceMean(_Reduction):
    _function = staticmethod(mean)


class ReduceMax(_Reduction):
    _function = staticmethod(amax)


class ReduceMin(_Reduction):
    _function = staticmethod(amin)


from .ops_creation import *  # noqa: E402,F401,F403  (ones, zeros, randn, assign, ...)
from .ops_indexing import *  # noqa: E402,F401,F403  (gather, gather_elements, Gather, ...)
from .ops_math import *  # noqa: E402,F401,F403  (erf, prod, std, norm, cumsum, topk, ...)
from .ops_array import *  # noqa: E402,F401,F403  (tile, split, eye, meshgrid, uniform, ...)
from .ops_nn import *  # noqa: E402,F401,F403  (gelu, dropout, nll_loss, cross_entropy, ...)
from .ops_primitives import *  # noqa: E402,F401,F403  (Softmax, Concat, LayerNorm, ...)
