"""MindSpore API pieces tutorials use (issue 12 points 5 and 8, host side), each checked
against MindSpore's documented behaviour: set_seed and numpy, print(cell), checkpoint key
order, experimental.optim with param_groups and StepLR, MAELoss, Dropout2D,
parameters.clone, the JIT syntax levels and Cell forward hooks."""
from __future__ import annotations

import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, Tensor, nn, ops
from graphspore.experimental import optim


def test_set_seed_also_seeds_numpy_global_rng():
    ms.set_seed(123)
    first = np.random.randn(4)
    ms.set_seed(123)
    np.testing.assert_array_equal(np.random.randn(4), first)
    np.random.seed(123)                       # what MindSpore's set_seed does to numpy
    np.testing.assert_array_equal(np.random.randn(4), first)
    with pytest.raises(TypeError):
        ms.set_seed(1.5)
    with pytest.raises(ValueError):
        ms.set_seed(-1)


class Network(nn.Cell):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(28 * 28, 512), nn.ReLU(), nn.Dense(512, 10))

    def construct(self, x):
        return self.dense_relu_sequential(self.flatten(x))


def test_print_cell_uses_the_parenthesised_layout():
    assert str(Network()) == "\n".join([
        "Network(",
        "  (flatten): Flatten()",
        "  (dense_relu_sequential): SequentialCell(",
        "    (0): Dense(input_channels=784, output_channels=512, has_bias=True)",
        "    (1): ReLU()",
        "    (2): Dense(input_channels=512, output_channels=10, has_bias=True)",
        "  )",
        ")"])


def test_load_checkpoint_keeps_the_saved_order(tmp_path):
    names = ["z.weight", "a.bias", "m.gamma", "b.beta"]      # not alphabetical
    values = {n: Tensor(np.full((2,), i, np.float32)) for i, n in enumerate(names)}
    path = str(tmp_path / "net.ckpt")
    ms.save_checkpoint([{"name": n, "data": values[n]} for n in names], path)
    loaded = ms.load_checkpoint(path)
    assert list(loaded) == names
    for i, n in enumerate(names):
        np.testing.assert_array_equal(loaded[n].asnumpy(), np.full((2,), i))


def _quadratic_steps(make_optimizer, steps=3, compiled=False):
    """Minimise sum(3 w^2) from w = [1, -2]; return w after `steps` updates."""
    w = Parameter(Tensor(np.array([1.0, -2.0], np.float32)), name="w")
    optimizer = make_optimizer([w])
    grad_fn = ms.value_and_grad(lambda: (w * w * 3.0).sum(), None, optimizer.parameters)

    def step():
        loss, grads = grad_fn()
        optimizer(grads)
        return loss
    step = ms.jit(step) if compiled else step
    for _ in range(steps):
        step()
    return w.asnumpy().astype(np.float64)


@pytest.mark.parametrize("compiled", [False, True])
def test_experimental_sgd_and_adam_follow_pytorch_updates(compiled):
    w, buf = np.array([1.0, -2.0]), None
    for _ in range(3):                        # SGD, momentum 0.9, nesterov off
        g = 6 * w
        buf = g if buf is None else 0.9 * buf + g
        w = w - 0.1 * buf
    np.testing.assert_allclose(_quadratic_steps(
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9), compiled=compiled), w, rtol=1e-5)
    w, m, v = np.array([1.0, -2.0]), 0.0, 0.0
    for t in range(1, 4):                     # Adam with bias correction, weight decay 0.01
        g = 6 * w + 0.01 * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - 0.1 / (1 - 0.9 ** t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** t) + 1e-8)
    np.testing.assert_allclose(_quadratic_steps(
        lambda p: optim.Adam(p, lr=0.1, weight_decay=0.01), compiled=compiled), w, rtol=1e-5)


