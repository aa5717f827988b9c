"""Optimizers against their update formulas, the compiled training step against eager steps,
Model/LossMonitor, and the digits MLP reaching 97% train accuracy."""
import io
import runpy
from pathlib import Path

import numpy as np
import pytest

import graphspore
from graphspore import Parameter, Tensor, jit, nn, value_and_grad
from graphspore.dataset import NumpySlicesDataset

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODES = ["eager", "compiled"]



W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)
B0 = np.array([0.1, -0.2], np.float32)
GRADS = [(np.array([[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]], np.float32),
          np.array([0.05, -0.1], np.float32)) for _ in range(3)]
GRADS[1] = tuple(-2 * g for g in GRADS[1])
GRADS[2] = tuple(g * 0.5 + 0.01 for g in GRADS[2])


def _params():
    # 'beta' in the name: not weight-decayed (MindSpore's default decay filter)
    return [Parameter(Tensor(W0.copy()), name="fc.weight"),
            Parameter(Tensor(B0.copy()), name="fc.beta")]


def _apply(optimizer, mode):
    step = optimizer if mode == "eager" else jit(optimizer)
    for grads in GRADS:
        step(tuple(Tensor(g) for g in grads))
    return [p.asnumpy() for p in optimizer.parameters]


def _reference(update, state_init=0.0, decay=(True, False)):
    """Run `update(p, g, state, t, decay_flag) -> (p, state)` over GRADS in float64."""
    params = [W0.astype(np.float64), B0.astype(np.float64)]
    states = [state_init, state_init]
    for t, grads in enumerate(GRADS, start=1):
        for i, g in enumerate(grads):
            params[i], states[i] = update(params[i], g.astype(np.float64), states[i], t,
                                          decay[i])
    return params


def _check(got, expected):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.1), (0.9, 0.0, False, 0.0),
    (0.9, 0.3, False, 0.05), (0.8, 0.0, True, 0.0)])
def test_sgd(mode, momentum, dampening, nesterov, wd):
    opt = nn.SGD(_params(), learning_rate=0.1, momentum=momentum, dampening=dampening,
                 weight_decay=wd, nesterov=nesterov)

    def update(p, g, v, t, decay):
        g = g + wd * p if decay else g
        if momentum == 0:
            return p - 0.1 * g, v
        v = g if t == 1 else momentum * v + (1 - dampening) * g
        return p - 0.1 * (g + momentum * v if nesterov else v), v

    _check(_apply(opt, mode), _reference(update))
    assert int(opt.global_step.asnumpy()) == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum(mode, nesterov):
    opt = nn.Momentum(_params(), 0.05, 0.9, weight_decay=0.01, use_nesterov=nesterov)
    names = [p.name for p in opt.moments]
    assert names == ["moments.fc.weight", "moments.fc.beta"]

    def update(p, g, v, t, decay):
        g = g + 0.01 * p if decay else g
        v = 0.9 * v + g
        return p - 0.05 * (g + 0.9 * v if nesterov else v), v

    _check(_apply(opt, mode), _reference(update))


@pytest.mark.parametrize("mode", MODES)
def test_adam(mode):
    opt = nn.Adam(_params(), learning_rate=0.01, weight_decay=0.1)
    assert [p.name for p in opt.moment1] == ["moment1.fc.weight", "moment1.fc.beta"]
    assert opt.trainable_params() == [] or all(
        not n.startswith("moment") for n in (p.name for p in opt.trainable_params()))

    def update(p, g, state, t, decay):
        m, v = state if state else (0.0, 0.0)
        g = g + 0.1 * p if decay else g
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lr = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        return p - lr * m / (np.sqrt(v) + 1e-8), (m, v)

    _check(_apply(opt, mode), _reference(update, state_init=None))
    np.testing.assert_allclose(opt.beta1_power.asnumpy(), 0.9 ** 3, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_adam_weight_decay(mode):
    opt = nn.AdamWeightDecay(_params(), learning_rate=0.01, weight_decay=0.1)

    def update(p, g, state, t, decay):
        m, v = state if state else (0.0, 0.0)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = m / (np.sqrt(v) + 1e-6) + (0.1 * p if decay else 0)
        return p - 0.01 * step, (m, v)

    _check(_apply(opt, mode), _reference(update, state_init=None))


def test_learning_rate_is_a_parameter_without_recompiling():
    opt = nn.SGD(_params(), learning_rate=0.1)
    step = jit(opt)
    grads = tuple(Tensor(g) for g in GRADS[0])
    step(grads)
    opt.learning_rate.set_data(Tensor(np.array(0.0, np.float32)))
    before = [p.asnumpy().copy() for p in opt.parameters]
    step(grads)
    _check([p.asnumpy() for p in opt.parameters], before)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="empty"):
        nn.SGD([])
    with pytest.raises(ValueError, match="2 parameters but got 1"):
        nn.SGD(_params())((Tensor(GRADS[0][0]),))


# ------------------------------------------------------------------- training steps

class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 8)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(8, 3)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _toy_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return x, y


def _net_and_state(seed, optimizer_cls, **kw):
    graphspore.set_seed(seed)
    net = MLP()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = optimizer_cls(net.trainable_params(), **kw)
    return net, loss_fn, opt


