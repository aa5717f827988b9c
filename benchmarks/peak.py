"""The float32 FMA peak of this machine, computed from a measured clock: FLOP/s rows divide
by it (`fma_peak`).

Zen 4 (and any AVX-512 core with two FMA pipes) retires 2 FMA instructions a cycle; Zen 4
splits a 512-bit FMA over both 256-bit pipes, so either way a core does 2 x 8 float32 lanes
x 2 FLOP = 32 FLOP a cycle (AVX-512 cores with two full 512-bit pipes do 64; AVX2-only
cores 32). The clock is measured, not read from /proc/cpuinfo (a VM reports the nominal
frequency): a chain of dependent 64-bit adds (one cycle each on x86 cores), timed in thread
CPU time so that other processes sharing the cores do not count.
"""
from __future__ import annotations

import ctypes
import functools
import time

import mmap
import platform

from graphspore.runtime.target import host, usable_cpus

ADDS_PER_ITERATION = 100
# x86-64: xor eax, eax; loop: (add rax, 1) x 100; dec rdi; jnz loop; ret
_BODY = b"\x48\x83\xc0\x01" * ADDS_PER_ITERATION + b"\x48\xff\xcf"
_SPIN = (b"\x31\xc0" + _BODY + b"\x0f\x85" + (-(len(_BODY) + 6)).to_bytes(4, "little", signed=True)
         + b"\xc3")


def flops_per_cycle() -> int:
    """float32 FLOP per cycle per core: 2 FMA pipes x (vector lanes) x 2, with 256-bit pipes
    on Zen 4 and AVX2 cores (one 512-bit FMA takes both)."""
    bits = host().vector_width_bits
    return 2 * (min(bits, 256) // 32) * 2 if _double_pumped() else 2 * (bits // 32) * 2


def _double_pumped() -> bool:
    """True on AMD cores (Zen 4 executes 512-bit FMAs on two 256-bit pipes)."""
    try:
        with open("/proc/cpuinfo") as info:
            return "AuthenticAMD" in info.read(4096)
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def measured_clock_hz(seconds: float = 0.05) -> float:
    """Cycles per second of CPU time of this thread (median of 5 runs) from a chain of
    dependent adds in machine code (x86-64; elsewhere the clock /proc/cpuinfo reports)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return _reported_clock_hz()
    memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    memory.write(_SPIN)
    address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    spin = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(address)
    iterations = 1000
    while True:
        start = time.thread_time()
        spin(iterations)
        if time.thread_time() - start > seconds:
            break
        iterations *= 4
    rates = []
    for _ in range(5):
        start = time.thread_time()
        spin(iterations)
        rates.append(iterations * ADDS_PER_ITERATION / (time.thread_time() - start))
    del spin, address
    return sorted(rates)[2]


def _reported_clock_hz() -> float:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) * 1e6
    raise RuntimeError("no clock in /proc/cpuinfo")


def fma_peak(threads: int | None = None) -> float:
    """float32 FLOP/s of `threads` cores (default: the CPUs this process may run on) at the
    measured clock."""
    cores = usable_cpus() if threads is None else threads
    return flops_per_cycle() * measured_clock_hz() * cores


def describe() -> str:
    return (f"FMA peak {fma_peak(1) / 1e9:.0f} GFLOP/s per core ({flops_per_cycle()} FLOP/cycle "
            f"x {measured_clock_hz() / 1e9:.2f} GHz measured), {usable_cpus()} cores")


if __name__ == "__main__":
    print(describe())
