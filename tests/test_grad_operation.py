"""The classic gradient API: GradOperation (get_all, get_by_list, sens_param), return_ids and
get_grad, grad_position=(), zero gradients for Python scalars, keyword arguments, and all of
it inside `construct` / `@jit` as well as called directly.

Return structures follow MindSpore's documentation and its tests/st/gradient tests; the
values are closed-form derivatives computed with numpy in float64.
"""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, ParameterTuple, Tensor, jit, nn, ops
from graphspore.ops import GradOperation, get_grad, grad, value_and_grad

X = np.array([[0.8, 0.6, 0.2], [1.8, 1.3, 1.1]])
Y = np.array([[0.11, 3.3, 1.1], [1.1, 0.2, 1.4], [1.1, 2.2, 0.3]])
SENS = np.array([[0.1, 0.6, 0.2], [0.8, 1.3, 1.1]])
Z = 1.5


def t(a):
    return Tensor(np.asarray(a, np.float32))


def close(actual, expected):
    assert isinstance(actual, Tensor), type(actual)
    np.testing.assert_allclose(actual.asnumpy(), expected, rtol=2e-5, atol=1e-5)


class Net(nn.Cell):
    """MindSpore's GradOperation example: out = (x * z) @ y with a Parameter z."""

    def __init__(self):
        super().__init__()
        self.z = Parameter(t([Z]), name="z")

    def construct(self, x, y):
        return ops.matmul(x * self.z, y)


# d sum(S * ((x z) @ y)) for a sensitivity S (ones without sens_param)
def dx(s=np.ones((2, 3))):
    return Z * s @ Y.T


def dy(s=np.ones((2, 3))):
    return (Z * X).T @ s


def dz(s=np.ones((2, 3))):
    return np.array([np.sum(s * (X @ Y))])


class Wrapped(nn.Cell):
    """`self.grad_op(self.net[, params])(*args)` inside construct, as MindSpore code does."""

    def __init__(self, net, grad_op, by_list=False):
        super().__init__()
        self.net, self.grad_op = net, grad_op
        self.params = ParameterTuple(net.trainable_params()) if by_list else None

    def construct(self, *args):
        if self.params is None:
            return self.grad_op(self.net)(*args)
        return self.grad_op(self.net, self.params)(*args)


@pytest.fixture(params=["direct", "construct"])
def call(request):
    """Run a GradOperation directly, or wrapped in a Cell compiled in GRAPH_MODE."""
    def run(grad_op, net, *args, by_list=False):
        if request.param == "direct":
            if by_list:
                return grad_op(net, ParameterTuple(net.trainable_params()))(*args)
            return grad_op(net)(*args)
        ms.set_context(mode=ms.GRAPH_MODE)
        try:
            return Wrapped(net, grad_op, by_list)(*args)
        finally:
            ms.set_context(mode=ms.PYNATIVE_MODE)
    return run


def test_default_returns_the_first_inputs_gradient_alone(call):
    close(call(GradOperation(), Net(), t(X), t(Y)), dx())


def test_get_all_returns_a_tuple_of_every_inputs_gradient(call):
    gx, gy = call(GradOperation(get_all=True), Net(), t(X), t(Y))
    close(gx, dx())
    close(gy, dy())


def test_get_by_list_returns_a_tuple_for_the_weights(call):
    grads = call(GradOperation(get_by_list=True), Net(), t(X), t(Y), by_list=True)
    assert type(grads) is tuple and len(grads) == 1
    close(grads[0], dz())


def test_get_all_and_get_by_list_return_inputs_then_weights(call):
    (gx, gy), (gz,) = call(GradOperation(get_all=True, get_by_list=True), Net(), t(X), t(Y),
                           by_list=True)
    close(gx, dx())
    close(gy, dy())
    close(gz, dz())


def test_sens_param_takes_the_output_cotangent_last(call):
    gx, gy = call(GradOperation(get_all=True, sens_param=True), Net(), t(X), t(Y), t(SENS))
    close(gx, dx(SENS))
    close(gy, dy(SENS))


