"""Data-parallel train steps: 2 ranks (mpirun, each half of every batch, 1 thread each) against
1 process on the whole batch, for the digits MLP and the wide MLP, and the share of the 2-rank
step spent in the gradients' all-reduce.

`run(table)` launches this module as the worker under `mpirun -n 1` and `mpirun -n 2`; rank 0
prints one JSON line of median step times (and the all-reduce time of one gradient-sized
buffer, measured as a compiled `ops.all_reduce` call). Needs the mpi extra
(`pip install 'graphspore[mpi]'`); without it the row says so.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

MODELS = {"digits MLP 64-128-128-10, batch 64": ((64, 128, 128, 10), 64),
          "wide MLP 1024-1024-1024-10, batch 256": ((1024, 1024, 1024, 10), 256)}


def _worker() -> None:
    import numpy as np

    import graphspore as ms
    from graphspore import Tensor, jit, nn, ops, value_and_grad
    from graphspore.communication import get_group_size, get_rank, init
    from .timing import measure
    from .training import MLP

    init()
    size, rank = get_group_size(), get_rank()
    if size > 1:
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                     gradients_mean=True)
    result = {}
    for name, (sizes, batch) in MODELS.items():
        ms.set_seed(0)
        model = MLP(sizes)
        loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        optimizer = nn.SGD(model.trainable_params(), learning_rate=0.01)
        grad_fn = value_and_grad(lambda x, y: loss_fn(model(x), y), None, optimizer.parameters)
        reducer = nn.DistributedGradReducer(optimizer.parameters)

        @jit
        def step(x, y):
            loss, grads = grad_fn(x, y)
            optimizer(reducer(grads))
            return loss

        rng = np.random.default_rng(rank)
        x = Tensor(rng.standard_normal((batch // size, sizes[0])).astype(np.float32))
        y = Tensor(rng.integers(0, sizes[-1], batch // size).astype(np.int32))
        count = sum(int(np.prod(p.shape)) for p in optimizer.parameters)
        flat = Tensor(np.ones(count, np.float32))
        reduce_all = jit(lambda g: ops.all_reduce(g))
        # A fixed number of calls on every rank: a per-rank calibration would make the
        # ranks disagree on how many collectives run.
        step_s = measure(lambda: step(x, y), number=50)
        reduce_s = measure(lambda: reduce_all(flat), number=50) if size > 1 else 0.0
        result[name] = {"step_s": step_s, "allreduce_s": reduce_s, "params": count}
    if rank == 0:
        print(json.dumps({"ranks": size, "models": result}), flush=True)


def _launch(ranks: int):
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    mpirun = mpirun if os.path.exists(mpirun) else shutil.which("mpirun")
    env = dict(os.environ, UCX_NET_DEVICES="lo")
    if ranks == 1:
        env.pop("GRAPHSPORE_NUM_THREADS", None)
    done = subprocess.run([mpirun, "-n", str(ranks), sys.executable, "-m",
                           "benchmarks.distributed", "--worker"], capture_output=True,
                          text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(table) -> None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("data-parallel benchmarks skipped: pip install 'graphspore[mpi]'")
        return
    one, two = _launch(1), _launch(2)
    for name in MODELS:
        a, b = two["models"][name], one["models"][name]
        share = a["allreduce_s"] / a["step_s"]
        table.add(f"data parallel {name}: 2 ranks vs 1 process (all-reduce "
                  f"{share:.0%} of the step)", a["step_s"] * 1e3, b["step_s"] * 1e3, "ms",
                  a["step_s"] / b["step_s"], "(information)", True)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        _worker()
    else:
        from .timing import Table
        table = Table("data parallel over MPI (ratio < 1: 2 ranks faster than 1 process)")
        run(table)
        table.print()
