"""`mindspore.mutable`: make a constant input of a compiled function a variable.

Python numbers are folded into the graph while parsing (one compilation per value) and have
no gradient; `mutable(3.0)` makes the number a 0-d Tensor instead (float -> float32, int ->
int64, bool -> bool), so it is a graph input like any tensor: new values reuse the compiled
program and gradients flow to it. Tensors, and tuples/lists/dicts of them, are graph inputs
already; they are returned as they are (a list stays a list), after the type check MindSpore
makes.
"""
from __future__ import annotations

import numpy as np

from .tensor_type import Tensor


def mutable(input_data, dynamic_len=False):
    """`input_data` as a variable (see the module docstring). `dynamic_len=True` (a sequence
    whose length may change between calls without recompiling) is refused, as MindSpore
    does not support it either."""
    if not isinstance(dynamic_len, bool):
        raise TypeError(f"mutable: dynamic_len must be a bool, got {type(dynamic_len).__name__}")
    if dynamic_len:
        if not isinstance(input_data, (tuple, list)):
            raise TypeError(f"mutable: dynamic_len=True needs a tuple or list, got "
                            f"{type(input_data).__name__}")
        raise ValueError("mutable: dynamic_len=True is not supported: a compiled graph has a "
                         "static number of inputs; pass the sequence with dynamic_len=False")
    return _variable(input_data)


def _variable(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return Tensor(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_variable(v) for v in value)
    if isinstance(value, dict):
        return {k: _variable(v) for k, v in value.items()}
    raise TypeError(f"For 'mutable', the 'input_data' should be one of (Tensor, scalar, "
                    f"tuple, list, dict) or their nested structures, but got "
                    f"{type(value).__name__}")


__all__ = ["mutable"]
