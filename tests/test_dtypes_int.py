"""int8, int16, uint8, uint16, uint32 and uint64 end to end: public names, MindSpore's promotion
table, compiled kernels against numpy (wraparound, floor division/modulo, unsigned compares,
min/max, casts, reductions, matmul) and against the reference interpreter, eager and jit,
no gradient through integer inputs, checkpoints keeping every dtype."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, ops
from graphspore.ir import ops as gs
from graphspore.ir.ops import composite
from graphspore.ir.interpreter import run as interpret

from compiled_graph import build, run_compiled
from graphspore.ir.types import DType, promote

NEW_INTS = [DType.i8, DType.i16, DType.u8, DType.u16, DType.u32, DType.u64]
ALL_INTS = NEW_INTS + [DType.i32, DType.i64]


def full_range(rng, dtype, shape):
    """Values over the dtype's whole range, its extremes and 0, 1, -1 included."""
    info = np.iinfo(dtype.np)
    edges = np.array([info.min, info.max, 0, 1, info.max - 1, info.min + 1]
                     + ([-1, -2] if info.min < 0 else [2, 3]), dtype=dtype.np)
    data = rng.integers(info.min, info.max, size=shape, dtype=dtype.np, endpoint=True)
    data.reshape(-1)[:edges.size] = edges
    return data


def small(rng, dtype, shape, low=None, high=13):
    info = np.iinfo(dtype.np)
    return rng.integers(max(info.min, -13 if low is None else low), high, size=shape).astype(
        dtype.np)


# ------------------------------------------------------------------ names and promotion

def test_public_names_print_like_mindspore():
    names = {ms.int8: "Int8", ms.int16: "Int16", ms.uint8: "UInt8", ms.uint16: "UInt16",
             ms.uint32: "UInt32", ms.uint64: "UInt64"}
    for dtype, name in names.items():
        assert str(dtype) == name and repr(dtype) == name
        assert Tensor(np.zeros(2, dtype.np)).dtype is dtype
        assert Tensor([1, 2], dtype).dtype is dtype
        assert ms.dtype.dtype_to_nptype(dtype) is dtype.np.type
    assert ms.dtype.byte is ms.int8 and ms.dtype.uintp is ms.uint64
    assert ms.uint8 in ms.dtype.uint_type and ms.int8 in ms.dtype.int_type
    x = Tensor(np.array([1, 2], np.uint16))
    assert x.asnumpy().dtype == np.uint16 and x.astype(ms.int8).dtype is ms.int8


# MindSpore's table (mindspore.dtype, type promotion rules), both operand orders.
TABLE = [
    (DType.bool, DType.u8, DType.u8), (DType.bool, DType.u64, DType.u64),
    (DType.i8, DType.i16, DType.i16), (DType.i8, DType.i64, DType.i64),
    (DType.u8, DType.i8, DType.i16), (DType.u8, DType.i16, DType.i16),
    (DType.u8, DType.i32, DType.i32), (DType.u8, DType.i64, DType.i64),
    (DType.i64, DType.f16, DType.f16), (DType.u8, DType.f16, DType.f16),
    (DType.i8, DType.f32, DType.f32), (DType.u32, DType.f64, DType.f64),
    (DType.u8, DType.u16, DType.u16), (DType.u16, DType.u64, DType.u64),
]


@pytest.mark.parametrize("a, b, want", TABLE)
def test_tensor_tensor_promotion_follows_mindspore(a, b, want):
    assert promote(a, b) is want and promote(b, a) is want
    x, y = Tensor(np.ones(2, a.np)), Tensor(np.ones(2, b.np))
    assert (x + y).dtype.ir_dtype is want and (y * x).dtype.ir_dtype is want


@pytest.mark.parametrize("a, b", [(DType.u16, DType.i8), (DType.u32, DType.i32),
                                  (DType.u64, DType.i64), (DType.i16, DType.u16)])
def test_unsigned_with_signed_beyond_uint8_is_named(a, b):
    with pytest.raises(TypeError, match=f"{a.np.name} and {b.np.name} have no common dtype"):
        Tensor(np.ones(2, a.np)) + Tensor(np.ones(2, b.np))


@pytest.mark.parametrize("dtype", NEW_INTS)
def test_python_numbers_are_weak(dtype):
    x = Tensor(np.array([1, 2, 3], dtype.np))
    assert (x + 1).dtype.ir_dtype is dtype and (2 * x).dtype.ir_dtype is dtype
    assert (x * 1.5).dtype is ms.float32                       # int tensor, float scalar
    assert (x > 1).dtype is ms.bool_
    assert (x / x).dtype is ms.float32                         # true division
    assert (Tensor([True, False]) + 1).dtype is ms.int64


# ------------------------------------------------------------ compiled against numpy

BINARY = [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
          ("maximum", np.maximum), ("minimum", np.minimum), ("equal", np.equal),
          ("not_equal", np.not_equal), ("less", np.less), ("less_equal", np.less_equal),
          ("greater", np.greater), ("greater_equal", np.greater_equal)]


