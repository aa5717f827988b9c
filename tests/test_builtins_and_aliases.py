"""Issue 12 points no other file shows: Python's max/min/sum of tensors inside compiled code
(point 8, where MindSpore's graph mode allows them: over the first axis, and of scalars) and
the `ops.grad`/`ops.value_and_grad` aliases of the gradient API (point 2). Expected values
from numpy and closed-form derivatives."""
import numpy as np

import graphspore as ms
from graphspore import Tensor, jit, ops


def test_max_min_sum_of_tensors_in_a_compiled_function():
    x = np.array([[1.0, -2.0, 3.0], [4.0, 0.5, -6.0]], np.float32)

    @jit
    def f(v):
        return max(v[0]), min(v[1]), sum(v), max(v[0][0], v[1][0]), sum(v[0], 10.0)
    top, bottom, total, larger, offset = (o.asnumpy() for o in f(Tensor(x)))
    assert top == 3.0 and bottom == -6.0 and larger == 4.0 and offset == 12.0
    np.testing.assert_array_equal(total, x[0] + x[1])     # sum over the first axis


def test_ops_grad_and_value_and_grad_are_the_gradient_api():
    """d/dx sum(x**3) = 3x**2; value_and_grad also returns sum(x**3)."""
    x = np.array([1.0, -2.0, 0.5], np.float32)
    assert ops.grad is ms.grad and ops.value_and_grad is ms.value_and_grad
    np.testing.assert_allclose(ops.grad(lambda t: (t ** 3).sum())(Tensor(x)).asnumpy(),
                               3 * x ** 2, rtol=1e-6)
    value, grad = ops.value_and_grad(lambda t: (t ** 3).sum())(Tensor(x))
    np.testing.assert_allclose(value.asnumpy(), (x ** 3).sum(), rtol=1e-6)
    np.testing.assert_allclose(grad.asnumpy(), 3 * x ** 2, rtol=1e-6)
