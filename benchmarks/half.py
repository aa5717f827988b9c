"""float16 and bfloat16 against float32, all compiled, timed in the same interleaved rounds:
matmul GFLOP/s (16-bit operands are widened to the float32 kernels, so the rows show the cost
of the conversions), an MLP train step (forward, backward, SGD update) with 16-bit weights and
with float32 weights cast to bfloat16 around the matmuls (amp style), and elementwise
throughput in elements/s: a compute-bound chain (sigmoid(x)*x+1: each op is rounded to 16
bits, which float32 fuses into one FMA) and a memory-bound one (x*0.5+y: 16-bit data moves
half the bytes)."""
from __future__ import annotations

import ml_dtypes
import numpy as np

import graphspore as ms
from graphspore import Tensor, jit, ops
from .timing import measure_rounds, Table

HALVES = {"f16": (ms.float16, np.float16), "bf16": (ms.bfloat16, ml_dtypes.bfloat16)}


@jit
def matmul(a, b):
    return ops.matmul(a, b)


@jit
def swish_plus_one(x):
    return ops.sigmoid(x) * x + 1


@jit
def scale_add(x, y):
    return x * 0.5 + y


def matmuls(table: Table) -> None:
    rng = np.random.default_rng(0)
    for n in (128, 512, 1024):
        a32 = rng.standard_normal((n, n)).astype(np.float32)
        b32 = rng.standard_normal((n, n)).astype(np.float32)
        inputs = {"f32": (Tensor(a32), Tensor(b32))}
        for name, (_, np_dtype) in HALVES.items():
            a, b = Tensor(a32.astype(np_dtype)), Tensor(b32.astype(np_dtype))
            want = a.asnumpy().astype(np.float32) @ b.asnumpy().astype(np.float32)
            got = matmul(a, b).asnumpy().astype(np.float32)
            np.testing.assert_allclose(got, want, rtol=2 ** -7, atol=2 ** -7 * np.sqrt(n) * 4)
            inputs[name] = (a, b)
        t = measure_rounds({name: (lambda p=pair: matmul(*p)) for name, pair in inputs.items()},
                           rounds=7)
        for name in HALVES:
            ratio = t[("f32", name)]
            table.add(f"matmul n={n} {name} vs float32", 2 * n ** 3 / t[name] / 1e9,
                      2 * n ** 3 / t["f32"] / 1e9, "GFLOP/s", ratio, ">= 0.50x float32",
                      ratio >= 0.5)


def _mlp_loss(w1, b1, w2, b2, x, y):
    hidden = ops.relu(ops.matmul(x, w1) + b1)
    return ((ops.matmul(hidden, w2) + b2 - y) ** 2).mean()


def _amp_loss(w1, b1, w2, b2, x, y):
    """float32 weights, the matmuls in bfloat16 (auto_mixed_precision's O1 pattern)."""
    bf = ms.bfloat16
    hidden = ops.relu(ops.matmul(x.astype(bf), w1.astype(bf)).astype(ms.float32) + b1)
    out = ops.matmul(hidden.astype(bf), w2.astype(bf)).astype(ms.float32) + b2
    return ((out - y) ** 2).mean()


def _train_step(loss_fn):
    grad_fn = ms.value_and_grad(loss_fn, grad_position=(0, 1, 2, 3))

    @jit
    def step(w1, b1, w2, b2, x, y):
        loss, grads = grad_fn(w1, b1, w2, b2, x, y)
        return (loss,) + tuple(w - 0.01 * g for w, g in zip((w1, b1, w2, b2), grads))
    return step


def mlp_steps(table: Table) -> None:
    """784-512-10 MLP, batch 256: one SGD step (the new weights are returned)."""
    rng = np.random.default_rng(1)
    batch, d_in, d_hidden, d_out = 256, 784, 512, 10
    arrays = [rng.standard_normal((d_in, d_hidden)) * d_in ** -0.5, np.zeros(d_hidden),
              rng.standard_normal((d_hidden, d_out)) * d_hidden ** -0.5, np.zeros(d_out),
              rng.standard_normal((batch, d_in)), rng.standard_normal((batch, d_out))]
    plain, amp = _train_step(_mlp_loss), _train_step(_amp_loss)
    args = {"f32": [Tensor(a.astype(np.float32)) for a in arrays]}
    for name, (_, np_dtype) in HALVES.items():
        args[name] = [Tensor(a.astype(np_dtype)) for a in arrays]
    steps = {name: (lambda a=a: plain(*a)) for name, a in args.items()}
    steps["amp-bf16"] = lambda: amp(*args["f32"])
    loss32 = float(plain(*args["f32"])[0].asnumpy())
    for name, fn in steps.items():                   # every variant computes the same loss
        loss = float(fn()[0].asnumpy().astype(np.float32))
        assert abs(loss - loss32) <= 0.05 * abs(loss32), (name, loss, loss32)
    t = measure_rounds(steps, rounds=7)
    for name in ("f16", "bf16", "amp-bf16"):
        table.add(f"MLP 784-512-10 b=256 train step {name} vs float32", t[name] * 1e3,
                  t["f32"] * 1e3, "ms", t[(name, "f32")], "(information)", True)


def elementwise(table: Table) -> None:
    n = 10 ** 7
    rng = np.random.default_rng(0)
    x32, y32 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(
        np.float32)
    for label, fn, inputs in (("sigmoid(x)*x+1", swish_plus_one, (x32,)),
                              ("x*0.5+y", scale_add, (x32, y32))):
        runs = {}
        for name, np_dtype in (("f32", np.float32), *((k, v[1]) for k, v in HALVES.items())):
            raw = [a.astype(np_dtype) for a in inputs]
            program = fn.program_for(*[Tensor(a) for a in raw])
            out = np.empty(n, np_dtype)
            runs[name] = (lambda p=program, r=raw, o=out: p.run_into(r, [o]))
        t = measure_rounds(runs, rounds=7)
        for name in HALVES:
            table.add(f"{label} n=1e7 {name} vs float32", n / t[name] / 1e9, n / t["f32"] / 1e9,
                      "Gelem/s", t[("f32", name)], "(information)", True)


def run(table: Table) -> None:
    matmuls(table)
    mlp_steps(table)
    elementwise(table)
