"""The MindSpore ops added in ops_math, ops_array, ops_nn and ops_primitives, plus
ParameterTuple and the `mindspore.train` namespace: each function against numpy (or a closed
form) eagerly and inside one compiled function per group, gradients against float64 central
differences of the numpy reference, the Primitive classes eagerly and inside a compiled Cell,
and clear errors for bad arguments."""
import math

import numpy as np
import pytest
from numeric import central_difference

import graphspore as mindspore
from graphspore import GraphsporeError, Parameter, ParameterTuple, Tensor, grad, jit, nn, ops

F32 = dict(rtol=2e-5, atol=2e-6)
F64 = dict(rtol=1e-6, atol=1e-7)
erf_ref = np.vectorize(math.erf)


def as_numpy(out):
    if isinstance(out, (tuple, list)):
        return [as_numpy(o) for o in out]
    return out.asnumpy() if hasattr(out, "asnumpy") else out


def eager_and_compiled(fn, *arrays):
    """fn's outputs (as numpy) called eagerly and through jit, on the same Tensors."""
    tensors = [Tensor(a) for a in arrays]
    return as_numpy(fn(*tensors)), as_numpy(jit(fn)(*tensors))


def check(fn, arrays, expected, **tol):
    for got in eager_and_compiled(fn, *arrays):
        for g, e in zip(got, expected):
            assert np.asarray(g).shape == np.shape(e)
            np.testing.assert_allclose(g, e, **(tol or F32))


def check_grad(fn, reference, x, rng, **tol):
    """grad of sum(fn(x) * w) against central differences of the numpy reference."""
    w_array = rng.uniform(0.5, 1.5, np.shape(reference(x)))
    w = Tensor(w_array)
    got = grad(lambda a: ops.sum(fn(a) * w))(Tensor(x)).asnumpy()
    expected = central_difference(lambda a: reference(a) * w_array, x)
    np.testing.assert_allclose(got, expected, **(tol or dict(rtol=1e-5, atol=1e-6)))


# --------------------------------------------------------------------------- ops_math

def test_elementwise_math():
    x = np.array([[-2.5, -0.5, 0.5, 1.5, 2.45], [3.5, np.nan, np.inf, -np.inf, -7.25]],
                 np.float32)

    def fn(a):
        return (ops.isnan(a), ops.isinf(a), ops.isfinite(a), ops.round(a),
                ops.round(a, decimals=1), ops.erf(a), ops.rsqrt(ops.abs(a) + 1.0))
    with np.errstate(invalid="ignore"):                # round(inf): inf - floor(inf)
        expected = [np.isnan(x), np.isinf(x), np.isfinite(x), np.round(x), np.round(x, 1),
                    erf_ref(x.astype(np.float64)), 1 / np.sqrt(np.abs(x) + 1)]
        results = eager_and_compiled(fn, x)
    for got in results:
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=2e-6, atol=1.5e-7)
    ints = Tensor(np.array([3, -4]))
    assert not ops.isnan(ints).asnumpy().any() and ops.isfinite(ints).asnumpy().all()
    np.testing.assert_array_equal(ops.round(ints).asnumpy(), [3, -4])


def test_erf_accuracy_and_gradient(rng):
    for dtype in (np.float32, np.float64):
        x = np.linspace(-6, 6, 4001).astype(dtype)
        got = ops.erf(Tensor(x)).asnumpy()
        assert got.dtype == dtype
        assert np.abs(got - erf_ref(x.astype(np.float64))).max() < 1e-7
    x = rng.uniform(-3, 3, (7,))
    g = grad(lambda a: ops.sum(ops.erf(a)))(Tensor(x)).asnumpy()
    np.testing.assert_allclose(g, 2 / math.sqrt(math.pi) * np.exp(-x * x), atol=4e-6)


