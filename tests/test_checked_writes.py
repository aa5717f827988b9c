"""A call whose index check fails writes no state (ir/passes/index_checks.py, `_guard`).

The IndexError is raised after the native call; the Parameters it updates in place (weights,
optimizer moments, step counters, BatchNorm statistics) must still hold their values from
before it, bit for bit, and the next good call must train as if the bad one never happened.
The success path keeps every update in place in its weight's buffer.
"""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, Tensor, nn, ops
from graphspore.codegen import epilogue_ok, fuse, widen_half_ops

LR, MOMENTUM = 0.1, 0.9


def _state(cell) -> dict:
    """Every Parameter of `cell` (the network's and the optimizer's), copied."""
    return {name: p.asnumpy().copy() for name, p in cell.parameters_and_names()}


def _assert_same_state(cell, before: dict) -> None:
    after = _state(cell)
    assert after.keys() == before.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


class PowerLoop(nn.Cell):
    """sum(x * w**n) by a tensor while loop: d/dw = sum(x) * n * w**(n - 1)."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([1.01], np.float32)), name="w")

    def construct(self, x, n):
        i = Tensor(0, ms.int32)
        y = x
        while i < n:
            y = y * self.w
            i = i + 1
        return y.sum()


def _momentum_step(w, v, g):
    """MindSpore's Momentum in float64: v = momentum * v + g; w = w - lr * v."""
    v = MOMENTUM * v + g
    return w - LR * v, v


@pytest.fixture
def short_tape():
    ms.set_context(mode=ms.GRAPH_MODE, max_loop_iterations=16)
    yield
    ms.set_context(max_loop_iterations=1 << 17)


def test_a_loop_past_its_tape_writes_no_parameter_and_the_next_step_trains(short_tape):
    net = PowerLoop()
    opt = nn.Momentum(net.trainable_params(), learning_rate=LR, momentum=MOMENTUM)
    step = nn.TrainOneStepCell(net, opt)
    x = Tensor(np.full(2, 1.5, np.float32))
    w, v = np.float64(1.01), np.float64(0.0)
    for n in (5, 3):
        loss = step(x, Tensor(n, ms.int32))
        np.testing.assert_allclose(loss.asnumpy(), 3.0 * w ** n, rtol=1e-5)
        w, v = _momentum_step(w, v, 3.0 * n * w ** (n - 1))
    before = _state(step)
    with pytest.raises(IndexError, match="this loop ran more than 16 iterations"):
        step(x, Tensor(40, ms.int32))
    _assert_same_state(step, before)
    np.testing.assert_allclose(net.w.asnumpy(), [w], rtol=1e-5)
    loss = step(x, Tensor(4, ms.int32))              # trains from the state of before
    np.testing.assert_allclose(loss.asnumpy(), 3.0 * w ** 4, rtol=1e-5)
    w, v = _momentum_step(w, v, 3.0 * 4 * w ** 3)
    np.testing.assert_allclose(net.w.asnumpy(), [w], rtol=1e-5)
    np.testing.assert_allclose(opt.moments[0].asnumpy(), [v], rtol=1e-5)


class PickRow(nn.Cell):
    """sum(w * x[i]): d/dw = x[i]."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([0.5, -1.0, 2.0], np.float32)), name="w")

    def construct(self, x, i):
        return ops.sum(self.w * x[i])


def test_a_bad_tensor_index_in_a_train_step_writes_nothing_and_the_next_step_trains():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = PickRow()
    opt = nn.Momentum(net.trainable_params(), learning_rate=LR, momentum=MOMENTUM)
    step = nn.TrainOneStepCell(net, opt)
    rows = np.arange(15, dtype=np.float32).reshape(5, 3) / 4
    x = Tensor(rows)
    w, v = np.array([0.5, -1.0, 2.0]), np.zeros(3)
    step(x, Tensor(1, ms.int32))
    w, v = _momentum_step(w, v, rows[1].astype(np.float64))
    before = _state(step)
    with pytest.raises(IndexError, match="index 7 is out of bounds for axis 0 with size 5"):
        step(x, Tensor(7, ms.int32))
    _assert_same_state(step, before)
    loss = step(x, Tensor(-2, ms.int32))
    np.testing.assert_allclose(loss.asnumpy(), w @ rows[3], rtol=1e-5)
    w, v = _momentum_step(w, v, rows[3].astype(np.float64))
    np.testing.assert_allclose(net.w.asnumpy(), w, rtol=1e-5)
    np.testing.assert_allclose(opt.moments[0].asnumpy(), v, rtol=1e-5)


class NormThenPick(nn.Cell):
    """BatchNorm (training: its moving statistics are written) then a row x[i]."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.dense = nn.Dense(3, 2)

    def construct(self, x, i):
        return ops.sum(self.dense(self.bn(x))[i])


