"""Cells marked by `Cell.to_float(dtype)` (what `mindspore.amp` sets): while such a Cell's
`construct` is inlined, its float inputs and its own float Parameters are read in `dtype`, so
its ops compute in that dtype, as MindSpore's mixed-precision casts do.

The Parameters stay float32 in memory: a read is a `gs.cast` of the weight input, so the
gradient flows back through the cast to the float32 Parameter, and an update made inside the
Cell (BatchNorm's moving statistics) is cast back to the Parameter's dtype when the Cell
returns. Outputs keep the Cell's dtype; `mindspore.amp` wraps Cells to cast them back.
"""
from __future__ import annotations

import contextlib

from ..ir import ops as ir_ops
from ..ir.core import Value


def cell_dtype(cell):
    """The IR dtype `cell.to_float` asked for, or None."""
    dtype = cell.__dict__.get("_mixed_precision_type")
    return getattr(dtype, "ir_dtype", dtype)


def cast_floats(value, dtype):
    """`value` with every float tensor (also inside tuples/lists/dicts) cast to `dtype`."""
    if isinstance(value, Value):
        if value.dtype.is_float and value.dtype is not dtype:
            return ir_ops.cast(value, dtype=dtype)
        return value
    if type(value) in (tuple, list):
        return type(value)(cast_floats(v, dtype) for v in value)
    if type(value) is dict:
        return {k: cast_floats(v, dtype) for k, v in value.items()}
    return value


@contextlib.contextmanager
def parameters_read_as(builder, cell, dtype):
    """Inside: `cell`'s own float Parameters read as `dtype` from `builder`. After: their
    plain values again, or, for a Parameter assigned inside, that value cast back."""
    swapped = []
    for param in cell.__dict__["_params"].values():
        kind = getattr(param, "ir_type", None)
        if param is None or kind is None or not kind.dtype.is_float or kind.dtype is dtype:
            continue
        original = builder.bound_input(param, kind, param.name)
        had_local = id(param) in builder._bound
        low = ir_ops.cast(original, dtype=dtype)
        builder._bound[id(param)] = low
        swapped.append((param, original, low, had_local))
    try:
        yield
    finally:
        for param, original, low, had_local in reversed(swapped):
            now = builder._bound.get(id(param))
            builder._bound[id(param)] = original
            if now is not low and now is not None:          # assigned inside the Cell
                builder.assign(param, cast_floats(now, original.dtype))
            elif not had_local:
                del builder._bound[id(param)]


__all__ = ["cell_dtype", "cast_floats", "parameters_read_as"]
