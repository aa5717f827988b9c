"""Linear algebra: matmul of two rank-2 operands of one dtype, with transpose flags.

The flags let the VJP express A^T and B^T products without materialising a transpose, and let
codegen pick a loop order for each case. Batched and 1-D products are composites
(`composite.matmul_nd`).
"""
from __future__ import annotations

import numpy as np

from ..types import DType, TensorType, is_half_float
from .opdef import register, promote_operands, is_number, as_value, LINALG
from .shape import AttrOpDef

__all__ = ["matmul", "matmul_operands"]


_FLOAT_NAMES = {DType.f32: "Float32", DType.f64: "Float64"}


def matmul_operands(a, b, op: str = "MatMul"):
    """The operands of a matrix product in one dtype. Two float tensors of different dtypes
    are a TypeError naming both, as MindSpore's MatMul raises (numpy would silently compute
    in float64); integer and bool operands promote as elsewhere."""
    if not (is_number(a) or is_number(b)):
        x, y = as_value(a), as_value(b)
        if x.dtype.is_float and y.dtype.is_float and x.dtype is not y.dtype:
            raise TypeError(f"For '{op}', the dtypes of the two operands must be the same, "
                            f"but got {_FLOAT_NAMES[x.dtype]} ({x.type}) and "
                            f"{_FLOAT_NAMES[y.dtype]} ({y.type}); cast one to the other's "
                            f"dtype first (ops.cast)")
    return promote_operands(a, b)


def _normalize_matmul(a, b, *, transpose_a=False, transpose_b=False) -> dict:
    return {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)}


def _infer_matmul(a: TensorType, b: TensorType, *, transpose_a: bool,
                  transpose_b: bool) -> TensorType:
    if a.rank != 2 or b.rank != 2:
        raise ValueError(f"expected rank-2 operands, got {a} and {b}")
    if a.dtype is not b.dtype or a.dtype.is_bool:
        raise TypeError(f"expected numeric operands of one dtype, got {a} and {b}")
    m, k = reversed(a.shape) if transpose_a else a.shape
    k2, n = reversed(b.shape) if transpose_b else b.shape
    if k != k2:
        raise ValueError(f"contracting dims differ: {a}{'^T' * transpose_a} @ "
                         f"{b}{'^T' * transpose_b} has {k} vs {k2}")
    return TensorType((m, n), a.dtype)


def _reference_matmul(a, b, *, transpose_a, transpose_b):
    """float16/bfloat16 operands are multiplied in float32 and rounded once (as codegen
    does)."""
    wide = np.float32 if is_half_float(a.dtype) else a.dtype
    return np.matmul((a.T if transpose_a else a).astype(wide, copy=False),
                     (b.T if transpose_b else b).astype(wide, copy=False)).astype(a.dtype)


def _vjp_matmul(g, out, a, b, *, transpose_a, transpose_b):
    # C = op(A) op(B): dop(A) = g op(B)^T, dop(B) = op(A)^T g; a transposed operand takes the
    # transpose of that, written by swapping the factors and flags.
    da = (matmul(b, g, transpose_a=transpose_b, transpose_b=True) if transpose_a
          else matmul(g, b, transpose_b=not transpose_b))
    db = (matmul(g, a, transpose_a=True, transpose_b=transpose_a) if transpose_b
          else matmul(a, g, transpose_a=not transpose_a))
    return (da, db)


matmul = register(AttrOpDef(
    "gs.matmul", _infer_matmul, _reference_matmul, _vjp_matmul, frozenset({LINALG}),
    '`%c = "gs.matmul"(%a, %b) {transpose_a = false, transpose_b = true} : '
    '(tensor<4x3xf32>, tensor<5x3xf32>) -> tensor<4x5xf32>`',
    lambda a, b: matmul_operands(a, b), _normalize_matmul))
