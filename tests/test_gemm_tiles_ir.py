"""codegen.gemm_tiles: a register-tiled product's IR is loops over tiles calling micro-kernels
shared by the module, so its size depends on the tile structure (which tails exist), not on
m, n or k, and a second product with the same tiles adds only its small task function; the
shared kernels take sizes and strides at run time and match numpy for every product of a
module; vector constants are spelled compactly (`zeroinitializer`, `undef`)."""

import numpy as np
import pytest
from llvmlite import ir

from graphspore.codegen.gemm_tiles import emit_tiled_matmul
from graphspore.runtime import Executable, compile_module

_PTR = ir.PointerType()
_I64 = ir.IntType(64)
# Measured for the shapes below with AVX-512 vectors: 46 KB (outer product: a kernel for the
# whole columns and one for the column tail), 18-22 KB (dot: one kernel); 43-81 KB when each
# tile was unrolled in place.
# The bound leaves room for small changes, not for code that grows with the matrix sizes.
IR_BYTES_BOUND = 55_000


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


def test_products_of_one_module_share_their_micro_kernels():
    """Same tiles, other sizes: the second product's task calls the first one's kernels."""
    one = tiled_ir(37, 45, 23)
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR] * 3), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    for k in (23, 300):
        emit_tiled_matmul(builder, *function.args, 37, 45, k, "f32", vector_bits=512,
                          parallel=False)
    builder.ret_void()
    two = str(module)
    kernels = [line for line in two.splitlines() if line.startswith('define internal void @"gs.mm.')]
    assert len(kernels) == len(set(kernels)) == one.count('define internal void @"gs.mm.')
    assert len(two) < 1.25 * len(one)


# (m, n, k, transpose_a, transpose_b): row, column and depth tails of every kernel kind
MODULE_PRODUCTS = [(37, 45, 23, False, False), (13, 45, 70, False, False),
                   (37, 45, 5, True, False), (30, 7, 41, False, True), (30, 10, 3, False, True)]


@pytest.mark.parametrize("vector_bits", [256, 512])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_shared_kernels_match_numpy_for_every_product(vector_bits, dtype):
    """One module, several products of different sizes and kinds through the same kernels."""
    element = np.float32 if dtype == "f32" else np.float64
    module = ir.Module()
    count = len(MODULE_PRODUCTS)
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    pointers = [builder.load(builder.gep(function.args[0], [ir.Constant(_I64, i)],
                                         source_etype=_PTR), typ=_PTR) for i in range(3 * count)]
    inputs, outputs, operands = [], [], []
    rng = np.random.default_rng(5)
    for index, (m, n, k, ta, tb) in enumerate(MODULE_PRODUCTS):
        a_shape, b_shape = ((k, m) if ta else (m, k)), ((n, k) if tb else (k, n))
        a, b = (rng.standard_normal(s).astype(element) for s in (a_shape, b_shape))
        emit_tiled_matmul(builder, pointers[2 * index], pointers[2 * index + 1],
                          pointers[2 * count + index], m, n, k, dtype, ta, tb, vector_bits)
        inputs += [(a_shape, element), (b_shape, element)]
        outputs.append(((m, n), element))
        operands += [a, b]
    builder.ret_void()
    executable = Executable(compile_module(str(module), ["mm"]), "mm", inputs, outputs, 0)
    results = executable(*operands)
    tolerance = 1e-5 if dtype == "f32" else 1e-12
    for (m, n, k, ta, tb), got, a, b in zip(MODULE_PRODUCTS, results, operands[0::2],
                                            operands[1::2]):
        expected = (a.T if ta else a) @ (b.T if tb else b)
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * k)
