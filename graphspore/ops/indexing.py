"""`mindspore.ops` indexing: gather, gather_elements and tensor_scatter_add.

Each function maps MindSpore's signature onto an IR primitive (`ir/ops/indexing.py`). An index
out of range raises IndexError naming the index, the axis and its size: eagerly at once, and
in compiled code after the call (the native code never reads or writes out of bounds).
"""
from __future__ import annotations

from ..eager import gs_op
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops


@gs_op
def gather(input_params, input_indices, axis, batch_dims=0):
    """Slices of `input_params` along `axis` picked by the integer `input_indices`: the result
    has shape `params.shape[:axis] + indices.shape + params.shape[axis+1:]`; negative indices
    count from the end. Only batch_dims=0 is supported."""
    if batch_dims != 0:
        raise ValueError(f"gather: only batch_dims=0 is supported, got {batch_dims}")
    return _op("gather")(input_params, input_indices, axis=int(axis))


@gs_op
def gather_elements(input, dim, index):  # noqa: A002  (MindSpore's names)
    """`out[i][j] = input[i][index[i][j]]` for dim = 1 (any rank and dim): the result has
    `index`'s shape, which must not exceed `input`'s on the axes other than `dim`."""
    return _op("gather_elements")(input, index, dim=int(dim))


@gs_op
def tensor_scatter_add(input_x, indices, updates):
    """A copy of `input_x` with `updates` added at the rows `indices[..., 0]` (duplicates
    accumulate). Only single-axis indices (last dimension 1) are supported."""
    indices = ir_ops.as_value(indices)
    if indices.ndim == 0 or indices.shape[-1] != 1:
        raise ValueError(f"tensor_scatter_add: indices must have a last dimension of 1 (one "
                         f"axis indexed), got {indices.type}")
    rows = _op("reshape")(indices, shape=indices.shape[:-1])
    return _op("scatter_add")(input_x, rows, updates, axis=0)


__all__ = ["gather", "gather_elements", "tensor_scatter_add"]
