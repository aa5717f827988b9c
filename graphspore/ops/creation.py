"""`mindspore.ops` functions that make tensors or change state: creation (`ones`, `full`,
`arange`, ...), encodings (`one_hot`) and `assign`.

Creation ops emit one constant broadcast to the requested shape, never a host-sized array.
`assign` writes a Parameter's buffer in place eagerly and records a graph update
(`Builder.assign`) inside a graph.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..eager import gs_op
from ..frontend import operators as methods
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ir.ops import composite
from ..ir.core import EagerBuilder, GraphsporeError, Value, current_builder
from ..ir.types import DType, scalar_dtype
from ..tensor_type import Parameter, Tensor, _host_array

# ----------------------------------------------------------------------------- creation

def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, Tensor):
        shape = shape.tolist()
    return tuple(int(s) for s in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)


def _filled(shape, value, dtype: DType) -> Value:
    """A tensor of `shape` holding `value`: the composite `full` (one constant, broadcast)."""
    return composite.full(shape, value, dtype)


def _dtype_or(dtype, default: DType) -> DType:
    return default if dtype is None else methods.to_dtype(dtype)


@gs_op
def ones(shape, dtype=None):
    """A tensor of ones; `shape` an int or a tuple; float32 by default."""
    return _filled(_shape_tuple(shape), 1, _dtype_or(dtype, DType.f32))


@gs_op
def zeros(shape, dtype=None):
    """A tensor of zeros; float32 by default."""
    return _filled(_shape_tuple(shape), 0, _dtype_or(dtype, DType.f32))


@gs_op
def ones_like(input, *, dtype=None):
    """Ones of `input`'s shape (and dtype unless given)."""
    x = ir_ops.as_value(input)
    return _filled(x.shape, 1, _dtype_or(dtype, x.dtype))


@gs_op
def zeros_like(input, *, dtype=None):
    """Zeros of `input`'s shape (and dtype unless given)."""
    x = ir_ops.as_value(input)
    return _filled(x.shape, 0, _dtype_or(dtype, x.dtype))


@gs_op
def full(size, fill_value, *, dtype=None):
    """A tensor of `size` filled with `fill_value` (dtype from the value by default)."""
    return _filled(_shape_tuple(size), fill_value,
                   _dtype_or(dtype, scalar_dtype(fill_value)))


@gs_op
def full_like(input, fill_value, *, dtype=None):
    """`fill_value` in `input`'s shape (and dtype unless given)."""
    x = ir_ops.as_value(input)
    return _filled(x.shape, fill_value, _dtype_or(dtype, x.dtype))


@gs_op
def fill(type, shape, value):  # noqa: A002  (MindSpore's names)
    """MindSpore's `fill(type, shape, value)`."""
    return _filled(_shape_tuple(shape), value, methods.to_dtype(type))


@gs_op
def arange(start=0, end=None, step=1, *, dtype=None):
    """`[start, end)` in steps of `step`: int64 for int arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    numbers = (start, end, step)
    kind = DType.f32 if builtins.any(isinstance(n, float) for n in numbers) else DType.i64
    count = builtins.max(int(math.ceil((end - start) / step)), 0)
    ramp = ir_ops.iota(shape=(count,), axis=0, dtype=kind)
    out = _op("add")(_op("mul")(ramp, step), start)
    return out if dtype is None else methods.astype(out, dtype)


@gs_op
def one_hot(indices, depth, on_value=1, off_value=0, axis=-1):
    """One-hot encoding of integer `indices` along a new axis of size `depth`."""
    return _op("one_hot")(indices, depth, on_value, off_value, axis)


# ------------------------------------------------------------------------------ assign

def assign(variable, value):
    """`variable := value` for a Parameter. Eagerly the Parameter's buffer is written in
    place; in a graph the update is recorded and applied when the compiled call finishes
    (later reads in the graph see the new value). Returns the new value."""
    builder = current_builder()
    if isinstance(builder, EagerBuilder):
        if not isinstance(variable, Parameter):
            raise TypeError(f"assign: the variable must be a Parameter, got "
                            f"{type(variable).__name__}")
        return variable.assign_value(_host_array(value))
    host = variable if isinstance(variable, Parameter) else _bound_object(builder, variable)
    target = builder.bound_input(host, host.ir_type, host.name)
    new = ir_ops.as_value(_graph_value(value), target.dtype)
    if new.dtype is not target.dtype:
        new = _op("cast")(new, dtype=target.dtype)
    if new.shape != target.shape:
        new = _op("broadcast_to")(new, shape=target.shape)
    builder.assign(host, new)
    return new


assign.__gs_op__ = True


def _graph_value(value):
    if isinstance(value, Parameter):
        return current_builder().bound_input(value, value.ir_type, value.name)
    if isinstance(value, Tensor):
        return ir_ops.constant(value._array, DType.from_numpy(value._array.dtype))
    return value


def _bound_object(builder, value):
    """The Parameter whose current value (or weight input) in this graph is `value`."""
    for obj in builder.bound_objects().values():
        if builder.current_bound(obj) is value:
            return obj
    obj = builder.graph.bindings.get(value) if isinstance(value, Value) else None
    if obj is None:
        raise GraphsporeError("assign: the first argument must be a Parameter",
                              builder.loc)
    return obj


__all__ = ["ones", "zeros", "ones_like", "zeros_like", "full", "full_like", "fill", "arange",
           "one_hot", "assign"]
