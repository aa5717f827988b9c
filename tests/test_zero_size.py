"""Zero-size dimensions compute what numpy computes (batched matmul with a zero batch, a zero
contraction or a zero row count; softmax/log_softmax over an empty axis; reshapes and sums of
empty tensors), eager and compiled, with gradients; where numpy raises (max/argmax over an
empty axis, reshape with -1 of an empty tensor) the user's op raises a ValueError at the
user's line."""
import inspect
import os

import numpy as np
import pytest

from graphspore import Tensor, grad, jit, ops

THIS_FILE = os.path.basename(__file__)


def product(a, b):
    return ops.matmul(a, b)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((0, 2, 3), (0, 3, 4)), ((2, 2, 0), (2, 0, 4)), ((0, 1, 2, 3), (5, 3, 4)),
    ((3, 0, 2), (3, 2, 4)), ((2, 3), (4, 3, 0)), ((4, 2, 3), (3, 5)), ((2, 0), (0, 4))])
def test_batched_matmul_with_size_zero_dims_is_numpys(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    want = a @ b
    for fn in (product, jit(product)):
        got = fn(Tensor(a), Tensor(b)).asnumpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def summed_product(a, b):
    return ops.matmul(a, b).sum()


def test_gradient_through_a_zero_contraction_is_zero():
    a, b = np.ones((2, 3, 0), np.float32), np.ones((2, 0, 4), np.float32)
    da, db = jit(grad(summed_product, grad_position=(0, 1)))(Tensor(a), Tensor(b))
    assert da.shape == a.shape and db.shape == b.shape


def softmax_last(x):
    return ops.softmax(x, -1), ops.log_softmax(x, -1)


def test_softmax_over_an_empty_axis_is_empty():
    for shape in [(3, 0), (0, 4), (0,)]:
        x = np.ones(shape, np.float32)
        for fn in (softmax_last, jit(softmax_last)):
            soft, log_soft = fn(Tensor(x))
            assert soft.shape == shape and log_soft.shape == shape


def reductions(x):
    return x.sum(0), ops.reshape(x, (3, 0, 2)), ops.mean(x, 1)


def test_reductions_and_reshapes_of_empty_tensors():
    x = np.ones((0, 6), np.float32)
    for fn in (reductions, jit(reductions)):
        total, reshaped, mean = fn(Tensor(x))
        np.testing.assert_array_equal(total.asnumpy(), np.zeros(6, np.float32))
        assert reshaped.shape == (3, 0, 2) and mean.shape == (0,)


def max_of_empty(x):
    return ops.max(x, 0)


def argmax_of_empty(x):
    return ops.argmax(x, 0)


def reshape_minus_one(x):
    return ops.reshape(x, (0, -1))


@pytest.mark.parametrize("fn,numpy_fn", [
    (max_of_empty, lambda x: np.max(x, 0)), (argmax_of_empty, lambda x: np.argmax(x, 0)),
    (reshape_minus_one, lambda x: x.reshape(0, -1))])
def test_where_numpy_raises_the_users_op_raises_at_the_users_line(fn, numpy_fn):
    x = np.ones((0, 3), np.float32)
    with pytest.raises(ValueError):
        numpy_fn(x)
    line = inspect.getsourcelines(fn)[1] + 1
    for call in (fn, jit(fn)):
        with pytest.raises(ValueError) as info:
            call(Tensor(x))
        assert f"{THIS_FILE}:{line}:" in str(info.value)
