"""Tensor while loops: a scalar `while i < n: x = x * 1.0001; i = i + 1`, forward and grad,
per iteration at 10,000 and 100,000 iterations, and the first call of the grad (parse,
autodiff, compile; a fresh constant so the object cache misses). Reference: MindSpore 2.10
GRAPH_MODE on CPU, measured for shared/notes/control_flow.md (30 us per iteration forward;
grad 8.3 ms per iteration at 10k and a segfault at 100k; first grad call 35.9 s at 10k).
Then 2nd and 3rd order grads of a loop whose state is taped, per iteration."""
from __future__ import annotations

import time

import numpy as np

from .timing import measure

MINDSPORE_US = {("forward", 10_000): 30.0, ("grad", 10_000): 8324.0,
                ("forward", 100_000): 30.0, ("grad", 100_000): None}   # segfaults
MINDSPORE_FIRST_GRAD_S = 35.9


def loop(step: float):
    from graphspore import Tensor

    def f(x, n):
        i = Tensor(np.float32(0))
        while i < n:
            x = x * step
            i = i + 1
        return x
    return f


def sines():
    """A body whose backward reads the carried value (it is taped): `x = sin(x) * 1.5`."""
    from graphspore import Tensor, ops

    def f(x, n):
        i = Tensor(np.float32(0))
        while i < n:
            x = ops.sin(x) * 1.5
            i = i + 1
        return x
    return f


def higher_orders(table, x) -> None:
    """2nd and 3rd order grads of the taped loop per iteration, against its 1st order (same
    process): the backward of a loop is a gs.for, differentiated again; linear in n (with a
    dense tape cotangent per iteration they took 160 us and 500 us per iteration at 100k)."""
    import graphspore as ms
    from graphspore import Tensor

    fns = [ms.grad(sines(), grad_position=0)]
    for _ in range(2):
        fns.append(ms.grad(fns[-1], grad_position=0))
    for n in (10_000, 100_000):
        count = Tensor(np.float32(n))
        per = [measure(lambda: fn(x, count), repeat=3, budget_s=0.5) / n * 1e6 for fn in fns]
        for order in (2, 3):
            ours = per[order - 1]
            table.add(f"x = sin(x) * 1.5 while loop, {n} iterations, order-{order} grad per "
                      f"iteration (reference: its 1st order)", ours, per[0], "us",
                      per[0] / ours, "<= 5 us", ours <= 5.0)


def run(table) -> None:
    import graphspore as ms
    from graphspore import Tensor

    x = Tensor(np.float32(2.0))
    for n in (10_000, 100_000):
        count = Tensor(np.float32(n))
        for kind in ("forward", "grad"):
            fn = ms.jit(loop(1.0001)) if kind == "forward" else ms.grad(loop(1.0001))
            seconds = measure(lambda: fn(x, count), repeat=5, budget_s=0.5)
            ours = seconds / n * 1e6
            ref = MINDSPORE_US[(kind, n)]
            note = " (MindSpore 2.10 segfaults)" if ref is None else ""
            table.add(f"scalar while x*=1.0001, {n} iterations, {kind} per iteration{note}",
                      ours, ref, "us", None if ref is None else ref / ours, "<= 1 us",
                      ours <= 1.0)
    fresh = ms.grad(loop(1.0001 + float(np.random.default_rng().integers(1, 1 << 20)) * 1e-12))
    start = time.perf_counter()
    fresh(x, Tensor(np.float32(10_000)))
    first = time.perf_counter() - start
    table.add("first call of the grad of that loop (10k iterations, compile included)",
              first, MINDSPORE_FIRST_GRAD_S, "s", MINDSPORE_FIRST_GRAD_S / first, "< 1 s",
              first < 1.0)
    higher_orders(table, Tensor(np.float32(0.5)))
