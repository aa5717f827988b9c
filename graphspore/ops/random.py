"""`mindspore.ops` random draws: `randn`, `rand`, `randint`, `uniform`, `normal`.

Draws are host data from the seeded global generator (`graphspore.random`, reseeded by
`set_seed`). They are refused inside compiled functions, where they would freeze into
constants: the frontend calls them (`__gs_op__`), so the refusal names the user's line.
"""
from __future__ import annotations

import numpy as np

from ..frontend.operators import to_dtype
from ..ir import ops as ir_ops
from ..ir.core import EagerBuilder, GraphsporeError, current_builder
from ..ir.types import DType, broadcast_shapes
from ..random import numpy_generator
from ..tensor_type import Tensor


def _refuse_in_graph(name: str) -> None:
    if not isinstance(current_builder(), EagerBuilder):
        raise GraphsporeError(f"ops.{name} draws host random numbers and cannot run inside "
                              f"a compiled function", current_builder().loc,
                              "draw outside and pass the tensor in as an argument")


def _draw(draw, size, dtype, default: DType, name: str) -> Tensor:
    _refuse_in_graph(name)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    target = default if dtype is None else to_dtype(dtype)
    return Tensor._from_array(np.asarray(draw(shape), dtype=target.np))


def randn(*size, dtype=None, seed=None):
    """Standard normal samples of `size` (float32) from the global seeded generator."""
    return _draw(numpy_generator().standard_normal, size, dtype, DType.f32, "randn")


def rand(*size, dtype=None, seed=None):
    """Uniform samples in [0, 1) of `size` (float32)."""
    return _draw(numpy_generator().random, size, dtype, DType.f32, "rand")


def randint(low, high, size, seed=None, *, dtype=None):
    """Integers uniform in [low, high) of `size` (int64)."""
    return _draw(lambda shape: numpy_generator().integers(low, high, shape), (size,), dtype,
                 DType.i64, "randint")


def _host(value, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.asnumpy()
    if ir_ops.is_number(value):
        return np.asarray(value)
    raise TypeError(f"{name} must be a Tensor or a number, got {type(value).__name__}")


def uniform(shape, minval, maxval, seed=None, dtype=None):
    """Uniform samples in [minval, maxval) of shape broadcast(shape, minval, maxval): floats
    (float32 by default) or, for dtype int32, integers from scalar bounds. Drawn from the
    global seeded generator; `seed` is accepted for compatibility, as in `ops.randn`."""
    _refuse_in_graph("uniform")
    shape = tuple(int(s) for s in (shape.tolist() if isinstance(shape, Tensor) else shape))
    low, high = _host(minval, "uniform: minval"), _host(maxval, "uniform: maxval")
    target = DType.f32 if dtype is None else to_dtype(dtype)
    if not np.all(low < high):
        raise ValueError("uniform: minval must be less than maxval everywhere")
    out_shape = broadcast_shapes(shape, low.shape, high.shape)
    if target.is_int:
        if low.ndim or high.ndim:
            raise ValueError("uniform: integer draws need scalar minval and maxval")
        draw = numpy_generator().integers(int(low), int(high), out_shape)
    elif target.is_float:
        draw = low + (high - low) * numpy_generator().random(out_shape)
    else:
        raise TypeError(f"uniform: dtype must be an int or float type, got {target}")
    return Tensor._from_array(np.asarray(draw, dtype=target.np))


def normal(shape, mean, stddev, seed=None):
    """Normal samples mean + stddev * N(0, 1) of shape broadcast(shape, mean, stddev):
    float64 when mean or stddev is a float64 tensor, else float32. Drawn from the global seeded
    generator; `seed` is accepted for compatibility, as in `ops.randn`."""
    _refuse_in_graph("normal")
    shape = tuple(int(s) for s in (shape.tolist() if isinstance(shape, Tensor) else shape))
    center, spread = _host(mean, "normal: mean"), _host(stddev, "normal: stddev")
    wide = any(isinstance(v, Tensor) and v.asnumpy().dtype == np.float64
               for v in (mean, stddev))
    out_shape = broadcast_shapes(shape, center.shape, spread.shape)
    draw = center + spread * numpy_generator().standard_normal(out_shape)
    return Tensor._from_array(np.asarray(draw, dtype=np.float64 if wide else np.float32))


uniform.__gs_op__ = normal.__gs_op__ = True      # the frontend calls them, so they refuse

__all__ = ["randn", "rand", "randint", "uniform", "normal"]
