"""Elementwise primitives: unary maps, binary maps with numpy broadcasting, compare, select, cast.

Binary ops accept operands of broadcast-compatible shapes and one dtype (the op functions
promote and cast first). Gradients may come back broadcast; the autodiff pass sums them down.
"""
from __future__ import annotations

import numpy as np

from ..types import DType, TensorType, broadcast_shapes
from . import (OpDef, register, promote_operands, ELEMENTWISE, UNARY, BINARY, COMPARE,
               NONDIFF)

__all__ = ["cast", "add", "mul", "exp"]  # the ops helper extends this list


# ------------------------------------------------------------------ type rules and makers

def _same_dtype(name_types):
    dtypes = {t.dtype for t in name_types}
    if len(dtypes) > 1:
        raise TypeError("operands must have one dtype, got "
                        + ", ".join(str(t) for t in name_types))


def infer_binary(a: TensorType, b: TensorType) -> TensorType:
    _same_dtype((a, b))
    return TensorType(broadcast_shapes(a.shape, b.shape), a.dtype)


def infer_unary(x: TensorType) -> TensorType:
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


def unary(name: str, reference, vjp, doc: str, float_only: bool = False, groups=()) -> OpDef:
    """Register a unary map. `float_only` ops cast int/bool operands to float32 first."""
    prepare = (lambda x: promote_operands(x, to_float=True)) if float_only else (
        lambda x: promote_operands(x))
    return register(OpDef(name, infer_float_unary if float_only else infer_unary, reference,
                          vjp, frozenset({ELEMENTWISE, UNARY, *groups}), doc, prepare=prepare))


# ------------------------------------------------------------------------------- the ops

def _infer_cast(x: TensorType, *, dtype: DType) -> TensorType:
    return x.with_dtype(dtype)


def _vjp_cast(g, out, x, *, dtype):
    # Only float -> float casts carry a gradient; casting to int/bool cuts it.
    if x.dtype.is_float and dtype.is_float:
        return (cast(g, dtype=x.dtype),)
    return (None,)


cast = register(OpDef(
    "gs.cast", _infer_cast, lambda x, *, dtype: x.astype(dtype.np), _vjp_cast,
    frozenset({ELEMENTWISE, UNARY}),
    doc='Convert dtype: `%y = "gs.cast"(%x) {dtype = f64} : (tensor<3xf32>) -> tensor<3xf64>`'))

add = binary("gs.add", np.add, lambda g, out, x, y: (g, g),
             doc='`%z = "gs.add"(%x, %y) : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>`')

mul = binary("gs.mul", np.multiply, lambda g, out, x, y: (g * y, g * x),
             doc='`%z = "gs.mul"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>`')

exp = unary("gs.exp", np.exp, lambda g, out, x: (g * out,), float_only=True,
            doc='`%y = "gs.exp"(%x) : (tensor<3xf32>) -> tensor<3xf32>`')
