"""Run under `mpirun -n 2` with GRAPHSPORE_ALLREDUCE_CHUNK=1000: the native all-reduce in
compiled code (f32 and f64, sum/max/min/prod, sizes 1, 255, 2^18 and one above the chunk
limit), checked on every rank against the closed form. Prints "OK <rank>"."""
import sys

import numpy as np

import graphspore as ms
from graphspore import Tensor, ops
from graphspore.communication import get_group_size, get_rank, init

init()
rank, size = get_rank(), get_group_size()


@ms.jit
def reduce_all(x):
    return (ops.AllReduce(ops.ReduceOp.SUM)(x), ops.AllReduce(ops.ReduceOp.MAX)(x),
            ops.AllReduce(ops.ReduceOp.MIN)(x), ops.AllReduce(ops.ReduceOp.PROD)(x))


for dtype in (np.float32, np.float64):
    for n in (1, 255, 2500, 1 << 18):
        base = (np.arange(n) % 97).astype(dtype) * 1e-3
        x = base + (rank + 1)
        total, high, low, prod = (t.asnumpy() for t in reduce_all(Tensor(x)))
        ranks = np.arange(1, size + 1, dtype=np.float64)
        np.testing.assert_allclose(total, size * base + ranks.sum(), rtol=1e-6)
        np.testing.assert_allclose(high, base + size, rtol=1e-6)
        np.testing.assert_allclose(low, base + 1, rtol=1e-6)
        expect = np.prod([base.astype(np.float64) + r for r in ranks], axis=0)
        np.testing.assert_allclose(prod, expect, rtol=1e-5)
sys.stdout.write(f"OK {rank}\n")   # one write: the ranks share stdout
sys.stdout.flush()
