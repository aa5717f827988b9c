"""float16 matrix products and sums accumulated in float32: `matmul(a, b)` on float16 operands
becomes `cast(matmul(cast(a, f32), cast(b, f32)), f16)` before fusion (likewise reduce_sum), so
the product takes the float32 kernels (register tiles, BLAS), a sum does not stall at 2048 in
a half accumulator, and each result is rounded to half once, as the ops' references compute."""
from __future__ import annotations

from ..ir.core import Graph, Op, Value
from ..ir.types import DType


WIDENED = ("gs.matmul", "gs.reduce_sum")


def widen_half_ops(graph: Graph) -> Graph:
    """`graph` with each float16 matmul and sum (also inside region ops) widened, in place."""
    ops: list[Op] = []
    for op in graph.ops:
        for region in op.regions:
            widen_half_ops(region)
        if op.name not in WIDENED or op.result.dtype is not DType.f16:
            ops.append(op)
            continue
        wide = [_cast(operand, DType.f32, op, ops) for operand in op.operands]
        product = Value(op.result.type.with_dtype(DType.f32), name=op.result.name)
        ops.append(Op(op.name, tuple(wide), dict(op.attrs), (product,), op.loc))
        product.op = ops[-1]
        result = op.result
        ops.append(Op("gs.cast", (product,), {"dtype": DType.f16}, (result,), op.loc))
        result.op = ops[-1]
    graph.ops[:] = ops
    return graph


def _cast(value: Value, dtype: DType, at: Op, ops: list[Op]) -> Value:
    out = Value(value.type.with_dtype(dtype), name=value.name)
    ops.append(Op("gs.cast", (value,), {"dtype": dtype}, (out,), at.loc))
    out.op = ops[-1]
    return out
