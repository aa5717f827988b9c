"""MindSpore's print format for `print(...)` / `ops.print_` / `ops.Print()` in any mode.

Each item goes on its own line: strings as they are, tensors as `repr(Tensor)`
(`Tensor(shape=[2, 1], dtype=Int32, value=\\n[[1],\\n [1]])`), as MindSpore's Print op writes
them. The same function formats eager prints (the `gs.print` reference) and the prints a
native program makes through the runtime's callback, so both look alike.
"""
from __future__ import annotations

import numpy as np

from .ir.ops import effects
from .runtime import set_print_handler
from .tensor_type import Tensor


def format_print(strings: tuple, layout: tuple, arrays: list) -> str:
    """The text of one print: one line (or block) per item of `layout`."""
    lines = []
    for k in layout:
        if k < 0:
            lines.append(strings[-1 - k])
        else:
            lines.append(repr(Tensor._from_array(np.array(arrays[k]))))
    return "\n".join(lines)


effects.PRINT_HANDLER[0] = format_print
set_print_handler(format_print)

__all__ = ["format_print"]
