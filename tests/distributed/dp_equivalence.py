"""Run under `mpirun -n 2`: data-parallel training equals one process on the whole batch.

Every rank trains the same MLP on its strided shard of each global batch (MindSpore's layout,
rows rank::size), three ways: the tutorial idiom in a @jit step (value_and_grad, then
DistributedGradReducer, then the optimizer), TrainOneStepCell in DATA_PARALLEL mode in
GRAPH_MODE (the reducer inserted by itself), and the PYNATIVE loop (reducer called eagerly).
Each is compared with a one-process run on the whole batch, computed on every rank with no
collective, and the ranks must hold bit-identical parameters. Prints "OK <rank> <name>".
"""
import sys

import numpy as np

import graphspore as ms
from graphspore import Tensor, nn, ops
from graphspore.communication import get_group_size, get_rank, init

STEPS, BATCH = 12, 16


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 16, weight_init="HeUniform")
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(16, 3)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def make(seed):
    ms.set_seed(seed)
    net = MLP()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = nn.SGD(net.trainable_params(), learning_rate=0.1, momentum=0.9)
    return net, loss_fn, optimizer


def batches():
    rng = np.random.default_rng(7)
    for _ in range(STEPS):
        yield (rng.standard_normal((BATCH, 6)).astype(np.float32),
               rng.integers(0, 3, BATCH).astype(np.int32))


def params(net):
    return [p.asnumpy().copy() for p in net.trainable_params()]


def reference():
    """One process, whole batch, no reducer."""
    net, loss_fn, optimizer = make(1)
    forward = lambda x, y: loss_fn(net(x), y)                     # noqa: E731
    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss
    for x, y in batches():
        step(Tensor(x), Tensor(y))
    return params(net)


def tutorial_idiom(rank, size, compiled):
    net, loss_fn, optimizer = make(1)
    forward = lambda x, y: loss_fn(net(x), y)                     # noqa: E731
    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)
    grad_reducer = nn.DistributedGradReducer(optimizer.parameters)

    def step(x, y):
        loss, grads = grad_fn(x, y)
        grads = grad_reducer(grads)
        optimizer(grads)
        return loss
    step = ms.jit(step) if compiled else step
    for x, y in batches():
        step(Tensor(x[rank::size]), Tensor(y[rank::size]))
    return params(net)


def train_one_step_cell(rank, size):
    net, loss_fn, optimizer = make(1)
    ms.set_context(mode=ms.GRAPH_MODE)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), optimizer)
    for x, y in batches():
        train(Tensor(x[rank::size]), Tensor(y[rank::size]))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return params(net)


def check(name, got, expected, rank):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6, err_msg=name)
        high = ops.AllReduce(ops.ReduceOp.MAX)(Tensor(g)).asnumpy()
        low = ops.AllReduce(ops.ReduceOp.MIN)(Tensor(g)).asnumpy()
        assert np.array_equal(high, low), f"{name}: ranks hold different parameters"
    sys.stdout.write(f"OK {rank} {name}\n")   # one write: the ranks share stdout
    sys.stdout.flush()


def main():
    init()
    rank, size = get_rank(), get_group_size()
    assert size == int(sys.argv[1]), (size, sys.argv)
    expected = reference()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True)
    check("jit", tutorial_idiom(rank, size, compiled=True), expected, rank)
    check("pynative", tutorial_idiom(rank, size, compiled=False), expected, rank)
    check("train_one_step_cell", train_one_step_cell(rank, size), expected, rank)


if __name__ == "__main__":
    main()