def test_reductions_and_statistics(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[1, 2, 3] = 0.0

    def fn(a):
        s, m = ops.std_mean(a, (0, 2), ddof=1)
        v, m2 = ops.var_mean(a, keepdims=True)
        return (ops.prod(a, 1), ops.prod(a, (0, 2), keep_dims=True), ops.prod(a),
                ops.var(a, 1), ops.std(a, -1, ddof=True, keepdims=True), s, m, v, m2,
                ops.cumsum(a, 1), ops.cumsum(a, -1))
    expected = [x.prod(1), x.prod((0, 2), keepdims=True), x.prod(), x.var(1),
                x.std(-1, ddof=1, keepdims=True), x.std((0, 2), ddof=1), x.mean((0, 2)),
                x.var(keepdims=True), x.mean(keepdims=True), x.cumsum(1), x.cumsum(-1)]
    check(fn, [x], expected, rtol=1e-5, atol=1e-5)
    counts = np.arange(1, 8).reshape(7, 1) * np.ones((1, 2), np.int64)
    got = ops.cumsum(Tensor(counts), 0)
    assert got.dtype == mindspore.int64
    np.testing.assert_array_equal(got.asnumpy(), counts.cumsum(0))
    assert ops.cumsum(Tensor(counts), 0, dtype=mindspore.float32).dtype == mindspore.float32
    np.testing.assert_array_equal(ops.prod(Tensor(counts), 0).asnumpy(), counts.prod(0))


def test_reduction_gradients(rng):
    x = rng.uniform(-2, 2, (3, 5))
    x[0, 1] = 0.0                                     # prod's gradient at a zero is exact
    check_grad(lambda a: ops.prod(a, 1), lambda a: a.prod(1), x, rng)
    check_grad(lambda a: ops.cumsum(a, 1), lambda a: a.cumsum(1), x, rng)
    check_grad(lambda a: ops.std(a, 0, ddof=1), lambda a: a.std(0, ddof=1), x, rng)
    check_grad(lambda a: ops.var(a), lambda a: a.var(), x, rng)


def test_norm(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 3, 4)).astype(np.float32)

    def fn(a, c):
        return (ops.norm(a), ops.norm(a, 1), ops.norm(a, -math.inf), ops.norm(a, "fro"),
                ops.norm(a, 3, 1), ops.norm(a, 0, 0), ops.norm(a, math.inf, 1, keepdim=True),
                ops.norm(c, None, (1, 2)), ops.norm(c, -1, (-2, -1)), ops.norm(c, 2, -1),
                ops.norm(c))
    linalg = np.linalg.norm
    expected = [linalg(x), linalg(x, 1), linalg(x, -np.inf), linalg(x, "fro"),
                linalg(x, 3, 1), linalg(x, 0, 0), linalg(x, np.inf, 1, keepdims=True),
                linalg(b, None, (1, 2)), linalg(b, -1, (-2, -1)), linalg(b, 2, -1),
                linalg(b.ravel())]
    check(fn, [x, b], expected, rtol=1e-5, atol=1e-5)
    y = rng.uniform(0.5, 2, (3, 4))
    check_grad(lambda a: ops.norm(a, 2, 1), lambda a: linalg(a, 2, 1), y, rng)
    check_grad(lambda a: ops.norm(a, 3, 0), lambda a: linalg(a, 3, 0), y, rng)
    check_grad(lambda a: ops.norm(a), lambda a: linalg(a), y, rng)


def test_topk(rng):
    x = rng.permutation(24).reshape(4, 6).astype(np.float32)
    x[0, :3] = 5.0                                    # ties come out in index order
    x[1, 4] = -np.inf

    def reference(a, k, axis, largest):
        order = np.argsort(-a if largest else a, axis=axis, kind="stable")
        index = np.take(order, range(k), axis=axis)
        return np.take_along_axis(a, index, axis=axis), index

    def fn(a):
        return ops.topk(a, 3) + ops.topk(a, 2, dim=0, largest=False)
    expected = list(reference(x, 3, 1, True)) + list(reference(x, 2, 0, False))
    for got in eager_and_compiled(fn, x):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
        assert got[1].dtype == np.int32
    x[1] = -np.inf                                    # an all -inf row: every index once
    values, index = ops.topk(Tensor(x), 6)
    assert sorted(index.asnumpy()[1]) == list(range(6))
    values, index = ops.topk(Tensor(np.array([3, 1, 2], np.int32)), 2, largest=False)
    np.testing.assert_array_equal(values.asnumpy(), [1, 2])
    y = rng.standard_normal((3, 5))
    check_grad(lambda a: ops.topk(a, 2)[0], lambda a: reference(a, 2, 1, True)[0], y, rng)


# -------------------------------------------------------------------------- ops_array

