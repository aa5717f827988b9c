"""mindspore.amp: auto_mixed_precision O0-O3, custom_mixed_precision, the loss scalers and
all_finite, compiled (GRAPH_MODE and @jit).

Expected values are float32 numpy references with float16 rounding where amp computes in
float16 (`h`: round to half; graphspore rounds each op's float32 result to half, and matmul
and sums accumulate in float32), never previous outputs. Each low-precision check also
asserts the result differs from the plain float32 network, so a no-op amp cannot pass.
"""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, amp, nn, ops

ULP16 = 2.0 ** -10          # float16's relative spacing


def h(a):
    """Round to float16 and back (one float16 op's result)."""
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


def close_in_half(got, want, ulps=2):
    """Within `ulps` float16 ulps of `want` (the float16 reference)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    tol = ulps * ULP16 * np.maximum(np.abs(want), 2.0 ** -14)
    bad = np.abs(got - want) > tol
    assert not bad.any(), f"{np.abs(got - want)[bad]} beyond {tol[bad]}"


def not_float32(got, ref32):
    """The result is not the float32 network's (amp really computed in float16)."""
    assert np.max(np.abs(np.asarray(got) - ref32)) > 1e-5


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def rng():
    return np.random.default_rng(14)


def dense_h(x, layer, already_half=False):
    """A Dense layer in float16: inputs and Parameters rounded, x @ W^T accumulated in float32
    and rounded, then the bias add rounded."""
    w, b = h(layer.weight.asnumpy()), h(layer.bias.asnumpy())
    x = x if already_half else h(x)
    return h(h(x @ w.T) + b)


def dense_32(x, layer):
    return x @ layer.weight.asnumpy().T + layer.bias.asnumpy()


class MLP(nn.Cell):
    def __init__(self, sizes=(6, 8, 3)):
        super().__init__()
        self.fc1 = nn.Dense(sizes[0], sizes[1])
        self.fc2 = nn.Dense(sizes[1], sizes[2])

    def construct(self, x):
        return self.fc2(ops.tanh(self.fc1(x)))


