"""Source ops: values made from attributes alone (constants, index ramps)."""
from __future__ import annotations

import numpy as np

from ..core import current_builder, Value
from ..types import DType, TensorType
from .opdef import OpDef, register, SOURCE


def _infer_constant(*, value: np.ndarray) -> TensorType:
    return TensorType(value.shape, DType.from_numpy(value.dtype))


constant_op = register(OpDef(
    "gs.constant", _infer_constant, lambda *, value: value, None, frozenset({SOURCE}),
    doc='A literal tensor. `%c = "gs.constant"() {value = dense<1.0> : tensor<f32>} : '
        '() -> tensor<f32>`'))


def _infer_iota(*, shape: tuple, axis: int, dtype: DType) -> TensorType:
    if not 0 <= axis < max(len(shape), 1):
        raise ValueError(f"axis {axis} out of range for shape {tuple(shape)}")
    return TensorType(tuple(shape), dtype)


def _reference_iota(*, shape, axis, dtype):
    ramp = np.arange(shape[axis], dtype=dtype.np) if shape else np.zeros((), dtype.np)
    view = [1] * len(shape)
    if shape:
        view[axis] = shape[axis]
    return np.broadcast_to(ramp.reshape(view), shape).copy()


iota = register(OpDef(
    "gs.iota", _infer_iota, _reference_iota, None, frozenset({SOURCE, "nondiff"}),
    doc='Index ramp along `axis`: `%i = "gs.iota"() {shape = array<i64: 3>, axis = 0 : i64, '
        'dtype = i64} : () -> tensor<3xi64>` gives [0, 1, 2].'))
