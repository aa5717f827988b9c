"""vmap as a graph transform: every result equals a Python loop over the batch (the loop runs
the same function per example), for each batching rule, the axes options, nesting, and its
compositions with grad and jit. An op without a rule fails by name."""
from __future__ import annotations

import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, grad, jit, nn, ops, value_and_grad
from graphspore.ir.ops import OPS
from graphspore.ir.passes import vmap as batching_pass

RNG = np.random.default_rng(11)


def data(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def loop(fn, args, in_axes, out_axis=0):
    """The reference: fn on each example (numpy slices), results stacked on out_axis."""
    size = next(a.shape[ax] for a, ax in zip(args, in_axes) if ax is not None)
    results = []
    for i in range(size):
        example = [Tensor(np.take(a, i, axis=ax)) if ax is not None else Tensor(a)
                   for a, ax in zip(args, in_axes)]
        results.append(fn(*example))
    if isinstance(results[0], tuple):
        return tuple(np.stack([r[j].asnumpy() for r in results], axis=out_axis)
                     for j in range(len(results[0])))
    return np.stack([r.asnumpy() for r in results], axis=out_axis)


def check(fn, args, in_axes, out_axes=0, **tol):
    got = ops.vmap(fn, in_axes=tuple(in_axes), out_axes=out_axes)(*[Tensor(a) for a in args])
    want = loop(fn, args, in_axes, out_axes if isinstance(out_axes, int) else 0)
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.asnumpy(), w, rtol=2e-5, atol=2e-6, **tol)
    else:
        np.testing.assert_allclose(got.asnumpy(), want, rtol=2e-5, atol=2e-6, **tol)


# One function per rule: (fn, argument arrays, in_axes).
def f_elementwise(x, y):
    return ops.select(x > 0, ops.exp(x) * y, ops.sin(y) - x)


def f_reduce(x):
    return ops.sum(x, 1) + ops.argmax(x, 0).astype(ms.float32) + ops.amax(x, (0, 1))


def f_views(x):
    return ops.transpose(ops.reshape(x, (2, 6)), (1, 0))[1:5:2] + ops.broadcast_to(
        x[0, :2], (6, 2))[::3]


def f_pad_concat(x, y):
    return ops.concat((ops.pad(x, (0, 2, 1, 0)), y), 0)


def f_matmul(a, b):
    return ops.matmul(a, b) + ops.matmul(a, b.T.T)


def f_matmul_t(a, b):
    return ops.matmul(a.T, b)


def f_gather(x, i):
    return ops.gather(x, i, 0) * 2.0


def f_softmax_ce(logits, labels):
    return ops.cross_entropy(logits, labels)


def f_conv_pool(x, w):
    """conv (im2col + matmul) then max and average pooling: the window primitives."""
    y = ops.conv2d(x, w, None, 1, "pad", 1)
    return ops.max_pool2d(y, 2) + ops.avg_pool2d(y, 2, 2)


CASES = [
    (f_conv_pool, [data(3, 2, 2, 6, 4), data(3, 2, 3, 3)], (0, None)),
    (f_elementwise, [data(5, 3), data(3)], (0, None)),
    (f_elementwise, [data(3, 4), data(4, 3)], (1, 0)),
    (f_reduce, [data(3, 3, 2)], (2,)),
    (f_views, [data(3, 5, 4)], (1,)),
    (f_pad_concat, [data(4, 2, 3), data(3, 5)], (0, None)),
    (f_matmul, [data(6, 2, 3), data(3, 4)], (0, None)),
    (f_matmul, [data(2, 3), data(5, 3, 4)], (None, 0)),
    (f_matmul, [data(5, 2, 3), data(3, 5, 4)], (0, 1)),
    (f_matmul_t, [data(4, 3, 2), data(4, 3, 5)], (0, 0)),
    (f_gather, [data(4, 6, 3), np.array([2, 0, 5], np.int32)], (0, None)),
    (f_gather, [data(6, 3), np.array([[1, 2], [0, 0], [5, 4]], np.int32)], (None, 0)),
    (f_softmax_ce, [data(3, 4, 5), np.array([[1, 0, 4, 2]] * 3, np.int32)], (0, 0)),
]