class WithNorm(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(5, 4)
        self.norm = nn.LayerNorm((4,))
        self.fc2 = nn.Dense(4, 3)

    def construct(self, x):
        return self.fc2(self.norm(self.fc1(x)))


def layer_norm_32(x, norm):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * norm.gamma.asnumpy() \
        + norm.beta.asnumpy()


def test_o3_computes_everything_in_float16_and_returns_float32(rng):
    net = MLP()
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    ref32 = dense_32(np.tanh(dense_32(x, net.fc1)), net.fc2)
    want = dense_h(h(np.tanh(dense_h(x, net.fc1))), net.fc2, already_half=True)
    out = amp.auto_mixed_precision(net, "O3")(Tensor(x))
    assert out.dtype == ms.float32
    close_in_half(out.asnumpy(), want)
    not_float32(out.asnumpy(), ref32)
    assert all(p.dtype == ms.float32 for p in net.trainable_params())   # stored float32


def test_o2_keeps_layernorm_in_float32(rng):
    net = WithNorm()
    x = rng.uniform(-2, 2, (3, 5)).astype(np.float32)
    ref32 = dense_32(layer_norm_32(dense_32(x, net.fc1), net.norm), net.fc2)
    hidden = dense_h(x, net.fc1)                       # float16
    normed = h(layer_norm_32(hidden, net.norm))        # float32 LayerNorm, output to float16
    want = dense_h(normed, net.fc2, already_half=True)
    wrapped = amp.auto_mixed_precision(net, "O2")
    assert type(net.norm).__name__ == "_OutputTo16"    # MindSpore's wrapper
    out = wrapped(Tensor(x))
    assert out.dtype == ms.float32
    close_in_half(out.asnumpy(), want)
    not_float32(out.asnumpy(), ref32)
    assert [p.name for p in wrapped.trainable_params()] == [
        "fc1.weight", "fc1.bias", "norm.gamma", "norm.beta", "fc2.weight", "fc2.bias"]


def test_o2_batchnorm_statistics_stay_float32_and_update(rng):
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(4, 3)
            self.bn = nn.BatchNorm1d(3)

        def construct(self, x):
            return self.bn(self.fc(x))

    net = Net()
    net.set_train(True)
    x = rng.uniform(-2, 2, (6, 4)).astype(np.float32)
    hidden = dense_h(x, net.fc)                        # float16 Dense, float32 BatchNorm
    mean, var = hidden.mean(0), hidden.var(0)
    want = h((hidden - mean) / np.sqrt(var + 1e-5))
    out = amp.auto_mixed_precision(net, "O2")(Tensor(x))
    close_in_half(out.asnumpy(), want)
    moving = net.bn._backbone.moving_mean
    assert moving.dtype == ms.float32
    np.testing.assert_allclose(moving.asnumpy(), 0.1 * mean, rtol=1e-5, atol=1e-7)


def test_o3_batchnorm_updates_its_float32_statistics_from_float16(rng):
    net = nn.BatchNorm1d(3)
    net.set_train(True)
    x = rng.uniform(-2, 2, (8, 3)).astype(np.float32)
    out = amp.auto_mixed_precision(net, "O3")(Tensor(x))
    mean = h(h(x).mean(0))
    close_in_half(out.asnumpy(), h((h(x) - mean) / np.sqrt(h(x).var(0) + 1e-5)), ulps=4)
    assert net.moving_mean.dtype == ms.float32                  # cast back when assigned
    close_in_half(net.moving_mean.asnumpy(), h(mean * h(0.1)), ulps=2)
    assert np.all(net.moving_mean.asnumpy() != 0.1 * x.mean(0))   # came through float16


def test_o1_casts_white_list_cells_only(rng):
    net = MLP()
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    ref32 = dense_32(np.tanh(dense_32(x, net.fc1)), net.fc2)
    # each Dense in float16 with a float32 output; tanh (not listed) in float32
    want = dense_h(np.tanh(dense_h(x, net.fc1)), net.fc2)
    out = amp.auto_mixed_precision(net, "O1")(Tensor(x))
    assert out.dtype == ms.float32
    close_in_half(out.asnumpy(), want)
    not_float32(out.asnumpy(), ref32)
    assert type(net.fc1).__name__ == "_OutputTo32"


def test_o1_white_list_primitive_attribute(rng):
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.matmul = ops.MatMul()
            self.w = ms.Parameter(Tensor(rng.uniform(-1, 1, (5, 3)).astype(np.float32)),
                                  name="w")

        def construct(self, x):
            return ops.exp(self.matmul(x, self.w) * 0.5)

    net = Net()
    x = rng.uniform(-1, 1, (4, 5)).astype(np.float32)
    w = net.w.asnumpy()
    want = np.exp(h(h(x) @ h(w)) * 0.5)                # MatMul in float16, the rest float32
    out = amp.auto_mixed_precision(net, "O1")(Tensor(x))
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-5)
    not_float32(out.asnumpy(), np.exp(x @ w * 0.5))


def test_custom_lists(rng):
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    white = MLP()
    want = dense_h(np.tanh(dense_h(x, white.fc1)), white.fc2)
    out = amp.custom_mixed_precision(white, white_list=[nn.Dense])(Tensor(x))
    close_in_half(out.asnumpy(), want)
    black = MLP()       # the input enters in float16, Dense kept float32, tanh in float16
    want = h(dense_32(h(np.tanh(h(dense_32(h(x), black.fc1)))), black.fc2))
    out = amp.custom_mixed_precision(black, black_list=[nn.Dense])(Tensor(x))
    assert out.dtype == ms.float32
    close_in_half(out.asnumpy(), want)