def test_batchnorm_statistics_and_adam_state_survive_a_bad_index():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = NormThenPick()
    net.set_train(True)
    opt = nn.Adam(net.trainable_params(), learning_rate=0.01)
    step = nn.TrainOneStepCell(net, opt)
    x = Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    step(x, Tensor(2, ms.int32))
    before = _state(step)
    assert any("moving_mean" in name for name in before)
    assert any("global_step" in name for name in before)
    with pytest.raises(IndexError, match="index 4 is out of bounds"):
        step(x, Tensor(4, ms.int32))
    _assert_same_state(step, before)
    step(x, Tensor(0, ms.int32))                     # a good call still writes them all
    after = _state(step)
    changed = [name for name in before if not np.array_equal(before[name], after[name])]
    written = set(before) - {"optimizer.learning_rate"}          # a constant rate
    assert set(changed) == written, written - set(changed)


class CountedPick(nn.Cell):
    """A step counter that a checked gather reads after advancing it: its new value comes
    before the check, so only its final write can be guarded."""

    def __init__(self):
        super().__init__()
        self.count = Parameter(Tensor(np.array(0, np.int32)), name="count",
                               requires_grad=False)
        self.w = Parameter(Tensor(np.array([1.0, 2.0], np.float32)), name="w")

    def construct(self, table):
        ops.assign(self.count, self.count + 1)
        return ops.sum(self.w * table[self.count])


def test_a_counter_read_by_the_failing_gather_is_not_advanced():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = CountedPick()
    step = nn.TrainOneStepCell(net, nn.SGD([net.w], learning_rate=LR))
    rows = np.array([[1, 1], [2, 3], [4, 5]], np.float32)
    table = Tensor(rows)
    w = np.array([1.0, 2.0])
    for count in (1, 2):
        np.testing.assert_allclose(step(table).asnumpy(), w @ rows[count], rtol=1e-6)
        w = w - LR * rows[count]
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        step(table)
    assert int(net.count.asnumpy()) == 2
    np.testing.assert_allclose(net.w.asnumpy(), w, rtol=1e-6)


def test_guarded_updates_are_still_written_in_place():
    """The guard is fused into each update's kernel: no update needs a copy, and a momentum
    buffer that the weight's update reads again is still computed in its own buffer."""
    for make in (lambda p: nn.Momentum(p, learning_rate=LR, momentum=MOMENTUM),
                 lambda p: nn.Adam(p, learning_rate=0.01)):
        net = PickRow()
        opt = make(net.trainable_params())
        grad_fn = ms.value_and_grad(net, None, opt.parameters)

        @ms.jit
        def train(x, i):
            loss, grads = grad_fn(x, i)
            opt(grads)
            return loss

        program = train.program_for(Tensor(np.ones((5, 3), np.float32)), Tensor(1, ms.int32))
        graph = program.graph
        assert program.checks and len(graph.updates) >= 2
        fused = fuse(widen_half_ops(graph), epilogue_ok=epilogue_ok)
        assert not [k.name for k in fused.kernels if k.kind == "copy"]
        guard_only = [k.name for k in fused.kernels if [op.name for op in k.ops] == ["gs.select"]]
        assert not guard_only, fused              # a moment is not stored, then selected
        homes = {fused.homes[k.value] for k in fused.kernels}
        for weight, _ in graph.updates:
            assert ("in", graph.inputs.index(weight)) in homes, weight.name
