"""Ops with an effect when they run: `gs.print`.

`gs.print` writes a line per item (MindSpore's `ops.Print`: strings as they are, tensors in
Tensor's repr) when the program runs. Its `layout` lists the items in order: `k >= 0` is
operand k, `-1 - j` is `strings[j]`. The result is an unused `tensor<i32>` token. Being in the
EFFECT group, simplify never folds, merges or drops it, nor a region op holding one
(`has_effect`); compiled, each print is a kernel of its own, a native call back into Python
at its place among the kernels (codegen `L.Print`, runtime/print_callback.py), so a print in
a branch runs when the branch is taken and one in a loop body once per iteration.
Eagerly (and in the interpreter) the reference prints at once through `PRINT_HANDLER`,
which graphspore sets to MindSpore's format.
"""
from __future__ import annotations

import sys

import numpy as np

from ..types import DType, TensorType
from .opdef import EFFECT, NONDIFF, OPS, OpDef, register

__all__ = ["print_", "PRINT_HANDLER", "print_items", "has_effect"]


def _plain_text(strings, layout, arrays) -> str:
    return "\n".join(strings[-1 - k] if k < 0 else str(arrays[k]) for k in layout)


PRINT_HANDLER = [_plain_text]       # (strings, layout, arrays) -> text; replaced by graphspore


def print_items(strings, layout, arrays) -> None:
    """Write one print's text to stdout (the eager reference and the runtime callback)."""
    sys.stdout.write(PRINT_HANDLER[0](tuple(strings), tuple(layout), list(arrays)) + "\n")
    sys.stdout.flush()


def _check_layout(n: int, strings: tuple, layout: tuple) -> None:
    for k in layout:
        if not (0 <= k < n or 0 <= -1 - k < len(strings)):
            raise ValueError(f"layout entry {k} names neither one of {n} operands nor one of "
                             f"{len(strings)} strings")


def _infer_print(*xs: TensorType, strings: tuple, layout: tuple) -> TensorType:
    _check_layout(len(xs), strings, layout)
    return TensorType((), DType.i32)


def _reference_print(*arrays, strings, layout):
    print_items(strings, layout, [np.asarray(a) for a in arrays])
    return np.zeros((), np.int32)


print_ = register(OpDef(
    "gs.print", _infer_print, _reference_print, None, frozenset({EFFECT, NONDIFF}),
    doc='Print items when run: `%t = "gs.print"(%x) {strings = ["x:"], layout = '
        'array<i64: -1, 0>} : (tensor<2xf32>) -> tensor<i32>`'))


def has_effect(op) -> bool:
    """True for an effect op and for a region op with one anywhere in its regions: running
    it is observable, so dead-code elimination keeps it even when its results are unused."""
    stack = [op]
    while stack:
        op = stack.pop()
        if EFFECT in OPS[op.name].groups:
            return True
        stack.extend(inner for region in op.regions for inner in region.ops)
    return False