def test_bad_arguments_raise_as_mindspore():
    with pytest.raises(TypeError, match="must be a Cell"):
        amp.auto_mixed_precision(lambda x: x, "O2")
    with pytest.raises(ValueError, match="amp_level must be O0, O1, O2 or O3"):
        amp.auto_mixed_precision(MLP(), "O4")
    with pytest.raises(ValueError, match="dtype must be Float16"):
        amp.auto_mixed_precision(MLP(), "O3", dtype=ms.float32)
    with pytest.raises(ValueError, match="exactly one of white_list and black_list"):
        amp.custom_mixed_precision(MLP())
    with pytest.raises(ValueError, match="exactly one"):
        amp.custom_mixed_precision(MLP(), white_list=[nn.Dense], black_list=[nn.LayerNorm])
    with pytest.raises(TypeError, match="black_list must hold Cell classes"):
        amp.custom_mixed_precision(MLP(), black_list=[ops.MatMul])
    with pytest.raises(ValueError, match="to_float: dst_type"):
        MLP().to_float(ms.int32)


def test_o3_in_bfloat16(rng):
    import ml_dtypes                                   # a dependency of graphspore

    def b(a):                                          # round to bfloat16 and back
        return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)

    net = MLP()
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)

    def dense_b(v, layer):
        return b(b(v @ b(layer.weight.asnumpy()).T) + b(layer.bias.asnumpy()))

    want = dense_b(b(np.tanh(dense_b(b(x), net.fc1))), net.fc2)
    out = amp.auto_mixed_precision(net, "O3", dtype=ms.bfloat16)(Tensor(x))
    assert out.dtype == ms.float32
    got = out.asnumpy()
    assert np.all(np.abs(got - want) <= 2 * 2.0 ** -7 * np.maximum(np.abs(want), 2.0 ** -20))
    half = dense_h(h(np.tanh(dense_h(x, net.fc1))), net.fc2, already_half=True)
    assert np.max(np.abs(got - half)) > 1e-3           # not float16's answer either


def test_lists_follow_mindspore():
    assert amp.get_white_list()[:2] == [nn.Conv2d, nn.Dense]
    assert ops.MatMul in amp.get_white_list() and ops.BatchMatMul in amp.get_white_list()
    assert amp.get_black_list() == [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
                                    nn.LayerNorm]
    amp.get_white_list().clear()
    assert amp.get_white_list()                       # a copy


def test_to_float_cell_called_eagerly_runs_compiled(rng):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    layer = nn.Dense(6, 3)
    x = rng.uniform(-2, 2, (2, 6)).astype(np.float32)
    out = layer.to_float(ms.float16)(Tensor(x))
    assert out.dtype == ms.float16                     # to_float alone keeps its dtype out
    close_in_half(out.asnumpy().astype(np.float32), dense_h(x, layer))


# ------------------------------------------------------------------------ gradients, training

def test_gradients_flow_to_float32_parameters(rng):
    net = nn.Dense(5, 3)
    x = rng.uniform(-1, 1, (4, 5)).astype(np.float32)
    t = rng.uniform(-1, 1, (4, 3)).astype(np.float32)
    w, b = net.weight.asnumpy(), net.bias.asnumpy()
    model = amp.auto_mixed_precision(net, "O3")

    def loss_fn(x, t):
        return ops.mean((model(x) - t) ** 2)

    grad_fn = ms.value_and_grad(loss_fn, None, model.trainable_params())
    loss, (dw, db) = ms.jit(grad_fn)(Tensor(x), Tensor(t))
    y = dense_h(x, net)
    g = h(2 * (y - t) / y.size)                        # the cotangent enters float16
    assert dw.dtype == ms.float32 and db.dtype == ms.float32
    close_in_half(dw.asnumpy(), h(g.T @ h(x)), ulps=3)
    close_in_half(db.asnumpy(), h(g.sum(0)), ulps=3)
    np.testing.assert_allclose(float(loss.asnumpy()), np.mean((y - t) ** 2), rtol=1e-6)
    not_float32(dw.asnumpy(), (2 * (x @ w.T + b - t) / y.size).T @ x)


def scaler_reference(finite_steps, scale, factor, window):
    """MindSpore's documented DynamicLossScaler rule, step by step."""
    counter, out = 0, []
    for finite in finite_steps:
        if finite:
            if counter == window - 1 and np.isfinite(np.float32(scale * factor)):
                scale *= factor
            counter = (counter + 1) % window
        else:
            scale, counter = max(1.0, scale / factor), 0
        out.append((scale, counter))
    return out


