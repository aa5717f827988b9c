"""Whole compiled train steps against a hand-written numpy forward/backward/SGD of the same
model, run in the same process: the digits MLP (overhead-bound) and a wide MLP (GEMM-bound)."""
from __future__ import annotations

import resource
import time

import numpy as np

import graphspore as ms
from graphspore import Tensor, jit, nn, value_and_grad
from .fma_peak import describe, fma_peak
from .timing import measure_pair, optional_torch, Table


class MLP(nn.Cell):
    def __init__(self, sizes):
        super().__init__()
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Dense(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.body = nn.SequentialCell(*layers)

    def construct(self, x):
        return self.body(x)


def compiled_step(model, lr):
    """MindSpore's idiom: value_and_grad over the optimizer's parameters inside one @jit."""
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = nn.SGD(model.trainable_params(), learning_rate=lr)

    def forward_fn(x, y):
        return loss_fn(model(x), y)

    grad_fn = value_and_grad(forward_fn, None, optimizer.parameters)

    @jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    return train_step


class NumpyMLP:
    """The same network, forward + backward + SGD, written by hand in numpy (float32)."""

    def __init__(self, params, lr):
        self.params = [p.asnumpy().copy() for p in params]   # (W0, b0, W1, b1, ...)
        self.lr = np.float32(lr)

    def step(self, x, y):
        weights, biases = self.params[0::2], self.params[1::2]
        acts = [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = acts[-1] @ w.T + b
            acts.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        prob = exp / exp.sum(axis=1, keepdims=True)
        n = x.shape[0]
        loss = -np.log(prob[np.arange(n), y]).mean()
        grad = prob
        grad[np.arange(n), y] -= 1
        grad /= n
        for i in reversed(range(len(weights))):
            gw, gb = grad.T @ acts[i], grad.sum(axis=0)
            if i > 0:
                grad = (grad @ weights[i]) * (acts[i] > 0)
            weights[i] -= self.lr * gw
            biases[i] -= self.lr * gb
        return loss


def bench_step(table: Table, title: str, sizes, batch: int, lr: float, target: float):
    rng = np.random.default_rng(0)
    ms.set_seed(0)
    ms.set_context(mode=ms.GRAPH_MODE)
    model = MLP(sizes)
    reference = NumpyMLP(model.trainable_params(), lr)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch).astype(np.int32)
    step = compiled_step(model, lr)
    xt, yt = Tensor(x), Tensor(y)
    ours_loss = float(step(xt, yt).asnumpy())
    ref_loss = reference.step(x, y)
    assert abs(ours_loss - ref_loss) <= 1e-4 * max(1.0, abs(ref_loss)), (ours_loss, ref_loss)
    # Alternating blocks of calls, not alternating calls: numpy's and graphspore's thread
    # pools would spin against each other on every switch (see runtime/blas.py). Each block
    # starts after the other side's pools went idle; the ratio is the median over rounds, so
    # load that drifts over the run hits both sides alike.
    ours, ref, ratio = measure_pair(lambda: step(xt, yt), lambda: reference.step(x, y),
                                    rounds=9, budget_s=0.2, settle_s=0.15)
    table.add(title, ours * 1e3, ref * 1e3, "ms", ratio, f"<= {target}x numpy",
              ratio <= target)
    program = step.program_for(xt, yt)
    return program, ours, lambda: step(xt, yt)


def step_flops(sizes, batch: int) -> int:
    """Multiply-add FLOPs of one MLP train step: forward and weight gradient of every layer,
    input gradient of all but the first (elementwise work is not counted)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return sum(2 * batch * n_in * n_out * (2 if i == 0 else 3)
               for i, (n_in, n_out) in enumerate(layers))


def torch_step(torch, sizes, batch: int, lr: float):
    """The same MLP step in torch eager (SGD, cross-entropy), for a same-process ratio."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, sizes[-1], batch).astype(np.int64))

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return step


def wide_step_peak(table: Table, sizes, batch: int, ours_s: float, ours_step) -> None:
    """The wide step's GFLOP/s against this machine's measured FMA peak (benchmarks/
    fma_peak.py, printed), and against torch eager when installed (same process)."""
    peak = fma_peak()
    print(describe(peak))
    flops = step_flops(sizes, batch)
    achieved = flops / ours_s
    table.add("wide MLP step (GFLOP/s vs FMA peak, wall)", achieved / 1e9, peak["peak"] / 1e9,
              "GFLOP/s", achieved / peak["peak"], ">= 0.60x peak", achieved >= 0.6 * peak["peak"])
    # On a shared machine wall time counts the time other processes held the cores; per
    # CPU-second of this process (workers' spinning included) it does not.
    ours_step()
    calls = max(3, int(0.5 / ours_s))
    start = time.process_time()
    for _ in range(calls):
        ours_step()
    per_cpu = flops / ((time.process_time() - start) / calls)
    table.add("wide MLP step (GFLOP per CPU-second vs 1-core peak)", per_cpu / 1e9,
              peak["peak_per_core"] / 1e9, "GFLOP/s", per_cpu / peak["peak_per_core"],
              "(information)", True)
    torch = optional_torch()
    if torch is not None:
        torch.set_num_threads(min(2, peak["cpus"]))
        ours, ref, ratio = measure_pair(ours_step, torch_step(torch, sizes, batch, 0.01),
                                        rounds=7, budget_s=0.2, settle_s=0.15)
        table.add("wide MLP step vs torch eager", ours * 1e3, ref * 1e3, "ms", ratio,
                  "<= 1.0x torch", ratio <= 1.0)


def run(table: Table) -> None:
    # Let the BLAS pools of earlier benchmarks go idle first: OpenBLAS threads spin after each
    # call, and on a 2-core machine they would take a core from the step being timed.
    time.sleep(1.0)
    bench_step(table, "digits MLP step 64-128-128-10, batch 64", (64, 128, 128, 10), 64,
               0.1, 0.5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wide = (1024, 1024, 1024, 10)
    program, ours, ours_step = bench_step(table, "wide MLP step 1024-1024-1024-10, batch 256",
                                          wide, 256, 0.01, 1.05)
    wide_step_peak(table, wide, 256, ours, ours_step)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = sum(v.type.nbytes for v in program.graph.weights)
    print(f"wide MLP step: parameters {params / 2**20:.1f} MiB, workspace arena "
          f"{program.stats.workspace_bytes / 2**20:.1f} MiB, process peak RSS "
          f"{peak / 1024:.0f} MiB (grew {max(peak - before, 0) / 1024:.0f} MiB in this bench)")