def test_param_groups_and_step_lr():
    a = Parameter(Tensor(np.ones(2, np.float32)), name="a")
    b = Parameter(Tensor(np.ones(3, np.float32)), name="b")
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.05)
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 2 - 1]
    assert optimizer.param_groups[1]["momentum"] == 0.0          # the default fills in
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    rates = []
    for _ in range(6):                       # the documented table: 0.05 for epochs 0-1, ...
        rates.append(scheduler.get_last_lr())
        optimizer((Tensor(np.ones(2, np.float32)), Tensor(np.ones(3, np.float32))))
        scheduler.step()
    np.testing.assert_allclose([r[0] for r in rates], [0.05, 0.05, 0.005, 0.005, 5e-4, 5e-4],
                               rtol=1e-6)
    np.testing.assert_allclose([r[1] for r in rates], [0.5, 0.5, 0.05, 0.05, 5e-3, 5e-3],
                               rtol=1e-6)
    # each step moved the parameters by the rate in force: sum of the rates
    np.testing.assert_allclose(a.asnumpy(), 1 - sum(r[0] for r in rates), rtol=1e-5)
    np.testing.assert_allclose(b.asnumpy(), 1 - sum(r[1] for r in rates), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown option"):
        optim.SGD([{"params": [a], "betas": (0.9, 0.9)}], lr=0.1)


def test_mae_loss():
    logits = Tensor(np.array([1.0, 2.0, 4.0], np.float32))
    labels = Tensor(np.array([2.0, 2.0, 1.0], np.float32))
    assert float(nn.MAELoss()(logits, labels).asnumpy()) == pytest.approx(4.0 / 3.0)
    assert float(nn.MAELoss(reduction="sum")(logits, labels).asnumpy()) == 4.0
    np.testing.assert_array_equal(nn.MAELoss(reduction="none")(logits, labels).asnumpy(),
                                  [1.0, 0.0, 3.0])


def test_dropout2d_zeroes_whole_channels():
    ms.set_seed(0)
    x = Tensor(np.random.randn(8, 16, 3, 4).astype(np.float32))
    out, mask = ops.Dropout2D(keep_prob=0.5)(x)
    assert out.shape == x.shape and mask.shape == x.shape and mask.dtype == ms.bool_
    m = mask.asnumpy()
    per_channel = m.reshape(8, 16, -1)
    assert np.all(per_channel.all(-1) | ~per_channel.any(-1))   # a channel is kept or not
    np.testing.assert_allclose(out.asnumpy(), np.where(m, x.asnumpy() * 2.0, 0.0), rtol=1e-6)
    assert 0.25 < m.mean() < 0.75                                 # 128 channel draws
    kept, all_mask = ops.Dropout2D(keep_prob=1.0)(x)
    np.testing.assert_array_equal(kept.asnumpy(), x.asnumpy())
    assert all_mask.asnumpy().all()
    with pytest.raises(ValueError):
        ops.Dropout2D(keep_prob=1.5)
    with pytest.raises(ValueError, match="4-D"):
        ops.Dropout2D(0.5)(Tensor(np.ones((2, 3), np.float32)))


def test_optimizer_parameters_clone():
    net = nn.Dense(3, 2)
    optimizer = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    moments = optimizer.parameters.clone(prefix="moments", init="zeros")
    assert [p.name for p in moments] == ["moments." + p.name for p in net.trainable_params()]
    assert all(not m.asnumpy().any() and m.shape == p.shape
               for m, p in zip(moments, net.trainable_params()))
    same = optimizer.parameters.clone(prefix="copy")
    np.testing.assert_array_equal(same[0].asnumpy(), net.trainable_params()[0].asnumpy())


def test_jit_syntax_levels():
    assert (ms.STRICT, ms.COMPATIBLE, ms.LAX) == (0, 1, 2)
    ms.set_context(jit_syntax_level=ms.STRICT)
    assert ms.get_context("jit_syntax_level") == ms.STRICT
    ms.set_context(jit_syntax_level=ms.LAX)
    with pytest.raises(ValueError):
        ms.set_context(jit_syntax_level=7)


class Outer(nn.Cell):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def construct(self, x):
        return self.inner(x) * 10


def test_forward_hooks_eager_and_compiled():
    """pre-hook(cell, inputs) may replace the inputs, hook(cell, inputs, output) the output;
    handle.remove() unregisters; hooks run in PYNATIVE, GRAPH_MODE and under grad; a
    backward hook runs in the gradient's backward pass."""
    seen = []

    def double_input(cell, inputs):
        seen.append(type(cell).__name__)
        return (inputs[0] * 2,)

    def add_one(cell, inputs, output):
        return output + 1

    dense = nn.Dense(2, 1, weight_init="ones", bias_init="zeros")
    pre = dense.register_forward_pre_hook(double_input)
    dense.register_forward_hook(add_one)
    x = Tensor(np.array([[1.0, 2.0]], np.float32))
    assert dense(x).asnumpy().item() == 2 * 3 + 1 and seen == ["Dense"]
    outer = Outer(dense)
    assert ms.jit(outer)(x).asnumpy().item() == 70.0
    ms.set_context(mode=ms.GRAPH_MODE)
    assert outer(x).asnumpy().item() == 70.0
    pre.remove()
    assert outer(x).asnumpy().item() == 40.0          # (1 + 2 + 1) * 10
    ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_array_equal(ms.grad(lambda v: outer(v).sum())(x).asnumpy(), [[10, 10]])
    calls = []                                        # backward hooks: tests/test_hooks.py
    handle = dense.register_backward_hook(lambda cell_id, gi, go: calls.append(cell_id))
    np.testing.assert_array_equal(ms.grad(lambda v: outer(v).sum())(x).asnumpy(), [[10, 10]])
    assert calls == [f"Dense({id(dense)})"]
    handle.remove()


def test_gradient_wrt_bool_or_int_tensor_is_float32_zeros():
    """The seed tutorial's grad(loss, 1) over bool targets: zeros of the argument's shape,
    float32 (MindSpore crashes there), alongside the float gradients."""
    x = Tensor(np.array([1.0, 2.0, 3.0], np.float32))
    mask = Tensor(np.array([True, False, True]))
    count = Tensor(np.array([[1, 2], [3, 4]], np.int32))

    def f(x, mask, count):
        return (x * mask).sum() + count.sum().astype(ms.float32)

    g_mask = ms.grad(f, 1)(x, mask, count)
    assert g_mask.dtype == ms.float32 and g_mask.shape == (3,)
    np.testing.assert_array_equal(g_mask.asnumpy(), np.zeros(3))
    g_x, g_mask, g_count = ms.grad(f, (0, 1, 2))(x, mask, count)
    np.testing.assert_array_equal(g_x.asnumpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g_count.asnumpy(), np.zeros((2, 2)))
    assert g_count.dtype == ms.float32


class StepDecay(nn.Cell):
    """A dynamic weight decay: 0.1 * (step + 1) at step `step` (0, 1, 2, ...)."""

    def construct(self, step):
        return 0.1 * (ops.cast(step, ms.float32) + 1.0)


@pytest.mark.parametrize("compiled", [False, True])
def test_weight_decay_given_as_a_cell(compiled):
    """MindSpore calls a weight_decay Cell with the global step; SGD then uses
    g + wd(t) * w at step t (names without 'beta'/'gamma')."""
    w = Parameter(Tensor(np.array([1.0, -2.0], np.float32)), name="w")
    optimizer = nn.SGD([w], learning_rate=0.1, weight_decay=StepDecay())
    grad_fn = ms.value_and_grad(lambda: (w * w).sum(), None, optimizer.parameters)

    def step():
        loss, grads = grad_fn()
        optimizer(grads)
        return loss
    step = ms.jit(step) if compiled else step
    for _ in range(3):
        step()
    expected = np.array([1.0, -2.0])
    for t in range(3):
        expected = expected - 0.1 * (2 * expected + 0.1 * (t + 1) * expected)
    np.testing.assert_allclose(w.asnumpy(), expected, rtol=1e-5)