def test_dynamic_loss_scaler_adjust_inside_jit():
    scaler = amp.DynamicLossScaler(scale_value=2 ** 10, scale_factor=2, scale_window=3)

    @ms.jit
    def step(grad):
        finite = amp.all_finite((grad,))
        scaler.adjust(finite)
        return finite

    pattern = [True, True, True, True, False, True, True, True, True, False, False]
    got = []
    for finite in pattern:
        value = np.float32(1.0) if finite else np.float32(np.inf)
        assert bool(step(Tensor(np.array([value, 2.0], np.float32))).asnumpy()) is finite
        got.append((float(scaler.scale_value.asnumpy()), int(scaler.counter.asnumpy())))
    assert got == scaler_reference(pattern, 2.0 ** 10, 2, 3)


def test_dynamic_scale_never_overflows_or_drops_below_one():
    top = amp.DynamicLossScaler(scale_value=2.0 ** 127, scale_factor=2, scale_window=1)
    top.adjust(Tensor(True))
    assert float(top.scale_value.asnumpy()) == 2.0 ** 127      # 2**128 is inf in float32
    low = amp.DynamicLossScaler(scale_value=2, scale_factor=4, scale_window=1)
    low.adjust(Tensor(False))
    assert float(low.scale_value.asnumpy()) == 1.0
    with pytest.raises(ValueError, match="scale_value must be >= 1"):
        amp.DynamicLossScaler(0.5, 2, 10)
    with pytest.raises(TypeError, match="scale_factor must be an int"):
        amp.DynamicLossScaler(2 ** 10, 2.5, 10)
    with pytest.raises(ValueError, match="scale_window must be positive"):
        amp.DynamicLossScaler(2 ** 10, 2, 0)


def test_static_scaler_scales_in_each_tensors_dtype():
    scaler = amp.StaticLossScaler(scale_value=2 ** 10)
    assert float(scaler.scale(Tensor(np.float32(1.0))).asnumpy()) == 1024.0
    grads = (Tensor(np.array([1.5, 1.0], np.float16)), Tensor(np.array([1.2], np.float16)))
    low = scaler.unscale(grads)
    assert low[0].dtype == ms.float16
    inv = np.float16(1 / 1024)
    np.testing.assert_array_equal(low[0].asnumpy(), np.float16([1.5, 1.0]) * inv)
    np.testing.assert_array_equal(low[1].asnumpy(), np.float16([1.2]) * inv)
    assert scaler.adjust(Tensor(True)) is False


def test_all_finite():
    assert bool(amp.all_finite([Tensor(np.ones(3, np.float16)),
                                Tensor(np.zeros((2, 2), np.float32))]).asnumpy())
    for bad in (np.inf, -np.inf, np.nan):
        x = np.ones(4, np.float32)
        x[2] = bad
        assert not bool(amp.all_finite((Tensor(np.ones(2, np.float32)), Tensor(x))).asnumpy())
    assert not bool(amp.all_finite(Tensor(np.array([65504, np.inf], np.float16))).asnumpy())


