"""grad / value_and_grad / jit: MindSpore 2.x return structures, higher order, errors, with
expected values from closed forms (the seed tutorials: test_seed_tutorials.py)."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, Parameter, ops, grad, value_and_grad, jit


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a.asnumpy() if hasattr(a, "asnumpy") else a),
                               np.asarray(b), rtol=rtol, atol=atol)


# f(x, y) = sum(x * y * w) + sum(b * x)  ->  df/dx = y*w + b, df/dy = x*w, df/dw = sum..., etc.
X = np.array([1.0, 2.0, 3.0], np.float32)
Y = np.array([0.5, -1.0, 2.0], np.float32)
W0 = np.array([2.0, 3.0, -1.0], np.float32)
B0 = np.array([0.25, 0.5, 1.0], np.float32)
w = Parameter(Tensor(W0), name="w")
b = Parameter(Tensor(B0), name="b")


def f(x, y):
    return (x * y * w).sum() + (b * x).sum()


def f2(x, y):
    return (x * y * w).sum(), (b * x).sum()


x_t, y_t = Tensor(X), Tensor(Y)
DX, DY, DW, DB = Y * W0 + B0, X * W0, X * Y, X


def test_grad_default_position_is_bare_tensor():
    g = grad(f)(x_t, y_t)
    assert isinstance(g, Tensor)
    close(g, DX)


def test_grad_positions_tuple():
    gx, gy = grad(f, (0, 1))(x_t, y_t)
    close(gx, DX)
    close(gy, DY)


def test_grad_single_position_tuple_is_bare():
    g = grad(f, (0,))(x_t, y_t)
    assert isinstance(g, Tensor)
    close(g, DX)


def test_grad_weights_only():
    gw, gb = grad(f, None, weights=[w, b])(x_t, y_t)
    close(gw, DW)
    close(gb, DB)


def test_grad_single_weight_is_bare_and_list_is_tuple():
    assert isinstance(grad(f, None, weights=w)(x_t, y_t), Tensor)
    out = grad(f, None, weights=[w])(x_t, y_t)
    assert isinstance(out, tuple) and len(out) == 1
    close(out[0], DW)


def test_grad_position_and_weights():
    gx, (gw, gb) = grad(f, 0, weights=[w, b])(x_t, y_t)
    close(gx, DX)
    close(gw, DW)
    close(gb, DB)
    (gx, gy), (gw, gb) = grad(f, (0, 1), weights=[w, b])(x_t, y_t)
    close(gy, DY)


def test_value_and_grad_structure():
    value, (gx, gy) = value_and_grad(f, (0, 1))(x_t, y_t)
    close(value, (X * Y * W0).sum() + (B0 * X).sum())
    close(gx, DX)
    value, gw = value_and_grad(f, None, weights=w)(x_t, y_t)
    close(gw, DW)


def test_tuple_outputs_gradients_are_summed():
    close(grad(f2)(x_t, y_t), DX)


def test_has_aux():
    gx, aux = grad(f2, 0, has_aux=True)(x_t, y_t)
    close(gx, Y * W0)
    assert isinstance(aux, tuple) and len(aux) == 1
    close(aux[0], (B0 * X).sum())
    (v0, v1), gx = value_and_grad(f2, 0, has_aux=True)(x_t, y_t)
    close(v0, (X * Y * W0).sum())
    close(gx, Y * W0)


def test_has_aux_with_single_output_raises():
    with pytest.raises(ValueError, match="has_aux"):
        grad(f, 0, has_aux=True)(x_t, y_t)


def test_unused_input_and_weight_get_zeros():
    u = Parameter(Tensor(np.ones((2, 2), np.float32)), name="unused")
    gx, gy = grad(lambda x, y: (x * 2).sum(), (0, 1))(x_t, y_t)
    close(gy, np.zeros(3))
    gu = grad(lambda x: (x * 2).sum(), None, weights=u)(x_t)
    close(gu, np.zeros((2, 2)))


def test_bad_grad_arguments():
    with pytest.raises(ValueError, match="both be None"):
        grad(f, None)
    with pytest.raises(ValueError, match="non-negative"):
        grad(f, -1)
    with pytest.raises(ValueError, match="out of range"):
        grad(f, 5)(x_t, y_t)


def test_missing_arguments_raise_type_error_naming_them():
    def loss(inputs, targets, W, b):
        return (inputs * W).sum() + b.sum()
    with pytest.raises(TypeError, match="'W', 'b'"):
        grad(loss, 3)(x_t, y_t)


def test_grad_wrt_bool_or_int_is_float32_zeros():
    """Issue 12 point 5: zeros of the argument's shape, float32, not an error."""
    for t in (Tensor([True, False, True]), Tensor([1, 2, 3])):
        g = grad(lambda x, t: (x * t).sum(), 1)(x_t, t)
        assert g.dtype == ms.float32 and g.shape == (3,)
        close(g, np.zeros(3))
    gx, gt = grad(lambda x, t: (x * t).sum(), (0, 1))(x_t, Tensor([[1, 2, 3]]))
    assert gt.dtype == ms.float32 and gt.shape == (1, 3)
    close(gt, np.zeros((1, 3)))
    close(gx, np.array([1.0, 2.0, 3.0]))