def test_array_functions(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    mask = x > 0

    def fn(a, m):
        pieces = ops.split(a, 2, 1) + ops.split(a, [1, 1], 0)
        gx, gy = ops.meshgrid(a[0], a[:, 0])
        ix, iy, iz = ops.meshgrid((a[0], a[:, 0], a[1, :2]), indexing="ij")
        return pieces + (ops.tile(a, (2, 2)), ops.tile(a, (2, 1, 1)), ops.tile(a, (3,)),
                         ops.repeat_interleave(a, 2, 1), ops.repeat_interleave(a, (1, 2), 0),
                         ops.repeat_interleave(a, 2), ops.narrow(a, 1, 1, 2),
                         ops.narrow(a, 0, -1, 1), ops.masked_fill(a, m, 7.0),
                         ops.addn((a, a, a)), gx, gy, ix, iy, iz)
    npx, npy = np.meshgrid(x[0], x[:, 0])
    ijx, ijy, ijz = np.meshgrid(x[0], x[:, 0], x[1, :2], indexing="ij")
    expected = [x[:, :2], x[:, 2:], x[:1], x[1:], np.tile(x, (2, 2)), np.tile(x, (2, 1, 1)),
                np.tile(x, 3), np.repeat(x, 2, 1), np.repeat(x, (1, 2), 0), np.repeat(x, 2),
                x[:, 1:3], x[-1:], np.where(mask, 7.0, x), 3 * x, npx, npy, ijx, ijy, ijz]
    check(fn, [x, mask], expected)


def test_creation_and_dot(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4, 2)).astype(np.float32)

    def fn(p, q):
        return (ops.dot(p, q), ops.dot(p[0], q[0]), ops.linspace(-1.0, 2.0, 7),
                ops.linspace(3, 3, 1), ops.eye(3), ops.eye(2, 4, mindspore.int32))
    expected = [np.dot(a, b), np.dot(a[0], b[0]), np.linspace(-1, 2, 7),
                np.array([3.0]), np.eye(3), np.eye(2, 4)]
    check(fn, [a, b], expected, rtol=1e-5, atol=1e-5)
    assert ops.eye(2, 4, mindspore.int32).dtype == mindspore.int32
    assert ops.linspace(0, 1, 5).dtype == mindspore.float32
    x = rng.standard_normal((2, 3))
    check_grad(lambda t: ops.tile(t, (2, 2)), lambda t: np.tile(t, (2, 2)), x, rng)
    check_grad(lambda t: ops.repeat_interleave(t, (2, 0, 1), 1),
               lambda t: np.repeat(t, (2, 0, 1), 1), x, rng)
    check_grad(lambda t: ops.split(t, (1, 2), 1)[1] * 2, lambda t: t[:, 1:] * 2, x, rng)
    c = rng.standard_normal((4, 3, 2))
    c_tensor = Tensor(c)
    check_grad(lambda t: ops.dot(t, c_tensor), lambda t: np.dot(t, c), x, rng)
    check_grad(lambda t: ops.masked_fill(t, t > 0, 1.0), lambda t: np.where(t > 0, 1.0, t),
               x, rng)


def test_random_draws():
    mindspore.set_seed(3)
    low = Tensor(np.array([0.0, 10.0], np.float32))
    first = ops.uniform((3, 1), low, Tensor(np.float32(12.0)))
    assert first.shape == (3, 2) and first.dtype == mindspore.float32
    u = first.asnumpy()
    assert (u >= [0, 10]).all() and (u < 12).all()
    ints = ops.uniform((200,), Tensor(1, mindspore.int32), Tensor(4, mindspore.int32),
                       dtype=mindspore.int32)
    assert ints.dtype == mindspore.int32 and set(ints.asnumpy().tolist()) == {1, 2, 3}
    mindspore.set_seed(3)
    np.testing.assert_array_equal(ops.uniform((3, 1), low, Tensor(np.float32(12.0)))
                                  .asnumpy(), u)
    n = ops.normal((4000,), 2.0, Tensor(np.float64(0.5)))
    assert n.dtype == mindspore.float64
    assert abs(n.asnumpy().mean() - 2.0) < 0.05 and abs(n.asnumpy().std() - 0.5) < 0.05
    assert ops.normal((2, 1), Tensor(np.zeros(3, np.float32)), 1.0).shape == (2, 3)
    with pytest.raises(GraphsporeError, match="cannot run inside a compiled function"):
        jit(lambda x: x + ops.normal((2,), 0.0, 1.0))(Tensor(np.zeros(2, np.float32)))
    with pytest.raises(ValueError, match="minval must be less"):
        ops.uniform((2,), Tensor(1.0), Tensor(1.0))