class Network(nn.Cell):
    """The tutorial's network, smaller."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(4 * 4, 32), nn.ReLU(), nn.Dense(32, 32), nn.ReLU(), nn.Dense(32, 5))

    def construct(self, x):
        return self.dense_relu_sequential(self.flatten(x))


def tutorial_training(level, steps, data, labels, scale_value=2.0 ** 16):
    """The mixed-precision tutorial's loop: amp, a DynamicLossScaler, value_and_grad with
    has_aux, a @jit step that skips the update when the gradients overflow."""
    ms.set_seed(3)
    model = amp.auto_mixed_precision(Network(), level)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 0.5)
    loss_scaler = amp.DynamicLossScaler(scale_value=scale_value, scale_factor=2,
                                        scale_window=50)

    def forward_fn(data, label):
        logits = model(data)
        loss = loss_fn(logits, label)
        loss = loss_scaler.scale(loss)
        return loss, logits

    grad_fn = ms.value_and_grad(forward_fn, None, model.trainable_params(), has_aux=True)

    @ms.jit
    def train_step(data, label):
        (loss, _), grads = grad_fn(data, label)
        loss = loss_scaler.unscale(loss)
        is_finite = amp.all_finite(grads)
        if is_finite:
            grads = loss_scaler.unscale(grads)
            optimizer(grads)
        loss_scaler.adjust(is_finite)
        return loss

    losses = [float(train_step(Tensor(data), Tensor(labels)).asnumpy()) for _ in range(steps)]
    return model, loss_scaler, losses


@pytest.fixture(scope="module")
def batch():
    r = np.random.default_rng(5)
    labels = r.integers(0, 5, 32).astype(np.int32)
    centers = r.uniform(-1, 1, (5, 1, 4, 4)).astype(np.float32)
    data = centers[labels] + 0.1 * r.standard_normal((32, 1, 4, 4)).astype(np.float32)
    return data, labels


@pytest.mark.parametrize("level,mode", [("O2", "graph"), ("O3", "graph"),
                                        ("O2", "pynative")])
def test_tutorial_flow_trains_like_float32(level, mode, batch):
    if mode == "pynative":                             # the tutorial's default: @jit steps
        ms.set_context(mode=ms.PYNATIVE_MODE)
    _, _, ref = tutorial_training("O0", 30, *batch)
    _, scaler, losses = tutorial_training(level, 30, *batch)
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_allclose(losses, ref, rtol=0.05, atol=0.01)   # float16 vs float32
    assert losses != ref
    assert float(scaler.scale_value.asnumpy()) == 2.0 ** 16    # no overflow, 30 < window


def test_tutorial_flow_skips_overflowing_steps(batch):
    """Scale 2**40: the float16 gradients overflow, so each step leaves the Parameters alone
    and halves the scale, until the gradients are finite and training proceeds."""
    ms.set_seed(3)
    initial = [p.asnumpy().copy() for p in Network().trainable_params()]
    model, scaler, _ = tutorial_training("O3", 1, *batch, scale_value=2.0 ** 40)
    assert float(scaler.scale_value.asnumpy()) == 2.0 ** 39
    assert int(scaler.counter.asnumpy()) == 0
    for p, q in zip(model.trainable_params(), initial):
        np.testing.assert_array_equal(p.asnumpy(), q)              # the update was skipped
    model, scaler, losses = tutorial_training("O3", 40, *batch, scale_value=2.0 ** 40)
    scale = float(scaler.scale_value.asnumpy())
    skipped = 40 - round(np.log2(scale))
    assert 2.0 ** 16 <= scale < 2.0 ** 39 and int(scaler.counter.asnumpy()) == 40 - skipped
    assert losses[-1] < losses[skipped]                             # trained after that
    assert losses[:skipped] == [losses[0]] * skipped                # nothing changed before


def test_model_amp_level_casts_the_network(rng):
    """Model(..., amp_level='O3') trains and predicts the network in float16 with float32
    outputs (mindspore.amp's cast), instead of ignoring the level."""
    net = MLP()
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    want = dense_h(h(np.tanh(dense_h(x, net.fc1))), net.fc2, already_half=True)
    model = ms.train.Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.1),
                           amp_level="O3")
    out = model.predict(Tensor(x))
    assert out.dtype == ms.float32
    close_in_half(out.asnumpy(), want)
    data = ms.dataset.NumpySlicesDataset(
        {"x": np.tile(x, (4, 1)), "y": np.zeros((16, 3), np.float32)}, shuffle=False).batch(4)
    before = net.fc1.weight.asnumpy().copy()
    model.train(2, data)
    assert net.fc1.weight.dtype == ms.float32
    assert np.abs(model.predict(Tensor(x)).asnumpy()).mean() < np.abs(want).mean()
    assert np.any(net.fc1.weight.asnumpy() != before)
    with pytest.raises(ValueError, match="amp_level must be O0, O1, O2 or O3"):
        ms.train.Model(MLP(), amp_level="O5")
