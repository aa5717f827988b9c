"""A compiled train step called from two threads on one network: the in-place updates are
serialised per program, so the parameters equal those of the same number of sequential steps
(every step sees the same batch, so the order does not matter)."""
import threading

import numpy as np

from graphspore import Tensor, jit, nn

STEPS_PER_THREAD = 150


def _network(seed):
    rng = np.random.default_rng(seed)
    net = nn.SequentialCell(nn.Dense(16, 32), nn.ReLU(), nn.Dense(32, 4))
    for p in net.trainable_params():
        p.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.3))
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    return net, jit(nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt))


def test_train_step_from_two_threads_equals_sequential_steps():
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((64, 16)).astype(np.float32))
    y = Tensor(rng.standard_normal((64, 4)).astype(np.float32))
    sequential_net, sequential_step = _network(0)
    for _ in range(2 * STEPS_PER_THREAD):
        sequential_step(x, y)
    net, step = _network(0)
    step(x, y)                                    # compile before the threads start
    barrier = threading.Barrier(2)

    def train():
        barrier.wait()
        for _ in range(STEPS_PER_THREAD - (threading.current_thread() is first)):
            step(x, y)

    first = threading.Thread(target=train)
    second = threading.Thread(target=train)
    first.start(), second.start()
    first.join(120), second.join(120)
    assert not first.is_alive() and not second.is_alive()
    for got, want in zip(net.trainable_params(), sequential_net.trainable_params()):
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())
