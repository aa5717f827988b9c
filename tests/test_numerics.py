"""Numerical edge cases: float64 tanh saturates to exactly +-1 where numpy's does, and pow's
gradient at base 0 is 0 (as JAX and PyTorch give), not NaN. Expected values from numpy, libm
or closed-form math."""
import math

import numpy as np

from graphspore import Tensor, grad, jit, ops


@jit
def tanh_of(x):
    return ops.tanh(x)


def test_float64_tanh_is_exactly_one_where_numpy_saturates():
    x = np.concatenate([np.linspace(15.0, 25.0, 4001), [18.990341103219276, 19.06, 22.0,
                                                         1e300, np.inf]])
    x = np.concatenate([x, -x])
    got, want = tanh_of(Tensor(x)).asnumpy(), np.tanh(x)
    saturated = np.abs(want) == 1.0
    assert saturated.sum() > 1000
    np.testing.assert_array_equal(got[saturated], want[saturated])
    np.testing.assert_array_equal(np.abs(got) == 1.0, saturated)
    np.testing.assert_allclose(got, want, rtol=2.3e-16, atol=0)


def test_float64_tanh_stays_within_two_ulps_of_libm_below_saturation():
    x = np.concatenate([np.linspace(-19.0, 19.0, 20001), [1e-300, -1e-20, 0.0, -0.0]])
    got = tanh_of(Tensor(x)).asnumpy()
    libm = np.array([math.tanh(v) for v in x])
    assert np.all(np.abs(got - libm) <= 2 * np.spacing(np.abs(libm)) + 1e-320)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(x))


def _power(x, e):
    return x ** e


def _power_of_zero_exponent(x):
    return x ** 0.0


def test_pow_gradient_at_base_zero_is_zero_eager_and_compiled():
    x = Tensor(np.array([0.0, 0.0, 0.0, 2.0]))
    e = Tensor(np.array([2.0, 0.0, 0.5, 3.0]))
    want_dx = np.array([0.0, 0.0, np.inf, 12.0])      # e * x**(e-1); 0 where e = 0
    want_de = np.array([0.0, 0.0, 0.0, 8.0 * np.log(2.0)])   # x**e log x; 0 where x = 0
    for fn in (grad(_power, grad_position=(0, 1)), jit(grad(_power, grad_position=(0, 1)))):
        dx, de = fn(x, e)
        np.testing.assert_allclose(dx.asnumpy(), want_dx, rtol=1e-12)
        np.testing.assert_allclose(de.asnumpy(), want_de, rtol=1e-12)


def test_gradient_of_x_to_the_zero_is_zero_at_zero():
    x = Tensor(np.array([0.0, 1.5, -2.0], np.float32))
    for fn in (grad(_power_of_zero_exponent), jit(grad(_power_of_zero_exponent))):
        np.testing.assert_array_equal(fn(x).asnumpy(), np.zeros(3, np.float32))
