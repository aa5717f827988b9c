"""codegen.matmul: generated loops and the BLAS call against numpy, over shapes, transposes
and dtypes; a large product must call scipy_cblas_*gemm."""

import numpy as np
import pytest
from llvmlite import ir

from graphspore.codegen import matmul
from graphspore.runtime import Executable, compile_module

NUMPY_TYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}
_PTR = ir.PointerType()
_I64 = ir.IntType(64)


def matmul_ir(m, n, k, dtype, transpose_a, transpose_b):
    """A kernel ``mm`` (calling convention: A, B, C, workspace) computing one product."""
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    a, b, c = [builder.load(builder.gep(function.args[0], [ir.Constant(_I64, i)],
                                        source_etype=_PTR), typ=_PTR) for i in range(3)]
    matmul.emit_matmul(builder, a, b, c, m, n, k, dtype, transpose_a, transpose_b)
    builder.ret_void()
    return str(module)


def build(m, n, k, dtype="f32", transpose_a=False, transpose_b=False):
    module = compile_module(matmul_ir(m, n, k, dtype, transpose_a, transpose_b), ["mm"])
    element = NUMPY_TYPES[dtype]
    a_shape = (k, m) if transpose_a else (m, k)
    b_shape = (n, k) if transpose_b else (k, n)
    executable = Executable(module, "mm", [(a_shape, element), (b_shape, element)],
                            [((m, n), element)], 0)
    return executable, a_shape, b_shape, module


def operands(a_shape, b_shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype.startswith("i"):
        return [rng.integers(-50, 50, shape).astype(NUMPY_TYPES[dtype])
                for shape in (a_shape, b_shape)]
    return [rng.standard_normal(shape).astype(NUMPY_TYPES[dtype]) for shape in (a_shape, b_shape)]


def check(m, n, k, dtype, transpose_a, transpose_b):
    executable, a_shape, b_shape, module = build(m, n, k, dtype, transpose_a, transpose_b)
    a, b = operands(a_shape, b_shape, dtype)
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    (c,) = executable(a, b)
    if dtype.startswith("i"):
        np.testing.assert_array_equal(c, expected)
    else:
        tolerance = 1e-5 if dtype == "f32" else 1e-12
        np.testing.assert_allclose(c, expected, rtol=tolerance, atol=tolerance * max(k, 1))
    return module


SHAPES = [(1, 1, 1), (1, 7, 5), (6, 1, 4), (3, 5, 1), (4, 4, 0), (5, 3, 2), (16, 16, 16),
          (17, 33, 9), (1, 64, 128), (64, 1, 96), (40, 50, 60)]


@pytest.mark.parametrize("transpose_a,transpose_b",
                         [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_float32_matches_numpy(m, n, k, transpose_a, transpose_b):
    check(m, n, k, "f32", transpose_a, transpose_b)


@pytest.mark.parametrize("dtype", ["f64", "i32", "i64"])
@pytest.mark.parametrize("m,n,k", [(1, 5, 3), (7, 2, 9), (20, 30, 25)])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_other_dtypes_match_numpy(dtype, m, n, k, transpose_b):
    check(m, n, k, dtype, False, transpose_b)


def test_zero_sized_products():
    check(0, 5, 3, "f32", False, False)
    check(4, 0, 3, "f64", False, True)
    check(4, 5, 0, "i32", True, False)


def test_strategy_by_size_and_dtype():
    """Float products up to TILES_MAX_FMAS get register tiles, larger ones call BLAS; integer
    products always get loops."""
    large = check(256, 256, 128, "f32", False, True)
    assert "call void @\"scipy_cblas_sgemm\"" in large.llvm_ir
    assert check(256, 128, 160, "f64", True, False).llvm_ir.count("@\"scipy_cblas_dgemm\"") == 2
    small = check(8, 8, 8, "f32", False, False)
    assert "scipy_cblas" not in small.llvm_ir and "llvm.fma.v8f32" in small.llvm_ir
    integer = check(40, 40, 40, "i32", False, False)
    assert "scipy_cblas" not in integer.llvm_ir and "llvm.fma" not in integer.llvm_ir
    assert matmul.choose_strategy(128, 128, 256, "f32") == "tiles"
    assert matmul.choose_strategy(128, 128, 257, "f32") == "blas"
    assert matmul.choose_strategy(40, 40, 40, "f32", True, True) == "blas"


def test_graph_products_keep_tiles_up_to_the_large_limit_with_avx512():
    """A graph's own float32 products take register tiles up to LARGE_TILES_MAX_FMAS on
    AVX-512 targets (conv's per-image products and float64 keep TILES_MAX_FMAS)."""
    from graphspore.runtime.target import host
    wide = host().vector_width_bits >= 512
    assert matmul.choose_strategy(256, 256, 256, "f32", large_tiles=True) == (
        "tiles" if wide else "blas")
    assert matmul.choose_strategy(512, 512, 513, "f32", large_tiles=True) == "blas"
    assert matmul.choose_strategy(256, 256, 256, "f32") == "blas"
    assert matmul.choose_strategy(256, 256, 256, "f64", large_tiles=True) == "blas"


@pytest.mark.parametrize("transpose_a,transpose_b", [(False, False), (True, False), (False, True)])
def test_large_tiled_products_match_numpy(transpose_a, transpose_b):
    """300 x 270 x 261: every tail of every tile, many row tasks, through emit_matmul's
    large_tiles path (register tiles on AVX-512 hosts, BLAS elsewhere)."""
    m, n, k = 300, 270, 261
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    a, b, c = [builder.load(builder.gep(function.args[0], [ir.Constant(_I64, i)],
                                        source_etype=_PTR), typ=_PTR) for i in range(3)]
    matmul.emit_matmul(builder, a, b, c, m, n, k, "f32", transpose_a, transpose_b,
                       large_tiles=True)
    builder.ret_void()
    a_shape = (k, m) if transpose_a else (m, k)
    b_shape = (n, k) if transpose_b else (k, n)
    executable = Executable(compile_module(str(module), ["mm"]), "mm",
                            [(a_shape, np.float32), (b_shape, np.float32)],
                            [((m, n), np.float32)], 0)
    x, y = operands(a_shape, b_shape, "f32", seed=6)
    (got,) = executable(x, y)
    expected = (x.T if transpose_a else x) @ (y.T if transpose_b else y)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * k)


# Tile tails: rows not a multiple of 6 (or 3 for A @ B.T), columns not a multiple of 16 (or 4),
# depth not a multiple of the vector; sizes large enough to split into several row tasks.
TILE_SHAPES = [(13, 37, 19), (7, 10, 130), (64, 128, 64), (64, 10, 128), (10, 128, 64),
               (97, 130, 67), (128, 128, 128)]


@pytest.mark.parametrize("transpose_a,transpose_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", TILE_SHAPES)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_register_tiles_match_numpy(m, n, k, dtype, transpose_a, transpose_b):
    assert matmul.choose_strategy(m, n, k, dtype, transpose_a, transpose_b) == "tiles"
    check(m, n, k, dtype, transpose_a, transpose_b)


def test_bad_arguments_raise():
    builder = ir.IRBuilder()
    with pytest.raises(ValueError, match="dtype"):
        matmul.emit_matmul(builder, None, None, None, 2, 2, 2, "f16")
    with pytest.raises(ValueError, match="size k"):
        matmul.emit_matmul(builder, None, None, None, 2, 2, -1, "f32")


def test_large_tiled_products_use_the_thread_pool():
    """Row tasks go to gs_parallel_for once a product is worth two threads; small products and
    ahead-of-time objects (parallel=False) run on the caller."""
    assert "gs_parallel_for" in check(64, 128, 128, "f32", False, True).llvm_ir
    assert "gs_parallel_for" not in check(8, 8, 8, "f32", False, False).llvm_ir
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR] * 3), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    matmul.emit_matmul(builder, *function.args, 64, 128, 128, "f32", parallel=False)
    builder.ret_void()
    assert "gs_parallel_for" not in str(module) and "llvm.fma" in str(module)


