"""Elementwise primitives: unary maps, binary maps with numpy broadcasting, compare, select, cast.

Binary ops accept operands of broadcast-compatible shapes and one dtype (the op functions
promote and cast first, MindSpore rules with Python numbers weakly typed). Gradients may come
back broadcast; the autodiff pass sums them down. Ops without a gradient (compare, logical,
sign, floor) have `vjp=None` and sit in the NONDIFF group.
"""
from __future__ import annotations

import numpy as np

from ..types import DType, TensorType, broadcast_shapes
from .opdef import (OpDef, register, promote_operands, as_value, ELEMENTWISE, UNARY, BINARY,
                    COMPARE, NONDIFF)

__all__ = ["cast", "neg", "exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos", "atan", "relu",
           "abs",
           "sign", "floor", "logical_not", "stop_gradient", "add", "sub", "mul", "div", "floor_div",
           "floor_mod", "pow",
           "maximum", "minimum", "logical_and", "logical_or", "equal", "not_equal", "less",
           "less_equal", "greater", "greater_equal", "select"]


# ------------------------------------------------------------------ type rules and makers

def _same_dtype(name_types):
    dtypes = {t.dtype for t in name_types}
    if len(dtypes) > 1:
        raise TypeError("operands must have one dtype, got "
                        + ", ".join(str(t) for t in name_types))


def infer_binary(a: TensorType, b: TensorType) -> TensorType:
    _same_dtype((a, b))
    return TensorType(broadcast_shapes(a.shape, b.shape), a.dtype)


def infer_numeric_binary(a: TensorType, b: TensorType) -> TensorType:
    """Arithmetic without a meaning on bool (sub, pow, maximum...)."""
    if a.dtype.is_bool or b.dtype.is_bool:
        raise TypeError(f"expected numeric operands, got {a} and {b}")
    return infer_binary(a, b)


def infer_bool_binary(a: TensorType, b: TensorType) -> TensorType:
    if not (a.dtype.is_bool and b.dtype.is_bool):
        raise TypeError(f"expected bool operands, got {a} and {b}")
    return infer_binary(a, b)


def infer_compare(a: TensorType, b: TensorType) -> TensorType:
    return infer_binary(a, b).with_dtype(DType.bool)


def infer_unary(x: TensorType) -> TensorType:
    return x


def infer_numeric_unary(x: TensorType) -> TensorType:
    if x.dtype.is_bool:
        raise TypeError(f"expected a numeric tensor, got {x}")
    return x


def infer_bool_unary(x: TensorType) -> TensorType:
    if not x.dtype.is_bool:
        raise TypeError(f"expected a bool tensor, got {x}")
    return x


def infer_float_unary(x: TensorType) -> TensorType:
    if not x.dtype.is_float:
        raise TypeError(f"expected a float tensor, got {x}")
    return x


def binary(name: str, reference, vjp, doc: str, infer=infer_binary, groups=(),
           to_float: bool = False) -> OpDef:
    """Register a broadcasting binary op whose operands are promoted to one dtype."""
    return register(OpDef(
        name, infer, reference, vjp, frozenset({ELEMENTWISE, BINARY, *groups}), doc,
        prepare=lambda a, b: promote_operands(a, b, to_float=to_float)))


def unary(name: str, reference, vjp, doc: str, float_only: bool = False, groups=(),
          infer=None) -> OpDef:
    """Register a unary map. `float_only` ops cast int/bool operands to float32 first."""
    prepare = (lambda x: promote_operands(x, to_float=True)) if float_only else (
        lambda x: promote_operands(x))
    infer = infer or (infer_float_unary if float_only else infer_unary)
    return register(OpDef(name, infer, reference, vjp,
                          frozenset({ELEMENTWISE, UNARY, *groups}), doc, prepare=prepare))


def _constant_data(v):
    """The array held by `v` when it is produced by `gs.constant`, else None."""
    return v.op.attrs["value"] if v.op is not None and v.op.name == "gs.constant" else None


# ------------------------------------------------------------------------- unary ops

def _infer_cast(x: TensorType, *, dtype: DType) -> TensorType:
    if not isinstance(dtype, DType):
        raise TypeError(f"dtype must be a DType, got {dtype!r}")
    return x.with_dtype(dtype)


def _vjp_cast(g, out, x, *, dtype):
    # Only float -> float casts carry a gradient; casting to int/bool cuts it.
    if x.dtype.is_float and dtype.is_float:
        return (cast(g, dtype=x.dtype),)
    return (None,)


cast = register(OpDef(
    "gs.cast", _infer_cast, lambda x, *, dtype: x.astype(dtype.np), _vjp_cast,
    frozenset({ELEMENTWISE, UNARY}),
    doc='Convert dtype: `%y = "gs.cast"(%x) {dtype = f64} : (tensor<3xf32>) -> tensor<3xf64>`',
    prepare=lambda x: (as_value(x),)))

