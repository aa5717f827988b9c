"""Timing helpers: best-of and median wall times, and a printed table of ratios."""
from __future__ import annotations

import statistics
import time


def measure(fn, repeat: int = 7, number: int | None = None, budget_s: float = 0.4) -> float:
    """Median seconds per call of `fn()`, calibrating `number` to fill ~budget_s / repeat."""
    fn()
    if number is None:
        number, elapsed = 1, 0.0
        while True:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            elapsed = time.perf_counter() - start
            if elapsed > budget_s / repeat or number >= 1 << 20:
                break
            number *= 4
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def measure_pair(ours, reference, rounds: int = 15, budget_s: float = 0.1,
                 settle_s: float = 0.0):
    """Median seconds per call of both functions, timed in alternating rounds so that drift
    in machine load (a shared VM) hits both sides alike; also the median per-round ratio.
    `settle_s`: sleep before each block, so that thread pools the other side woke (OpenBLAS
    workers spin after a call) are idle again when timing starts."""
    ours(), reference()
    counts = [_calibrate(f, budget_s) for f in (ours, reference)]
    times = ([], [])
    for _ in range(rounds):
        for side, (fn, number) in enumerate(zip((ours, reference), counts)):
            if settle_s:
                time.sleep(settle_s)
                fn()
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times[side].append((time.perf_counter() - start) / number)
    ratios = [a / b for a, b in zip(*times)]
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios)


def measure_rounds(candidates: dict, rounds: int = 9, budget_s: float = 0.05,
                   settle_s: float = 0.0) -> dict:
    """Median seconds per call of each candidate (name -> fn), all timed in the same
    interleaved rounds (A B C A B C ...), so drifting load on a shared machine hits them alike;
    ``result[name]`` is the median over rounds, ``result[(a, b)]`` the median per-round time
    ratio a / b for every pair."""
    for fn in candidates.values():
        fn()
    counts = {name: _calibrate(fn, budget_s) for name, fn in candidates.items()}
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            if settle_s:
                time.sleep(settle_s)
                fn()
            start = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            times[name].append((time.perf_counter() - start) / counts[name])
    result = {name: statistics.median(samples) for name, samples in times.items()}
    for a in candidates:
        for b in candidates:
            result[(a, b)] = statistics.median(x / y for x, y in zip(times[a], times[b]))
    return result


def optional_torch():
    """torch if installed (benchmarks only; never a dependency of graphspore), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _calibrate(fn, budget_s: float) -> int:
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start > budget_s / 4 or number >= 1 << 20:
            return number
        number *= 2


class Table:
    """Rows of (benchmark, graphspore figure, reference figure, ratio, target, verdict)."""

    def __init__(self, title: str):
        self.title, self.rows = title, []

    def add(self, name, ours, ref, unit, ratio, target_text, ok):
        """One row; `ref` and `ratio` may be None where the reference has no figure (a peer
        that crashes on the workload)."""
        ref_text = "-" if ref is None else f"{ref:.3g} {unit}"
        ratio_text = "-" if ratio is None else f"{ratio:.2f}x"
        self.rows.append((name, f"{ours:.3g} {unit}", ref_text, ratio_text,
                          target_text, "ok" if ok else "MISSED"))

    def markdown(self) -> str:
        """The rows as a Markdown table, the form README's benchmark table is pasted from."""
        lines = ["| benchmark | graphspore | reference | ratio | target | |",
                 "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
                  for row in self.rows]
        return "\n".join(lines)

    def print(self):
        head = ("benchmark", "graphspore", "reference", "ratio", "target", "")
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(6)]
        print(f"\n{self.title}")
        for row in [head] + self.rows:
            print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
