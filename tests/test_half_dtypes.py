"""What float16 and bfloat16 share: compiled tensor code equals eager, gradients of a 16-bit
graph against float64, checkpoints keep the bits. One test per property, run for both
dtypes with each one's tolerance (bfloat16 keeps 8 significand bits, float16 11)."""
import ml_dtypes
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, ops

HALVES = [pytest.param(ms.float16, np.float16, 2e-3, 1e-2, id="float16"),
          pytest.param(ms.bfloat16, ml_dtypes.bfloat16, 2 ** -6, 3e-2, id="bfloat16")]


def sample(rng, shape, element):
    return (rng.standard_normal(shape) * 3).astype(element)


@pytest.mark.parametrize("dtype, element, tol, grad_tol", HALVES)
def test_compiled_tensor_api_equals_eager(dtype, element, tol, grad_tol, rng):
    a, w = sample(rng, (8, 16), element), sample(rng, (16, 4), element)

    def f(x, y):
        return ops.tanh(ops.matmul(x, y) * 0.5 + 1.0).sum(axis=1)

    eager = f(Tensor(a), Tensor(w))
    compiled = ms.jit(f)(Tensor(a), Tensor(w))
    assert compiled.dtype is eager.dtype is dtype
    np.testing.assert_allclose(compiled.asnumpy().astype(np.float32),
                               eager.asnumpy().astype(np.float32), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, element, tol, grad_tol", HALVES)
def test_gradients_of_a_16_bit_graph(dtype, element, tol, grad_tol, rng):
    a, w = sample(rng, (4, 6), element), sample(rng, (6, 3), element)

    def loss(x, y):
        return (ops.matmul(x, y) ** 2).sum()

    dx, dy = ms.jit(ms.grad(loss, grad_position=(0, 1)))(Tensor(a), Tensor(w))
    assert dx.dtype is dy.dtype is dtype
    x64, w64 = a.astype(np.float64), w.astype(np.float64)
    g = 2 * (x64 @ w64)
    for got, want in ((dx, g @ w64.T), (dy, x64.T @ g)):
        np.testing.assert_allclose(got.asnumpy().astype(np.float64), want, rtol=grad_tol,
                                   atol=grad_tol * np.abs(want).max())


@pytest.mark.parametrize("dtype, element, tol, grad_tol", HALVES)
def test_checkpoint_keeps_the_dtype_and_bits(dtype, element, tol, grad_tol, tmp_path, rng):
    weight = ms.Parameter(Tensor(sample(rng, (2, 3), element)), name="weight")
    path = str(tmp_path / "half.ckpt")
    ms.save_checkpoint([{"name": "weight", "data": weight},
                        {"name": "step", "data": Tensor(np.array([3], np.int32))}], path)
    loaded = ms.load_checkpoint(path)
    assert loaded["weight"].dtype is dtype and loaded["step"].dtype is ms.int32
    np.testing.assert_array_equal(loaded["weight"].asnumpy().view(np.uint16),
                                  weight.asnumpy().view(np.uint16))