def test_sens_as_keyword_and_for_several_outputs():
    def two(x, y):
        return x * y, ops.sin(x)
    x, y = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    s1, s2 = np.array([1.5, -0.5]), np.array([0.25, 2.0])
    gx = GradOperation(sens_param=True)(two)(t(x), t(y), sens=(t(s1), t(s2)))
    close(gx, s1 * y + s2 * np.cos(x))


def test_sens_that_does_not_match_the_output_is_a_value_error():
    with pytest.raises(ValueError, match=r"sens must match.*tensor<2x3xf32>.*tensor<3xf32>"):
        GradOperation(sens_param=True)(Net())(t(X), t(Y), t([1.0, 2.0, 3.0]))


def test_single_parameter_gives_its_gradient_alone():
    net = Net()
    close(GradOperation(get_by_list=True)(net, net.z)(t(X), t(Y)), dz())
    (gx, gy), gz = GradOperation(get_all=True, get_by_list=True)(net, net.z)(t(X), t(Y))
    close(gz, dz())


class NoInput(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(t([6.0]), name="w")
        self.b = Parameter(t([2.0]), name="b")

    def construct(self):
        return self.w * self.b


def test_no_inputs_and_no_weights_give_empty_tuples():
    net = NoInput()
    assert GradOperation()(net)() == ()
    assert GradOperation(get_all=True)(net)() == ()
    empty = GradOperation(get_all=True, get_by_list=True)
    (), (gw, gb) = empty(net, ParameterTuple(net.trainable_params()))()
    close(gw, [2.0])
    close(gb, [6.0])
    assert empty(net, None)() == ((), ())
    assert GradOperation(get_by_list=True)(Net(), ParameterTuple([]))(t(X), t(Y)) == ()


def test_get_by_list_is_ignored_without_the_flag():
    net = Net()
    close(GradOperation()(net, ParameterTuple(net.trainable_params()))(t(X), t(Y)), dx())


def test_grad_operation_in_a_jit_function():
    net = Net()
    grad_op = GradOperation(get_all=True)

    @jit
    def step(x, y):
        gx, gy = grad_op(net)(x, y)
        return gx * 2.0 + 1.0, gy

    gx2, gy = step(t(X), t(Y))
    close(gx2, dx() * 2 + 1)
    close(gy, dy())


def test_flags_must_be_bools():
    with pytest.raises(TypeError, match="get_all.*bool.*int"):
        GradOperation(get_all=1)
    with pytest.raises(TypeError, match="sens_param.*bool"):
        GradOperation(sens_param="yes")


def test_repeated_gradient_functions_compile_once():
    net = Net()
    first = GradOperation(get_all=True)(net)
    for _ in range(3):
        GradOperation(get_all=True)(net)(t(X), t(Y))
    assert GradOperation(get_all=True)(net) is first and len(first._programs) == 1
    assert grad(net, (0, 1)) is grad(net, (0, 1))


# ------------------------------------------------------------------ return_ids, get_grad

class Mul3(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(t([6.0, -1.0]), name="w")
        self.b = Parameter(t([2.0, 0.5]), name="b")

    def construct(self, x, y, z):
        return self.w * x + self.b * y + z * y


XV, YV, ZV = np.array([10.0, 1.0]), np.array([20.0, -2.0]), np.array([30.0, 4.0])
W, B = np.array([6.0, -1.0]), np.array([2.0, 0.5])


def test_return_ids_pairs_positions_and_parameter_names():
    net = Mul3()
    out = grad(net, (1, 2), return_ids=True)(t(XV), t(YV), t(ZV))
    (p1, g1), (p2, g2) = out
    assert (p1, p2) == (1, 2) and type(p1) is int
    close(g1, B + ZV)
    close(g2, YV)
    (p0, g0), ((nw, gw), (nb, gb)) = grad(net, 0, net.trainable_params(),
                                           return_ids=True)(t(XV), t(YV), t(ZV))
    assert (p0, nw, nb) == (0, "w", "b")
    close(g0, W)
    close(gw, XV)
    close(gb, YV)
    single = grad(net, 0, net.w, return_ids=True)(t(XV), t(YV), t(ZV))
    assert single[0] == (0, single[0][1]) and single[1][0] == "w"


def test_get_grad_by_position_and_by_parameter():
    net = Mul3()
    res = grad(net, (0, 2), net.trainable_params(), return_ids=True)(t(XV), t(YV), t(ZV))
    close(get_grad(res, 0), W)
    close(get_grad(res, 2), YV)
    close(get_grad(res, net.b), YV)
    with pytest.raises(RuntimeError, match=r"no gradient for position 1.*\[0, 2, 'w', 'b'\]"):
        get_grad(res, 1)
    with pytest.raises(TypeError, match="identifier"):
        get_grad(res, 1.5)


class MultiOut(nn.Cell):
    """MindSpore's test_get_grad_by_position network: three outputs, all seeded with ones."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(t([2.0, 2.0]), name="w")

    def construct(self, x, y):
        return x * y * self.w, x, self.w


class GetGradNet(nn.Cell):
    def __init__(self, net, by_parameter):
        super().__init__()
        self.net, self.by_parameter = net, by_parameter
        self.weights = net.trainable_params()

    def construct(self, x, y):
        res = grad(self.net, 0, self.weights, return_ids=True)(x, y)
        if self.by_parameter:
            return get_grad(res, self.net.w)
        return get_grad(res, 0)


def test_get_grad_inside_construct():
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        x, y = t([1.0, 2.0]), t([3.0, 3.0])
        close(GetGradNet(MultiOut(), False)(x, y), [3.0 * 2 + 1, 3.0 * 2 + 1])   # y w + 1
        close(GetGradNet(MultiOut(), True)(x, y), [1 * 3 + 1, 2 * 3 + 1])       # x y + 1
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


# --------------------------------------------- positions: (), Python scalars, keywords

def test_empty_grad_position():
    net = Mul3()
    assert grad(net, ())(t(XV), t(YV), t(ZV)) == ()
    empty, (gw,) = grad(net, (), [net.w])(t(XV), t(YV), t(ZV))
    assert empty == ()
    close(gw, XV)


def test_gradient_for_a_python_scalar_is_zero():
    def scaled(x, s):
        return (x * s).sum()
    gx, gs = grad(scaled, (0, 1))(t([1.0, 2.0]), 3.0)
    close(gx, [3.0, 3.0])
    assert gs.shape == () and gs.asnumpy().dtype == np.float32
    close(gs, 0.0)
    value, gs = value_and_grad(scaled, 1)(t([1.0, 2.0]), 3.0)
    close(value, 9.0)
    close(gs, 0.0)


def test_keyword_arguments_in_graph_mode():
    def loss(x, y):
        return (x * x * y).sum()
    x, y = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    close(grad(loss)(t(x), y=t(y)), 2 * x * y)

    class KwNet(nn.Cell):
        def construct(self, x, y):
            return grad(loss)(x, y=y), value_and_grad(loss, 1)(x, y=y)

    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        gx, (value, gy) = KwNet()(t(x), t(y))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    close(gx, 2 * x * y)
    close(value, np.sum(x * x * y))
    close(gy, x * x)
    with pytest.raises(TypeError, match=r"loss\(\) missing 1 required positional argument\(s\): 'y'"):
        grad(loss)(t(x))


def test_out_of_range_position_is_an_index_error():
    with pytest.raises(IndexError, match="grad_position 3 is out of range"):
        grad(Mul3(), 3)(t(XV), t(YV), t(ZV))


def test_grad_operation_composes_to_second_order():
    cube = lambda x: (x ** 3).sum()      # noqa: E731
    x = np.array([0.5, -2.0, 3.0])
    second = GradOperation()(GradOperation()(cube))
    close(second(t(x)), 6 * x)                                   # d/dx sum(3 x^2)
    close(grad(GradOperation(sens_param=True)(cube))(t(x), t(2.0)), 12 * x)
