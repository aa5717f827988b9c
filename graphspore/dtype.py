"""Public dtypes (`mindspore.float32`, ...) and their mapping onto the IR's `DType`.

A public dtype is a small singleton that prints with MindSpore's name (`Float32`, `Int64`,
`Bool`) and carries the IR dtype it stands for in `ir_dtype`; the frontend reads that attribute
(`frontend.operators.to_dtype`), so this module is the only place the two spellings meet.
graphspore computes in float16 and bfloat16 (stored in 16 bits, computed in float32 and
rounded after each op; bfloat16 host arrays are `ml_dtypes.bfloat16`), float32, float64, the
signed and unsigned integers of 8 to 64 bits, and bool. Names MindSpore has beyond those
(`complex64`, `complex128`, `string`) raise an AttributeError that lists what is supported,
rather than silently standing in for another dtype.
"""
from __future__ import annotations

import numpy as np

from .ir.types import SUPPORTED_NAMES, DType, numpy_dtype


class DataType:
    """One public dtype: `str`/`repr` give MindSpore's spelling; `ir_dtype` the IR DType."""

    __slots__ = ("name", "ir_dtype")

    def __init__(self, name: str, ir_dtype: DType):
        self.name, self.ir_dtype = name, ir_dtype

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __reduce__(self):
        return (from_ir, (self.ir_dtype,))

    @property
    def np(self) -> np.dtype:
        """The numpy dtype of host buffers of this dtype."""
        return self.ir_dtype.np


float16 = DataType("Float16", DType.f16)
half = float16
bfloat16 = DataType("BFloat16", DType.bf16)
float32 = DataType("Float32", DType.f32)
float64 = DataType("Float64", DType.f64)
int8 = DataType("Int8", DType.i8)
int16 = DataType("Int16", DType.i16)
int32 = DataType("Int32", DType.i32)
int64 = DataType("Int64", DType.i64)
uint8 = DataType("UInt8", DType.u8)
uint16 = DataType("UInt16", DType.u16)
uint32 = DataType("UInt32", DType.u32)
uint64 = DataType("UInt64", DType.u64)
bool_ = DataType("Bool", DType.bool)
# MindSpore's C-style aliases
single, double = float32, float64
byte, short, intc, intp = int8, int16, int32, int64
ubyte, ushort, uintc, uintp = uint8, uint16, uint32, uint64

_ALL = (float16, bfloat16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32,
        uint64, bool_)
_FROM_IR = {d.ir_dtype: d for d in _ALL}
_PYTHON_TYPES = {float: float32, int: int64, bool: bool_}
_UNSUPPORTED = ("complex64", "complex128", "string")
_SUPPORTED_NAMES = SUPPORTED_NAMES.replace("bool", "bool_")

int_type = (int8, int16, int32, int64)
uint_type = (uint8, uint16, uint32, uint64)
float_type = (float16, bfloat16, float32, float64)
number_type = (*int_type, *uint_type, *float_type)


def from_ir(dtype: DType) -> DataType:
    """The public dtype of an IR DType."""
    return _FROM_IR[dtype]


def to_ir(dtype) -> DType:
    """The IR DType of a public dtype, an IR DType, a numpy dtype or a Python type."""
    if isinstance(dtype, DataType):
        return dtype.ir_dtype
    if isinstance(dtype, DType):
        return dtype
    if dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype].ir_dtype
    try:
        np_dtype = numpy_dtype(dtype)
    except TypeError:
        raise TypeError(f"expected a dtype such as mindspore.float32, got {dtype!r}") from None
    found = DType.exactly(np_dtype)
    if found is None:
        raise TypeError(f"unsupported dtype {np_dtype}; graphspore supports "
                        f"{_SUPPORTED_NAMES}")
    return found


def to_public(dtype) -> DataType:
    """The public dtype for anything `to_ir` accepts."""
    return _FROM_IR[to_ir(dtype)]


def dtype_to_nptype(dtype):
    """MindSpore's `dtype_to_nptype`: the numpy scalar type of a dtype."""
    return to_ir(dtype).np.type


def pytype_to_dtype(obj) -> DataType:
    """MindSpore's `pytype_to_dtype`: the dtype of a Python or numpy type."""
    return to_public(obj)


def __getattr__(name: str):
    if name in _UNSUPPORTED:
        raise AttributeError(f"mindspore.{name} is not supported by graphspore; use one of "
                             f"{_SUPPORTED_NAMES}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DataType", "float16", "half", "bfloat16", "float32", "float64", "int8", "int16",
           "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_", "single", "double", "byte",
           "short", "intc", "intp", "ubyte", "ushort", "uintc", "uintp", "number_type",
           "int_type", "uint_type", "float_type", "from_ir", "to_ir", "to_public", "dtype_to_nptype",
           "pytype_to_dtype"]