neg = unary("gs.neg", np.negative, lambda g, out, x: (neg(g),), infer=infer_numeric_unary,
            doc='`%y = "gs.neg"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

exp = unary("gs.exp", np.exp, lambda g, out, x: (g * out,), float_only=True,
            doc='`%y = "gs.exp"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

log = unary("gs.log", np.log, lambda g, out, x: (g / x,), float_only=True,
            doc='Natural log: `%y = "gs.log"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

sqrt = unary("gs.sqrt", np.sqrt, lambda g, out, x: (g * 0.5 / out,), float_only=True,
             doc='`%y = "gs.sqrt"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

tanh = unary("gs.tanh", np.tanh, lambda g, out, x: (g * (1 - out * out),), float_only=True,
             doc='`%y = "gs.tanh"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

def _reference_sigmoid(x):
    # exp(-|x|) never overflows, and e/(1+e) keeps full relative precision for x << 0.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid = unary("gs.sigmoid", _reference_sigmoid,
                lambda g, out, x: (g * out * (1 - out),), float_only=True,
                doc='1/(1+exp(-x)): `%y = "gs.sigmoid"(%x) : (tensor<3xf32>) -> '
                    'tensor<3xf32>`')

# Forward and backward rules refer to each other: the cotangents are graph code in sin/cos, so
# every order of derivative is available.
sin = unary("gs.sin", np.sin, lambda g, out, x: (g * cos(x),), float_only=True,
            doc='`%y = "gs.sin"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

cos = unary("gs.cos", np.cos, lambda g, out, x: (neg(g * sin(x)),), float_only=True,
            doc='`%y = "gs.cos"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

atan = unary("gs.atan", np.arctan, lambda g, out, x: (g / (1 + x * x),), float_only=True,
             doc='Arctangent, in (-pi/2, pi/2): `%y = "gs.atan"(%x) : (tensor<3xf32>) -> '
                 'tensor<3xf32>`')

def _reference_relu(x):
    return np.where(x <= 0, np.zeros((), x.dtype), x)


# A primitive, not select(x <= 0, 0, x): its VJP reads the output (MindSpore's ReluGrad,
# dy * (y > 0)), which the next layer stores anyway, so the forward pass needs no saved mask
# and bias-add + relu stay one kernel. NaN passes through (x <= 0 is false) with gradient 0.
relu = unary("gs.relu", _reference_relu,
             lambda g, out, x: (select(greater(out, 0), g, 0),), infer=infer_numeric_unary,
             doc='max(x, 0): `%y = "gs.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

abs = unary("gs.abs", np.abs, lambda g, out, x: (g * sign(x),), infer=infer_numeric_unary,
            doc='`%y = "gs.abs"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')

sign = unary("gs.sign", np.sign, None, infer=infer_numeric_unary, groups=(NONDIFF,),
             doc='-1, 0 or 1 (no gradient): `%y = "gs.sign"(%x) : (tensor<3xf32>) -> '
                 'tensor<3xf32>`')

floor = unary("gs.floor", np.floor, None, float_only=True, groups=(NONDIFF,),
              doc='Round down (no gradient): `%y = "gs.floor"(%x) : (tensor<3xf32>) -> '
                  'tensor<3xf32>`')

logical_not = unary("gs.logical_not", np.logical_not, None, infer=infer_bool_unary,
                    groups=(NONDIFF,),
                    doc='`%y = "gs.logical_not"(%x) : (tensor<3xi1>) -> tensor<3xi1>`')

# Identity forward; autodiff stops at it (its rule also returns no gradient).
stop_gradient = unary("gs.stop_gradient", lambda x: x, lambda g, out, x: (None,),
                      groups=(NONDIFF,),
                      doc='Identity that cuts gradients: `%y = "gs.stop_gradient"(%x) : '
                          '(tensor<3xf32>) -> tensor<3xf32>`')


# ------------------------------------------------------------------------ binary ops

add = binary("gs.add", np.add, lambda g, out, x, y: (g, g),
             doc='`%z = "gs.add"(%x, %y) : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>`')

sub = binary("gs.sub", np.subtract, lambda g, out, x, y: (g, neg(g)),
             infer=infer_numeric_binary,
             doc='`%z = "gs.sub"(%x, %y) : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>`')

mul = binary("gs.mul", np.multiply, lambda g, out, x, y: (g * y, g * x),
             doc='`%z = "gs.mul"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>`')

# True division: integer and bool operands are cast to float32 first (MindSpore's Div).
div = binary("gs.div", np.true_divide, lambda g, out, x, y: (g / y, neg(g) * x / (y * y)),
             infer=infer_numeric_binary, to_float=True,
             doc='`%z = "gs.div"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>`')


# Python's `//` and `%` as numpy computes them: exact integer kernels (never through float),
# 0 for an integer division by zero, the remainder takes the sign of the divisor.
floor_div = binary("gs.floor_div", np.floor_divide, None, infer=infer_numeric_binary,
                   groups=(NONDIFF,),
                   doc='x // y, no gradient: `%z = "gs.floor_div"(%x, %y) : (tensor<3xi32>, '
                       'tensor<i32>) -> tensor<3xi32>`')

floor_mod = binary("gs.floor_mod", np.remainder,
                   lambda g, out, x, y: (g, neg(g) * floor_div(x, y)),
                   infer=infer_numeric_binary,
                   doc='x % y, sign of y: `%z = "gs.floor_mod"(%x, %y) : (tensor<3xi64>, '
                       'tensor<i64>) -> tensor<3xi64>`')


def _vjp_pow(g, out, x, y):
    # A constant exponent gets no gradient (and no log(x), which is nan for x < 0); its
    # decrement is folded so that x**3 differentiates cleanly to any order. As in JAX and
    # PyTorch, d/dx is 0 where y = 0 (not 0 * x**-1 = nan at x = 0) and d/dy is 0 where
    # x = 0 (not 0 * log 0 = nan).
    data = _constant_data(y)
    y_minus_1 = y - 1 if data is None else as_value(np.asarray(data - 1, data.dtype))
    dx = g * y * pow(x, y_minus_1)
    if data is None or np.any(data == 0):
        dx = select(equal(y, 0), 0, dx)
    if data is not None:
        return (dx, None)
    return (dx, g * select(equal(x, 0), 0, out * log(select(equal(x, 0), 1, x))))


pow = binary("gs.pow", np.power, _vjp_pow, infer=infer_numeric_binary,
             doc='x**y: `%z = "gs.pow"(%x, %y) : (tensor<3xf32>, tensor<f32>) -> '
                 'tensor<3xf32>`')

def _route(x_wins, tie, g):
    """How maximum/minimum split their gradient: all to the winner, half each at a tie
    (as reduce_max shares ties, and JAX does). Ties matter: max(x, 0) at x = 0 inside
    BCE-with-logits must give the subgradient 1/2 for the loss's gradient to be exact."""
    half = select(tie, g * 0.5, 0)
    return select(x_wins, g, half), select(x_wins, 0, select(tie, half, g))


maximum = binary("gs.maximum", np.maximum,
                 lambda g, out, x, y: _route(greater(x, y), equal(x, y), g),
                 infer=infer_numeric_binary,
                 doc='`%z = "gs.maximum"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> '
                     'tensor<3xf32>`')

minimum = binary("gs.minimum", np.minimum,
                 lambda g, out, x, y: _route(less(x, y), equal(x, y), g),
                 infer=infer_numeric_binary,
                 doc='`%z = "gs.minimum"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> '
                     'tensor<3xf32>`')

logical_and = binary("gs.logical_and", np.logical_and, None, infer=infer_bool_binary,
                     groups=(NONDIFF,),
                     doc='`%z = "gs.logical_and"(%x, %y) : (tensor<3xi1>, tensor<3xi1>) -> '
                         'tensor<3xi1>`')

logical_or = binary("gs.logical_or", np.logical_or, None, infer=infer_bool_binary,
                    groups=(NONDIFF,),
                    doc='`%z = "gs.logical_or"(%x, %y) : (tensor<3xi1>, tensor<3xi1>) -> '
                        'tensor<3xi1>`')


# ----------------------------------------------------------------------- compare ops

def _compare(name: str, reference) -> OpDef:
    """Compare after promoting both operands to one dtype; the result is bool."""
    return binary(f"gs.{name}", reference, None, infer=infer_compare,
                  groups=(COMPARE, NONDIFF),
                  doc=f'`%z = "gs.{name}"(%x, %y) : (tensor<3xf32>, tensor<f32>) -> '
                      f'tensor<3xi1>`')


equal = _compare("equal", np.equal)
not_equal = _compare("not_equal", np.not_equal)
less = _compare("less", np.less)
less_equal = _compare("less_equal", np.less_equal)
greater = _compare("greater", np.greater)
greater_equal = _compare("greater_equal", np.greater_equal)


# ---------------------------------------------------------------------------- select

def _prepare_select(cond, x, y):
    cond = as_value(cond)
    return (cond, *promote_operands(x, y))


def _infer_select(c: TensorType, x: TensorType, y: TensorType) -> TensorType:
    if not c.dtype.is_bool:
        raise TypeError(f"condition must be a bool tensor, got {c}")
    _same_dtype((x, y))
    return TensorType(broadcast_shapes(c.shape, x.shape, y.shape), x.dtype)


select = register(OpDef(
    "gs.select", _infer_select, np.where,
    lambda g, out, c, x, y: (None, select(c, g, 0), select(c, 0, g)),
    frozenset({ELEMENTWISE}),
    doc='cond ? x : y, broadcasting all three: `%z = "gs.select"(%c, %x, %y) : '
        '(tensor<3xi1>, tensor<3xf32>, tensor<f32>) -> tensor<3xf32>`',
    prepare=_prepare_select))
