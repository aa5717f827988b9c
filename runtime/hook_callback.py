"""``gs_host_hook(id, buffer, count)``: the callback a native program makes for a gradient
hook (``gs.host_hook``, ir/ops/hooks.py).

The buffer holds the cotangent, already copied into the hook's result buffer; the callback
views it as a numpy array of the registered shape and dtype, runs the hook registered under
``id`` and writes a replacement back in place. It runs on the calling thread between kernels,
in program order. An exception in the hook cannot unwind through native frames: it is kept
and re-raised by :func:`raise_pending` once the program returns (the compiled program's
``run`` calls it), the gradient left as it was.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np
from llvmlite import binding as llvm

SYMBOLS = ("gs_host_hook",)
SHAPES: dict[int, tuple] = {}       # hook id -> (shape, numpy dtype) of its cotangent
_RUNNER = [None]                    # `run(id, array) -> array`, installed by graphspore
_pending = threading.local()


def set_hook_runner(run) -> None:
    """`run(hook id, cotangent array) -> the array to continue with` (graphspore's hooks)."""
    _RUNNER[0] = run


def set_signature(hook: int, shape: tuple, dtype) -> None:
    """Record the shape and dtype of the cotangent hook `hook` receives."""
    SHAPES[hook] = (tuple(int(d) for d in shape), np.dtype(dtype))


def _call(hook: int, buffer: int, count: int) -> None:
    _pending.depth = getattr(_pending, "depth", 0) + 1   # programs a hook runs are nested
    try:
        shape, dtype = SHAPES[hook]
        raw = (ctypes.c_char * (int(count) * dtype.itemsize)).from_address(buffer)
        view = np.frombuffer(raw, dtype=dtype, count=int(count)).reshape(shape)
        result = _RUNNER[0](hook, view.copy())
        if result is not view:
            view[...] = result
    except BaseException as exc:          # noqa: BLE001 - re-raised after the program
        if getattr(_pending, "error", None) is None:
            _pending.error = exc
    finally:
        _pending.depth -= 1


_FINISHERS: list = []                # `finish(failed)` after every run that may hold hooks


def add_finisher(finish) -> None:
    """Call `finish(failed: bool)` after each run of a program that may call hooks (Cell
    hooks whose input side never ran are completed there)."""
    _FINISHERS.append(finish)


def raise_pending() -> None:
    """End a run: the finishers, then re-raise the first exception a hook raised during it
    on this thread. A program run by a hook (inside the callback) ends nothing."""
    if getattr(_pending, "depth", 0):
        return
    error = getattr(_pending, "error", None)
    _pending.error = None
    for finish in _FINISHERS:
        finish(error is not None)
    if error is not None:
        raise error


_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)(_call)
_BOUND = []


def ensure_hook_callback() -> bool:
    """Register ``gs_host_hook`` with LLVM (once per process)."""
    if not _BOUND:
        llvm.add_symbol("gs_host_hook", ctypes.cast(_CALLBACK, ctypes.c_void_p).value)
        _BOUND.append(True)
    return True


__all__ = ["SYMBOLS", "SHAPES", "add_finisher", "ensure_hook_callback", "raise_pending",
           "set_hook_runner", "set_signature"]
