"""MindSpore's text for a tensor's values, as printed in `repr(tensor)`.

Follows MindSpore's C++ printer (`TensorStringifier` in ir/tensor.cc): scalars with C++
stream defaults (`%g`: `value= 0.914285`), float elements `%15.8e`, bools right-aligned in 5
columns, ints right-aligned to the widest printed one, `", "` between elements, a line break
after every 12 floats/bools or 24 ints of a 1-D tensor, rows of deeper axes indented by their
depth, and "..." in place of the middle rows/columns when an axis has more than 6 entries
(more than 1000 for a 1-D tensor).
"""
from __future__ import annotations

import re

import numpy as np

_THRESHOLD, _THRESHOLD_1D = 6, 1000
_HALF = _THRESHOLD // 2


def format_values(array: np.ndarray) -> str:
    """The `value=` text of MindSpore's Tensor repr (see the module docstring)."""
    if array.size == 0:
        return ""
    kind = "f" if array.dtype.kind == "f" else "b" if array.dtype.kind == "b" else "i"
    if array.ndim == 0:
        value = array.item()
        return ("%g" % value if kind == "f" else ("True" if value else "False") if kind == "b"
                else str(value))
    out: list[str] = []
    _format_level(out, array.reshape(-1), array.shape, [0], 0, kind)
    text = "".join(out)
    if kind != "i":
        return text
    width = max(len(m) for m in re.findall(r"\x00(-?\d+)", text))
    return re.sub(r"\x00(-?\d+)", lambda m: m.group(1).rjust(width), text)


def _format_run(out, flat, cursor, start, end, kind, ndim) -> None:
    linefeed = 24 if kind == "i" else 12
    for i in range(start, min(end, flat.size - cursor)):
        value = flat[cursor + i]
        out.append("%15.8e" % value if kind == "f" else
                   "%5s" % ("True" if value else "False") if kind == "b" else f"\x00{value}")
        if i != end - 1:
            out.append(", ")
        if ndim == 1 and end - start > _HALF and (i + 1) % linefeed == 0:
            out.append("\n ")


def _format_level(out, flat, shape, cursor, depth, kind) -> None:
    ndim = len(shape)
    out.append("[")
    num = shape[depth]
    if depth == ndim - 1:
        if (num > _THRESHOLD and ndim > 1) or (num > _THRESHOLD_1D and ndim == 1):
            _format_run(out, flat, cursor[0], 0, _HALF, kind, ndim)
            out.append(" ... ")
            _format_run(out, flat, cursor[0], num - _HALF, num, kind, ndim)
        else:
            _format_run(out, flat, cursor[0], 0, num, kind, ndim)
        cursor[0] += num
        out.append("]")
        return
    indent = ",\n" + " " * (depth + 1)
    for i in range(min(_HALF, num)):
        if i:
            out.append(indent)
        _format_level(out, flat, shape, cursor, depth + 1, kind)
    if num > _THRESHOLD:
        out.append(indent + "...")
        cursor[0] += int(np.prod(shape[depth + 1:], dtype=np.int64)) * (num - _THRESHOLD)
    if num > _HALF:
        for i in range(min(num - _HALF, _HALF)):
            out.append(indent if (i or num <= _THRESHOLD) else "\n" + " " * (depth + 1))
            _format_level(out, flat, shape, cursor, depth + 1, kind)
    out.append("]")



__all__ = ["format_values"]
