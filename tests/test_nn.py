"""nn layers, losses and initializers against numpy references, eagerly and compiled (jit)."""
import math

import numpy as np
import pytest

import graphspore
from graphspore import Parameter, Tensor, jit, nn, ops
from graphspore.nn import init

MODES = ["eager", "compiled"]




def run(cell, *inputs, mode="eager"):
    """The cell's output as numpy, called eagerly or through a compiled (jit) call."""
    tensors = [Tensor(x) if isinstance(x, np.ndarray) else x for x in inputs]
    out = cell(*tensors) if mode == "eager" else jit(cell)(*tensors)
    return out.asnumpy()


def close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- layers

@pytest.mark.parametrize("mode", MODES)
def test_dense(mode, rng):
    graphspore.set_seed(1)
    layer = nn.Dense(5, 3)
    w, b = layer.weight.asnumpy(), layer.bias.asnumpy()
    assert w.shape == (3, 5) and b.shape == (3,)
    bound = 1 / math.sqrt(5)                  # HeUniform(sqrt(5)) and Uniform(1/sqrt(in))
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    x = rng.normal(size=(4, 5)).astype(np.float32)
    close(run(layer, x, mode=mode), x @ w.T + b)
    relu = nn.Dense(5, 3, weight_init="normal", bias_init="zeros", activation="relu")
    wr = relu.weight.asnumpy()
    close(run(relu, x, mode=mode), np.maximum(x @ wr.T, 0))
    x3 = rng.normal(size=(2, 4, 5)).astype(np.float32)
    close(run(layer, x3, mode=mode), x3 @ w.T + b)
    nobias = nn.Dense(5, 2, has_bias=False)
    assert [n for n, _ in nobias.parameters_and_names()] == ["weight"]


def test_dense_init_is_reproducible():
    graphspore.set_seed(3)
    a = nn.Dense(4, 4).weight.asnumpy()
    graphspore.set_seed(3)
    np.testing.assert_array_equal(a, nn.Dense(4, 4).weight.asnumpy())


@pytest.mark.parametrize("mode", MODES)
def test_activations_and_flatten(mode, rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    close(run(nn.ReLU(), x, mode=mode), np.maximum(x, 0))
    close(run(nn.Sigmoid(), x, mode=mode), 1 / (1 + np.exp(-x)))
    close(run(nn.Tanh(), x, mode=mode), np.tanh(x))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    close(run(nn.Softmax(axis=1), x, mode=mode), e / e.sum(axis=1, keepdims=True))
    shifted = x - x.max(-1, keepdims=True)
    close(run(nn.LogSoftmax(), x, mode=mode),
          shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)))
    close(run(nn.Flatten(), x, mode=mode), x.reshape(2, 12))


