"""codegen.vector_math: accuracy against float64/longdouble numpy on dense grids, special
values, and proof (from the assembly) that loops using exp, sin and cos are vectorised."""

import ctypes

import llvmlite.binding as llvm
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


def float32_sweep(low, high, stride=541):
    """Every ``stride``-th float32 bit pattern in [low, high] (low < 0 < high): about 2^32 /
    stride values spread over every binade, so each exponent range is tested alike."""
    positive = np.arange(0, np.float32(high).view(np.uint32) + 1, stride, dtype=np.uint32)
    negative = np.arange(0x80000000, np.float32(low).view(np.uint32) + 1, stride,
                         dtype=np.uint32)
    return np.concatenate([positive, negative]).view(np.float32)


@pytest.mark.parametrize("name, low, high", [("sigmoid", -104.0, 89.0), ("exp", -87.0, 88.0)])
def test_float32_bound_over_a_bit_pattern_sweep(name, low, high):
    """sigmoid and exp are evaluated in float32 (sigmoid: a compensated 1/(1+e) on the f32
    exp) and keep 2e-7 over ~4 million inputs, tiny, near 0 and in both tails."""
    x = float32_sweep(low, high)
    exact = reference(name, x)
    got = apply(name, x).astype(np.longdouble)
    mask = np.abs(exact) >= np.finfo(np.float32).tiny
    error = np.abs((got[mask] - exact[mask]) / exact[mask])
    print(f"\n{name} float32 sweep of {x.size}: max relative error {float(error.max()):.3g} "
          f"at x={x[mask][error.argmax()]}")
    assert error.max() <= BOUNDS[np.float32]



def vector_loop_ir(function_name, lanes):
    """``void k(float* x, float* y, i64 n)``: y[i:i+lanes] = f(x[i:i+lanes]) on explicit
    ``<lanes x float>`` values, n a positive multiple of lanes: the form codegen.streaming
    emits for flat elementwise kernels (AVX-512 vectors take vrcp14ps/vscalefps there)."""
    module = ir.Module()
    ptr, i64, element = ir.PointerType(), ir.IntType(64), ir.FloatType()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]), "k")
    x, y, n = function.args
    entry, loop, done = (function.append_basic_block(name) for name in ("entry", "l", "done"))
    builder = ir.IRBuilder(entry)
    builder.branch(loop)
    builder.position_at_end(loop)
    i = builder.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    value = builder.load(builder.gep(x, [i], source_etype=element),
                         typ=ir.VectorType(element, lanes), align=4)
    result = getattr(vector_math, function_name)(builder, value)
    builder.store(result, builder.gep(y, [i], source_etype=element), align=4)
    following = builder.add(i, ir.Constant(i64, lanes))
    i.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return str(module)


@pytest.fixture(params=["avx512", "portable"])
def vector_path(request, monkeypatch):
    """Explicit float32 vectors with AVX-512's estimates (when the host has them) and with
    the portable divide and exponent-field scaling an AVX2 machine runs."""
    if request.param == "avx512" and not vector_math.avx512_estimates():
        pytest.skip("the host has no AVX-512F/VL")
    if request.param == "portable":
        monkeypatch.setattr(vector_math, "avx512_estimates", lambda: False)
    return request.param


