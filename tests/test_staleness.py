"""Python values folded in at compile time are re-checked before each call: a Cell attribute
changed after the first call, a rebound global Parameter, a changed global float or closure
value each compile again (the new result is numpy's), while an unchanged program is reused
and values the graph itself assigns (`self.n = self.n + 1` in construct) do not recompile."""
import numpy as np

from graphspore import GRAPH_MODE, PYNATIVE_MODE, Parameter, Tensor, jit, nn, set_context

SCALE = 2.0
WEIGHT = Parameter(Tensor(np.ones(3, np.float32)), name="weight")
X = np.array([1.0, 2.0, 3.0], np.float32)


def affine(x):
    return x * SCALE + WEIGHT


def test_a_changed_global_float_and_a_rebound_global_parameter_recompile():
    global SCALE, WEIGHT
    f = jit(affine)
    np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X * 2 + 1)
    program = f.program_for(Tensor(X))
    np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X * 2 + 1)
    assert f.program_for(Tensor(X)) is program          # nothing changed: reused
    saved = SCALE, WEIGHT
    try:
        SCALE = 3.0
        np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X * 3 + 1)
        WEIGHT = Parameter(Tensor(np.full(3, 10.0, np.float32)), name="weight2")
        np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X * 3 + 10)
        SCALE = float("nan")
        first = f(Tensor(X)).asnumpy()
        assert np.isnan(first).all()
        again = f.program_for(Tensor(X))
        assert f.program_for(Tensor(X)) is again        # NaN equals itself: no recompiles
    finally:
        SCALE, WEIGHT = saved


def test_a_closure_value_is_checked():
    def make():
        offset = 1.0

        def shifted(x):
            return x + offset

        def set_offset(value):
            nonlocal offset
            offset = value
        return shifted, set_offset

    shifted, set_offset = make()
    f = jit(shifted)
    np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X + 1)
    set_offset(-4.0)
    np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X - 4)


class Scaled(nn.Cell):
    def __init__(self):
        super().__init__()
        self.k = 1.0
        self.inner = nn.Dense(3, 3, has_bias=False)

    def construct(self, x):
        return self.inner(x) * self.k


class Counting(nn.Cell):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def construct(self, x):
        self.calls = self.calls + 1
        return x * 2.0


def test_cell_attributes_changed_after_the_first_call_recompile():
    for mode in ("jit", "graph"):
        net = Scaled()
        w = net.inner.weight.asnumpy()
        run = jit(net) if mode == "jit" else net
        if mode == "graph":
            set_context(mode=GRAPH_MODE)
        try:
            x = Tensor(X[None])
            np.testing.assert_allclose(run(x).asnumpy(), X[None] @ w.T, rtol=1e-6)
            net.k = 5.0
            np.testing.assert_allclose(run(x).asnumpy(), 5 * (X[None] @ w.T), rtol=1e-6)
            net.inner = nn.Dense(3, 3, has_bias=False)          # a new sub-Cell
            w2 = net.inner.weight.asnumpy()
            np.testing.assert_allclose(run(x).asnumpy(), 5 * (X[None] @ w2.T), rtol=1e-6)
        finally:
            set_context(mode=PYNATIVE_MODE)


def test_values_the_graph_assigns_do_not_recompile():
    net = Counting()
    f = jit(net)
    f(Tensor(X))
    program = f.program_for(Tensor(X))
    for _ in range(3):
        np.testing.assert_array_equal(f(Tensor(X)).asnumpy(), X * 2)
    assert f.program_for(Tensor(X)) is program