@pytest.mark.parametrize("dtype", ALL_INTS)
def test_binary_ops_wrap_and_compare_like_numpy(dtype, rng):
    a, b = full_range(rng, dtype, (5, 19)), full_range(rng, dtype, (5, 19))[::-1].copy()
    graph = build(lambda x, y: tuple(getattr(gs, name)(x, y) for name, _ in BINARY),
                  ((5, 19), dtype), ((5, 19), dtype))
    got = run_compiled(graph, [a, b])[0]
    eager = interpret(graph, [a, b])
    with np.errstate(over="ignore"):
        for (name, fn), value, reference in zip(BINARY, got, eager):
            want = fn(a, b)
            assert value.dtype == want.dtype, name
            np.testing.assert_array_equal(value, want, err_msg=name)
            np.testing.assert_array_equal(reference, want, err_msg=name)


@pytest.mark.parametrize("dtype", ALL_INTS)
def test_floor_division_and_modulo_like_python(dtype, rng):
    a = full_range(rng, dtype, (64,))
    b = full_range(rng, dtype, (64,))
    b[:8] = 0                                           # numpy: 0 for a zero divisor
    b[8:16] = 7
    if not dtype.is_unsigned:
        b[16:24] = -3
    graph = build(lambda x, y: (gs.floor_div(x, y), gs.floor_mod(x, y)),
                  ((64,), dtype), ((64,), dtype))
    quotient, remainder = run_compiled(graph, [a, b])[0]
    with np.errstate(divide="ignore", over="ignore"):
        np.testing.assert_array_equal(quotient, np.floor_divide(a, b))
        np.testing.assert_array_equal(remainder, np.remainder(a, b))


@pytest.mark.parametrize("dtype", ALL_INTS)
def test_unary_ops_like_numpy(dtype, rng):
    a = full_range(rng, dtype, (40,))
    ops_ = [("neg", np.negative), ("abs", np.abs), ("sign", np.sign), ("relu",
            lambda v: np.where(v <= 0, dtype.np.type(0), v))]
    graph = build(lambda x: tuple(getattr(gs, name)(x) for name, _ in ops_), ((40,), dtype))
    with np.errstate(over="ignore"):
        for (name, fn), value in zip(ops_, run_compiled(graph, [a])[0]):
            np.testing.assert_array_equal(value, fn(a), err_msg=name)


@pytest.mark.parametrize("dtype", NEW_INTS)
def test_integer_power_by_squaring(dtype, rng):
    a = small(rng, dtype, (30,), low=-4, high=5)
    b = small(rng, dtype, (30,), low=0, high=9)
    graph = build(gs.pow, ((30,), dtype), ((30,), dtype))
    (got,) = run_compiled(graph, [a, b])[0]
    np.testing.assert_array_equal(got, np.power(a, b))            # wraps modulo 2**bits


CAST_TARGETS = [DType.f16, DType.f32, DType.f64, DType.bool] + ALL_INTS


@pytest.mark.parametrize("source", NEW_INTS)
def test_casts_from_each_integer_to_every_dtype(source, rng):
    a = full_range(rng, source, (24,))
    graph = build(lambda x: tuple(gs.cast(x, dtype=t) for t in CAST_TARGETS), ((24,), source))
    with np.errstate(over="ignore"):
        for target, value in zip(CAST_TARGETS, run_compiled(graph, [a])[0]):
            np.testing.assert_array_equal(value, a.astype(target.np),
                                          err_msg=f"{source} -> {target}")


@pytest.mark.parametrize("target", NEW_INTS)
def test_casts_from_floats_truncate_towards_zero(target):
    info = np.iinfo(target.np)
    values = np.array([0.0, 0.9, 1.5, 2.999, info.max * 0.75, 100.25, -0.5]
                      + ([-1.5, -100.75, info.min * 0.75] if info.min < 0 else [])).astype(
        np.float64)
    for source in (DType.f32, DType.f64):
        a = values.astype(source.np)
        graph = build(lambda x: gs.cast(x, dtype=target), ((a.size,), source))
        (got,) = run_compiled(graph, [a])[0]
        np.testing.assert_array_equal(got, a.astype(target.np), err_msg=f"{source}")


@pytest.mark.parametrize("dtype", ALL_INTS)
def test_reductions_like_numpy(dtype, rng):
    a = full_range(rng, dtype, (6, 33))
    graph = build(lambda x: (gs.reduce_sum(x, axes=(1,)), gs.reduce_sum(x, axes=(0,)),
                             gs.reduce_max(x, axes=(1,)), composite.reduce_min(x, axes=(1,)),
                             gs.reduce_max(x, axes=(0,)), gs.argmax(x, axis=1)),
                  ((6, 33), dtype))
    sums, column_sums, maxima, minima, column_maxima, positions = run_compiled(graph, [a])[0]
    np.testing.assert_array_equal(sums, a.sum(axis=1, dtype=dtype.np))     # wraps
    np.testing.assert_array_equal(column_sums, a.sum(axis=0, dtype=dtype.np))
    np.testing.assert_array_equal(maxima, a.max(axis=1))
    np.testing.assert_array_equal(minima, a.min(axis=1))
    np.testing.assert_array_equal(column_maxima, a.max(axis=0))
    np.testing.assert_array_equal(positions, a.argmax(axis=1))


