"""``gs_print(spec, pointers)``: the callback a native program makes to print (``gs.print``).

Each print is a kernel of its own making this call where the print stands in the program:
inside a taken branch, once per loop iteration, between the kernels before and after it. The
spec is JSON (``codegen.lower_to_loops.print_spec``): per print its strings, layout and the
slot, shape and dtype of each printed tensor in the ``pointers`` array. The callback views
those buffers (zero-copy numpy views), hands each print to the installed handler (graphspore
installs MindSpore's format) and writes the text to ``sys.stdout``, so prints from native code
interleave with Python's in program order. It runs on the calling thread; an exception inside
it is reported on stderr by ctypes and never unwinds through native frames.
"""
from __future__ import annotations

import ctypes
import json
import sys

import numpy as np
from llvmlite import binding as llvm

SYMBOLS = ("gs_print",)


def _format_plain(strings, layout, arrays) -> str:
    return "\n".join(strings[-1 - k] if k < 0 else str(arrays[k]) for k in layout)


_HANDLER = [_format_plain]
_SPECS: dict[bytes, list] = {}         # spec text -> its parsed prints (by content: a freed
                                       # module's address may be reused by another's spec)


def set_print_handler(handler) -> None:
    """`handler(strings, layout, arrays) -> str` formats one print (graphspore's format)."""
    _HANDLER[0] = handler


def _view(buffers: int, slot: int, shape: list, dtype: str) -> np.ndarray:
    address = ctypes.c_void_p.from_address(buffers + 8 * slot).value or 0
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(shape, dtype)
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(address)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)


def _print(spec: int, buffers: int) -> None:
    text = ctypes.string_at(spec)
    prints = _SPECS.get(text)
    if prints is None:
        prints = json.loads(text.decode("utf-8"))
        if len(_SPECS) < 4096:
            _SPECS[text] = prints
    for item in prints:
        arrays = [_view(buffers, slot, shape, dtype) for slot, shape, dtype in item["tensors"]]
        sys.stdout.write(_HANDLER[0](tuple(item["strings"]), tuple(item["layout"]), arrays)
                         + "\n")
    sys.stdout.flush()


_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(_print)
_BOUND = []


def ensure_print_callback() -> bool:
    """Register ``gs_print`` with LLVM (once per process)."""
    if not _BOUND:
        llvm.add_symbol("gs_print", ctypes.cast(_CALLBACK, ctypes.c_void_p).value)
        _BOUND.append(True)
    return True


__all__ = ["SYMBOLS", "ensure_print_callback", "set_print_handler"]
