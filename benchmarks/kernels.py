"""Compiled kernels against numpy in the same process: elementwise throughput, matmul GFLOP/s,
and the per-call overhead of a tiny graph."""
from __future__ import annotations

import numpy as np

from graphspore import Tensor, ops, jit
from .timing import measure, measure_pair, Table


@jit
def swish_plus_one(x):
    return ops.sigmoid(x) * x + 1


@jit
def matmul(a, b):
    return ops.matmul(a, b)


@jit
def tiny(a, b, c, d):
    return a * b + c - d


def numpy_swish_plus_one(x, out, tmp):
    np.negative(x, out=tmp)
    np.exp(tmp, out=tmp)
    tmp += 1
    np.divide(x, tmp, out=out)
    out += 1


def elementwise(table: Table) -> None:
    for n in (10**6, 10**7):
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        xt = Tensor(x)
        out, tmp = np.empty_like(x), np.empty_like(x)
        got = swish_plus_one(xt).asnumpy()
        numpy_swish_plus_one(x, out, tmp)
        np.testing.assert_allclose(got, out, rtol=1e-5, atol=1e-5)
        program = swish_plus_one.program_for(xt)
        fresh = measure(lambda: swish_plus_one(xt))
        reused = measure(lambda: program.run_into([x], [out]))
        ref = measure(lambda: numpy_swish_plus_one(x, out, tmp))
        gbs = lambda t: 8 * n / t / 1e9  # read 4 bytes, write 4 bytes per element
        table.add(f"sigmoid(x)*x+1 n=1e{len(str(n)) - 1} (reused out)", gbs(reused), gbs(ref),
                  "GB/s", gbs(reused) / gbs(ref), ">= 1.0x at 1e7",
                  n < 10**7 or gbs(reused) >= gbs(ref))
        table.add(f"sigmoid(x)*x+1 n=1e{len(str(n)) - 1} (fresh out)", gbs(fresh), gbs(ref),
                  "GB/s", gbs(fresh) / gbs(ref), "(information)", True)


def matmuls(table: Table) -> None:
    rng = np.random.default_rng(0)
    for n in (64, 128, 256, 512, 1024, 2048):
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        at, bt = Tensor(a), Tensor(b)
        np.testing.assert_allclose(matmul(at, bt).asnumpy(), a @ b, rtol=1e-3, atol=1e-3 * n)
        ours = measure(lambda: matmul(at, bt), repeat=5)
        ref = measure(lambda: np.matmul(a, b), repeat=5)
        flops = lambda t: 2 * n**3 / t / 1e9
        table.add(f"matmul n={n}", flops(ours), flops(ref), "GFLOP/s", ref / ours,
                  ">= 0.90x at n>=512", n < 512 or ref / ours >= 0.9)


def overhead(table: Table) -> None:
    args = [Tensor(np.full((4,), i, np.float32)) for i in range(4)]
    arrays = [a.asnumpy() for a in args]
    tiny(*args)
    ours, ref, ratio = measure_pair(lambda: tiny(*args),
                                    lambda: arrays[0] * arrays[1] + arrays[2] - arrays[3])
    table.add("per-call overhead, 4-input tiny graph", ours * 1e6, ref * 1e6, "us",
              ratio, "<= 3 us", ours * 1e6 <= 3.0)


def run(table: Table) -> None:
    overhead(table)
    elementwise(table)
    matmuls(table)
