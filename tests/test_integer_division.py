"""`//` and `%` (gs.floor_div, gs.floor_mod): exact integer kernels, eager and compiled, with
numpy's results (0 for a zero divisor, Python's floor and sign rules, MIN // -1 wraps), and
numpy's float algorithm (signed zeros, inf, NaN). Expected values come from numpy or Python."""
import warnings

import numpy as np
import pytest

from graphspore import Tensor, grad, jit, ops
from graphspore.ir.ops import OPS

from numeric import central_difference


@jit
def divmod_of(x, y):
    return x // y, x % y


@jit
def divmod_by_three(x):
    return x // 3, x % -3


@jit
def trunc_div(x, y):
    return ops.div(x, y, rounding_mode="trunc")


def _numpy(fn, *arrays):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return fn(*arrays)


def _int_cases(dtype):
    info = np.iinfo(dtype)
    a = [7, -7, 7, -7, 5, -5, 0, info.min, info.min, info.max, 100000007, 16777217, -16777217]
    b = [2, 2, -2, -2, 0, 0, -3, -1, 3, -7, 3, 1, 5]
    if dtype == np.int64:
        a += [2 ** 53 + 1, -(2 ** 62) - 3, 2 ** 40 * 3 + 1]
        b += [3, 7, -(2 ** 40)]
    return np.array(a, dtype), np.array(b, dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_floor_div_and_mod_are_exact_compiled_and_eager(dtype):
    a, b = _int_cases(dtype)
    want_q, want_r = _numpy(np.floor_divide, a, b), _numpy(np.remainder, a, b)
    q, r = divmod_of(Tensor(a), Tensor(b))
    assert q.asnumpy().dtype == dtype and r.asnumpy().dtype == dtype
    np.testing.assert_array_equal(q.asnumpy(), want_q)
    np.testing.assert_array_equal(r.asnumpy(), want_r)
    np.testing.assert_array_equal((Tensor(a) // Tensor(b)).asnumpy(), want_q)
    np.testing.assert_array_equal((Tensor(a) % Tensor(b)).asnumpy(), want_r)


def test_the_reported_values_and_python_rules():
    a = np.array([100000007, 16777217, -7, 7], np.int32)
    q, r = divmod_by_three(Tensor(a))
    np.testing.assert_array_equal(q.asnumpy(), [int(v) // 3 for v in a])
    np.testing.assert_array_equal(r.asnumpy(), [int(v) % -3 for v in a])
    assert int(q.asnumpy()[0]) == 33333335
    q, _ = divmod_of(Tensor(np.array([16777217], np.int32)), Tensor(np.array([1], np.int32)))
    assert int(q.asnumpy()[0]) == 16777217
    q, r = divmod_of(Tensor(np.array([9], np.int32)), Tensor(np.array([0], np.int32)))
    assert int(q.asnumpy()[0]) == 0 and int(r.asnumpy()[0]) == 0


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_random_wide_integers_match_python(dtype, rng):
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, 512, dtype=dtype, endpoint=True)
    b = rng.integers(-50, 50, 512, dtype=dtype, endpoint=True)
    b[::7] = rng.integers(info.min, info.max, len(b[::7]), dtype=dtype)
    q, r = divmod_of(Tensor(a), Tensor(b))
    np.testing.assert_array_equal(q.asnumpy(), _numpy(np.floor_divide, a, b))
    np.testing.assert_array_equal(r.asnumpy(), _numpy(np.remainder, a, b))


def test_integer_division_has_no_float_path():
    graph = divmod_of.program_for(Tensor(np.ones(3, np.int64)), Tensor(np.ones(3, np.int64))).graph
    names = {op.name for op in graph.ops}
    assert {"gs.floor_div", "gs.floor_mod"} <= names
    assert not names & {"gs.div", "gs.floor", "gs.cast"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_floor_div_and_mod_follow_numpy_bit_for_bit(dtype):
    inf, nan = np.inf, np.nan
    a = np.array([inf, 1, -0.0, 0.0, 1, nan, 5, -5, 7.5, -7.5, 1e30, -1, 3, -3], dtype)
    b = np.array([2, 0.1, 3, -3, 0, 1, inf, inf, -2, 2, 3e-30, 0, -inf, 0.7], dtype)
    q, r = divmod_of(Tensor(a), Tensor(b))
    for got, want in ((q.asnumpy(), _numpy(np.floor_divide, a, b)),
                      (r.asnumpy(), _numpy(np.remainder, a, b))):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_trunc_division_of_integers_is_exact(dtype):
    a, b = _int_cases(dtype)
    keep = (b != 0) & ~((a == np.iinfo(dtype).min) & (b == -1))
    a, b = a[keep], b[keep]
    want = np.array([abs(int(x)) // abs(int(y)) * (1 if (x < 0) == (y < 0) else -1)
                     for x, y in zip(a, b)], dtype)
    np.testing.assert_array_equal(trunc_div(Tensor(a), Tensor(b)).asnumpy(), want)


def test_mod_gradient_matches_central_differences():
    x = np.array([0.3, -1.7, 2.9, 5.2])
    y = np.array([0.7, 0.6, -1.1, 2.0])

    def f(x, y):
        return (x % y) * x

    dx, dy = grad(f, grad_position=(0, 1))(Tensor(x), Tensor(y))
    np.testing.assert_allclose(dx.asnumpy(), central_difference(lambda v: f(v, y), x), 1e-6)
    np.testing.assert_allclose(dy.asnumpy(), central_difference(lambda v: f(x, v), y), 1e-6)
    assert OPS["gs.floor_div"].vjp is None
