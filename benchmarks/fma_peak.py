"""The float32 FMA peak of this machine, measured rather than assumed: the core clock from a
chain of dependent integer adds (one per cycle), the FMA throughput from independent
vector-FMA chains at the widest vector width, both native loops compiled through the runtime.

Why both: FLOP/s alone cannot tell a 2-pipe core at a low clock from a 1-pipe core at a high
one; flop/cycle = (FMA FLOP/s) / (clock) is the number to compare with the architecture (Zen 4:
two 256-bit FMA pipes, a 512-bit FMA issued as two halves, so 32 f32 flop/cycle/core).
"""
from __future__ import annotations

import ctypes
import math
import threading
import time

from graphspore.runtime import engine
from graphspore.runtime.target import host, usable_cpus

CHAINS = 12          # independent accumulators: latency 4 x 2 pipes needs >= 8
_INNER = 64          # unrolled steps per loop iteration (amortise the loop branch)

_cache: dict = {}


def _peak_ir(lanes: int) -> str:
    vec = f"<{lanes} x float>"
    zero = "zeroinitializer"
    lines = [f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})",
             "define void @fma_loop(i64 %n, ptr %out) {", "entry:", "  br label %loop",
             "loop:", "  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]"]
    for c in range(CHAINS):
        lines.append(f"  %a{c}.0 = phi {vec} [ {zero}, %entry ], [ %a{c}.{_INNER}, %loop ]")
    # x * 1 + 0.5 style update (multiplier not 1 so it cannot fold): a*m + s
    m = f"<{', '.join(['float 0x3FEFFFFFE0000000'] * lanes)}>"
    s = f"<{', '.join(['float 0x3F50000000000000'] * lanes)}>"
    for step in range(_INNER):
        for c in range(CHAINS):
            lines.append(f"  %a{c}.{step + 1} = call {vec} @llvm.fma.v{lanes}f32("
                         f"{vec} %a{c}.{step}, {vec} {m}, {vec} {s})")
    lines += ["  %i.next = add i64 %i, 1", "  %more = icmp ult i64 %i.next, %n",
              "  br i1 %more, label %loop, label %exit", "exit:"]
    total = f"%a0.{_INNER}"
    for c in range(1, CHAINS):
        lines.append(f"  %t{c} = fadd {vec} {total}, %a{c}.{_INNER}")
        total = f"%t{c}"
    lines += [f"  store {vec} {total}, ptr %out, align 4", "  ret void", "}"]
    return "\n".join(lines)


_CLOCK_IR = """
define i64 @add_chain(i64 %n, i64 %seed) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %x = phi i64 [ %seed, %entry ], [ %x8, %loop ]
  %x1 = add i64 %x, %i
  %x2 = xor i64 %x1, %seed
  %x3 = add i64 %x2, %i
  %x4 = xor i64 %x3, %seed
  %x5 = add i64 %x4, %i
  %x6 = xor i64 %x5, %seed
  %x7 = add i64 %x6, %i
  %x8 = xor i64 %x7, %seed
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit
exit:
  ret i64 %x8
}
"""
_CLOCK_OPS = 8      # dependent 1-cycle integer ops per iteration (the loop counter runs beside)


def _functions():
    if "fma" not in _cache:
        lanes = max(4, host().vector_width_bits // 32)
        fma = engine.compile_module(_peak_ir(lanes), ["fma_loop"])
        clock = engine.compile_module(_CLOCK_IR, ["add_chain"])
        _cache["lanes"] = lanes
        _cache["modules"] = (fma, clock)
        _cache["fma"] = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(
            fma.address("fma_loop"))
        _cache["clock"] = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)(
            clock.address("add_chain"))
    return _cache


def _on_cpu_seconds(run) -> float:
    """CPU time of this thread spent in `run()`: time the scheduler gave the loop to other
    processes is not counted, so the rate is the core's, not our share of a loaded machine."""
    start = time.thread_time()
    run()
    return max(time.thread_time() - start, 1e-9)


def _best_rate(run, work, repeat=40):
    """Best units of work per CPU-second over `repeat` timings of about 2 ms each."""
    return max(work / _on_cpu_seconds(run) for _ in range(repeat))


def measure_clock_hz() -> float:
    f = _functions()["clock"]
    n = 1_000_000
    return _best_rate(lambda: f(n, 12345), n * _CLOCK_OPS)


def measure_fma_flops(threads: int = 1, repeat: int = 40) -> float:
    """FLOP/s of independent FMA chains on `threads` threads at once (each its own loop), the
    sum of each thread's rate per CPU-second of its own."""
    fns = _functions()
    lanes, f = fns["lanes"], fns["fma"]
    n = 10_000
    out = (ctypes.c_float * (lanes * threads))()
    flops = n * _INNER * CHAINS * lanes * 2
    if threads == 1:
        return _best_rate(lambda: f(n, ctypes.addressof(out)), flops, repeat)
    best = 0.0
    for _ in range(repeat):
        seconds = [0.0] * threads

        def work(t):
            seconds[t] = _on_cpu_seconds(lambda: f(n, ctypes.addressof(out) + 4 * lanes * t))
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, sum(flops / s for s in seconds))
    return best


def fma_peak() -> dict:
    """Measured clock, FMA FLOP/s (1 thread and all usable CPUs), flop/cycle, and the peak
    used by the benchmarks: measured clock x the power of two nearest the measured flop/cycle
    (32 on Zen 4: AVX-512 FMAs issued as two 256-bit halves on 2 pipes) x usable CPUs. All
    rates are per CPU-second of the measuring threads, so a loaded machine does not lower
    them."""
    if "peak" in _cache:
        return _cache["peak"]
    clock = measure_clock_hz()
    one = measure_fma_flops(1)
    cpus = usable_cpus()
    every = measure_fma_flops(cpus) if cpus > 1 else one
    per_cycle = one / clock
    nominal = 2.0 ** round(math.log2(per_cycle))     # 32 on Zen 4 (measured 31-33)
    result = {"clock_hz": clock, "lanes": _functions()["lanes"], "fma_flops_1": one,
              "fma_flops_all": every, "cpus": cpus, "flop_per_cycle": per_cycle,
              "nominal_per_cycle": nominal, "peak_per_core": clock * nominal,
              "peak": clock * nominal * cpus}
    _cache["peak"] = result
    return result


def describe(p: dict) -> str:
    return (f"FMA peak (per CPU-second): clock {p['clock_hz'] / 1e9:.2f} GHz (dependent adds), "
            f"{p['lanes']}-lane FMA {p['fma_flops_1'] / 1e9:.0f} GFLOP/s on 1 thread = "
            f"{p['flop_per_cycle']:.1f} flop/cycle, {p['fma_flops_all'] / 1e9:.0f} GFLOP/s on "
            f"{p['cpus']} threads; peak used = clock x {p['nominal_per_cycle']:.0f} flop/cycle x "
            f"{p['cpus']} = "
            f"{p['peak'] / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    print(describe(fma_peak()))