@pytest.mark.parametrize("optimizer_cls,kw", [(nn.SGD, dict(learning_rate=0.1, momentum=0.9)),
                                              (nn.Adam, dict(learning_rate=0.01))])
def test_compiled_train_step_matches_eager(optimizer_cls, kw):
    x, y = _toy_data()
    results = []
    for compiled in (False, True):
        net, loss_fn, opt = _net_and_state(2, optimizer_cls, **kw)

        def forward_fn(data, label):
            logits = net(data)
            return loss_fn(logits, label), logits

        grad_fn = value_and_grad(forward_fn, None, opt.parameters, has_aux=True)

        def train_step(data, label):
            (loss, _), grads = grad_fn(data, label)
            opt(grads)
            return loss

        step = jit(train_step) if compiled else train_step
        losses = [float(step(Tensor(x), Tensor(y)).asnumpy()) for _ in range(4)]
        results.append((losses, [p.asnumpy().copy() for p in net.trainable_params()]))
    (eager_losses, eager_params), (jit_losses, jit_params) = results
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-5, atol=1e-6)
    assert jit_losses[-1] < jit_losses[0]
    for a, b in zip(jit_params, eager_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_train_step_is_one_native_call_on_persistent_buffers():
    """The MindSpore idiom compiles to one program whose graph carries every Parameter and
    optimizer-state update; each step makes one native call that rewrites those buffers in
    place (same addresses, no new allocation for them: a step allocates only its loss)."""
    import tracemalloc
    x, y = _toy_data()
    graphspore.set_seed(5)
    net = nn.SequentialCell(nn.Dense(4, 256), nn.ReLU(), nn.Dense(256, 3))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Adam(net.trainable_params(), learning_rate=0.01)
    grad_fn = value_and_grad(lambda d, l: loss_fn(net(d), l), None, opt.parameters)

    @jit
    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        opt(grads)
        return loss

    data, label = Tensor(x), Tensor(y)
    train_step(data, label)
    state = list(opt.parameters) + [p for _, p in opt.parameters_and_names()
                                    if p.name != "learning_rate"]     # the only one not updated
    program = train_step.program_for(data, label)
    assert len(program.graph.updates) == len(state) and len(train_step._programs) == 1
    calls = []
    native = program.executable._by_tuple
    program.executable._by_tuple = lambda buffers: (calls.append(1), native(buffers))[1]
    program.executable._fast = program.executable.fast_call()
    program.run_tensors = lambda tensors: program.run([t._array for t in tensors])
    train_step._last = None
    addresses = [p._array.ctypes.data for p in state]
    before = [p.asnumpy().copy() for p in state]
    tracemalloc.start()
    train_step(data, label)
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert calls == [1]
    assert [p._array.ctypes.data for p in state] == addresses
    assert all(not np.array_equal(b, p.asnumpy()) for b, p in zip(before, state))
    new_bytes = sum(stat.size for stat in snapshot.statistics("filename"))
    assert new_bytes < 1000, new_bytes   # every weight and moment buffer here is >= 1 KiB


def test_train_one_step_cell_and_model():
    x, y = _toy_data()
    net, loss_fn, opt = _net_and_state(4, nn.SGD, learning_rate=0.2)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    losses = [float(jit(step)(Tensor(x), Tensor(y)).asnumpy()) for _ in range(3)]
    assert losses[2] < losses[0]

    net, loss_fn, opt = _net_and_state(4, nn.SGD, learning_rate=0.2)
    model = nn.Model(net, loss_fn, opt, metrics={"accuracy", "loss"})
    stream = io.StringIO()
    monitor = nn.LossMonitor(stream=stream)
    data = NumpySlicesDataset((x, y), ["x", "y"], shuffle=False).batch(8)
    model.train(5, data, callbacks=[monitor])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[0].startswith("epoch 1/5: loss")
    assert monitor.losses[-1] < monitor.losses[0]
    result = model.eval(data)
    assert set(result) == {"accuracy", "loss"} and 0 <= result["accuracy"] <= 1
    assert abs(result["loss"] - monitor.losses[-1]) < 0.5


def test_progress_bar_on_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    x, y = _toy_data()
    net, loss_fn, opt = _net_and_state(4, nn.SGD, learning_rate=0.2)
    stream = Tty()
    data = NumpySlicesDataset((x, y), shuffle=False).batch(4)
    nn.Model(net, loss_fn, opt).train(2, data, callbacks=nn.LossMonitor(stream=stream))
    text = stream.getvalue()
    assert "\r" in text and "[" in text and "4/4" in text and text.count("\n") == 2


def test_digits_mlp_reaches_97_percent():
    result = runpy.run_path(str(EXAMPLES / "train_digits.py"), run_name="test")["main"](
        epochs=20, verbose=False)
    assert result["accuracy"] >= 0.97
    assert result["losses"][-1] < result["losses"][0] / 5


def test_lenet_trains():
    result = runpy.run_path(str(EXAMPLES / "train_lenet.py"), run_name="test")["main"](
        epochs=2, verbose=False)
    assert result["losses"][-1] < result["losses"][0]
    assert result["accuracy"] > 0.5