def test_blas_blocks_one_per_usable_cpu(monkeypatch):
    """At most one block per CPU the process may use (each block packs the shared operand
    again), and at most BLAS_MAX_TASKS; a single CPU makes one plain call."""
    for cpus, tasks in ((1, None), (2, 2), (3, 3), (8, matmul.BLAS_MAX_TASKS)):
        monkeypatch.setattr(matmul, "_blas_cpus", lambda: cpus)
        blocks = matmul.blas_blocks(1024, 1024)
        assert (blocks and blocks[2]) == tasks


# BLAS products cut into blocks of C's rows (m >= n) or columns, one sgemm task each: blocks
# that do not divide the extent, every transpose, both dtypes.
BLOCK_SHAPES = [(300, 70, 200), (70, 300, 200), (256, 256, 256), (129, 1000, 40)]


@pytest.mark.parametrize("transpose_a,transpose_b",
                         [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", BLOCK_SHAPES)
def test_blas_blocks_match_numpy(m, n, k, transpose_a, transpose_b, monkeypatch):
    monkeypatch.setattr(matmul, "_blas_cpus", lambda: 2)
    assert matmul.choose_strategy(m, n, k, "f32", transpose_a, transpose_b) == "blas"
    by_rows, block, tasks = matmul.blas_blocks(m, n)
    assert by_rows == (m >= n) and tasks >= 2 and block % 16 == 0
    module = check(m, n, k, "f32", transpose_a, transpose_b)
    assert "gs_parallel_for" in module.llvm_ir


def test_blas_blocks_f64_and_a_single_block(monkeypatch):
    monkeypatch.setattr(matmul, "_blas_cpus", lambda: 2)
    assert "gs_parallel_for" in check(256, 128, 160, "f64", True, False).llvm_ir
    assert matmul.blas_blocks(100, 100) is None          # one block: a plain call
    assert "gs_parallel_for" not in check(100, 100, 500, "f32", False, False).llvm_ir


@pytest.mark.parametrize("m,n", [(300, 70), (70, 300)])
def test_blas_blocks_scale_and_accumulate(m, n, monkeypatch):
    """C = alpha * A @ B + C (an SGD step on a large product) in blocks: alpha reaches the
    tasks, each block adds into its own part of C."""
    monkeypatch.setattr(matmul, "_blas_cpus", lambda: 2)
    k = 200
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), "mm")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    a, b, c = [builder.load(builder.gep(function.args[0], [ir.Constant(_I64, i)],
                                        source_etype=_PTR), typ=_PTR) for i in range(3)]
    matmul.emit_matmul(builder, a, b, c, m, n, k, "f32", alpha=ir.Constant(ir.FloatType(), -0.5),
                       accumulate=True)
    builder.ret_void()
    compiled = compile_module(str(module), ["mm"])
    assert "gs_parallel_for" in compiled.llvm_ir
    executable = Executable(compiled, "mm", [((m, k), np.float32), ((k, n), np.float32)],
                            [((m, n), np.float32)], 0)
    x, y = operands((m, k), (k, n), "f32", seed=3)
    initial = np.random.default_rng(4).standard_normal((m, n)).astype(np.float32)
    out = initial.copy()
    executable.call_into([x, y], [out])
    np.testing.assert_allclose(out, initial - 0.5 * (x @ y), rtol=1e-5, atol=1e-4)