def test_higher_order_polynomial():
    p = lambda x: x**3 - 2*x + 1
    one = Tensor(1.0)
    close(p(one), 0.0)
    close(grad(p)(one), 1.0)
    close(grad(grad(p))(one), 6.0)
    close(grad(grad(grad(p)))(one), 6.0)
    close(grad(grad(grad(grad(p))))(one), 0.0)
    x = Tensor(np.array([-2.0, 0.5, 3.0], np.float32))
    close(grad(grad(lambda x: (x**3).sum()))(x), 6 * x.asnumpy())


def test_new_shape_after_old_shape_gives_right_gradient():
    m = lambda x: ops.mean(x * x)
    close(grad(m)(Tensor(np.ones(4, np.float32))), np.full(4, 2 / 4))
    close(grad(m)(Tensor(np.ones(10, np.float32))), np.full(10, 2 / 10))
    close(grad(m)(Tensor(np.ones(4, np.float32))), np.full(4, 2 / 4))


def test_jit_runs_native_and_caches():
    @jit
    def h(x, y):
        return ops.sigmoid(x) * y + 1

    out = h(x_t, y_t)
    close(out, 1 / (1 + np.exp(-X)) * Y + 1)
    h(x_t, y_t)
    assert len(h._programs) == 1
    h(Tensor(np.ones((2, 2), np.float32)), Tensor(np.ones((2, 2), np.float32)))
    assert len(h._programs) == 2


def test_python_float_arguments_key_the_cache_by_value_bits():
    """A NaN constant compiles once (NaN != NaN must not miss the cache); 0.0 and -0.0 are
    different programs because the folded constant keeps its sign."""
    @jit
    def scaled(x, c):
        return x * c

    first = scaled(x_t, float("nan"))
    scaled(x_t, float("nan"))
    assert len(scaled._programs) == 1 and np.isnan(first.asnumpy()).all()
    assert not np.signbit(scaled(x_t, 0.0).asnumpy()).any()
    assert np.signbit(scaled(x_t, -0.0).asnumpy()).all()
    assert len(scaled._programs) == 3


def test_grad_is_one_native_program_per_signature():
    g = grad(f, (0, 1))
    g(x_t, y_t)
    g(x_t, y_t)
    assert len(g._programs) == 1


def test_grad_of_cell_weights():
    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(W0), name="w")

        def construct(self, x):
            return (self.w * x * x).sum()

    net = Net()
    (gw,) = grad(lambda x: net(x), None, weights=net.trainable_params())(x_t)
    close(gw, X * X)


def test_bce_with_logits_gradient_is_exact_at_zero_logit():
    z = Tensor(np.array([0.0, 0.0, 1.5, -2.0], np.float32))
    y = Tensor(np.array([0.0, 1.0, 1.0, 0.0], np.float32))
    g = grad(lambda z, y: ops.binary_cross_entropy_with_logits(z, y, reduction="sum"))(z, y)
    close(g, _sigmoid(z.asnumpy().astype(np.float64)) - y.asnumpy())


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_errors_inside_library_cells_point_at_the_users_line():
    dense = ms.nn.Dense(4, 3)

    @jit
    def forward(x):
        return dense(x) * 2          # the line the error must name

    with pytest.raises(ms.GraphsporeError) as info:
        forward(Tensor(np.ones((2, 5), np.float32)))
    line = forward.fn.__code__.co_firstlineno + 2
    assert f"test_api.py:{line}:" in str(info.value)
    assert "2x5xf32" in str(info.value) and "3x4xf32" in str(info.value)


def test_python_lists_and_dicts_of_tensors_in_compiled_code():
    @jit
    def stack_scaled(x):
        parts = []
        for k in range(3):
            parts.append(x * k)
        named = {}
        named["last"] = parts[-1]
        return ops.concat(parts, 0), named["last"]

    joined, last = stack_scaled(Tensor(X))
    close(joined, np.concatenate([X * 0, X * 1, X * 2]))
    close(last, X * 2)
