"""Compiled kernels against numpy in the same process: elementwise throughput, matmul GFLOP/s,
and the per-call overhead of a tiny graph. The matmul rows time each library in its own child
process with every thread pool quiet before each block (:mod:`.isolated`, :func:`matmuls`)."""
from __future__ import annotations

import os

import numpy as np

from graphspore import Tensor, ops, jit
from graphspore.codegen.streaming import STREAM_MIN_BYTES
from graphspore.runtime.target import usable_cpus
from graphspore.runtime.thread_pool import default_num_threads
from .isolated import measure_isolated
from .timing import measure, measure_pair, measure_rounds, optional_torch, Table


@jit
def swish_plus_one(x):
    return ops.sigmoid(x) * x + 1


@jit
def compiled_copy(x):
    """Our own compiled copy (one load, one store per element; the multiply and add keep it
    a kernel rather than an alias): the bandwidth reference next to numpy's copyto."""
    return x * 1.0 + 0.0


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


def torch_swish_candidates(torch, x):
    """torch eager (fresh output and out=) and, when GRAPHSPORE_BENCH_TORCH_COMPILE=1,
    torch.compile (its first compile takes tens of seconds here)."""
    xt, out = torch.from_numpy(x), torch.empty(x.shape)

    def eager_out():
        torch.sigmoid(xt, out=out)
        out.mul_(xt).add_(1)

    found = {"torch eager": lambda: torch.sigmoid(xt) * xt + 1, "torch eager out=": eager_out}
    if os.environ.get("GRAPHSPORE_BENCH_TORCH_COMPILE") == "1":
        compiled = torch.compile(lambda v: torch.sigmoid(v) * v + 1)
        found["torch.compile"] = lambda: compiled(xt)
    return found


def elementwise(table: Table) -> None:
    """``sigmoid(x)*x+1`` in GB/s (4 bytes read + 4 written per element) against numpy, torch
    and two plain copies of the same bytes, the bandwidth references: numpy's ``copyto`` (one
    thread, glibc memcpy) and our own compiled copy (our threads, non-temporal stores beyond
    32 MB like the kernel). Interleaved rounds with a short pause before each block: torch's
    OpenMP workers spin after a call and would take a core from whichever block came next
    (that, not the output buffer, made "reused" slower than "fresh" when it followed torch)."""
    torch = optional_torch()
    threads = default_num_threads()
    for n in (10**6, 10**7):
        size = f"n=1e{len(str(n)) - 1}"
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        xt = Tensor(x)
        out, tmp, copy_out = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        got = swish_plus_one(xt).asnumpy()
        numpy_swish_plus_one(x, out, tmp)
        np.testing.assert_allclose(got, out, rtol=1e-5, atol=1e-5)
        program = swish_plus_one.program_for(xt)
        compiled_copy(xt)
        copy_program = compiled_copy.program_for(xt)
        ours_out = np.empty_like(x)
        candidates = {"reused": lambda: program.run_into([x], [ours_out]),
                      "fresh": lambda: swish_plus_one(xt),
                      "numpy": lambda: numpy_swish_plus_one(x, out, tmp),
                      "copy": lambda: np.copyto(copy_out, x),
                      "our copy": lambda: copy_program.run_into([x], [copy_out])}
        peers = torch_swish_candidates(torch, x) if torch is not None else {}
        candidates.update(peers)
        t = measure_rounds(candidates, rounds=9, settle_s=0.02)
        gbs = lambda name: 8 * n / t[name] / 1e9
        ratio = t[("numpy", "reused")]
        table.add(f"sigmoid(x)*x+1 {size} (reused out, {threads} threads) vs numpy", gbs("reused"),
                  gbs("numpy"), "GB/s", ratio, ">= 1.0x", ratio >= 1.0)
        copies = (("copy", "numpy copyto (1 thread)"),
                  ("our copy", f"our compiled copy ({threads} threads"
                               f"{', NT stores' if n * 8 >= STREAM_MIN_BYTES else ''})"))
        for copy, label in copies:
            fraction = t[(copy, "reused")]
            table.add(f"sigmoid(x)*x+1 {size} (reused out) vs {label}", gbs("reused"),
                      gbs(copy), "GB/s", fraction, ">= 0.70x copy", fraction >= 0.7)
        table.add(f"sigmoid(x)*x+1 {size} (fresh out) vs numpy", gbs("fresh"), gbs("numpy"),
                  "GB/s", t[("numpy", "fresh")], "(information)", True)
        for peer in peers:
            side = "reused" if peer == "torch eager out=" else "fresh"   # like for like
            ratio = t[(peer, side)]
            table.add(f"sigmoid(x)*x+1 {size} ({side} out) vs {peer} "
                      f"({torch.get_num_threads()} threads)", gbs(side), gbs(peer),
                      "GB/s", ratio, ">= 1.0x", ratio >= 1.0)


def matmul_inputs(n):
    """The two float32 operands of the n x n benchmark product, the same in every process."""
    rng = np.random.default_rng(n)
    return (rng.standard_normal((n, n)).astype(np.float32),
            rng.standard_normal((n, n)).astype(np.float32))


def matmul_contender(library, n, threads):
    """Built inside a benchmark child (:mod:`.isolated`): one n x n float32 product into a
    reused output, by ``library`` ('ours', 'numpy' or 'torch'; torch.mm is MKL/oneDNN, set to
    ``threads`` threads; graphspore's pool and numpy's OpenBLAS use the usable CPUs)."""
    a, b = matmul_inputs(n)
    out = np.empty((n, n), np.float32)
    if library == "ours":
        at, bt = Tensor(a), Tensor(b)
        np.testing.assert_allclose(matmul(at, bt).asnumpy(), a @ b, rtol=1e-3, atol=1e-3 * n)
        program = matmul.program_for(at, bt)
        return lambda: program.run_into([a, b], [out])
    if library == "numpy":
        return lambda: np.matmul(a, b, out=out)
    torch = optional_torch()
    torch.set_num_threads(threads)
    ta, tb, to = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    return lambda: torch.mm(ta, tb, out=to)


def matmuls(table: Table) -> None:
    """Square float32 GEMM in GFLOP/s against numpy (OpenBLAS) and torch (MKL), all into
    reused outputs. Each library runs in its own child process (:mod:`.isolated`): interleaved
    rounds in rotating order, every process' thread pools quiet before each timed block (their
    spinning workers took the cores from whoever ran next when all shared one process: torch
    read 3.3 GFLOP/s at n=256 instead of 170), median per call in a block, median over rounds,
    ratios as medians of per-round ratios."""
    torch = optional_torch()
    threads = min(2, usable_cpus())
    for n in (64, 128, 256, 512, 1024, 2048):
        specs = {name: ("benchmarks.kernels:matmul_contender",
                        {"library": name, "n": n, "threads": threads})
                 for name in ("ours", "numpy") + (("torch",) if torch is not None else ())}
        t = measure_isolated(specs, rounds=7, budget_s=0.05)
        flops = lambda name: 2 * n**3 / t[name] / 1e9
        ratio = t[("numpy", "ours")]
        table.add(f"matmul n={n} vs numpy", flops("ours"), flops("numpy"), "GFLOP/s", ratio,
                  ">= 0.90x at n>=512", n < 512 or ratio >= 0.9)
        if torch is not None:
            ratio = t[("torch", "ours")]     # throughput ratio: time <= torch's is >= 1.0x
            table.add(f"matmul n={n} vs torch ({threads} threads)",
                      flops("ours"), flops("torch"), "GFLOP/s", ratio,
                      ">= 1.0x at n>=256", n < 256 or ratio >= 1.0)


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
