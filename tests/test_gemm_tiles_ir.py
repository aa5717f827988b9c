"""codegen.gemm_tiles: a register-tiled product's IR is loops over tiles, so its size depends
on the tile structure (which tails exist), not on m, n or k; vector constants are spelled
compactly (`zeroinitializer`, `undef`) rather than lane by lane."""

import pytest
from llvmlite import ir

from graphspore.codegen.gemm_tiles import emit_tiled_matmul

_PTR = ir.PointerType()
# Measured for the shapes below with AVX-512 vectors: 43-45 KB (outer product), 71-81 KB
# (dot, with its 7-step scalar k tail); the bound leaves room for small changes, not for
# code that grows with the matrix sizes (it was 1.8x larger with lane-by-lane constants).
IR_BYTES_BOUND = 90_000


def tiled_ir(m, n, k, transpose_a=False, transpose_b=False, dtype="f32"):
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR] * 3), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    a, b, c = function.args
    emit_tiled_matmul(builder, a, b, c, m, n, k, dtype, transpose_a, transpose_b,
                      vector_bits=512, parallel=False)
    builder.ret_void()
    return str(module)


@pytest.mark.parametrize("transpose_a,transpose_b", [(False, False), (True, False),
                                                      (False, True)])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_ir_size_does_not_grow_with_the_matrix(transpose_a, transpose_b, dtype):
    # Same remainders modulo every tile size (12 rows, 3 rows, 32/16/8/4 columns, 16/8
    # lanes of k): the same tile structure at 1x and ~100x the sizes.
    small = tiled_ir(13 + 24, 45, 23, transpose_a, transpose_b, dtype)
    large = tiled_ir(13 + 24 * 100, 45 + 96 * 20, 23 + 48 * 40, transpose_a, transpose_b,
                     dtype)
    assert len(large) <= 1.05 * len(small)
    assert len(large) <= IR_BYTES_BOUND


def test_vector_constants_are_compact():
    text = tiled_ir(37, 45, 23) + tiled_ir(37, 45, 23, transpose_b=True)
    assert "zeroinitializer" in text
    assert "float 0x0, float" not in text.replace("              ", " ")
    assert "float undef, float undef" not in text
