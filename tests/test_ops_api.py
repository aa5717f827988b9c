"""graphspore.ops against numpy (eager), set_seed reproducibility, error locations, context,
assign, and Cell parameter registration/naming as in MindSpore."""
import numpy as np
import pytest

import graphspore as mindspore
from graphspore import GraphsporeError, Parameter, Tensor, nn, ops

F32 = dict(rtol=2e-5, atol=2e-6)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def ab(rng):
    a = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2.0, (4,)).astype(np.float32)
    return a, b


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "equal": np.equal,
    "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_broadcast(name, ab):
    a, b = ab
    b = b.copy()
    b[1] = a[0, 1]                               # equal entries for the comparisons
    got = getattr(ops, name)(Tensor(a), Tensor(b))
    np.testing.assert_allclose(got.asnumpy(), BINARY[name](a, b), **F32)
    np.testing.assert_allclose(getattr(ops, name)(Tensor(a), 1.25).asnumpy(),
                               BINARY[name](a, np.float32(1.25)), **F32)


UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "sigmoid": sigmoid, "relu": lambda x: np.maximum(x, 0), "abs": np.abs,
    "square": np.square, "floor": np.floor, "sin": np.sin, "cos": np.cos,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops(name, rng):
    a = rng.standard_normal((2, 5)).astype(np.float32)
    if name in ("log", "sqrt"):
        a = np.abs(a) + 0.1
    np.testing.assert_allclose(getattr(ops, name)(Tensor(a)).asnumpy(), UNARY[name](a), **F32)


def test_sin_cos_compile_as_functions_and_methods_to_second_order(rng):
    x = rng.uniform(-6, 6, (3, 5)).astype(np.float32)
    both = mindspore.jit(lambda t: t.sin() * ops.cos(t) + t.cos())
    np.testing.assert_allclose(both(Tensor(x)).asnumpy(), np.sin(x) * np.cos(x) + np.cos(x),
                               **F32)
    first = mindspore.grad(lambda t: ops.sin(t).sum())             # cos x
    second = mindspore.grad(lambda t: first(t).sum())              # -sin x
    np.testing.assert_allclose(first(Tensor(x)).asnumpy(), np.cos(x), **F32)
    np.testing.assert_allclose(second(Tensor(x)).asnumpy(), -np.sin(x), **F32)
    assert ops.sin(Tensor(np.array([1, 2], np.int32))).dtype == mindspore.float32


def test_select_where_cast_clamp(ab):
    a, b = ab
    cond = a > 1.0
    for fn in (ops.select, ops.where):
        np.testing.assert_allclose(fn(Tensor(cond), Tensor(a), Tensor(b)).asnumpy(),
                                   np.where(cond, a, b))
    assert ops.cast(Tensor(a), mindspore.int32).dtype == mindspore.int32
    np.testing.assert_allclose(ops.clamp(Tensor(a), 0.8, 1.2).asnumpy(), np.clip(a, 0.8, 1.2))
    np.testing.assert_allclose(ops.clip_by_value(Tensor(a), 0.8).asnumpy(), np.maximum(a, 0.8))
    np.testing.assert_allclose(ops.div(Tensor([7, -7]), 2, rounding_mode="floor").asnumpy(),
                               [3, -4])
    np.testing.assert_allclose(ops.div(Tensor([7.0, -7.0]), 2, rounding_mode="trunc")
                               .asnumpy(), [3, -3])


def test_matmul_numpy_semantics(rng):
    m = rng.standard_normal((5, 3)).astype(np.float32)
    v = np.ones(5, np.float32)
    batch = rng.standard_normal((2, 4, 5)).astype(np.float32)
    for x, y in ((v, m), (m.T, v), (batch, m), (m.T, m)):
        np.testing.assert_allclose(ops.matmul(Tensor(x), Tensor(y)).asnumpy(), x @ y, **F32)


def test_shape_ops(rng):
    a = rng.standard_normal((2, 3, 1)).astype(np.float32)
    t = Tensor(a)
    assert ops.reshape(t, (3, 2)).shape == (3, 2)
    np.testing.assert_array_equal(ops.transpose(t, (2, 0, 1)).asnumpy(), a.transpose(2, 0, 1))
    assert ops.expand_dims(t, 0).shape == (1, 2, 3, 1)
    assert ops.squeeze(t).shape == (2, 3) and ops.squeeze(t, 2).shape == (2, 3)
    np.testing.assert_array_equal(ops.broadcast_to(t, (4, 2, 3, 5)).asnumpy(),
                                  np.broadcast_to(a, (4, 2, 3, 5)))
    assert ops.broadcast_to(t, (-1, -1, 6)).shape == (2, 3, 6)
    np.testing.assert_array_equal(ops.concat((t, t), axis=-1).asnumpy(),
                                  np.concatenate((a, a), -1))
    np.testing.assert_array_equal(ops.cat([t, t]).asnumpy(), np.concatenate((a, a)))
    np.testing.assert_array_equal(ops.stack([t, t], axis=1).asnumpy(), np.stack((a, a), 1))
    assert ops.flatten(t).shape == (2, 3) and ops.shape(t) == (2, 3, 1)


