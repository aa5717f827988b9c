"""Convolution workloads against numpy (im2col by hand) and, when installed, torch eager, in
one process: a LeNet-5 train step and a CIFAR-sized convolution's forward + backward."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import graphspore as ms
from graphspore import Tensor, jit, nn, value_and_grad
from graphspore.runtime.target import usable_cpus
from .fma_peak import describe as describe_peak, fma_peak
from .timing import measure_rounds, optional_torch, Table


class LeNet5(nn.Cell):
    """conv 1->6 5x5, relu, maxpool 2, conv 6->16 5x5, relu, maxpool 2, 256->120->84->10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid", has_bias=True)
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid", has_bias=True)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc1, self.fc2, self.fc3 = nn.Dense(256, 120), nn.Dense(120, 84), nn.Dense(84, 10)

    def construct(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.flatten(self.pool(self.relu(self.conv2(x))))
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


# --------------------------------------------------------------------------- numpy LeNet-5

def np_im2col(x, k):
    """(C*k*k, N*Ho*Wo), rows (c, i, j), columns (n, ho, wo)."""
    n, c = x.shape[:2]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))          # N, C, Ho, Wo, k, k
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(c * k * k, -1)


def np_col2im(cols, shape, k):
    n, c, h, w = shape
    ho, wo = h - k + 1, w - k + 1
    taps = cols.reshape(c, k, k, n, ho, wo)
    out = np.zeros(shape, cols.dtype)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + ho, j:j + wo] += taps[:, i, j].transpose(1, 0, 2, 3)
    return out


class NumpyLeNet:
    """The same network, forward + backward + SGD momentum, by hand in numpy (float32)."""

    def __init__(self, params, lr, momentum):
        self.params = [p.asnumpy().copy() for p in params]
        self.moments = [np.zeros_like(p) for p in self.params]
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)

    @staticmethod
    def _conv(x, w, b):
        o, k = w.shape[0], w.shape[2]
        cols = np_im2col(x, k)
        y = w.reshape(o, -1) @ cols + b[:, None]
        n, ho, wo = x.shape[0], x.shape[2] - k + 1, x.shape[3] - k + 1
        return y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3), cols

    @staticmethod
    def _pool(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    @staticmethod
    def _unpool(x, y, g):
        mask = x == np.repeat(np.repeat(y, 2, axis=2), 2, axis=3)
        return mask * np.repeat(np.repeat(g, 2, axis=2), 2, axis=3)

    def step(self, x, labels):
        w1, b1, w2, b2, f1, c1, f2, c2, f3, c3 = self.params
        z1, cols1 = self._conv(x, w1, b1)
        a1 = np.maximum(z1, 0)
        p1 = self._pool(a1)
        z2, cols2 = self._conv(p1, w2, b2)
        a2 = np.maximum(z2, 0)
        p2 = self._pool(a2)
        h0 = p2.reshape(x.shape[0], -1)
        h1 = np.maximum(h0 @ f1.T + c1, 0)
        h2 = np.maximum(h1 @ f2.T + c2, 0)
        logits = h2 @ f3.T + c3
        shifted = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(shifted)
        prob /= prob.sum(axis=1, keepdims=True)
        n = x.shape[0]
        loss = -np.log(prob[np.arange(n), labels]).mean()
        g = prob
        g[np.arange(n), labels] -= 1
        g /= n
        grads = [None] * 10
        grads[8], grads[9] = g.T @ h2, g.sum(0)
        g = (g @ f3) * (h2 > 0)
        grads[6], grads[7] = g.T @ h1, g.sum(0)
        g = (g @ f2) * (h1 > 0)
        grads[4], grads[5] = g.T @ h0, g.sum(0)
        g = self._unpool(a2, p2, (g @ f1).reshape(p2.shape)) * (z2 > 0)
        g2 = g.transpose(1, 0, 2, 3).reshape(16, -1)
        grads[2], grads[3] = (g2 @ cols2.T).reshape(w2.shape), g2.sum(1)
        g = np_col2im(w2.reshape(16, -1).T @ g2, p1.shape, 5)
        g = self._unpool(a1, p1, g) * (z1 > 0)
        g1 = g.transpose(1, 0, 2, 3).reshape(6, -1)
        grads[0], grads[1] = (g1 @ cols1.T).reshape(w1.shape), g1.sum(1)
        for p, v, gr in zip(self.params, self.moments, grads):
            v *= self.momentum
            v += gr
            p -= self.lr * v
        return loss


def torch_lenet_step(torch, params, x, labels, lr, momentum):
    """torch eager: the same network and parameters, SGD momentum (torch's form equals
    MindSpore's Momentum: v = m v + g, w -= lr v)."""
    tnn = torch.nn
    net = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5),
                         tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(256, 120),
                         tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))
    with torch.no_grad():
        for mine, theirs in zip(params, net.parameters()):
            theirs.copy_(torch.from_numpy(mine.asnumpy()))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    loss_fn = tnn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))

    def step():
        optimizer.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        optimizer.step()
        return loss
    return step