@pytest.mark.parametrize("fn,args,in_axes", CASES,
                         ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
def test_vmap_equals_a_loop_over_the_batch(fn, args, in_axes):
    check(fn, args, in_axes)


def test_out_axes_and_tuple_outputs_and_unbatched_outputs():
    def f(x, y):
        return x * y, ops.sum(y)          # the second output does not depend on the batch
    x, y = data(4, 3), data(3)
    got = ops.vmap(f, in_axes=(0, None), out_axes=(1, 0))(Tensor(x), Tensor(y))
    np.testing.assert_allclose(got[0].asnumpy(), (x * y).T, rtol=1e-6)
    np.testing.assert_allclose(got[1].asnumpy(), np.full(4, y.sum()), rtol=1e-6)
    with pytest.raises(ValueError, match="out_axes is None"):
        ops.vmap(f, in_axes=(0, None), out_axes=None)(Tensor(x), Tensor(y))


def test_nested_in_axes_for_tuple_arguments():
    def f(pair, z):
        a, b = pair
        return a * b + z
    a, b, z = data(3, 5), data(5, 3), data(3)
    got = ops.vmap(f, in_axes=((1, 0), None))((Tensor(a), Tensor(b)), Tensor(z))
    np.testing.assert_allclose(got.asnumpy(), a.T * b + z, rtol=1e-6)


def test_nested_vmap_is_an_outer_product_of_loops():
    def h(a, b):
        return a * b + ops.sin(a)
    a, b = data(3, 4), data(5)
    inner = ops.vmap(h, in_axes=(0, None))                    # over rows of a column
    got = ops.vmap(inner, in_axes=(1, None), out_axes=1)(Tensor(a), Tensor(b))
    want = a[:, :, None] * b + np.sin(a)[:, :, None]           # (3, 4, 5)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-6, atol=1e-7)   # fma-contracted


def test_grad_of_vmap_through_conv_and_pool():
    """grad(vmap(f)) differentiates the batched window ops (max_pool2d_grad, col2im)."""
    x, w = data(2, 2, 2, 6, 4), data(3, 2, 3, 3)
    loss = lambda a, b: ops.vmap(f_conv_pool, in_axes=(0, None))(a, b).sum()   # noqa: E731
    gx = grad(loss)(Tensor(x), Tensor(w)).asnumpy()
    looped = lambda a, b: sum(f_conv_pool(a[i], b).sum() for i in range(2))   # noqa: E731
    np.testing.assert_allclose(gx, grad(looped)(Tensor(x), Tensor(w)).asnumpy(),
                               rtol=1e-5, atol=1e-5)


def test_grad_of_vmap_and_vmap_of_grad():
    def f(x, w):
        return ops.sum(ops.tanh(ops.matmul(x, w)))
    x, w = data(6, 2, 3), data(3, 4)
    per_example = ops.vmap(grad(f, 1), in_axes=(0, None))(Tensor(x), Tensor(w))
    want = loop(grad(f, 1), [x, w], (0, None))
    np.testing.assert_allclose(per_example.asnumpy(), want, rtol=2e-5, atol=1e-6)

    def total(x, w):
        return ops.sum(ops.vmap(f, in_axes=(0, None))(x, w))
    dw = grad(total, 1)(Tensor(x), Tensor(w))
    np.testing.assert_allclose(dw.asnumpy(), want.sum(0), rtol=2e-5, atol=1e-6)


def test_vmap_inside_jit_and_of_a_cell():
    net = nn.Dense(3, 2)
    x = data(5, 4, 3)
    batched = jit(lambda t: ops.vmap(net)(t) * 2.0)
    want = loop(lambda t: net(t) * 2.0, [x], (0,))
    np.testing.assert_allclose(batched(Tensor(x)).asnumpy(), want, rtol=2e-5, atol=1e-6)
    loss, grads = value_and_grad(lambda t: ops.sum(ops.vmap(net)(t)), None,
                                 net.trainable_params())(Tensor(x))
    np.testing.assert_allclose(grads[1].asnumpy(), np.full(2, 20.0), rtol=1e-6)


def test_mindspore_spellings_resolve_to_vmap():
    from graphspore import mindspore_alias
    assert mindspore_alias.alias_mindspore() is True
    try:
        import mindspore.ops.functional as F
        from mindspore import ops as ms_ops
        assert F.vmap is ops.vmap and ms_ops.vmap is ops.vmap
    finally:
        mindspore_alias.unalias_mindspore()


def test_errors_name_the_problem():
    x = Tensor(data(3, 4))
    with pytest.raises(ValueError, match="different sizes"):
        ops.vmap(lambda a, b: a + b)(x, Tensor(data(4, 4)))
    with pytest.raises(ValueError, match="in_axes has 1 entries for 2 arguments"):
        ops.vmap(lambda a, b: a + b, in_axes=(0,))(x, x)
    with pytest.raises(ValueError, match="out of range"):
        ops.vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(TypeError, match="in_axes must be"):
        ops.vmap(lambda a: a, in_axes="0")


def test_an_op_without_a_rule_fails_by_name(monkeypatch):
    monkeypatch.delitem(batching_pass.RULES, "gs.exp")
    with pytest.raises(ValueError, match="no batching rule for gs.exp"):
        ops.vmap(lambda a: ops.exp(a) + 1.0)(Tensor(data(3, 2)))


def test_tensor_control_flow_is_batched_per_example():
    def f(x):
        if ops.sum(x) > 0:
            y = x * 2.0
        else:
            y = -x
        return y
    x = data(5, 3)
    check(f, [x], (0,))
    dx = grad(lambda t: ops.sum(ops.vmap(f)(t)))(Tensor(x))
    want = np.where(x.sum(1, keepdims=True) > 0, 2.0, -1.0) * np.ones_like(x)
    np.testing.assert_allclose(dx.asnumpy(), want)


def test_every_registered_op_has_a_batching_rule():
    assert set(OPS) <= set(batching_pass.RULES), set(OPS) - set(batching_pass.RULES)