# ----------------------------------------------------------------------------- ops_nn

def softplus_ref(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def gelu_ref(x):
    return 0.5 * x * (1 + erf_ref(x / math.sqrt(2)))


def gelu_tanh_ref(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


ACTIVATIONS = [
    (lambda a: ops.softplus(a), softplus_ref),
    (lambda a: ops.softplus(a, 2, 4), lambda x: softplus_ref(x, 2.0, 4.0)),
    (lambda a: ops.silu(a), lambda x: x / (1 + np.exp(-x))),
    (lambda a: ops.gelu(a), gelu_ref),
    (lambda a: ops.gelu(a, approximate="tanh"), gelu_tanh_ref),
    (lambda a: ops.leaky_relu(a, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (lambda a: ops.elu(a, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (lambda a: ops.hardswish(a), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (lambda a: ops.relu6(a), lambda x: np.clip(x, 0, 6)),
]


def test_activations(rng):
    x = np.concatenate([rng.uniform(-5, 8, 21), [-100.0, 100.0, 1000.0]]).astype(np.float32)

    def fn(a):
        return tuple(f(a) for f, _ in ACTIVATIONS)
    with np.errstate(over="ignore"):                   # expm1(1000) in the unused branch
        expected = [ref(x.astype(np.float64)) for _, ref in ACTIVATIONS]
    check(fn, [x], expected, rtol=2e-5, atol=2e-6)
    y = np.concatenate([rng.uniform(-4, 4, 9), [-30.0, 40.0]])   # kinks avoided below
    y = y[np.abs(np.abs(y) - 3) > 0.01]
    y = y[np.abs(y) > 0.01]
    for fn_, ref in ACTIVATIONS:
        check_grad(fn_, ref, y, rng, rtol=1e-5, atol=4e-6)
    g = grad(lambda a: ops.sum(ops.elu(a) + ops.softplus(a, 1, 5)))(Tensor(x)).asnumpy()
    assert np.isfinite(g).all()                       # no inf * 0 in the unused branches


def nll_reference(logp, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """MindSpore's nll_loss on class axis 1 (0 for 1-D inputs), written with numpy."""
    axis = 0 if logp.ndim == 1 else 1
    classes = logp.shape[axis]
    lp = np.moveaxis(logp, axis, -1)
    w = np.ones(classes) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(lp, safe[..., None], -1)[..., 0]
    weights = w[safe] * valid
    loss = -weights * picked
    smooth = -(lp * w).sum(-1) * valid
    loss = (1 - label_smoothing) * loss + label_smoothing / classes * smooth
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / weights.sum()


def log_softmax_ref(x, axis):
    shifted = x - x.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def test_losses(rng):
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    image = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    labels = np.array([0, 2, -100, 1], np.int32)
    image_labels = np.array([[[0, 1], [2, 2]], [[1, 1], [0, 2]]], np.int32)
    probs = np.abs(rng.standard_normal((4, 3))).astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    weight = np.array([0.2, 1.0, 3.0], np.float32)
    target = rng.standard_normal((4, 3)).astype(np.float32)

    def fn(x, y, img, img_y, p, w, t):
        return (ops.nll_loss(x, y), ops.nll_loss(x, y, w, reduction="sum"),
                ops.nll_loss(img, img_y, w, ignore_index=2, reduction="none",
                             label_smoothing=0.2),
                ops.nll_loss(x, y, w, label_smoothing=0.3),
                ops.cross_entropy(x, y), ops.cross_entropy(x, y, w, label_smoothing=0.1),
                ops.cross_entropy(img, img_y, reduction="sum"),
                ops.cross_entropy(x, p), ops.cross_entropy(x, p, w, reduction="none",
                                                           label_smoothing=0.2),
                ops.mse_loss(x, t), ops.mse_loss(x, t, "none"), ops.l1_loss(x, t, "sum"))
    lp, lp_img = log_softmax_ref(logits, 1), log_softmax_ref(image, 1)
    smoothed = probs * 0.8 + 0.2 / 3
    expected = [nll_reference(logits, labels), nll_reference(logits, labels, weight, -100, "sum"),
                nll_reference(image, image_labels, weight, 2, "none", 0.2),
                nll_reference(logits, labels, weight, label_smoothing=0.3),
                nll_reference(lp, labels), nll_reference(lp, labels, weight,
                                                         label_smoothing=0.1),
                nll_reference(lp_img, image_labels, reduction="sum"),
                -(lp * probs).sum() / 4, -(lp * smoothed * weight).sum(1),
                ((logits - target) ** 2).mean(), (logits - target) ** 2,
                np.abs(logits - target).sum()]
    check(fn, [logits, labels, image, image_labels, probs, weight, target], expected,
          rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((4, 3))
    w64 = weight.astype(np.float64)
    y, w = Tensor(labels), Tensor(w64)
    check_grad(lambda a: ops.cross_entropy(a, y, w, label_smoothing=0.1),
               lambda a: nll_reference(log_softmax_ref(a, 1), labels, w64,
                                       label_smoothing=0.1), x, rng)
    check_grad(lambda a: ops.nll_loss(a, y, reduction="none"),
               lambda a: nll_reference(a, labels, reduction="none"), x, rng)


def test_dropout():
    x = np.ones((100, 40), np.float32)
    mindspore.set_seed(11)
    first = ops.dropout(Tensor(x), p=0.25).asnumpy()
    kept = first != 0
    assert abs(kept.mean() - 0.75) < 0.03
    np.testing.assert_allclose(first[kept], 1 / 0.75)
    assert (ops.dropout(Tensor(x), 0.25).asnumpy() != first).any()      # a new mask per call
    mindspore.set_seed(11)
    np.testing.assert_array_equal(ops.dropout(Tensor(x), p=0.25).asnumpy(), first)
    np.testing.assert_array_equal(ops.dropout(Tensor(x), 0.6, training=False).asnumpy(), x)
    np.testing.assert_array_equal(ops.dropout(Tensor(x), 1.0).asnumpy(), 0 * x)

    step = jit(lambda a: ops.dropout(a, 0.5) + ops.dropout(a, 0.5))
    mindspore.set_seed(4)
    eager = [(ops.dropout(Tensor(x), 0.5) + ops.dropout(Tensor(x), 0.5)).asnumpy()
             for _ in range(2)]
    mindspore.set_seed(4)
    compiled = [step(Tensor(x)).asnumpy() for _ in range(2)]
    np.testing.assert_array_equal(compiled, eager)      # compiled draws advance like eager
    assert (compiled[0] != compiled[1]).any() and (compiled[0] == 4).any()
    g = grad(lambda a: ops.sum(ops.dropout(a, 0.5)))(Tensor(x)).asnumpy()
    assert set(np.unique(g)) <= {0.0, 2.0} and (g == 2.0).any()


# ----------------------------------------------------------------------- primitives

class PrimitiveNet(nn.Cell):
    """Primitives built in __init__ and inside construct, as MindSpore code does both."""

    def __init__(self):
        super().__init__()
        self.softmax, self.concat = ops.Softmax(axis=-1), ops.Concat(1)
        self.transpose, self.reshape, self.cast = ops.Transpose(), ops.Reshape(), ops.Cast()
        self.expand, self.squeeze, self.tile = ops.ExpandDims(), ops.Squeeze(0), ops.Tile()
        self.onehot, self.argmax = ops.OneHot(), ops.Argmax(1, mindspore.int64)
        self.argmax_value = ops.ArgMaxWithValue(axis=1, keep_dims=True)
        self.bmm = ops.BatchMatMul(transpose_b=True)
        self.layer_norm = ops.LayerNorm(1, 1, 1e-5)
        self.gamma = Parameter(Tensor(np.linspace(0.5, 1.5, 4).astype(np.float32)), "gamma")
        self.beta = Parameter(Tensor(np.full(4, 0.1, np.float32)), "beta")

    def construct(self, x, labels, cond):
        shape = ops.Shape()(x)
        flat = self.reshape(x, (shape[0] * shape[1],))
        index, value = self.argmax_value(x)
        y, mean, var = self.layer_norm(x, self.gamma, self.beta)
        return (self.softmax(x), self.concat((x, x)), self.transpose(x, (1, 0)), flat,
                self.cast(x, mindspore.float64), self.squeeze(self.expand(x, 0)),
                self.tile(x, (1, 2)), self.onehot(labels, 4, Tensor(1.0), Tensor(0.0)),
                self.argmax(x), index, value, self.bmm(x, x), y, mean, var,
                ops.Sqrt()(ops.Abs()(x)), ops.Exp()(x), ops.Log()(ops.Abs()(x) + 1),
                ops.Sigmoid()(x), ops.Tanh()(x), ops.Sin()(x), ops.Cos()(x), ops.ReLU()(x),
                ops.Mul()(x, 2.0),
                ops.Add()(x, x), ops.Sub()(x, 1.0), ops.Div()(x, 2.0), ops.Pow()(x, 2.0),
                ops.Maximum()(x, 0.0), ops.Minimum()(x, 0.0), ops.Select()(cond, x, 0.0),
                ops.Zeros()((2, 2), mindspore.float32), ops.Ones()(3, mindspore.int32),
                ops.Fill()(mindspore.float32, (2,), 2.5), ops.ZerosLike()(x),
                ops.OnesLike()(x), ops.Rank()(x) + ops.Size()(x) + x * 0)


def test_primitives_eager_and_in_a_compiled_cell(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    labels = np.array([0, 3, 1], np.int32)
    cond = x > 0
    e = np.exp(x - x.max(1, keepdims=True))
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    gamma = np.linspace(0.5, 1.5, 4)
    expected = [e / e.sum(1, keepdims=True), np.concatenate((x, x), 1), x.T, x.ravel(), x, x,
                np.tile(x, (1, 2)), np.eye(4)[labels], x.argmax(1), x.argmax(1)[:, None],
                x.max(1, keepdims=True), x @ x.T, (x - mean) / np.sqrt(var + 1e-5) * gamma + 0.1,
                mean, var, np.sqrt(np.abs(x)), np.exp(x), np.log(np.abs(x) + 1),
                1 / (1 + np.exp(-x)), np.tanh(x), np.sin(x), np.cos(x), np.maximum(x, 0), 2 * x,
                2 * x, x - 1,
                x / 2, x ** 2, np.maximum(x, 0), np.minimum(x, 0), np.where(cond, x, 0),
                np.zeros((2, 2)), np.ones(3), np.full(2, 2.5), 0 * x, 1 + 0 * x,
                np.full_like(x, 14)]
    net = PrimitiveNet()
    for got in (net(Tensor(x), Tensor(labels), Tensor(cond)),
                jit(net)(Tensor(x), Tensor(labels), Tensor(cond))):
        got = as_numpy(got)
        assert len(got) == len(expected)
        for g, want in zip(got, expected):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)
        assert got[4].dtype == np.float64 and got[8].dtype == np.int64
        assert got[9].dtype == np.int64 and got[32].dtype == np.int32
    assert ops.Shape()(Tensor(x)) == (3, 4) and ops.Rank()(Tensor(x)) == 2
    assert ops.Size()(Tensor(x)) == 12 and ops.size(Tensor(x)) == 12
    assert ops.Argmax()(Tensor(x)).dtype == mindspore.int32
    np.testing.assert_allclose(ops.AddN()((Tensor(x), Tensor(x))).asnumpy(), 2 * x)
    soft = ops.Softmax(axis=(0, 1))(Tensor(x)).asnumpy()
    np.testing.assert_allclose(soft, np.exp(x) / np.exp(x).sum(), **F32)
    batched = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(ops.BatchMatMul(True)(Tensor(batched), Tensor(batched))
                               .asnumpy(), batched.transpose(0, 2, 1) @ batched, **F32)
    scale, shift = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)
    scale_t, shift_t = Tensor(scale), Tensor(shift)

    def layer_norm(a):
        centered = a - a.mean(1, keepdims=True)
        return centered / np.sqrt((centered ** 2).mean(1, keepdims=True) + 1e-5) * scale + shift
    check_grad(lambda a: ops.LayerNorm(1, 1, 1e-5)(a, scale_t, shift_t)[0], layer_norm,
               x.astype(np.float64), rng)
    assert "Softmax(axis=-1)" == repr(ops.Softmax())


# --------------------------------------------------------------- top-level additions

def test_parameter_tuple_and_train_namespace():
    a = Parameter(Tensor(np.ones(2, np.float32)), "a")
    b = Parameter(Tensor(np.full((2, 2), 3.0, np.float32)), "b")
    params = ParameterTuple([a, b])
    assert isinstance(params, tuple) and params[1] is b
    copies = params.clone("moment", init="zeros")
    assert [p.name for p in copies] == ["moment.a", "moment.b"]
    assert copies[1].shape == (2, 2) and not copies[1].asnumpy().any()
    same = params.clone("copy")
    assert same[1] is not b and (same[1].asnumpy() == 3).all()
    with pytest.raises(TypeError, match="must be a Parameter"):
        ParameterTuple([a, Tensor(1.0)])
    with pytest.raises(ValueError, match="appears twice"):
        ParameterTuple([a, a])
    ga, gb = grad(lambda: ops.sum(a * 2) + ops.sum(b), None, params)()
    np.testing.assert_allclose(ga.asnumpy(), [2, 2])
    from graphspore.train import Model, LossMonitor, Callback
    from graphspore.train.callback import LossMonitor as monitor
    from graphspore.train.serialization import load_checkpoint
    assert mindspore.Model is Model is nn.Model and monitor is LossMonitor
    assert issubclass(LossMonitor, Callback) and load_checkpoint is mindspore.load_checkpoint
    assert mindspore.train.TimeMonitor is mindspore.TimeMonitor
    with pytest.raises(AttributeError):
        mindspore.train.Dense                         # only mindspore.train's names


def test_train_namespace_serves_helpers_added_later(monkeypatch):
    class EarlyStopping(mindspore.train.Callback):
        pass
    monkeypatch.setattr(nn, "EarlyStopping", EarlyStopping, raising=False)
    from graphspore.train import EarlyStopping as imported
    assert imported is EarlyStopping and mindspore.EarlyStopping is EarlyStopping


# ----------------------------------------------------------------------------- errors

BAD_CALLS = [
    (lambda t: ops.tile(t, (2, -1)), ValueError, "dims must be >= 0"),
    (lambda t: ops.tile(t, 2.5), TypeError, "tuple of ints"),
    (lambda t: ops.split(t, (1, 1), 1), ValueError, "add up to 3"),
    (lambda t: ops.split(t, 0), ValueError, "must be positive"),
    (lambda t: ops.narrow(t, 1, 2, 2), ValueError, "exceeds axis 1"),
    (lambda t: ops.topk(t, 4), ValueError, "k must be an int in"),
    (lambda t: ops.norm(t, "nuc"), ValueError, "singular values"),
    (lambda t: ops.norm(t, "fro", 1), TypeError, "matrix norm"),
    (lambda t: ops.norm(t, 7, (0, 1)), ValueError, "not a matrix norm"),
    (lambda t: ops.dot(t, t[0]), ValueError, "rank >= 2"),
    (lambda t: ops.masked_fill(t, t, 1.0), TypeError, "bool tensor"),
    (lambda t: ops.addn(t), TypeError, "tuple or list"),
    (lambda t: ops.addn((t, t[0])), ValueError, "one shape"),
    (lambda t: ops.gelu(t, "fast"), ValueError, "'none' or 'tanh'"),
    (lambda t: ops.mse_loss(t, t, "avg"), ValueError, "reduction must be"),
    (lambda t: ops.cross_entropy(t, t[:, :2]), ValueError, "input's shape"),
    (lambda t: ops.nll_loss(t, Tensor(np.zeros(3, np.int32))), ValueError, "target must"),
    (lambda t: ops.nll_loss(t, t[:, 0]), TypeError, "integer class indices"),
    (lambda t: ops.dropout(t, 1.5), ValueError, "p must be a number in"),
    (lambda t: ops.std(t, ddof=0.5), TypeError, "ddof must be"),
    (lambda t: ops.repeat_interleave(t, (1, 2), 1), ValueError, "one non-negative count"),
    (lambda t: ops.meshgrid(t), ValueError, "1-D tensors"),
    (lambda t: ops.LayerNorm()(t, t, t), ValueError, "gamma must have shape"),
    (lambda t: ops.Argmax(output_type=mindspore.float32), TypeError, "int32 or int64"),
]


@pytest.mark.parametrize("call, error, message", BAD_CALLS)
def test_bad_arguments(call, error, message):
    t = Tensor(np.ones((2, 3), np.float32))
    with pytest.raises(error, match=message):
        call(t)


def test_bad_arguments_in_compiled_code_name_the_line():
    with pytest.raises(GraphsporeError, match="dims must be >= 0") as info:
        jit(lambda t: ops.tile(t, (2, -1)))(Tensor(np.ones(2, np.float32)))
    assert "test_ops_coverage.py" in str(info.value)
