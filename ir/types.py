"""Types of the graph IR: dtypes, tensor types with their MLIR spelling, broadcasting, promotion.

Every SSA value is a tensor (a scalar is a rank-0 tensor), so one `TensorType` covers all values.
Promotion follows MindSpore's table (`mindspore.dtype`, "type promotion rules"): bool < integer <
float; bfloat16 and float16 rank below float32; signed integers widen to the larger; uint8
with int8/int16 gives int16, with int32/int64 the signed type; an integer with a float gives
the float (int64 + float16 -> float16); float16 with bfloat16 gives float32. MindSpore has no
rule for uint16/32/64 with a signed integer: that is a TypeError naming both (cast one first);
two unsigned types give the wider. Python scalars are *weak* (they take the tensor's dtype when
the kinds agree, and the default dtype of their kind otherwise).
"""
from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

import numpy as np


class DType(enum.Enum):
    """Element types; the value is the MLIR spelling."""

    f16 = "f16"
    bf16 = "bf16"
    f32 = "f32"
    f64 = "f64"
    i8 = "i8"
    i16 = "i16"
    i32 = "i32"
    i64 = "i64"
    u8 = "ui8"
    u16 = "ui16"
    u32 = "ui32"
    u64 = "ui64"
    bool = "i1"

    @property
    def np(self) -> np.dtype:
        try:
            return _TO_NUMPY[self]
        except KeyError:             # bfloat16 before its first use
            return _load_bfloat16()

    @property
    def mlir(self) -> str:
        return self.value

    @property
    def is_float(self) -> bool:
        return self in (DType.f16, DType.bf16, DType.f32, DType.f64)

    @property
    def is_int(self) -> bool:
        """Signed or unsigned integer (not bool)."""
        return self in _INTEGERS

    @property
    def is_unsigned(self) -> bool:
        return self in (DType.u8, DType.u16, DType.u32, DType.u64)

    @property
    def bits(self) -> int:
        """Width of one element in registers (bool: 1)."""
        return 1 if self is DType.bool else 8 * self.itemsize

    @property
    def is_bool(self) -> bool:
        return self is DType.bool

    @property
    def itemsize(self) -> int:
        return _ITEMSIZES[self]

    @property
    def kind(self) -> int:
        """0 for bool, 1 for integers, 2 for floats: the promotion lattice's levels."""
        return 2 if self.is_float else 1 if self.is_int else 0

    def __repr__(self) -> str:
        return f"DType.{self.name}"

    @staticmethod
    def from_numpy(dt) -> "DType":
        dt = numpy_dtype(dt)
        if dt.byteorder not in "=|" and _lookup(dt.newbyteorder("=")) is not None:
            dt = dt.newbyteorder("=")      # big-endian data: same values, converted on copy
        found = _lookup(dt)
        if found is None:
            raise TypeError(f"unsupported dtype {dt}; graphspore computes in {SUPPORTED_NAMES}")
        return found

    @staticmethod
    def exactly(dt) -> "DType | None":
        """The DType whose buffers have exactly numpy dtype `dt` (native byte order), else
        None: what native code can read without a conversion."""
        dt = numpy_dtype(dt)
        found = _lookup(dt)
        return found if found is not None and _TO_NUMPY[found] == dt else None


_INTEGERS = frozenset({DType.i8, DType.i16, DType.i32, DType.i64,
                       DType.u8, DType.u16, DType.u32, DType.u64})
_TO_NUMPY = {DType.f16: np.dtype(np.float16),        # bfloat16: added by _load_bfloat16
             DType.f32: np.dtype(np.float32),
             DType.f64: np.dtype(np.float64),
             DType.i8: np.dtype(np.int8), DType.i16: np.dtype(np.int16),
             DType.i32: np.dtype(np.int32), DType.i64: np.dtype(np.int64),
             DType.u8: np.dtype(np.uint8), DType.u16: np.dtype(np.uint16),
             DType.u32: np.dtype(np.uint32), DType.u64: np.dtype(np.uint64),
             DType.bool: np.dtype(np.bool_)}
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()}
_ITEMSIZES = {d: (2 if d is DType.bf16 else _TO_NUMPY[d].itemsize) for d in DType}
SUPPORTED_NAMES = ", ".join("bfloat16" if d is DType.bf16 else _TO_NUMPY[d].name for d in DType)


