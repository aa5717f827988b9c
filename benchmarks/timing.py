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


class Table:
    """Rows of (benchmark, graphspore figure, reference figure, ratio, target, verdict)."""

    def __init__(self, title: str):
        self.title, self.rows = title, []

    def add(self, name, ours, ref, unit, ratio, target_text, ok):
        self.rows.append((name, f"{ours:.3g} {unit}", f"{ref:.3g} {unit}", f"{ratio:.2f}x",
                          target_text, "ok" if ok else "MISSED"))

    def print(self):
        head = ("benchmark", "graphspore", "reference", "ratio", "target", "")
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(6)]
        print(f"\n{self.title}")
        for row in [head] + self.rows:
            print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
