"""Narrow matrix products and sums computed in a wider dtype: `matmul(a, b)` on float16 (or
bfloat16) operands becomes `cast(matmul(cast(a, f32), cast(b, f32)), f16)` before fusion (likewise
reduce_sum), so the product takes the float32 kernels (register tiles, BLAS), a sum does not
stall at 2048 in a half accumulator, and each result is rounded to half once, as the ops'
references compute. Products of 8/16-bit and unsigned integers run in the i32/i64 kernels and
are truncated back: integer sums and products wrap modulo 2**bits, so the low bits equal
numpy's result in the narrow dtype exactly."""
from __future__ import annotations

from ..ir.core import Graph, Op, Value
from ..ir.types import DType

_INTEGER_PRODUCT = {DType.i8: DType.i32, DType.i16: DType.i32, DType.u8: DType.i32,
                    DType.u16: DType.i32, DType.u32: DType.i32, DType.u64: DType.i64}
# op name -> {narrow result dtype: the dtype it is computed in}
_HALVES = {DType.f16: DType.f32, DType.bf16: DType.f32}
WIDENED = {"gs.matmul": {**_HALVES, **_INTEGER_PRODUCT}, "gs.reduce_sum": _HALVES,
           **{name: _HALVES for name in (
               "gs.conv2d", "gs.conv2d_input_grad", "gs.conv2d_filter_grad")}}


def widen_half_ops(graph: Graph) -> Graph:
    """`graph` with each narrow matmul and sum (also inside region ops) widened, in place."""
    ops: list[Op] = []
    for op in graph.ops:
        for region in op.regions:
            widen_half_ops(region)
        wide_dtype = WIDENED[op.name].get(op.result.dtype) if op.name in WIDENED else None
        if wide_dtype is None:
            ops.append(op)
            continue
        wide = [_cast(operand, wide_dtype, op, ops) for operand in op.operands]
        product = Value(op.result.type.with_dtype(wide_dtype), name=op.result.name)
        ops.append(Op(op.name, tuple(wide), dict(op.attrs), (product,), op.loc))
        product.op = ops[-1]
        result = op.result
        ops.append(Op("gs.cast", (product,), {"dtype": result.dtype}, (result,), op.loc))
        result.op = ops[-1]
    graph.ops[:] = ops
    return graph


def _cast(value: Value, dtype: DType, at: Op, ops: list[Op]) -> Value:
    out = Value(value.type.with_dtype(dtype), name=value.name)
    ops.append(Op("gs.cast", (value,), {"dtype": dtype}, (out,), at.loc))
    out.op = ops[-1]
    return out
