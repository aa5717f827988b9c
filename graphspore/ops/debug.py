"""Printing from programs: `ops.print_(*items)` and the Primitive `ops.Print()(*items)`.

Each prints its items one per line in MindSpore's format (`graphspore/printing.py`):
eagerly at once, and inside a compiled function or Cell each time the compiled program
runs (`gs.print`, printed through the runtime's callback from native code). Like Python's
`print` inside a graph, they return None.
"""
from __future__ import annotations

from ..eager import gs_op
from ..frontend.builtins import emit_print
from .primitives import _Primitive

__all__ = ["print_", "Print"]


@gs_op
def print_(*input_x) -> None:
    """`ops.print_('x:', x)`: print strings, Python values and tensors, one per line."""
    emit_print(*input_x)


class Print(_Primitive):
    """`ops.Print()('x:', x)`: the Primitive form of `ops.print_`."""

    def apply(self, *input_x):
        return print_(*input_x)
