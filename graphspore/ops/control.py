"""MindSpore's functional loops: `ops.WhileLoop`, `ops.ForiLoop`, `ops.Scan`.

Each is plain Python over the callables it is given. Eagerly that is a Python loop; inside
a compiled function the frontend inlines `construct` like a Cell's, so a loop whose
condition is a tensor becomes a `gs.while` (frontend/control_loops.py) and a loop over
Python bounds unrolls, as in MindSpore.
"""
from __future__ import annotations

__all__ = ["WhileLoop", "ForiLoop", "Scan"]


class _Loop:
    """Called like a Primitive; the frontend inlines `construct` (the `__gs_cell__` rule)."""

    __gs_cell__ = True

    def __call__(self, *args):
        return self.construct(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WhileLoop(_Loop):
    """`WhileLoop()(cond_func, loop_func, init_val)`: `val = loop_func(val)` while
    `cond_func(val)` holds; returns the final `val`."""

    def construct(self, cond_func, loop_func, init_val):
        val = init_val
        while cond_func(val):
            val = loop_func(val)
        return val


class ForiLoop(_Loop):
    """`ForiLoop()(lower, upper, loop_func, init_val)`: `val = loop_func(i, val)` for
    i = lower .. upper - 1; returns the final `val`."""

    def construct(self, lower, upper, loop_func, init_val, unroll=True):
        val = init_val
        i = lower
        while i < upper:
            val = loop_func(i, val)
            i = i + 1
        return val


class Scan(_Loop):
    """`Scan()(loop_func, init, xs, length=None)`: `carry, y = loop_func(carry, x)` over the
    elements of the tuple or list `xs` (or `length` times with x = None); returns
    `(carry, [y, ...])`."""

    def construct(self, loop_func, init, xs, length=None, unroll=True):
        carry = init
        ys = []
        items = [None] * length if xs is None else xs
        for x in items:
            carry, y = loop_func(carry, x)
            ys.append(y)
        return carry, ys
