"""The rest of the classic API: nn.WithGradCell, TrainOneStepCell(return_grad=True),
ms.mutable, Tensor.from_numpy / strides, ops.bmm / Tensor.bmm, F.typeof, x[True], list
returns, and MatMul's refusal to mix float32 with float64. Expected values: numpy."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, jit, nn, ops
from graphspore.ops import functional as F

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3)).astype(np.float32)
Y = RNG.standard_normal((4, 2)).astype(np.float32)
W = RNG.standard_normal((2, 3)).astype(np.float32)
B = RNG.standard_normal(2).astype(np.float32)


def dense():
    return nn.Dense(3, 2, weight_init=Tensor(W), bias_init=Tensor(B))


def mse_grads(w=W, b=B):
    """d mean((x w^T + b - y)^2) / (dw, db) in float64."""
    x, y = X.astype(np.float64), Y.astype(np.float64)
    r = x @ w.T + b - y
    return 2 * r.T @ x / r.size, 2 * r.sum(axis=0) / r.size, np.mean(r ** 2)


@pytest.fixture(params=[ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def mode(request):
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=ms.PYNATIVE_MODE)


def test_with_grad_cell_returns_the_weights_gradients(mode):
    gw, gb, _ = mse_grads()
    grads = nn.WithGradCell(dense(), nn.MSELoss())(Tensor(X), Tensor(Y))
    assert type(grads) is tuple and len(grads) == 2
    np.testing.assert_allclose(grads[0].asnumpy(), gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1].asnumpy(), gb, rtol=1e-5, atol=1e-6)


def test_with_grad_cell_sens_scales_the_gradients(mode):
    gw, gb, _ = mse_grads()
    grads = nn.WithGradCell(nn.WithLossCell(dense(), nn.MSELoss()), sens=0.5)(
        Tensor(X), Tensor(Y))
    np.testing.assert_allclose(grads[0].asnumpy(), 0.5 * gw, rtol=1e-5, atol=1e-6)
    grads = nn.WithGradCell(dense(), nn.MSELoss(), sens=Tensor(np.float32(-2.0)))(
        Tensor(X), Tensor(Y))
    np.testing.assert_allclose(grads[1].asnumpy(), -2.0 * gb, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="sens"):
        nn.WithGradCell(dense(), nn.MSELoss(), sens="one")


def test_train_one_step_cell_returns_loss_and_named_gradients(mode):
    net = dense()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()),
                               nn.SGD(net.trainable_params(), learning_rate=0.1),
                               return_grad=True)
    gw, gb, loss0 = mse_grads()
    loss, grads = step(Tensor(X), Tensor(Y))
    np.testing.assert_allclose(loss.asnumpy(), loss0, rtol=1e-5)
    assert list(grads) == [p.name for p in net.trainable_params()]
    np.testing.assert_allclose(grads[net.weight.name].asnumpy(), gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[net.bias.name].asnumpy(), gb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.weight.asnumpy(), W - 0.1 * gw, rtol=1e-5, atol=1e-6)
    plain = nn.TrainOneStepCell(nn.WithLossCell(dense(), nn.MSELoss()),
                                nn.SGD(dense().trainable_params(), learning_rate=0.1))
    assert isinstance(plain(Tensor(X), Tensor(Y)), Tensor)


# ------------------------------------------------------------------------ ms.mutable

def test_mutable_scalar_is_a_variable_with_a_gradient():
    def f(x, s):
        return (x * s * s).sum()
    x = Tensor(np.array([1.0, 2.0], np.float32))
    s = ms.mutable(3.0)
    assert isinstance(s, Tensor) and s.dtype == ms.float32 and s.shape == ()
    gx, gs = ms.grad(f, (0, 1))(x, s)
    np.testing.assert_allclose(gx.asnumpy(), [9.0, 9.0])
    np.testing.assert_allclose(gs.asnumpy(), 2 * 3.0 * 3.0)       # d/ds sum(x) s^2
    fn = jit(f)
    for value in (1.0, 2.0, 4.0):
        np.testing.assert_allclose(fn(x, ms.mutable(value)).asnumpy(), 3.0 * value ** 2)
    assert len(fn._programs) == 1                                 # one compilation


def test_mutable_keeps_containers_and_checks_types():
    t = Tensor(np.ones(2, np.float32))
    assert ms.mutable(t) is t
    out = ms.mutable([t, (t, 2)])
    assert type(out) is list and out[0] is t and type(out[1]) is tuple
    assert ms.mutable({"a": t})["a"] is t
    with pytest.raises(TypeError, match="mutable"):
        ms.mutable("text")
    with pytest.raises(ValueError, match="dynamic_len"):
        ms.mutable((t, t), dynamic_len=True)


# ------------------------------------------------------------------ Tensor additions

def test_from_numpy_shares_memory_and_strides():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor.from_numpy(a)
    a[0, 0] = 42.0
    assert t.asnumpy()[0, 0] == 42.0
    assert t.strides == (12, 4)
    transposed = Tensor.from_numpy(a.T)                 # not C-contiguous: copied
    assert transposed.shape == (3, 2) and transposed.strides == (8, 4)
    np.testing.assert_array_equal(transposed.asnumpy(), a.T)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        Tensor.from_numpy([1.0, 2.0])


def test_bmm_eager_compiled_and_as_method():
    a = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    b = RNG.standard_normal((2, 4, 5)).astype(np.float32)
    expected = np.matmul(a.astype(np.float64), b)
    np.testing.assert_allclose(ops.bmm(Tensor(a), Tensor(b)).asnumpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(Tensor(a).bmm(Tensor(b)).asnumpy(), expected, rtol=1e-5)
    out = jit(lambda x, y: x.bmm(y) * 2.0)(Tensor(a), Tensor(b))
    np.testing.assert_allclose(out.asnumpy(), 2 * expected, rtol=1e-5)
    with pytest.raises(ValueError, match="rank >= 3"):
        ops.bmm(Tensor(a[0]), Tensor(b[0]))


def test_typeof():
    assert repr(F.typeof(Tensor(np.ones(2, np.float32)))) == "Tensor[Float32]"
    assert F.typeof(1) == ms.int64 and F.typeof(True) == ms.bool_ and F.typeof(1.5) == ms.float32
    assert repr(F.typeof((1, [2.0]))) == "Tuple[Int64, List[Float32]]"

    @jit
    def f(x):
        if F.typeof(x) == F.typeof(Tensor(np.ones(1, np.float32))):
            return x + 1.0
        return x - 1.0
    np.testing.assert_allclose(f(Tensor(np.zeros(2, np.float32))).asnumpy(), [1.0, 1.0])
    np.testing.assert_allclose(f(Tensor(np.zeros(2))).asnumpy(), [-1.0, -1.0])


# -------------------------------------------------------- indexing and return values

def test_true_index_is_a_new_axis_and_false_is_refused():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for index in (True, (1, True), (True, Ellipsis, None)):
        expected = a[index]
        assert Tensor(a)[index].shape == expected.shape
        np.testing.assert_array_equal(jit(lambda x: x[index])(Tensor(a)).asnumpy(), expected)
    with pytest.raises(IndexError, match="bool index must be True"):
        Tensor(a)[False]
    with pytest.raises(IndexError, match="bool index must be True"):
        jit(lambda x: x[False])(Tensor(a))


def test_a_returned_list_stays_a_list(mode):
    class Pair(nn.Cell):
        def construct(self, x):
            return [x * 2.0, (x, x.sum())]
    out = Pair()(Tensor(np.ones(2, np.float32)))
    assert type(out) is list and type(out[1]) is tuple
    np.testing.assert_allclose(out[0].asnumpy(), [2.0, 2.0])


# ------------------------------------------------------- MatMul: one float dtype only

def test_matmul_refuses_float64_with_float32_naming_both_and_the_line():
    x64, w32 = Tensor(np.ones((2, 3))), Tensor(np.ones((3, 4), np.float32))
    for call in (lambda: ops.matmul(x64, w32), lambda: ops.MatMul()(x64, w32),
                 lambda: x64 @ w32, lambda: nn.Dense(3, 4)(x64)):
        with pytest.raises(TypeError, match=r"Float64 \(tensor<2x3xf64>\) and Float32") as info:
            call()
        assert f"{__file__}:" in str(info.value)
    with pytest.raises(TypeError, match=r"Float64.*Float32") as info:
        jit(lambda a, b: ops.matmul(a, b))(x64, w32)
    assert f"{__file__}:" in str(info.value)
    ints = ops.matmul(Tensor(np.ones((2, 3), np.int32)), w32)      # ints still promote
    assert ints.dtype == ms.float32


# ------------------------------------------------------- set_inputs with placeholders

class RowSums(nn.Cell):
    def construct(self, x):
        return x.sum(axis=1) * 2.0


def test_set_inputs_placeholders_accept_each_shape_and_compile_it_once(mode):
    from graphspore.api import _CELL_PROGRAMS
    net = RowSums()
    placeholder = Tensor(shape=[None, 3], dtype=ms.float32)
    assert placeholder.shape == (None, 3) and placeholder.dtype == ms.float32
    assert repr(placeholder) == "Tensor(shape=[-1, 3], dtype=Float32, value=<placeholder>)"
    net.set_inputs(placeholder)
    assert net.get_inputs() == (placeholder,)
    for rows in (2, 5, 2):
        a = RNG.standard_normal((rows, 3)).astype(np.float32)
        np.testing.assert_allclose(net(Tensor(a)).asnumpy(), 2 * a.sum(axis=1), rtol=1e-5)
    if mode == ms.GRAPH_MODE:
        assert len(_CELL_PROGRAMS[net]._programs) == 2           # shapes (2, 3) and (5, 3)


def test_set_inputs_checks_dtype_rank_and_fixed_dimensions():
    net = RowSums()
    net.set_inputs(Tensor(shape=[None, 3], dtype=ms.float32))
    with pytest.raises(ValueError, match=r"dimension 1 is 4, expected 3") as info:
        net(Tensor(np.ones((2, 4), np.float32)))
    assert f"{__file__}:" in str(info.value)
    with pytest.raises(TypeError, match="dtype Float64, expected Float32"):
        net(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="rank 1"):
        net(Tensor(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="declared 1 inputs, the call gives 2"):
        net(Tensor(np.ones((2, 3), np.float32)), Tensor(np.ones((2, 3), np.float32)))
    any_rank = RowSums()
    any_rank.set_inputs(Tensor(shape=None, dtype=ms.float32))
    np.testing.assert_allclose(any_rank(Tensor(np.ones((1, 4), np.float32))).asnumpy(), [8.0])
    with pytest.raises(ValueError, match="placeholder without data"):
        Tensor(shape=[None, 3], dtype=ms.float32).asnumpy()


# ------------------------------------------------------------ generator expressions

def test_generator_expression_is_refused_at_its_own_line_unless_consumed_at_once():
    x = Tensor(np.array([1.0, 2.0], np.float32))

    @jit
    def consumed(x):
        pair = tuple(v * 2.0 for v in (x, x))
        total = sum(v for v in (x, x))
        for w in (v + 1.0 for v in (x,)):
            total = total + w
        return pair[0] + total + max(v.sum() for v in (x, x))
    a = x.asnumpy()
    np.testing.assert_allclose(consumed(x).asnumpy(), 2 * a + 2 * a + (a + 1) + a.sum())

    def kept(x):
        lazy = (v * 2.0 for v in (x, x))
        return lazy
    line = kept.__code__.co_firstlineno + 1
    with pytest.raises(ms.GraphsporeError, match="generator expression is not supported") \
            as info:
        jit(kept)(x)
    assert f"{__file__}:{line}:" in str(info.value)


def test_trainable_params_inside_construct_feed_the_gradient(mode):
    class Step(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, x, y):
            return ms.value_and_grad(self.net, None, self.net.trainable_params())(x, y)

    gw, gb, loss0 = mse_grads()
    loss, (dw, db) = Step(nn.WithLossCell(dense(), nn.MSELoss()))(Tensor(X), Tensor(Y))
    np.testing.assert_allclose(loss.asnumpy(), loss0, rtol=1e-5)
    np.testing.assert_allclose(dw.asnumpy(), gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db.asnumpy(), gb, rtol=1e-5, atol=1e-6)