def apply_vectors(name, x, lanes):
    module = compile_module(vector_loop_ir(name, lanes), ["k"])
    padded = np.zeros(-(-x.size // lanes) * lanes, np.float32)
    padded[:x.size] = x
    y = np.empty_like(padded)
    _KERNEL(module.address("k"))(padded.ctypes.data, y.ctypes.data, padded.size)
    return y[:x.size], module


@pytest.mark.parametrize("lanes", [16, 8])
def test_float32_vector_sigmoid_bound_and_special_values(vector_path, lanes):
    """The vector sigmoid (rcp14 + residual correction, vscalefps on AVX-512; divide and
    exponent-field scaling otherwise) keeps 2e-7 over the bit-pattern sweep and the dense
    grid, and its special values; on AVX-512 no divide is left."""
    x = np.concatenate([float32_sweep(-104.0, 89.0), grid("sigmoid", np.float32)])
    got, module = apply_vectors("sigmoid", x, lanes)
    exact = reference("sigmoid", x)
    mask = np.abs(exact) >= np.finfo(np.float32).tiny
    error = np.abs((got[mask].astype(np.longdouble) - exact[mask]) / exact[mask])
    print(f"\nsigmoid <{lanes} x float> {vector_path}: max relative error "
          f"{float(error.max()):.3g} at x={x[mask][error.argmax()]}")
    assert error.max() <= BOUNDS[np.float32]
    special, _ = apply_vectors("sigmoid", np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 1.0, -1.0, -88.0, 2e-45], np.float32),
        lanes)
    np.testing.assert_array_equal(special[:7], np.array([0.5, 0.5, 1, 0, np.nan, 1, 0],
                                                        np.float32))
    np.testing.assert_allclose(special[7] + special[8], 1, rtol=1e-7)
    tails = np.array([-88.0, 2e-45])                    # a denormal result; a denormal x
    np.testing.assert_allclose(special[9:], 1 / (1 + np.exp(-tails)), rtol=2e-7,
                               atol=2.0 ** -149)
    body = module.asm.split("k:")[1].split(".Lfunc_end")[0]
    if vector_path == "avx512":
        register = "zmm" if lanes == 16 else "ymm"
        assert register in body and "vrcp14ps" in body and "vscalefps" in body
        assert "div" not in body and "pd\t" not in body and "call" not in body
    else:
        assert "vdivps" in body and "call" not in body

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


@pytest.mark.parametrize("element", [ir.FloatType(), ir.DoubleType()])
def test_sin_cos_on_vector_types_verify(element):
    module = ir.Module()
    vector = ir.VectorType(element, 4)
    function = ir.Function(module, ir.FunctionType(vector, [vector]), "f")
    builder = ir.IRBuilder(function.append_basic_block())
    builder.ret(vector_math.sin(builder, vector_math.cos(builder, function.args[0])))
    llvm.parse_assembly(str(module)).verify()
    assert f"llvm.fma.v4{'f32' if element == ir.FloatType() else 'f64'}" in str(module)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["exp", "sin", "cos", "sigmoid"])
def test_loop_is_vectorised_without_calls(name, dtype):
    """sin/cos use llvm.fma, which is one instruction on this host: no libm call remains.
    The f32 sigmoid stays in single precision: full-width ps instructions, no pd ones."""
    module, _ = kernel(name, dtype)
    register = "zmm" if host().has_avx512 else "ymm"
    body = module.asm.split("k:")[1].split(".Lfunc_end")[0]
    assert register in body and "call" not in body
    if name == "sigmoid" and dtype is np.float32:
        assert "vdivps" in body and "pd\t" not in body and "cvtps2pd" not in body


# ----------------------------------------------------------------------------- sin, cos

LIMIT = {np.float32: 2.0 ** 22, np.float64: 2.0 ** 51}   # vector_math._Trig.limit


def trig_grid(dtype, scale):
    """Arguments for sin/cos: a dense grid, a random sample and the floats nearest to (and
    next to) multiples of pi/2, where the result is tiny and the range reduction is tested."""
    rng = np.random.default_rng(7)
    if scale == "small":
        dense = np.linspace(-np.pi / 4, np.pi / 4, 1_000_001)
        multiples = np.arange(-4, 5)
    elif scale == "moderate":
        dense = np.linspace(-1e4, 1e4, 1_000_001)
        multiples = np.arange(-6400, 6400)
    else:  # large: log-uniform magnitudes up to the limit of the accurate range
        dense = rng.choice([-1, 1], 1_000_000) * np.exp(
            rng.uniform(np.log(1e4), np.log(LIMIT[dtype]), 1_000_000))
        multiples = rng.integers(-int(LIMIT[dtype] / 1.6), int(LIMIT[dtype] / 1.6), 20_000)
    near = (multiples.astype(np.longdouble) * (np.pi / np.longdouble(2))).astype(dtype)
    neighbours = [np.nextafter(near, np.array(np.inf, dtype)),
                  np.nextafter(near, np.array(-np.inf, dtype))]
    x = np.concatenate([dense.astype(dtype), near, *neighbours])
    return x[np.abs(x) < LIMIT[dtype]]


