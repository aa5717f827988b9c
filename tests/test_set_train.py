"""set_train toggles recompile nothing that does not read the flags: a program is keyed on the
training flags of the Cells its parse read (issue 15.4), so a train/eval loop compiles each
program once, and a program that reads a flag gets one variant per value it is called with."""
import numpy as np

from graphspore import Tensor, compiler, jit, nn, value_and_grad


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Dense(4, 8)
        self.drop = nn.Dropout(p=0.5)
        self.out = nn.Dense(8, 2)

    def construct(self, x):
        return self.out(self.drop(nn.ReLU()(self.hidden(x))))


def numpy_forward(net, x):
    """The network in evaluation mode (Dropout is the identity), in float64."""
    w1, b1 = net.hidden.weight.asnumpy(), net.hidden.bias.asnumpy()
    w2, b2 = net.out.weight.asnumpy(), net.out.bias.asnumpy()
    return np.maximum(x @ w1.T + b1, 0) @ w2.T + b2


def test_a_train_eval_loop_compiles_each_program_once():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    net, side = Net(), nn.Dense(4, 3)              # side reads no training flag
    loss_fn = nn.MSELoss()
    optimizer = nn.SGD(net.trainable_params(), learning_rate=0.05)
    grad_fn = value_and_grad(lambda a, b: loss_fn(net(a), b), None, optimizer.parameters)

    @jit
    def train_step(a, b):
        loss, grads = grad_fn(a, b)
        optimizer(grads)
        return loss

    evaluate, project = jit(lambda a: net(a)), jit(lambda a: side(a))
    first = len(compiler.STATS)
    for _ in range(10):
        net.set_train(True)
        side.set_train(True)
        train_step(Tensor(x), Tensor(y))
        project(Tensor(x))
        net.set_train(False)
        side.set_train(False)
        out = evaluate(Tensor(x))
        np.testing.assert_allclose(out.asnumpy(), numpy_forward(net, x.astype(np.float64)),
                                   rtol=1e-4, atol=1e-5)
        project(Tensor(x))
    names = [s.name for s in compiler.STATS[first:]]
    assert len(names) == 3, names                   # train_step, evaluate, project: once each


def test_a_program_that_reads_a_flag_has_one_variant_per_value():
    net = Net()
    x = Tensor(np.ones((16, 4), np.float32))
    forward = jit(lambda a: net(a))
    first = len(compiler.STATS)
    net.set_train(False)
    eval_out = forward(x).asnumpy()
    net.set_train(True)
    train_out = forward(x).asnumpy()                # Dropout active: a second program
    assert np.any(train_out != eval_out)
    net.set_train(False)
    np.testing.assert_array_equal(forward(x).asnumpy(), eval_out)
    net.set_train(True)
    forward(x)
    assert len(compiler.STATS) - first == 2