@pytest.mark.parametrize("mode", MODES)
def test_sequential_and_cell_list(mode, rng):
    graphspore.set_seed(0)
    net = nn.SequentialCell([nn.Dense(4, 6), nn.ReLU(), nn.Dense(6, 2)])
    names = [n for n, _ in net.parameters_and_names()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = rng.normal(size=(3, 4)).astype(np.float32)
    w0, b0 = net[0].weight.asnumpy(), net[0].bias.asnumpy()
    w2, b2 = net[2].weight.asnumpy(), net[2].bias.asnumpy()
    close(run(net, x, mode=mode), np.maximum(x @ w0.T + b0, 0) @ w2.T + b2)
    cells = nn.CellList([nn.Dense(2, 2), nn.Dense(2, 3)])
    assert len(cells) == 2 and len(list(cells.trainable_params())) == 4


def test_dropout_eager_statistics_and_eval():
    graphspore.set_seed(5)
    layer = nn.Dropout(p=0.25)
    x = np.ones((200, 50), np.float32)
    layer.set_train(False)
    close(run(layer, x), x)
    layer.set_train(True)
    first, second = run(layer, x), run(layer, x)
    kept = first != 0
    assert abs(kept.mean() - 0.75) < 0.02
    close(first[kept], np.full(kept.sum(), 1 / 0.75))
    assert (first != second).any()                 # a new mask per call
    assert nn.Dropout(keep_prob=0.9).p == pytest.approx(0.1)
    assert nn.Dropout().trainable_params() == []


def test_dropout_compiled_matches_eager():
    graphspore.set_seed(7)
    eager, compiled = nn.Dropout(p=0.5), nn.Dropout(p=0.5)
    compiled.state.set_data(Tensor(eager.state.asnumpy()))
    eager.set_train(True)
    compiled.set_train(True)
    x = np.arange(1, 61, dtype=np.float32).reshape(6, 10)
    step = jit(compiled)
    for _ in range(2):                             # the state advances identically
        close(step(Tensor(x)).asnumpy(), run(eager, x))


def _conv_reference(x, w, stride, dilation, pads):
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = (h - (kh - 1) * dilation - 1) // stride + 1
    ow = (wd - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + (kh - 1) * dilation + 1:dilation,
                      j * stride:j * stride + (kw - 1) * dilation + 1:dilation]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


CONV_CASES = [  # pad_mode, padding, stride, dilation, expected (top, bottom, left, right)
    ("valid", 0, 1, 1, (0, 0, 0, 0)),
    ("same", 0, 1, 1, (1, 1, 1, 1)),
    ("same", 0, 2, 1, (0, 1, 1, 1)),
    ("pad", 1, 2, 1, (1, 1, 1, 1)),
    ("pad", (0, 1, 2, 0), 1, 1, (0, 1, 2, 0)),
    ("valid", 0, 1, 2, (0, 0, 0, 0)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad_mode,padding,stride,dilation,pads", CONV_CASES)
def test_conv2d(mode, pad_mode, padding, stride, dilation, pads, rng):
    conv = nn.Conv2d(3, 4, 3, stride=stride, pad_mode=pad_mode, padding=padding,
                     dilation=dilation, has_bias=True)
    assert conv.weight.shape == (4, 3, 3, 3)
    x = rng.normal(size=(2, 3, 8, 7)).astype(np.float32)
    w, b = conv.weight.asnumpy(), conv.bias.asnumpy()
    expected = _conv_reference(x, w, stride, dilation, pads) + b[None, :, None, None]
    close(run(conv, x, mode=mode), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_groups(mode, rng):
    """group=2: each half of the output channels sees one half of the input channels."""
    conv = nn.Conv2d(4, 6, 3, pad_mode="pad", padding=1, group=2, has_bias=True)
    assert conv.weight.shape == (6, 2, 3, 3)
    x = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
    w, b = conv.weight.asnumpy(), conv.bias.asnumpy()
    expected = np.concatenate([_conv_reference(x[:, :2], w[:3], 1, 1, (1, 1, 1, 1)),
                               _conv_reference(x[:, 2:], w[3:], 1, 1, (1, 1, 1, 1))], axis=1)
    close(run(conv, x, mode=mode), expected + b[None, :, None, None], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="group=3 must divide"):
        nn.Conv2d(4, 6, 3, group=3)


def test_conv2d_input_and_weight_gradients_match_finite_differences(rng):
    """<grad, d> against central differences of the float64 reference: the conv is linear in
    x and in W, so the differences are exact up to rounding."""
    conv = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), pad_mode="pad", padding=(1, 0, 1, 1),
                     dilation=(1, 2), group=2)
    x = rng.normal(size=(2, 4, 7, 6)).astype(np.float32)
    w = conv.weight.asnumpy().astype(np.float64)
    pads = (1, 0, 1, 1)

    def reference(xv, wv):
        x_pad = np.pad(xv, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
        halves = []
        for g in range(2):
            part, kernel = x_pad[:, 2 * g:2 * g + 2], wv[3 * g:3 * g + 3]
            out = np.zeros((2, 3, 3, 6))
            for i in range(3):
                for j in range(6):
                    patch = part[:, :, 2 * i:2 * i + 3, j:j + 3:2]
                    out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, kernel)
            halves.append(out)
        return np.concatenate(halves, axis=1)
    cot = rng.normal(size=(2, 6, 3, 6))
    assert run(conv, x).shape == cot.shape
    dx, dw = graphspore.grad(lambda a, b: (conv(a) * b).sum(), 0, conv.weight)(
        Tensor(x), Tensor(cot.astype(np.float32)))
    for grad, shape, shift in ((dx, x.shape, lambda d, s: (x + s * d, w)),
                               (dw, w.shape, lambda d, s: (x, w + s * d))):
        d = rng.normal(size=shape)
        f = lambda s: np.sum(cot * reference(*shift(d, s)))  # noqa: E731
        numeric = (f(1e-3) - f(-1e-3)) / 2e-3
        assert abs(np.sum(grad.asnumpy() * d) - numeric) <= 1e-4 * (1 + abs(numeric))


@pytest.mark.parametrize("mode", MODES)
def test_functional_conv_pool_unfold_fold(mode, rng):
    """ops.conv2d/max_pool2d/avg_pool2d/unfold/fold (MindSpore's signatures) against numpy."""
    x = rng.normal(size=(2, 4, 7, 6)).astype(np.float32)
    w = rng.normal(size=(6, 2, 3, 3)).astype(np.float32)
    call = (lambda f, *a: f(*a)) if mode == "eager" else (lambda f, *a: jit(f)(*a))
    got = call(lambda a, b: ops.conv2d(a, b, None, 1, "pad", 1, 1, 2), Tensor(x), Tensor(w))
    expected = np.concatenate([_conv_reference(x[:, :2], w[:3], 1, 1, (1, 1, 1, 1)),
                               _conv_reference(x[:, 2:], w[3:], 1, 1, (1, 1, 1, 1))], axis=1)
    close(got.asnumpy(), expected, rtol=1e-4, atol=1e-4)
    close(call(lambda a: ops.max_pool2d(a, 2), Tensor(x)).asnumpy(),
          _pool_reference(x, 2, 2, (0, 0, 0, 0), np.max, 0))
    close(call(lambda a: ops.avg_pool2d(a, 3, 2, 1), Tensor(x)).asnumpy(),
          _pool_reference(x, 3, 2, (1, 1, 1, 1), np.mean, 0))
    cols = call(lambda a: ops.unfold(a, 3, padding=1), Tensor(x)).asnumpy()     # (N, C*9, L)
    by_cols = np.einsum("ok,nkl->nol", w[:3].reshape(3, -1), cols[:, :18])
    close(by_cols.reshape(2, 3, 7, 6), expected[:, :3], rtol=1e-4, atol=1e-4)
    ones = call(lambda c: ops.fold(c, (7, 6), 3, padding=1), Tensor(np.ones_like(cols)))
    counts = _conv_reference(np.ones((1, 1, 7, 6)), np.ones((1, 1, 3, 3)), 1, 1, (1, 1, 1, 1))
    close(ones.asnumpy(), np.broadcast_to(counts, (2, 4, 7, 6)))    # taps covering a pixel


def test_avg_pool_gradient_spreads_evenly(rng):
    pool = nn.AvgPool2d(2, 1)
    x = rng.normal(size=(1, 2, 3, 3)).astype(np.float32)
    dx = graphspore.grad(lambda a: pool(a).sum())(Tensor(x)).asnumpy()
    counts = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4       # windows covering a pixel
    close(dx, np.broadcast_to(counts, x.shape))


def test_conv2d_defaults_and_errors():
    conv = nn.Conv2d(2, 5, (3, 1))
    assert conv.has_bias is False and conv.pad_mode == "same"
    assert np.abs(conv.weight.asnumpy()).max() <= 1 / math.sqrt(2 * 3)
    with pytest.raises(ValueError, match="pad_mode"):
        nn.Conv2d(1, 1, 3, pad_mode="full")
    with pytest.raises(ValueError, match="padding must be 0"):
        nn.Conv2d(1, 1, 3, pad_mode="same", padding=1)


def _pool_reference(x, k, s, pads, fold, fill):
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])),
               constant_values=fill)
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = fold(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_pooling(mode, rng):
    x = rng.normal(size=(2, 3, 7, 6)).astype(np.float32)
    close(run(nn.MaxPool2d(2, 2), x, mode=mode),
          _pool_reference(x, 2, 2, (0, 0, 0, 0), np.max, 0))
    close(run(nn.MaxPool2d(3, 2, pad_mode="same"), -np.abs(x), mode=mode),
          _pool_reference(-np.abs(x), 3, 2, (1, 1, 0, 1), np.max, -np.inf))
    close(run(nn.AvgPool2d(3, 1), x, mode=mode),
          _pool_reference(x, 3, 1, (0, 0, 0, 0), np.mean, 0))


@pytest.mark.parametrize("mode", MODES)
def test_layer_norm(mode, rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    ln = nn.LayerNorm((4,))
    ln.gamma.set_data(Tensor(rng.normal(size=4).astype(np.float32)))
    ln.beta.set_data(Tensor(rng.normal(size=4).astype(np.float32)))
    g, b = ln.gamma.asnumpy(), ln.beta.asnumpy()
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    close(run(ln, x, mode=mode), (x - mu) / np.sqrt(var + 1e-7) * g + b, atol=1e-4)
    ln2 = nn.LayerNorm((3, 4), begin_norm_axis=1, begin_params_axis=1, epsilon=1e-5)
    mu, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    close(run(ln2, x, mode=mode), (x - mu) / np.sqrt(var + 1e-5), atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_embedding(mode):
    emb = nn.Embedding(6, 3, padding_idx=0)
    table = emb.embedding_table.asnumpy()
    assert table.shape == (6, 3) and not table[0].any()
    ids = np.array([[1, 5, 0], [2, 2, 4]], np.int32)
    close(run(emb, ids, mode=mode), table[ids])


# ----------------------------------------------------------------------------- losses

def _softmax_logp(z):
    s = z - z.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def _reduce(x, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(mode, reduction, rng):
    a, b = rng.normal(size=(2, 3, 4)).astype(np.float32)
    close(run(nn.MSELoss(reduction), a, b, mode=mode), _reduce((a - b) ** 2, reduction))
    close(run(nn.L1Loss(reduction), a, b, mode=mode), _reduce(np.abs(a - b), reduction))


@pytest.mark.parametrize("mode", MODES)
def test_bce_with_logits(mode, rng):
    x = (rng.normal(size=(4, 3)) * 30).astype(np.float32)    # large logits: no overflow
    y = rng.uniform(size=(4, 3)).astype(np.float32)
    weight = rng.uniform(0.5, 2, size=(3,)).astype(np.float32)
    pos_weight = rng.uniform(0.5, 2, size=(3,)).astype(np.float32)
    log_sig = -np.logaddexp(0, -x.astype(np.float64))
    log_one_minus = -np.logaddexp(0, x.astype(np.float64))
    plain = -(y * log_sig + (1 - y) * log_one_minus)
    close(run(nn.BCEWithLogitsLoss(), x, y, mode=mode), plain.mean(), rtol=1e-4)
    loss = nn.BCEWithLogitsLoss("none", Tensor(weight), Tensor(pos_weight))
    expected = -weight * (pos_weight * y * log_sig + (1 - y) * log_one_minus)
    close(run(loss, x, y, mode=mode), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_softmax_cross_entropy(mode, rng):
    z = rng.normal(size=(5, 4)).astype(np.float32)
    idx = rng.integers(0, 4, size=5).astype(np.int32)
    probs = rng.dirichlet(np.ones(4), size=5).astype(np.float32)
    logp = _softmax_logp(z.astype(np.float64))
    dense = nn.SoftmaxCrossEntropyWithLogits()
    assert dense.reduction == "none"
    close(run(dense, z, probs, mode=mode), -(probs * logp).sum(-1))
    sparse = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    close(run(sparse, z, idx, mode=mode), -logp[np.arange(5), idx].mean())


def _ce_reference(z, y, weight=None, ignore_index=-100, smoothing=0.0):
    logp = _softmax_logp(z.astype(np.float64))
    c = z.shape[-1]
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    if y.ndim == 1:
        valid = y != ignore_index
        safe = np.where(valid, y, 0)
        picked = w[safe] * valid
        nll = -logp[np.arange(len(y)), safe] * picked
        smooth = -(logp * w).sum(-1) * valid / c
        loss = (1 - smoothing) * nll + smoothing * smooth
        return loss.sum() / picked.sum()
    target = y * (1 - smoothing) + smoothing / c
    return (-(logp * w * target).sum(-1)).mean()


@pytest.mark.parametrize("mode", MODES)
def test_cross_entropy(mode, rng):
    z = rng.normal(size=(6, 4)).astype(np.float32)
    y = np.array([0, 3, 1, -100, 2, 3], np.int32)
    w = rng.uniform(0.5, 2, size=4).astype(np.float32)
    close(run(nn.CrossEntropyLoss(), z, y, mode=mode), _ce_reference(z, y))
    close(run(nn.CrossEntropyLoss(weight=Tensor(w)), z, y, mode=mode), _ce_reference(z, y, w))
    close(run(nn.CrossEntropyLoss(Tensor(w), label_smoothing=0.2), z, y, mode=mode),
          _ce_reference(z, y, w, smoothing=0.2))
    probs = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    close(run(nn.CrossEntropyLoss(label_smoothing=0.1), z, probs, mode=mode),
          _ce_reference(z, probs, smoothing=0.1))
    none = run(nn.CrossEntropyLoss(reduction="none"), z, y, mode=mode)
    logp = _softmax_logp(z.astype(np.float64))
    close(none[:3], -logp[np.arange(3), y[:3]])
    assert none[3] == 0


@pytest.mark.parametrize("mode", MODES)
def test_nll_loss(mode, rng):
    logp = _softmax_logp(rng.normal(size=(5, 3))).astype(np.float32)
    y = np.array([2, 0, 1, 1, 2], np.int32)
    w = np.array([0.5, 1.0, 2.0], np.float32)
    close(run(nn.NLLLoss(), logp, y, mode=mode), -logp[np.arange(5), y].mean())
    expected = (-logp[np.arange(5), y] * w[y]).sum() / w[y].sum()
    close(run(nn.NLLLoss(weight=Tensor(w)), logp, y, mode=mode), expected)


def test_loss_reduction_checked():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


# ----------------------------------------------------------------------------- init

def test_initializers():
    graphspore.set_seed(11)
    assert init.compute_fans((8, 4, 3, 3)) == (36, 72)
    he = init.HeUniform(math.sqrt(5))((10, 25))
    assert he.dtype == np.float32 and np.abs(he).max() <= 1 / 5
    xavier = init.XavierUniform()((30, 20))
    assert np.abs(xavier).max() <= math.sqrt(6 / 50)
    normal = init.Normal(sigma=2.0, mean=1.0)((20000,))
    assert abs(normal.mean() - 1) < 0.1 and abs(normal.std() - 2) < 0.1
    trunc = init.TruncatedNormal(sigma=1.0)((5000,))
    assert np.abs(trunc).max() <= 2.0
    t = init.initializer("ones", (2, 3), graphspore.float32)
    assert isinstance(t, Tensor) and t.asnumpy().sum() == 6
    np.testing.assert_array_equal(init.initializer(2.5, (2,)).asnumpy(), [2.5, 2.5])
    with pytest.raises(ValueError, match="unknown initializer"):
        init.initializer("glorot", (2,))
    graphspore.set_seed(4)
    a = init.initializer("normal", (3,)).asnumpy()
    graphspore.set_seed(4)
    np.testing.assert_array_equal(a, init.initializer("normal", (3,)).asnumpy())


def test_parameter_requires_grad_default():
    p = Parameter(Tensor(np.zeros(2, np.float32)), name="p")
    assert p.requires_grad


def test_dropout_in_compiled_train_step_advances_like_eager():
    x = Tensor(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4))
    y = Tensor(np.zeros((8, 3), np.float32))
    runs = []
    for compiled in (False, True):
        graphspore.set_seed(0)
        net = nn.SequentialCell([nn.Dense(4, 3), nn.Dropout(p=0.5)])
        net.set_train(True)
        loss_fn = nn.MSELoss()
        opt = nn.SGD(net.trainable_params(), 0.1)
        grad_fn = graphspore.value_and_grad(lambda a, b: loss_fn(net(a), b), None,
                                            opt.parameters)

        def step(a, b):
            loss, grads = grad_fn(a, b)
            opt(grads)
            return loss

        step = jit(step) if compiled else step
        runs.append([float(step(x, y).asnumpy()) for _ in range(3)]
                    + [float(net[1].state.asnumpy())])
    close(np.array(runs[1]), np.array(runs[0]), rtol=1e-5, atol=1e-6)
    assert len(set(runs[1][:3])) == 3                  # a new mask (and loss) every step


def test_conv_and_pool_gradients(rng):
    """d/dW sum(G * conv(x)) = sum over positions of G * patch; max pooling routes the
    gradient to each window's maximum."""
    conv = nn.Conv2d(2, 3, 3, stride=2, pad_mode="same")
    x = rng.normal(size=(2, 2, 7, 7)).astype(np.float32)
    g = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    grad_w = graphspore.grad(lambda a, b: (conv(a) * b).sum(), None, conv.weight)(
        Tensor(x), Tensor(g)).asnumpy()
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((3, 2, 3, 3))
    for i in range(4):
        for j in range(4):
            patch = padded[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            expected += np.einsum("no,nchw->ochw", g[:, :, i, j], patch)
    close(grad_w, expected, rtol=1e-4, atol=1e-4)

    pool = nn.MaxPool2d(2, 2)
    xp = rng.permutation(32).reshape(1, 2, 4, 4).astype(np.float32)   # distinct values
    grad_x = graphspore.grad(lambda a: pool(a).sum())(Tensor(xp)).asnumpy()
    windows = xp.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    expected = (windows == windows.max(-1, keepdims=True)).astype(np.float32)
    expected = expected.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(xp.shape)
    close(grad_x, expected)
