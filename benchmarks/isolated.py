"""Contenders timed each in its own child process, in interleaved rounds, with every process
quiet before each timed block.

Why not one process: BLAS libraries keep their worker threads spinning after a call (libgomp
under torch/MKL, OpenBLAS's workers under numpy, graphspore's pool for 75 us), so whichever
contender runs next shares the cores with the previous one's spinners. Timed in one process,
torch's 2-thread MKL GEMM at n=256 read 3.3 GFLOP/s, against 170 alone. Here:

- each contender lives in a child (``python -m benchmarks.isolated``) that imports only its
  own library and builds its inputs from the same seed; the parent sends it JSON commands;
- before every timed block the parent waits until all children are idle: their threads' CPU
  time (``/proc/PID/task/*/schedstat``, nanoseconds) grows by less than 2% of one core over a
  20 ms window (at most 2 s), so no pool is still spinning, ours included;
- a block is one untimed call (the caller's pool wakes up, as in any loop of calls) and then
  ``number`` calls timed one by one; its figure is their median (robust to a preemption by
  other processes of a shared machine);
- the order of contenders rotates every round (A B C, B C A, C A B, ...), so none always runs
  right after another; a contender's figure is the median over rounds and a ratio is the
  median of the per-round ratios.

No library's settings are changed (thread counts are set as the caller asks, e.g. torch to the
usable CPUs); nothing here favours one side.
"""
from __future__ import annotations

import glob
import importlib
import json
import os
import statistics
import subprocess
import sys
import time

QUIET_WINDOW_S = 0.02
QUIET_FRACTION = 0.02      # of one core, over the window
QUIET_MAX_S = 2.0


def child() -> None:
    """Serve commands from stdin: setup {factory, kwargs}, calibrate {budget_s}, time
    {number}; one JSON reply per line on stdout."""
    fn = None
    out = sys.stdout
    sys.stdout = sys.stderr          # libraries' prints must not break the protocol
    for line in sys.stdin:
        command = json.loads(line)
        if "setup" in command:
            module, name = command["setup"].split(":")
            fn = getattr(importlib.import_module(module), name)(**command.get("kwargs", {}))
            fn()
            reply = {"ok": True}
        elif "calibrate" in command:
            number, budget = 1, command["calibrate"]
            while True:
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                if time.perf_counter() - start > budget or number >= 1 << 16:
                    break
                number *= 2
            reply = {"number": number}
        else:
            fn()
            samples = []
            for _ in range(command["time"]):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            reply = {"seconds": statistics.median(samples)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Contender:
    """One child process serving one callable, built by ``factory(**kwargs)`` (a
    'module:function' string) inside the child."""

    def __init__(self, factory: str, env: dict | None = None, **kwargs):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.isolated"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=root, env=dict(os.environ, **(env or {})))
        self.ask({"setup": factory, "kwargs": kwargs})

    def ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark child for {command} died "
                               f"(exit {self.process.wait()})")
        return json.loads(line)

    def cpu_ns(self) -> int:
        total = 0
        for path in glob.glob(f"/proc/{self.process.pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass                 # a thread that ended between glob and open
        return total

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def wait_quiet(contenders) -> None:
    """Return once no contender's threads used more than QUIET_FRACTION of a core over
    QUIET_WINDOW_S (or after QUIET_MAX_S)."""
    deadline = time.perf_counter() + QUIET_MAX_S
    before = sum(c.cpu_ns() for c in contenders)
    while time.perf_counter() < deadline:
        time.sleep(QUIET_WINDOW_S)
        after = sum(c.cpu_ns() for c in contenders)
        if after - before < QUIET_FRACTION * QUIET_WINDOW_S * 1e9:
            return
        before = after


def measure_isolated(specs: dict, rounds: int = 7, budget_s: float = 0.05) -> dict:
    """``specs``: name -> (factory, kwargs) or (factory, kwargs, env). Returns, like
    :func:`.timing.measure_rounds`, ``result[name]`` (median seconds per call over rounds)
    and ``result[(a, b)]`` (median per-round ratio of a's time to b's)."""
    contenders = {}
    try:
        for name, (factory, kwargs, *env) in specs.items():
            contenders[name] = Contender(factory, *(env or [None]), **kwargs)
        counts = {}
        for name, contender in contenders.items():
            wait_quiet(contenders.values())
            counts[name] = max(5, contender.ask({"calibrate": budget_s})["number"])
        names = list(contenders)
        times = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                wait_quiet(contenders.values())
                times[name].append(contenders[name].ask({"time": counts[name]})["seconds"])
    finally:
        for contender in contenders.values():
            contender.close()
    result = {name: statistics.median(samples) for name, samples in times.items()}
    for a in names:
        for b in names:
            result[(a, b)] = statistics.median(x / y for x, y in zip(times[a], times[b]))
    return result


if __name__ == "__main__":
    child()