def _load_bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16, imported at its first use rather than with graphspore: loading
    the ml_dtypes extension costs about as much as the rest of `import graphspore`."""
    import ml_dtypes
    bf16 = np.dtype(ml_dtypes.bfloat16)
    _TO_NUMPY[DType.bf16], _FROM_NUMPY[bf16] = bf16, DType.bf16
    return bf16


def _lookup(dt: np.dtype) -> "DType | None":
    """The DType of numpy dtype `dt`, or None. A bfloat16 array can exist only once ml_dtypes
    is imported (by the user or a library), so a miss registers it then and looks again."""
    found = _FROM_NUMPY.get(dt)
    if found is None and DType.bf16 not in _TO_NUMPY and "ml_dtypes" in sys.modules:
        _load_bfloat16()
        found = _FROM_NUMPY.get(dt)
    return found


def numpy_dtype(dt) -> np.dtype:
    """`np.dtype(dt)`, also for the name "bfloat16" before ml_dtypes has been imported."""
    try:
        return np.dtype(dt)
    except TypeError:
        if DType.bf16 in _TO_NUMPY:
            raise
        _load_bfloat16()             # registers "bfloat16" with numpy
        return np.dtype(dt)


def is_native(dt: np.dtype) -> bool:
    """Whether native code reads buffers of numpy dtype `dt` as they are (a supported dtype
    in this machine's byte order)."""
    return dt in _FROM_NUMPY or DType.exactly(dt) is not None


def is_half_float(dt) -> bool:
    """Whether numpy dtype `dt` is float16 or bfloat16 (which references sum in float32)."""
    return _lookup(np.dtype(dt)) in _HALVES


_HALVES = frozenset({DType.f16, DType.bf16})      # float16 with bfloat16 -> float32

MAX_BYTES = 2 ** 63          # sizes and byte offsets are int64 in kernels and numpy


@dataclass(frozen=True, slots=True)
class TensorType:
    """A static tensor type: `tensor<5x3xf32>`, or `tensor<f32>` for rank 0."""

    shape: tuple[int, ...]
    dtype: DType

    def __post_init__(self):
        if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in self.shape):
            raise ValueError(f"invalid shape {self.shape}")
        shape = tuple(int(d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        size = 1
        for d in shape:          # Python ints: exact, so an overflow is seen, not wrapped
            size *= d
        if size * self.dtype.itemsize >= MAX_BYTES:
            raise ValueError(f"shape {shape} of {np.dtype(self.dtype.np).name} needs {size} elements "
                             f"({size * self.dtype.itemsize} bytes), more than the 2**63 "
                             f"bytes an array can address")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(self.shape, dtype)

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype.mlir}>"

    __repr__ = __str__


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy broadcasting of static shapes; raises ValueError naming the shapes."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError("shapes " + ", ".join(str(tuple(s)) for s in shapes)
                             + " cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op on two tensors (MindSpore's table, see the module doc)."""
    if a is b:
        return a
    if a.kind != b.kind:
        return a if a.kind > b.kind else b
    if a.is_float:
        if {a, b} == _HALVES:
            return DType.f32
        return a if a.itemsize >= b.itemsize else b
    if a.is_unsigned is b.is_unsigned:
        return a if a.itemsize >= b.itemsize else b
    signed, unsigned = (b, a) if a.is_unsigned else (a, b)
    if unsigned is not DType.u8:
        raise TypeError(f"{np.dtype(a.np).name} and {np.dtype(b.np).name} have no common "
                        f"dtype (MindSpore promotes only uint8 with signed integers); cast "
                        f"one of them first")
    return signed if signed.itemsize > 2 else DType.i16


def scalar_dtype(value) -> DType:
    """Default dtype of a Python scalar: bool -> bool, int -> int64, float -> float32."""
    if isinstance(value, (bool, np.bool_)):
        return DType.bool
    if isinstance(value, (int, np.integer)):
        return DType.i64
    if isinstance(value, (float, np.floating)):
        return DType.f32
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def promote_weak(tensor: DType, scalar) -> DType:
    """dtype of `tensor op scalar` where the scalar is a Python number (weakly typed).

    `f32 * 2.0 -> f32`, `i32 + 1 -> i32`, `bool - 1 -> i64`, `i64 * 1.5 -> f32`.
    """
    kind = scalar_dtype(scalar)
    if kind.kind <= tensor.kind:
        return tensor
    return kind


def to_dtype(dtype) -> DType:
    """An ir DType from a DType, a public dtype exposing `ir_dtype`, or a numpy dtype."""
    if isinstance(dtype, DType):
        return dtype
    inner = getattr(dtype, "ir_dtype", None)
    if isinstance(inner, DType):
        return inner
    if dtype is float:
        return DType.f32
    try:
        return DType.from_numpy(dtype)
    except TypeError:
        raise TypeError(f"expected a dtype (e.g. mindspore.float32), got {dtype!r}") from None
