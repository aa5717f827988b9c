"""Matrix products with numpy's semantics, written in the rank-2 `matmul` primitive."""
from __future__ import annotations

import math

from ...core import Value
from ...types import broadcast_shapes
from ..linalg import matmul, matmul_operands
from ..opdef import as_value
from ..shape import broadcast_to, concat, reshape, transpose
from .indexing import getitem
from .shape import squeeze

__all__ = ["matmul_nd", "bmm"]


def matmul_nd(a, b) -> Value:
    """numpy.matmul semantics: 1-D operands gain then lose a unit axis; batch dims broadcast.

    A 2-D right operand folds the batch into rows (one matmul); a 2-D left operand folds it
    into columns; otherwise the batch is unrolled into one matmul per matrix. Float operands
    of different dtypes are a TypeError (`matmul_operands`)."""
    a, b = matmul_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul_nd: operands must have rank >= 1, got {a.type} and {b.type}")
    if a.ndim == 1 or b.ndim == 1:
        drop = (-2,) * (a.ndim == 1) + (-1,) * (b.ndim == 1)
        a = reshape(a, shape=(1,) + a.shape) if a.ndim == 1 else a
        b = reshape(b, shape=b.shape + (1,)) if b.ndim == 1 else b
        return squeeze(matmul_nd(a, b), drop)
    if a.ndim == 2 and b.ndim == 2:
        return matmul(a, b)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    (m, k), n = a.shape[-2:], b.shape[-1]
    if k != b.shape[-2]:
        raise ValueError(f"matmul: contracting dims differ: {a.type} @ {b.type} has {k} vs "
                         f"{b.shape[-2]}")
    count = math.prod(batch)            # explicit sizes, never -1: size-0 dims are exact
    if count == 0 or m == 0 or n == 0:  # an empty result (numpy's): nothing to multiply
        return broadcast_to(as_value(0, like=a.dtype), shape=batch + (m, n))
    if b.ndim == 2:
        a = broadcast_to(a, shape=batch + (m, k))
        return reshape(matmul(reshape(a, shape=(count * m, k)), b), shape=batch + (m, n))
    b = broadcast_to(b, shape=batch + b.shape[-2:])
    if a.ndim == 2:
        perm = (len(batch),) + tuple(range(len(batch))) + (len(batch) + 1,)
        cols = reshape(transpose(b, perm=perm), shape=(k, count * n))   # k x (batch*n)
        out = reshape(matmul(a, cols), shape=(m,) + batch + (n,))
        return transpose(out, perm=tuple(range(1, len(batch) + 1)) + (0, len(batch) + 1))
    a = reshape(broadcast_to(a, shape=batch + (m, k)), shape=(count, m, k))
    b = reshape(b, shape=(count, k, n))
    rows = [matmul(reshape(getitem(a, i), shape=(m, k)), reshape(getitem(b, i), shape=(k, n)))
            for i in range(a.shape[0])]
    return reshape(concat(*rows, axis=0), shape=batch + (m, n))


def bmm(input_x, mat2) -> Value:
    """Batched matrix product (MindSpore's `ops.bmm`): `(*B, N, C) @ (*B, C, M)`, both of rank
    >= 3, batch dimensions broadcast."""
    a, b = as_value(input_x), as_value(mat2)
    if a.ndim < 3 or b.ndim < 3:
        raise ValueError(f"bmm: both operands must have rank >= 3, got {a.type} and {b.type}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"bmm: contracting sizes differ: {a.type} @ {b.type}")
    return matmul_nd(a, b)
