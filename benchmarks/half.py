"""float16 against float32, both compiled: matmul GFLOP/s (float16 operands are widened to
float32 kernels, so the row shows the cost of the conversions) and elementwise throughput in
elements/s (float16 moves half the bytes, computes in float32)."""
from __future__ import annotations

import numpy as np

from graphspore import Tensor, jit, ops
from .timing import measure_rounds, Table


@jit
def matmul(a, b):
    return ops.matmul(a, b)


@jit
def swish_plus_one(x):
    return ops.sigmoid(x) * x + 1


def matmuls(table: Table) -> None:
    rng = np.random.default_rng(0)
    for n in (128, 512, 1024):
        a32 = rng.standard_normal((n, n)).astype(np.float32)
        b32 = rng.standard_normal((n, n)).astype(np.float32)
        a16, b16 = Tensor(a32.astype(np.float16)), Tensor(b32.astype(np.float16))
        at32, bt32 = Tensor(a32), Tensor(b32)
        want = (a16.asnumpy().astype(np.float32) @ b16.asnumpy().astype(np.float32))
        np.testing.assert_allclose(matmul(a16, b16).asnumpy().astype(np.float32), want,
                                   rtol=2e-3, atol=2e-3 * np.sqrt(n))
        t = measure_rounds({"f16": lambda: matmul(a16, b16),
                            "f32": lambda: matmul(at32, bt32)}, rounds=7)
        flops = lambda name: 2 * n**3 / t[name] / 1e9
        ratio = t[("f32", "f16")]
        table.add(f"matmul n={n} float16 vs float32", flops("f16"), flops("f32"), "GFLOP/s",
                  ratio, ">= 0.50x float32", ratio >= 0.5)


def elementwise(table: Table) -> None:
    n = 10**7
    x32 = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    x16 = Tensor(x32.astype(np.float16))
    xt32 = Tensor(x32)
    half, single = swish_plus_one.program_for(x16), swish_plus_one.program_for(xt32)
    out16, out32 = np.empty(n, np.float16), np.empty(n, np.float32)
    raw16 = x16.asnumpy()
    t = measure_rounds({"f16": lambda: half.run_into([raw16], [out16]),
                        "f32": lambda: single.run_into([x32], [out32])}, rounds=7)
    rate = lambda name: n / t[name] / 1e9
    table.add("sigmoid(x)*x+1 n=1e7 float16 vs float32", rate("f16"), rate("f32"), "Gelem/s",
              t[("f32", "f16")], "(information)", True)


def run(table: Table) -> None:
    matmuls(table)
    elementwise(table)