def test_reductions(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_allclose(ops.sum(t).asnumpy(), a.sum(), **F32)
    np.testing.assert_allclose(ops.sum(t, 1, keepdim=True).asnumpy(), a.sum(1, keepdims=True),
                               **F32)
    np.testing.assert_allclose(ops.mean(t, 0).asnumpy(), a.mean(0), **F32)
    values, indices = ops.max(t, axis=1)
    np.testing.assert_allclose(values.asnumpy(), a.max(1))
    np.testing.assert_array_equal(indices.asnumpy(), a.argmax(1))
    values, indices = ops.min(t, axis=0, keepdims=True)
    np.testing.assert_allclose(values.asnumpy(), a.min(0, keepdims=True))
    np.testing.assert_array_equal(indices.asnumpy(), a.argmin(0)[None])
    np.testing.assert_array_equal(ops.argmax(t).asnumpy(), a.argmax())
    np.testing.assert_array_equal(ops.argmax(t, dim=1).asnumpy(), a.argmax(1))
    np.testing.assert_allclose(ops.ReduceSum(keep_dims=True)(t, 1).asnumpy(),
                               a.sum(1, keepdims=True), **F32)
    np.testing.assert_allclose(ops.ReduceMean()(t).asnumpy(), a.mean(), **F32)
    np.testing.assert_allclose(ops.ReduceMax()(t, (0, 1)).asnumpy(), a.max())
    shifted = a - a.max(1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    np.testing.assert_allclose(ops.softmax(t).asnumpy(), softmax, **F32)
    np.testing.assert_allclose(ops.log_softmax(t, axis=1).asnumpy(), np.log(softmax),
                               rtol=1e-4, atol=1e-5)


def test_creation_ops():
    ones = ops.ones(5, mindspore.float32)
    assert ones.shape == (5,) and ones.dtype == mindspore.float32
    assert ops.zeros((2, 3)).asnumpy().tolist() == [[0.0] * 3] * 2
    t = Tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert ops.ones_like(t).dtype == mindspore.int32 and ops.zeros_like(t).shape == (2, 3)
    assert ops.full((2,), 7).asnumpy().tolist() == [7, 7] and ops.full((2,), 7).dtype == \
        mindspore.int64
    assert ops.fill(mindspore.float32, (2, 2), 3.0).asnumpy().tolist() == [[3.0, 3.0]] * 2
    assert ops.arange(0, 5, 2).asnumpy().tolist() == [0, 2, 4]
    assert ops.arange(1.0, 2.0, 0.5).dtype == mindspore.float32
    hot = ops.one_hot(Tensor([0, 2]), 3, Tensor(1.0), Tensor(0.0))
    np.testing.assert_array_equal(hot.asnumpy(), np.eye(3, dtype=np.float32)[[0, 2]])


def test_binary_cross_entropy_with_logits(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = (rng.uniform(size=(5, 3)) > 0.5).astype(np.float32)
    w = rng.uniform(0.5, 1.5, (3,)).astype(np.float32)
    pw = rng.uniform(0.5, 1.5, (3,)).astype(np.float32)
    p = sigmoid(x)
    loss = -w * (pw * y * np.log(p) + (1 - y) * np.log(1 - p))
    got = ops.binary_cross_entropy_with_logits(Tensor(x), Tensor(y), Tensor(w), Tensor(pw))
    np.testing.assert_allclose(got.asnumpy(), loss.mean(), rtol=1e-5)
    got = ops.binary_cross_entropy_with_logits(Tensor(x), Tensor(y), reduction="none")
    np.testing.assert_allclose(got.asnumpy(), -(y * np.log(p) + (1 - y) * np.log(1 - p)),
                               rtol=1e-5, atol=1e-6)


def test_stop_gradient_value():
    assert ops.stop_gradient(Tensor([1.0, 2.0])).asnumpy().tolist() == [1.0, 2.0]


def test_random_reproducible():
    mindspore.set_seed(0)
    first = (ops.randn((4, 3)), ops.rand(2, 2), ops.randint(0, 5, (6,)))
    mindspore.set_seed(0)
    second = (ops.randn((4, 3)), ops.rand(2, 2), ops.randint(0, 5, (6,)))
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x.asnumpy(), y.asnumpy())
    assert first[0].dtype == mindspore.float32 and first[0].shape == (4, 3)
    assert first[1].dtype == mindspore.float32 and first[2].dtype == mindspore.int64
    assert 0 <= first[1].asnumpy().min() and first[1].asnumpy().max() < 1
    assert not np.array_equal(ops.randn(4, 3).asnumpy(), first[0].asnumpy())


def test_shape_error_points_at_user_line():
    x, y = Tensor(np.ones((2, 3), np.float32)), Tensor(np.ones((4,), np.float32))
    with pytest.raises(GraphsporeError) as info:
        ops.add(x, y)  # the error must point here
    assert info.value.loc.file == __file__
    assert "the error must point here" in str(info.value)
    with pytest.raises(GraphsporeError) as info:
        x + y  # noqa: B018  (operator form)
    assert info.value.loc.file == __file__ and "operator form" in str(info.value)
    with pytest.raises(ValueError):                 # still a ValueError for callers
        x.sum(axis=5)


def test_assign_eager_writes_in_place():
    p = Parameter(Tensor(np.zeros(3, np.float32)), name="p")
    buffer = p._array
    ops.assign(p, Tensor([1.0, 2.0, 3.0]))
    assert p._array is buffer and p.asnumpy().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):
        ops.assign(Tensor([1.0]), Tensor([2.0]))


def test_context():
    assert mindspore.get_context("mode") == mindspore.PYNATIVE_MODE == 1
    assert mindspore.GRAPH_MODE == 0
    mindspore.set_context(device_target="CPU")
    with pytest.raises(ValueError, match="unknown option"):
        mindspore.set_context(not_an_option=1)
    with pytest.raises(ValueError):
        mindspore.set_context(device_target="GPU")


# ------------------------------------------------------------------------------- Cells

class Inner(nn.Cell):
    def __init__(self):
        super().__init__()
        self.weight = Parameter(Tensor(np.ones(2, np.float32)))
        self.bias = Parameter(Tensor(np.zeros(2, np.float32)), name="b")

    def construct(self, x):
        return x * self.weight + self.bias


class Outer(nn.Cell):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(Tensor(np.ones(1, np.float32)), name="scale")
        self.fc1 = Inner()
        self.block = Block()
        self.frozen = Parameter(Tensor(np.ones(1, np.float32)), name="frozen",
                                requires_grad=False)

    def construct(self, x):
        return self.block(self.fc1(x)) * self.scale


class Block(nn.Cell):
    def __init__(self):
        super().__init__()
        self.inner = Inner()

    def construct(self, x):
        return self.inner(x)


def test_cell_parameter_names_and_order():
    net = Outer()
    names = [n for n, _ in net.parameters_and_names()]
    assert names == ["scale", "frozen", "fc1.weight", "fc1.bias", "block.inner.weight",
                     "block.inner.bias"]
    assert [p.name for p in net.get_parameters()] == names
    assert [p.name for p in net.trainable_params()] == [n for n in names if n != "frozen"]
    assert [n for n, _ in net.cells_and_names()] == ["", "fc1", "block", "block.inner"]
    assert list(net.name_cells()) == ["fc1", "block"]
    assert net.fc1.weight is net.trainable_params()[1]


def test_cell_call_train_flag_and_insert():
    net = Outer()
    out = net(Tensor([1.0, 2.0]))
    np.testing.assert_allclose(out.asnumpy(), [1.0, 2.0])
    assert not net.training and net.set_train() is net
    assert net.training and net.fc1.training and net.block.inner.training
    net.insert_param_to_cell("extra", Parameter(Tensor([0.0])))
    assert net.extra.name == "extra" and "extra" in dict(net.parameters_and_names())
    net.fc1 = None
    assert "fc1.weight" not in dict(net.parameters_and_names())


def test_eager_nan_and_inf_are_values_without_warnings():
    """log(0), log(-1) and round(inf) give -inf, nan and inf eagerly, as compiled code does,
    without numpy's RuntimeWarnings."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ops.log(Tensor(np.array([0.0, -1.0], np.float32))).asnumpy()
        rounded = ops.round(Tensor(np.array([np.inf], np.float32))).asnumpy()
    assert out[0] == -np.inf and np.isnan(out[1]) and rounded[0] == np.inf
