"""Gradient hooks: ops.HookBackward and Cell.register_backward_hook call Python from inside the
compiled backward pass (a native callback between kernels) with the gradient, in program
order; a returned gradient replaces it. Checked against closed-form gradients, in
PYNATIVE_MODE, GRAPH_MODE and under jit, as MindSpore documents them."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, jit, nn, ops
from graphspore.ops import GradOperation

MODES = ["pynative", "graph", "jit"]


def _grad(mode, fn, **kwargs):
    """ms.grad(fn) called in `mode` (jit: the gradient function itself compiled by jit)."""
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    grad = ms.grad(fn, **kwargs)
    return jit(grad) if mode == "jit" else grad


def _value(t):
    return float(t.asnumpy())


@pytest.mark.parametrize("mode", MODES)
def test_hook_backward_sees_the_gradient_passed_to_it(mode):
    """MindSpore's example: z = x*y, hooked, times y: d/dz = y = 2 reaches the hook as a
    1-tuple; the gradients stay (y*y, 2*x*y) = (4, 4)."""
    seen = []
    hook = ops.HookBackward(lambda grad: seen.append(grad))

    def hook_test(x, y):
        z = x * y
        z = hook(z)
        return z * y
    grad = _grad(mode, hook_test, grad_position=(0, 1))
    dx, dy = grad(Tensor(1, ms.float32), Tensor(2, ms.float32))
    assert (_value(dx), _value(dy)) == (4.0, 4.0)
    assert len(seen) == 1 and isinstance(seen[0], tuple) and _value(seen[0][0]) == 2.0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    all_grads = GradOperation(get_all=True)(hook_test)(Tensor(1, ms.float32),
                                                       Tensor(2, ms.float32))
    assert [_value(g) for g in all_grads] == [4.0, 4.0] and len(seen) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_returned_gradient_replaces_it(mode):
    """Doubling dL/dz (z = x*y, L = z*y): dL/dx = 2*y*y = 8; dL/dy = 2*y*x + z = 6."""
    hook = ops.HookBackward(lambda grad: grad[0] * 2)
    grad = _grad(mode, lambda x, y: hook(x * y) * y, grad_position=(0, 1))
    dx, dy = grad(Tensor(1, ms.float32), Tensor(2, ms.float32))
    assert (_value(dx), _value(dy)) == (8.0, 6.0)


def test_hooks_run_in_backward_order_once_per_call():
    order = []
    first = ops.HookBackward(lambda g: order.append(("first", _value(g[0]))))
    second = ops.HookBackward(lambda g: order.append(("second", _value(g[0]))))

    def f(x):
        y = first(x * 3.0)           # dL/dy = 2 * (y * 5) * 5 at y = 3
        return second(y * 5.0) ** 2  # dL/du = 2u, u = 15
    grad = ms.grad(f)
    assert _value(grad(Tensor(1.0, ms.float32))) == 2 * 15 * 5 * 3
    assert order == [("second", 30.0), ("first", 150.0)]
    grad(Tensor(2.0, ms.float32))
    assert order[2:] == [("second", 60.0), ("first", 300.0)]


class _Net(nn.Cell):
    def __init__(self, hook_fn):
        super().__init__()
        self.relu = nn.ReLU()
        self.handle = self.relu.register_backward_hook(hook_fn)

    def construct(self, x):
        return self.relu(x + x)


@pytest.mark.parametrize("mode", MODES)
def test_cell_backward_hook(mode):
    """relu(2x): grad_input (the gradient at the ReLU's output) is the sensitivity, ones;
    grad_output (at its input) is 1 where 2x > 0; returning 3 * grad_output makes the
    gradient 6 there and 0 elsewhere."""
    calls = []

    def hook_fn(cell_id, grad_input, grad_output):
        calls.append((cell_id, grad_input[0].asnumpy(), grad_output[0].asnumpy()))
        return (grad_output[0] * 3,)
    net = _Net(hook_fn)
    x = np.array([1.0, -1.0, 2.0], np.float32)
    np.testing.assert_array_equal(_grad(mode, net)(Tensor(x)).asnumpy(), [6.0, 0.0, 6.0])
    (cell_id, grad_input, grad_output), = calls
    assert cell_id == f"ReLU({id(net.relu)})"
    np.testing.assert_array_equal(grad_input, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(grad_output, [1.0, 0.0, 1.0])
    net.handle.remove()                                  # recompiles without the hook
    np.testing.assert_array_equal(_grad(mode, net)(Tensor(x)).asnumpy(), [2.0, 0.0, 2.0])
    assert len(calls) == 1


def test_backward_hook_in_a_training_step():
    """SGD on w * x with the weight gradient halved by a hook on the product's input."""
    class Scale(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(Tensor(np.array([2.0], np.float32)), name="w")
            self.hook = ops.HookBackward(lambda g: g[0] * 0.5)

        def construct(self, x):
            return (self.hook(self.w) * x).sum()
    net = Scale()
    step = nn.TrainOneStepCell(net, nn.SGD(net.trainable_params(), learning_rate=0.1))
    step(Tensor(np.array([4.0], np.float32)))
    np.testing.assert_allclose(net.w.asnumpy(), [2.0 - 0.1 * 0.5 * 4.0])


def test_errors():
    with pytest.raises(TypeError, match="hook_fn must be a Python function"):
        ops.HookBackward(3)

    def raising(grad):
        raise KeyError("inside the hook")
    hook = ops.HookBackward(raising)
    with pytest.raises(KeyError, match="inside the hook"):
        ms.grad(lambda x: hook(x * 2.0))(Tensor(1.0, ms.float32))
    wrong = ops.HookBackward(lambda g: Tensor(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="returned shape"):
        ms.grad(lambda x: wrong(x * 2.0))(Tensor(1.0, ms.float32))

    class Two(nn.Cell):
        def construct(self, a, b):
            return a * b
    two = Two()
    two.register_backward_hook(lambda *args: None)

    class Outer(nn.Cell):
        def __init__(self):
            super().__init__()
            self.two = two

        def construct(self, a):
            return self.two(a, a)
    with pytest.raises(ValueError, match="one tensor input") as info:
        ms.grad(Outer())(Tensor(1.0, ms.float32))
    assert "test_hooks.py" in str(info.value)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert _value(hook(Tensor(5.0, ms.float32))) == 5.0   # eagerly the identity


def test_cell_hook_without_an_input_gradient_runs_after_the_backward_pass():
    """Only the weights' gradients are asked for: the Dense's input gradient is never
    computed, so its hook sees grad_output (None,) once the backward pass has run. With
    w = (1, 1), x = (1, 2): dL/dw = x, dL/db = 1; the hook's grad_input is the sensitivity."""
    calls = []
    dense = nn.Dense(2, 1, weight_init="ones", bias_init="zeros")
    dense.register_backward_hook(lambda cell_id, grad_input, grad_output: calls.append(
        (grad_input[0].asnumpy(), grad_output)))
    x = Tensor(np.array([[1.0, 2.0]], np.float32))
    dw, db = ms.grad(lambda v: dense(v).sum(), None, dense.trainable_params())(x)
    np.testing.assert_array_equal(dw.asnumpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(db.asnumpy(), [1.0])
    (grad_input, grad_output), = calls
    np.testing.assert_array_equal(grad_input, [[1.0]])
    assert grad_output == (None,)


def test_a_hook_may_run_graphspore_ops_itself():
    """Eager ops inside the hook (their own compiled programs) run nested in the callback:
    dL/dx of hook(3x) with the hook returning exp(0) * g * 2 is 6."""
    hook = ops.HookBackward(lambda g: ops.exp(g[0] * 0.0) * g[0] * 2.0)
    assert _value(ms.grad(lambda x: hook(x * 3.0))(Tensor(1.0, ms.float32))) == 6.0