@pytest.mark.parametrize("dtype", NEW_INTS)
def test_matmul_wraps_like_numpy(dtype, rng):
    a, b = full_range(rng, dtype, (9, 17)), full_range(rng, dtype, (17, 5))
    graph = build(gs.matmul, ((9, 17), dtype), ((17, 5), dtype))
    (got,) = run_compiled(graph, [a, b])[0]
    assert got.dtype == dtype.np
    np.testing.assert_array_equal(got, np.matmul(a, b))
    np.testing.assert_array_equal(interpret(graph, [a, b])[0], np.matmul(a, b))


def test_mixed_dtypes_compile_with_mindspore_promotion(rng):
    a = small(rng, DType.u8, (4, 8), low=0, high=200)
    b = small(rng, DType.i8, (4, 8))
    c = rng.standard_normal((4, 8)).astype(np.float16)

    def f(x, y, z):
        return x + y, x * z, (x // 3) % 5, x - 1

    eager = f(Tensor(a), Tensor(b), Tensor(c))
    compiled = ms.jit(f)(Tensor(a), Tensor(b), Tensor(c))
    want = (a.astype(np.int16) + b, (a.astype(np.float32) * c).astype(np.float16),
            (a // 3) % 5, a - np.uint8(1))
    for e, g, w in zip(eager, compiled, want):
        assert e.dtype == g.dtype and g.asnumpy().dtype == w.dtype
        np.testing.assert_array_equal(g.asnumpy(), w)
        np.testing.assert_array_equal(e.asnumpy(), w)


def test_uint64_beyond_int64_compares_and_divides_unsigned():
    big = np.array([2 ** 64 - 1, 2 ** 63, 2 ** 63 - 1, 5], np.uint64)
    other = np.array([3, 2 ** 63 + 1, 2 ** 63, 5], np.uint64)
    f = ms.jit(lambda x, y: (x > y, x // y, ops.maximum(x, y), x.max(), x.astype(ms.float64)))
    greater, quotient, maximum, top, wide = f(Tensor(big), Tensor(other))
    np.testing.assert_array_equal(greater.asnumpy(), big > other)
    np.testing.assert_array_equal(quotient.asnumpy(), big // other)
    np.testing.assert_array_equal(maximum.asnumpy(), np.maximum(big, other))
    assert int(top.asnumpy()) == 2 ** 64 - 1
    np.testing.assert_array_equal(wide.asnumpy(), big.astype(np.float64))


def test_no_gradient_through_integer_inputs(rng):
    w = rng.standard_normal(4).astype(np.float32)
    counts = np.array([1, 200, 3, 4], np.uint8)

    def loss(weights, n):
        return (weights * n).sum()

    for fn in (ms.grad(loss, grad_position=(0, 1)), ms.jit(ms.grad(loss, grad_position=(0, 1)))):
        dw, dn = fn(Tensor(w), Tensor(counts))
        np.testing.assert_allclose(dw.asnumpy(), counts.astype(np.float32))
        assert dn.dtype is ms.float32 and not dn.asnumpy().any()


def test_checkpoints_keep_every_integer_dtype(tmp_path, rng):
    data = {f"w_{d.name}": full_range(rng, d, (3, 4)) for d in ALL_INTS}
    path = str(tmp_path / "ints.ckpt")
    ms.save_checkpoint([{"name": k, "data": Tensor(v)} for k, v in data.items()], path)
    loaded = ms.load_checkpoint(path)
    for name, array in data.items():
        assert loaded[name].asnumpy().dtype == array.dtype, name
        np.testing.assert_array_equal(loaded[name].asnumpy(), array)


@pytest.mark.parametrize("dtype", [DType.i64, DType.u64, DType.u8, DType.i8])
def test_argmin_and_min_are_exact_beyond_float32(dtype, rng):
    a = full_range(rng, dtype, (3, 25))
    a[1, 3], a[1, 7] = np.iinfo(dtype.np).min + 1, np.iinfo(dtype.np).min   # near-ties at the edge
    f = ms.jit(lambda x: (x.argmin(axis=1), x.min(axis=1), x.argmax(axis=1)))
    for fn in (f, lambda x: (x.argmin(axis=1), x.min(axis=1), x.argmax(axis=1))):
        where, smallest, top = fn(Tensor(a))
        np.testing.assert_array_equal(where.asnumpy(), a.argmin(axis=1))
        np.testing.assert_array_equal(smallest.asnumpy(), a.min(axis=1))
        np.testing.assert_array_equal(top.asnumpy(), a.argmax(axis=1))


def test_a_python_number_out_of_the_tensors_range_is_named_at_the_users_line():
    x = Tensor(np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match="300 is out of range for uint8"):
        x + 300
    with pytest.raises(ValueError, match=r"test_dtypes_int.py:\d+.*-1 is out of range for uint8"):
        ms.jit(lambda v: v * -1)(x)
    np.testing.assert_array_equal((x - 1).asnumpy(), np.array([1, 2], np.uint8) - 1)  # fits
