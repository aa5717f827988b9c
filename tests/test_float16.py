"""float16 end to end: dtype and MindSpore promotion, compiled kernels against the reference
interpreter and against numpy computing in float32 and rounding to float16, casts to and from
every dtype, float32 accumulation of products and sums, gradients, checkpoints."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor
from graphspore import codegen
from graphspore.ir import ops as gs
from graphspore.ir.interpreter import run as interpret

from compiled_graph import build, run_compiled
from graphspore.ir.types import DType

F16 = DType.f16
HALF_ULP = dict(rtol=2 ** -10, atol=2 ** -14)   # one float16 step (tanh etc. round either way)


def halves(rng, shape, positive=False):
    data = rng.standard_normal(shape)
    return (np.abs(data) + 0.1 if positive else data).astype(np.float16)


def in_float32(fn, *arrays):
    """numpy's float32 result of `fn` rounded to float16: what one float16 op must give."""
    return np.asarray(fn(*[a.astype(np.float32) for a in arrays])).astype(np.float16)


def test_dtype_names_and_promotion():
    assert str(ms.float16) == "Float16" and ms.half is ms.float16
    assert Tensor(np.zeros(2, np.float16)).dtype == ms.float16
    x = Tensor(np.ones(3, np.float16))
    assert (x + Tensor(np.ones(3, np.float32))).dtype == ms.float32
    assert (x * 2.5).dtype == ms.float16                 # Python floats are weak
    assert (Tensor(np.ones(3, np.int32)) + x).dtype == ms.float16
    assert (x + Tensor(np.ones(3, np.float64))).dtype == ms.float64
    assert x.astype(ms.float32).dtype == ms.float32


@pytest.mark.parametrize("name, fn, positive", [
    ("add", lambda a, b: a + b, False),
    ("mul", lambda a, b: a * b, False),
    ("div", lambda a, b: a / b, True),
    ("sub", lambda a, b: a - b, False),
    ("maximum", np.maximum, False),
])
def test_binary_ops_round_once_like_numpy(name, fn, positive, rng):
    a, b = halves(rng, (7, 33), positive), halves(rng, (7, 33), positive)
    graph = build(lambda x, y: getattr(gs, name)(x, y), ((7, 33), F16), ((7, 33), F16))
    (got,), _ = run_compiled(graph, [a, b])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, in_float32(fn, a, b))     # correctly rounded: exact
    np.testing.assert_array_equal(got, interpret(graph, [a, b])[0])


@pytest.mark.parametrize("name, reference, positive", [
    ("exp", np.exp, False), ("sqrt", np.sqrt, True), ("tanh", np.tanh, False),
    ("log", np.log, True), ("neg", np.negative, False), ("abs", np.abs, False),
])
def test_unary_ops_against_float32_rounded(name, reference, positive, rng):
    a = halves(rng, (65,), positive)
    graph = build(getattr(gs, name), ((65,), F16))
    (got,), _ = run_compiled(graph, [a])
    assert got.dtype == np.float16
    want = in_float32(reference, a)
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), **HALF_ULP)
    np.testing.assert_allclose(got.astype(np.float32),
                               interpret(graph, [a])[0].astype(np.float32), **HALF_ULP)


def test_each_op_in_a_fused_chain_is_rounded(rng):
    a, b = halves(rng, (100,)), halves(rng, (100,))
    graph = build(lambda x, y: gs.add(gs.mul(x, y), x), ((100,), F16), ((100,), F16))
    (got,), result = run_compiled(graph, [a, b])
    assert result.kernels == 1
    product = in_float32(np.multiply, a, b)
    np.testing.assert_array_equal(got, in_float32(np.add, product, a))


def test_memory_is_half_and_arithmetic_float():
    graph = build(lambda x: gs.exp(x), ((16,), F16))
    text = codegen.compile_graph(graph).llvm_ir
    assert "fpext half" in text and "fptrunc float" in text


@pytest.mark.parametrize("other", [DType.f32, DType.f64, DType.i32, DType.i64, DType.bool])
def test_casts_to_and_from_every_dtype(other, rng):
    values = np.array([0.0, -0.0, 1.0, -2.5, 3.1415, 65504.0, -7.75, 1e-3, 0.5, 100.0])
    a = values.astype(np.float16)
    b = (values * 3.3).astype(other.np) if other is not DType.bool else values > 0.7
    graph = build(lambda x, y: (gs.cast(x, dtype=other), gs.cast(y, dtype=F16)),
                  ((10,), F16), ((10,), other))
    (to_other, to_half), _ = run_compiled(graph, [a, b])
    np.testing.assert_array_equal(to_other, a.astype(other.np))
    with np.errstate(over="ignore"):                          # 3.3 * 65504 is inf in half
        np.testing.assert_array_equal(to_half, b.astype(np.float16))


def test_float32_to_half_rounds_to_nearest_even():
    a = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000.0, 2 ** -25, -1e-8], np.float32)
    graph = build(lambda x: gs.cast(x, dtype=F16), ((5,), DType.f32))
    (got,), _ = run_compiled(graph, [a])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got, a.astype(np.float16))  # ties to even, inf, zeros


def test_float64_to_half_rounds_once():
    wide = np.array([1 + 2 ** -11 + 2 ** -40, -(1 + 2 ** -11 + 2 ** -30), 1 + 2 ** -11,
                     65519.9, 1e300, 3e-8, 2 ** -24 * 1.5000001], np.float64)
    graph = build(lambda x: gs.cast(x, dtype=F16), ((wide.size,), DType.f64))
    (got,), _ = run_compiled(graph, [wide])
    with np.errstate(over="ignore"):
        direct = wide.astype(np.float16)                    # numpy rounds double -> half once
        assert direct[0] != wide.astype(np.float32).astype(np.float16)[0]
    np.testing.assert_array_equal(got.view(np.uint16), direct.view(np.uint16))


@pytest.mark.parametrize("m, k, n", [(3, 5, 4), (64, 96, 48)])
def test_matmul_accumulates_in_float32(m, k, n, rng):
    a, b, c = halves(rng, (m, k)), halves(rng, (k, n)), halves(rng, (m, n))
    graph = build(lambda x, y, z: gs.add(gs.matmul(x, y), z),
                  ((m, k), F16), ((k, n), F16), ((m, n), F16))
    (got,), _ = run_compiled(graph, [a, b, c])
    product = in_float32(np.matmul, a, b)
    np.testing.assert_allclose(got.astype(np.float32),
                               in_float32(np.add, product, c).astype(np.float32), **HALF_ULP)
    np.testing.assert_array_equal(got, interpret(graph, [a, b, c])[0])


def test_sum_does_not_stall_in_a_half_accumulator():
    x = Tensor(np.ones(10000, np.float16))
    assert float(ms.jit(lambda a: a.sum())(x).asnumpy()) == 10000.0
    assert float(x.sum().asnumpy()) == 10000.0
    assert ms.jit(lambda a: a.mean())(x).dtype == ms.float16