def lenet(table: Table) -> None:
    ms.set_seed(0)
    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 64).astype(np.int32)
    net = LeNet5()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    grad_fn = value_and_grad(lambda a, b: loss_fn(net(a), b), None, optimizer.parameters)

    @jit
    def step(a, b):
        loss, grads = grad_fn(a, b)
        optimizer(grads)
        return loss

    reference = NumpyLeNet(net.trainable_params(), 0.01, 0.9)
    torch = optional_torch()
    peer = (torch_lenet_step(torch, net.trainable_params(), x, labels, 0.01, 0.9)
            if torch is not None else None)
    xt, yt = Tensor(x), Tensor(labels)
    ours_loss, ref_loss = float(step(xt, yt).asnumpy()), reference.step(x, labels)
    assert abs(ours_loss - ref_loss) <= 1e-4 * max(1.0, abs(ref_loss)), (ours_loss, ref_loss)
    candidates = {"ours": lambda: step(xt, yt), "numpy": lambda: reference.step(x, labels)}
    if peer is not None:
        candidates["torch eager"] = peer
    t = measure_rounds(candidates, rounds=9, budget_s=0.2, settle_s=0.1)
    title = "LeNet-5 train step, batch 64, 28x28, SGD momentum"
    table.add(f"{title} vs numpy", t["ours"] * 1e3, t["numpy"] * 1e3, "ms",
              t[("ours", "numpy")], "(information)", True)
    if peer is not None:
        ratio = t[("ours", "torch eager")]
        table.add(f"{title} vs torch eager", t["ours"] * 1e3, t["torch eager"] * 1e3, "ms",
                  ratio, "<= 0.8x torch eager", ratio <= 0.8)
    program = step.program_for(xt, yt)
    print(f"LeNet-5 step: {program.stats.kernels} kernels, workspace "
          f"{program.stats.workspace_bytes / 2**20:.1f} MiB")


def cifar_conv(table: Table) -> None:
    """3->64 3x3 'same' over 64 images of 32x32: forward, then the input and weight
    gradients of sum(conv(x) * G); 3 products of 2*64*1024*64*27 FLOP each."""
    rng = np.random.default_rng(0)
    ms.set_context(mode=ms.GRAPH_MODE)
    conv = nn.Conv2d(3, 64, 3, pad_mode="same", has_bias=False)
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    g = rng.standard_normal((64, 64, 32, 32)).astype(np.float32)
    grad_fn = jit(value_and_grad(lambda a, b: (conv(a) * b).sum(), 0, conv.weight))
    xt, gt = Tensor(x), Tensor(g)
    grad_fn(xt, gt)
    flops = 3 * 2 * 64 * 32 * 32 * 64 * 27
    w = conv.weight.asnumpy()
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))

    def numpy_fwd_bwd():
        cols = np_im2col(x_pad, 3)
        y = w.reshape(64, -1) @ cols
        g2 = g.transpose(1, 0, 2, 3).reshape(64, -1)
        dw = g2 @ cols.T
        dx = np_col2im(w.reshape(64, -1).T @ g2, x_pad.shape, 3)
        return float((y * g2).sum()), dw, dx
    candidates = {"ours": lambda: grad_fn(xt, gt), "numpy": numpy_fwd_bwd}
    torch = optional_torch()
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(True)
        tw = torch.from_numpy(w.copy()).requires_grad_(True)
        tg = torch.from_numpy(g)

        def torch_fwd_bwd():
            tx.grad = tw.grad = None
            (torch.nn.functional.conv2d(tx, tw, padding=1) * tg).sum().backward()
        candidates["torch eager"] = torch_fwd_bwd
    t = measure_rounds(candidates, rounds=9, budget_s=0.2, settle_s=0.1)
    cpu_seconds = _process_seconds(candidates["ours"])
    measured = fma_peak()
    peak, per_core = measured["peak"], measured["peak_per_core"]
    print(describe_peak(measured))
    name = "conv 3->64 3x3, 32x32, batch 64, forward+backward"
    table.add(f"{name} (GFLOP/s vs {usable_cpus()}-core FMA peak, wall)", flops / t["ours"] / 1e9,
              peak / 1e9, "GFLOP/s", flops / t["ours"] / peak, ">= 0.50x peak",
              flops / t["ours"] >= 0.5 * peak)
    table.add(f"{name} (GFLOP per CPU-second vs 1-core peak)", flops / cpu_seconds / 1e9,
              per_core / 1e9, "GFLOP/s", flops / cpu_seconds / per_core, "(information)",
              True)
    table.add(f"{name} vs numpy", t["ours"] * 1e3, t["numpy"] * 1e3, "ms",
              t[("ours", "numpy")], "(information)", True)
    if torch is not None:
        table.add(f"{name} vs torch eager", t["ours"] * 1e3, t["torch eager"] * 1e3, "ms",
                  t[("ours", "torch eager")], "(information)", True)


def _process_seconds(fn, calls: int = 20) -> float:
    """CPU seconds of the whole process (every thread, idle spinning included) per call:
    what the work costs on a machine whose cores other processes share."""
    import time
    fn()
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def run(table: Table) -> None:
    lenet(table)
    cifar_conv(table)
