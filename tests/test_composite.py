"""ops.composite's MultitypeFuncGraph, HyperMap and Map, eagerly and inside compiled code,
written as MindSpore's docs and optimizers use them (F.partial of an overloaded update
mapped over gradients, parameters and moments). Expected values: numpy."""
import functools

import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, Tensor, jit, nn, ops
from graphspore.ops import HyperMap, Map, MultitypeFuncGraph


def t(a):
    return Tensor(np.asarray(a, np.float32))


add = MultitypeFuncGraph("add")


@add.register("Number", "Number")
def _add_numbers(x, y):
    return x + y


@add.register("Tensor", "Tensor")
def _add_tensors(x, y):
    return ops.add(x, y) * 1.0


@add.register("Tensor", "Number")
def _add_tensor_number(x, y):
    return x.sum() + y              # a Tensor method: only parsed code has it on a graph value


square = MultitypeFuncGraph("square")


@square.register("Tensor")
def _square(x):
    return ops.square(x)


def test_dispatch_by_type_eagerly():
    assert add(1, 2) == 3
    np.testing.assert_allclose(add(t([0.1, 0.6]), t([0.1, 0.6])).asnumpy(), [0.2, 1.2],
                               rtol=1e-6)
    np.testing.assert_allclose(add(t([1.0, 2.0]), 4).asnumpy(), 7.0)
    with pytest.raises(ValueError, match=r"'add'.*\(String, Int\).*\(Number, Number\)"):
        add("a", 1)


def test_dispatch_inside_a_compiled_function():
    @jit
    def f(x, y):
        return add(x, y), add(x, 2.0), add(3, 4)
    s, u, n = f(t([1.0, 2.0]), t([3.0, -1.0]))
    np.testing.assert_allclose(s.asnumpy(), [4.0, 1.0])
    np.testing.assert_allclose(u.asnumpy(), 5.0)
    assert n == 7


def test_register_rejects_unknown_type_names():
    f = MultitypeFuncGraph("f")
    with pytest.raises(ValueError, match="unknown type name 'Tensr'"):
        f.register("Tensr")


def test_tensor_dtype_names_dispatch_on_dtype():
    f = MultitypeFuncGraph("f")
    f.register("Tensor[Float32]")(lambda x: "f32")
    f.register("Tensor[Int64]")(lambda x: "i64")
    assert f(t([1.0])) == "f32" and f(Tensor(np.array([1]))) == "i64"


NESTED = ((np.array([1.0, 2.0]), np.array(3.0)), (np.array([[4.0]]),))


def _nested(arrays):
    return tuple(_nested(a) if isinstance(a, tuple) else t(a) for a in arrays)


def _check_squares(out, arrays):
    assert type(out) is tuple and len(out) == len(arrays)
    for o, a in zip(out, arrays):
        if isinstance(a, tuple):
            _check_squares(o, a)
        else:
            np.testing.assert_allclose(o.asnumpy(), a ** 2)


def test_hyper_map_over_nested_tuples():
    _check_squares(HyperMap()(square, _nested(NESTED)), NESTED)
    _check_squares(HyperMap(square)(_nested(NESTED)), NESTED)


def test_hyper_map_inside_construct():
    class SquareAll(nn.Cell):
        def __init__(self):
            super().__init__()
            self.hyper_map = HyperMap(square)

        def construct(self, xs):
            return self.hyper_map(xs)

    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        _check_squares(SquareAll()(_nested(NESTED)), NESTED)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_map_is_one_level_and_checks_lengths():
    out = Map()(add, (t([1.0]), 2), (t([3.0]), 5))
    np.testing.assert_allclose(out[0].asnumpy(), [4.0])
    assert out[1] == 7
    with pytest.raises(ValueError, match="same structure.*tuple of 2, tuple of 1"):
        Map()(add, (1, 2), (3,))
    with pytest.raises(TypeError, match="tuples or lists"):
        Map(square)(t([1.0]))


# The way MindSpore's optimizers are written: one overloaded update, partially applied to the
# hyper-parameters, mapped over (gradients, parameters, moments).
_momentum_opt = MultitypeFuncGraph("momentum_opt")


@_momentum_opt.register("Number", "Number", "Tensor", "Tensor", "Tensor")
def _momentum_update(lr, momentum, gradient, weight, moment):
    new_moment = moment * momentum + gradient
    ops.assign(moment, new_moment)
    ops.assign(weight, weight - lr * new_moment)
    return True


class MomentumByHyperMap(nn.Cell):
    def __init__(self, params, lr, momentum):
        super().__init__()
        self.params = params
        self.moments = [Parameter(Tensor(np.zeros(p.shape, np.float32)), name=f"m_{p.name}")
                        for p in params]
        self.lr, self.momentum = lr, momentum
        self.hyper_map = HyperMap()

    def construct(self, gradients):
        return self.hyper_map(functools.partial(_momentum_opt, self.lr, self.momentum),
                              gradients, tuple(self.params), tuple(self.moments))


def test_optimizer_written_with_hyper_map_trains_inside_one_step():
    w0, b0 = np.array([[0.5, -1.0]]), np.array([0.25])
    w = Parameter(t(w0), name="w")
    b = Parameter(t(b0), name="b")
    x, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[1.0], [0.0]])

    def loss_fn(x, y):
        return ((ops.matmul(x, w.T) + b - y) ** 2).mean()

    opt = MomentumByHyperMap([w, b], lr=0.1, momentum=0.9)
    grad_fn = ms.value_and_grad(loss_fn, None, [w, b])

    @jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        return loss, opt(grads)

    wr, br, mw, mb = w0.copy(), b0.copy(), np.zeros_like(w0), np.zeros_like(b0)
    for _ in range(3):
        loss, done = step(t(x), t(y))
        r = x @ wr.T + br - y                       # numpy reference of the same step
        np.testing.assert_allclose(loss.asnumpy(), np.mean(r ** 2), rtol=1e-5)
        gw, gb = 2 * r.T @ x / r.size, 2 * r.sum(axis=0) / r.size
        mw, mb = 0.9 * mw + gw, 0.9 * mb + gb
        wr, br = wr - 0.1 * mw, br - 0.1 * mb
        assert done == (True, True)
    np.testing.assert_allclose(w.asnumpy(), wr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.asnumpy(), br, rtol=1e-5, atol=1e-6)


_pick = MultitypeFuncGraph("pick")


@_pick.register("Tensor", "Tuple")
def _pick_by_sign(x, pair):
    if x > 0:                                    # a tensor condition: a graph `if`
        return pair[0]
    return pair[1]


class PickNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.hyper_map = HyperMap(_pick)

    def construct(self, x, y, z):
        return self.hyper_map((x, y), ((z, x), (y, z)))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_hyper_map_with_tensor_control_flow_under_grad_operation(mode):
    """MindSpore's test_grad_operation_hypermap_control_flow: x = 2 > 0 picks z, y = -3 picks
    z, so the outputs are (z, z): gradients (0, 0, 2)."""
    class Grad(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net, self.grad_op = net, ops.GradOperation(get_all=True)

        def construct(self, x, y, z):
            return self.grad_op(self.net)(x, y, z)

    ms.set_context(mode=mode)
    try:
        grads = Grad(PickNet())(t(2.0), t(-3.0), t(0.0))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert len(grads) == 3
    for g, expected in zip(grads, (0.0, 0.0, 2.0)):
        np.testing.assert_allclose(g.asnumpy(), expected)