@pytest.mark.parametrize("scale", ["small", "moderate", "large"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_within_one_ulp(name, dtype, scale):
    """Relative error within BOUNDS and absolute error within one ulp of the result, near
    the zeros of sin and cos too (measured: 0.82 ulp at most)."""
    x = trig_grid(dtype, scale)
    exact = reference(name, x)
    got = apply(name, x).astype(np.longdouble)
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact).astype(dtype)).astype(np.longdouble)
    mask = np.abs(exact) >= np.finfo(dtype).tiny
    relative = np.abs((got[mask] - exact[mask]) / exact[mask]).max()
    print(f"\n{name} {np.dtype(dtype).name} {scale}: max relative error "
          f"{float(relative):.3g}, {float(ulps.max()):.3g} ulp")
    assert relative <= BOUNDS[dtype] and ulps.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sin_cos_special_values(dtype):
    inf, nan, limit = np.inf, np.nan, LIMIT[dtype]
    subnormal = np.finfo(dtype).smallest_subnormal
    x = np.array([0.0, -0.0, inf, -inf, nan, subnormal, -subnormal, 1e-30,
                  limit, -limit, 1e30, np.finfo(dtype).max], dtype)
    sin, cos = apply("sin", x), apply("cos", x)
    np.testing.assert_array_equal(
        sin, np.array([0, -0.0, nan, nan, nan, subnormal, -subnormal, 1e-30, 0, -0.0, 0, 0],
                      dtype))
    assert list(np.signbit(sin[[0, 1, 8, 9]])) == [False, True, False, True]
    np.testing.assert_array_equal(cos, np.array([1, 1, nan, nan, nan] + [1] * 7, dtype))
    below = np.nextafter(np.array([limit, -limit], dtype), np.array(0, dtype))  # still accurate
    for name, result in (("sin", apply("sin", below)), ("cos", apply("cos", below))):
        np.testing.assert_allclose(result.astype(np.longdouble), reference(name, below),
                                   rtol=0, atol=float(np.finfo(dtype).eps))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sin_is_odd_and_cos_even_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    x = (rng.uniform(0, 1, 100_000) * np.exp(rng.uniform(-20, np.log(LIMIT[dtype]), 100_000))
         ).astype(dtype)
    np.testing.assert_array_equal(apply("sin", -x), -apply("sin", x))
    np.testing.assert_array_equal(apply("cos", -x), apply("cos", x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_atan_within_one_ulp_odd_and_exact_at_special_values(dtype):
    """atan over every binade (the reduction switches at 0.66 and tan(3pi/8)): within one
    ulp of the long-double arctan, odd bit for bit; atan(+-0) = +-0, atan(+-inf) = +-pi/2."""
    magnitudes = np.concatenate([np.geomspace(1e-30, 1e30, 400_001), np.linspace(0, 5, 200_001),
                                 np.nextafter(np.array([0.66, 2.414213562373095], dtype), 9)])
    x = np.concatenate([magnitudes, -magnitudes]).astype(dtype)
    got, exact = apply("atan", x), np.arctan(x.astype(np.longdouble))
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact).astype(dtype))
    print(f"\natan {np.dtype(dtype).name}: max {float(ulps.max()):.3g} ulp")
    assert ulps.max() <= 1.0
    np.testing.assert_array_equal(apply("atan", -x[x > 0]), -got[x > 0])
    inf, nan = np.inf, np.nan
    special = apply("atan", np.array([0.0, -0.0, inf, -inf, nan], dtype))
    np.testing.assert_array_equal(special, np.array([0, -0.0, np.pi / 2, -np.pi / 2, nan],
                                                    dtype))
    assert list(np.signbit(special[:2])) == [False, True]
