"""codegen.vector_math: accuracy against float64/longdouble numpy on dense grids, special
values, and proof (from the assembly) that a loop using exp is vectorised."""

import ctypes

import numpy as np
import pytest
from llvmlite import ir

from graphspore.codegen import vector_math
from graphspore.runtime import compile_module, host

_TYPES = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
_KERNEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def unary_loop_ir(function_name, element):
    """``void k(T* x, T* y, i64 n)``: y[i] = f(x[i]) for i < n."""
    module = ir.Module()
    ptr, i64 = ir.PointerType(), ir.IntType(64)
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]), "k")
    x, y, n = function.args
    x.add_attribute("noalias")
    y.add_attribute("noalias")
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    value = builder.load(builder.gep(x, [i], source_etype=element), typ=element)
    result = getattr(vector_math, function_name)(builder, value)
    builder.store(result, builder.gep(y, [i], source_etype=element))
    following = builder.add(i, ir.Constant(i64, 1))
    i.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return str(module)


_COMPILED = {}


def kernel(name, dtype):
    key = (name, dtype)
    if key not in _COMPILED:
        module = compile_module(unary_loop_ir(name, _TYPES[dtype]), ["k"])
        _COMPILED[key] = (module, _KERNEL(module.address("k")))
    return _COMPILED[key]


def apply(name, x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    kernel(name, x.dtype.type)[1](x.ctypes.data, y.ctypes.data, x.size)
    return y


def reference(name, x):
    wide = x.astype(np.longdouble)
    with np.errstate(all="ignore"):
        if name == "sigmoid":
            return 1 / (1 + np.exp(-wide))
        return getattr(np, name)(wide)


def grid(name, dtype):
    if name == "log":
        dense = np.exp(np.linspace(np.log(1e-37), np.log(3e38), 1_000_000))
        near_one = 1 + np.arange(-3000, 3000) * float(np.finfo(dtype).eps)
        return np.concatenate([dense, near_one, np.linspace(0.5, 2, 20001)]).astype(dtype)
    low, high = (-87.0, 88.0) if name == "exp" else (-20.0, 20.0)
    return np.concatenate([np.linspace(low, high, 1_000_001),
                           np.linspace(-1e-3, 1e-3, 10001)]).astype(dtype)


BOUNDS = {np.float32: 2e-7, np.float64: 1e-15}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid"])
def test_max_relative_error(name, dtype):
    x = grid(name, dtype)
    exact = reference(name, x)
    got = apply(name, x).astype(np.longdouble)
    tiny = np.finfo(dtype).tiny
    mask = np.abs(exact) >= tiny  # relative error only where the result is normal
    error = np.abs((got[mask] - exact[mask]) / exact[mask]).max()
    print(f"\n{name} {np.dtype(dtype).name}: max relative error {float(error):.3g}")
    assert error <= BOUNDS[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, inf, -inf, nan, 1e4, -1e4, 1.0, -1.0], dtype)
    exp = apply("exp", x)
    np.testing.assert_array_equal(exp[:5], np.array([1, 1, inf, 0, nan], dtype))
    assert exp[5] == inf and exp[6] == 0
    log = apply("log", np.array([0.0, -0.0, -1.0, -inf, inf, nan, 1.0], dtype))
    np.testing.assert_array_equal(log, np.array([-inf, -inf, nan, nan, inf, nan, 0], dtype))
    tanh = apply("tanh", x)
    np.testing.assert_array_equal(tanh[:7], np.array([0, -0.0, 1, -1, nan, 1, -1], dtype))
    assert np.signbit(tanh[1]) and tanh[7] == -tanh[8]
    sigmoid = apply("sigmoid", x)
    np.testing.assert_array_equal(sigmoid[:7], np.array([0.5, 0.5, 1, 0, nan, 1, 0], dtype))
    np.testing.assert_allclose(sigmoid[7] + sigmoid[8], 1, rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denormal_boundaries(dtype):
    log_small = apply("log", np.array([np.finfo(dtype).smallest_subnormal, 1e-40], dtype))
    expected = np.log(np.array([np.finfo(dtype).smallest_subnormal, 1e-40], np.float64))
    np.testing.assert_allclose(log_small.astype(np.float64), expected, rtol=1e-6)
    x = np.array([-100.0 if dtype is np.float32 else -720.0], dtype)  # denormal results
    np.testing.assert_allclose(apply("exp", x).astype(np.float64),
                               np.exp(x.astype(np.float64)), rtol=1e-6,
                               atol=2 * float(np.finfo(dtype).smallest_subnormal))


def test_vector_types_are_supported():
    module = ir.Module()
    vector = ir.VectorType(ir.FloatType(), 8)
    function = ir.Function(module, ir.FunctionType(vector, [vector]), "f")
    builder = ir.IRBuilder(function.append_basic_block())
    builder.ret(vector_math.tanh(builder, vector_math.exp(builder, function.args[0])))
    assert "llvm.rint.v8f32" in str(module)
    with pytest.raises(TypeError, match="float, double"):
        vector_math.exp(builder, ir.Constant(ir.IntType(32), 1))


def test_exp_loop_is_vectorised():
    module, _ = kernel("exp", np.float32)
    register = "zmm" if host().has_avx512 else "ymm"
    assert register in module.asm
    assert "call" not in module.asm.split("k:")[1].split(".Lfunc_end")[0]
