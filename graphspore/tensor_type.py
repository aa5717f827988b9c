"""Tensor and Parameter: host numpy buffers whose arithmetic runs through the IR's ops.

A `Tensor` holds one C-contiguous numpy array, `_array`; numpy is only its container. Every
computation on it (operators, methods, `graphspore.ops`) converts the tensors to eager IR
values, calls the same op code the frontend uses in graph mode, and wraps the results back as
Tensors (`eager.gs_op`), so eager and compiled results come from one definition per op.
A `Parameter` is a Tensor that graphs bind as a weight input; compiled programs write its
updated value into `_array` in place, so that buffer keeps its identity (64-byte aligned,
writeable) for the Parameter's whole life except when `set_data` changes its shape.

`repr` is MindSpore's format (see `tensor_repr`); `str` is numpy's.
"""
from __future__ import annotations

import numpy as np

from . import dtype as mstype
from .eager import gs_op
from .frontend import operators as methods
from .frontend.builtins import register_tensor_class
from .ir.core import Value, eager_value
from .ir.types import DType, TensorType, is_native
from .tensor_repr import format_values

_ALIGNMENT = 64


# ------------------------------------------------------------------------- host buffers

def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned_copy(array: np.ndarray, dtype=None) -> np.ndarray:
    out = aligned_empty(array.shape, dtype or array.dtype)
    np.copyto(out, array, casting="unsafe")
    return out


def _host_array(data, dtype=None) -> np.ndarray:
    """The array a Tensor is built from, with MindSpore's dtype inference: Python floats
    (also in nested lists) are float32, ints int64, bools bool; numpy arrays keep theirs."""
    if isinstance(data, Tensor):
        array = data._array
    elif isinstance(data, (np.ndarray, np.generic)):
        array = np.asarray(data)
    elif isinstance(data, (bool, int, float, list, tuple)):
        try:
            array = np.array(_plain(data))
        except ValueError:
            raise ValueError(f"Tensor: the nested lists are ragged (rows of different lengths "
                             f"or depths), so they do not form a tensor: {_preview(data)}"
                             ) from None
        if array.dtype == np.float64:
            array = array.astype(np.float32)
    else:
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}; expected a "
                        f"Tensor, numpy array, Python number or (nested) list/tuple")
    if dtype is not None:
        return array.astype(mstype.to_ir(dtype).np, copy=False)
    if array.dtype.kind in "fiub" and not is_native(array.dtype):
        return array.astype(DType.from_numpy(array.dtype).np)
    DType.from_numpy(array.dtype)            # raises for strings, objects, complex
    return array


def _preview(data, limit=80) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(data):
    """Nested lists with Tensors replaced by their arrays (numpy then stacks them)."""
    if isinstance(data, Tensor):
        return data._array
    if isinstance(data, (list, tuple)):
        return [_plain(d) for d in data]
    return data


def _method(name: str):
    function = gs_op(methods.TENSOR_METHODS[name])

    def method(self, *args, **kwargs):
        return function(self, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`Tensor.{name}`: the frontend's method table entry, run eagerly."
    return method


def _binary(name: str, reflected: bool = False):
    """The operator for `tensor <op> other`: the IR op `name` (or composite) run eagerly."""
    function = gs_op(methods.op(name))

    def operator(self, other):
        if not isinstance(other, (Tensor, bool, int, float, np.number, np.ndarray, list)):
            return NotImplemented
        return function(other, self) if reflected else function(self, other)
    return operator


def _syntax(node):
    return gs_op(methods.BINARY_OPS[node])


def _run_syntax(fn, a, b):
    if not isinstance(b if isinstance(a, Tensor) else a,
                      (Tensor, bool, int, float, np.number, np.ndarray)):
        return NotImplemented
    return fn(a, b)


# --------------------------------------------------------------------------- Tensor

class Tensor:
    """MindSpore's Tensor: `Tensor(input_data, dtype=None)` from a numpy array, a Python
    number, a (nested) list/tuple of them, or another Tensor; or `Tensor(shape=..., dtype=...,
    init=...)` from an initialiser of `nn.init`."""

    __gs_tensor__ = True
    __array_ufunc__ = None          # numpy defers `ndarray + Tensor` to Tensor.__radd__
    __slots__ = ("_array", "__weakref__")

    def __new__(cls, input_data=None, dtype=None, shape=None, init=None, *args, **kwargs):
        if cls is Tensor and input_data is None and init is None and dtype is not None:
            from .input_signature import TensorPlaceholder   # Tensor(shape=[None, 3], dtype)
            return object.__new__(TensorPlaceholder)
        return object.__new__(cls)

    def __init__(self, input_data=None, dtype=None, shape=None, init=None, internal=False,
                 const_arg=False):
        if init is not None or input_data is None:
            if init is None or shape is None:
                raise TypeError("Tensor: give input_data, or shape and init")
            from .nn.init import initial_array
            input_data = initial_array(init, tuple(np.atleast_1d(shape)), dtype)
        self._array = aligned_copy(_host_array(input_data, dtype))

    @classmethod
    def _from_array(cls, array: np.ndarray) -> "Tensor":
        """Wrap `array` without copying when it is an owned, C-contiguous, writeable buffer
        of a supported dtype (outputs of compiled programs and eager ops)."""
        array = np.asarray(array)
        flags = array.flags
        if not is_native(array.dtype):
            array = array.astype(DType.from_numpy(array.dtype).np)
        elif not (flags.c_contiguous and flags.writeable and flags.owndata):
            array = np.array(array, order="C")
        tensor = cls.__new__(cls)
        tensor._array = array
        return tensor

    # ---------------------------------------------------------------- the frontend's view
    @property
    def ir_type(self) -> TensorType:
        return TensorType(self._array.shape, DType.from_numpy(self._array.dtype))

    def __gs_value__(self) -> Value:
        return eager_value(self._array)

    # --------------------------------------------------------------------- attributes
    @property
    def shape(self) -> tuple:
        return self._array.shape

    @property
    def dtype(self) -> mstype.DataType:
        return mstype.to_public(self._array.dtype)

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def size(self) -> int:
        return self._array.size

    @property
    def itemsize(self) -> int:
        return self._array.itemsize

    @property
    def nbytes(self) -> int:
        return self._array.nbytes

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def dim(self) -> int:
        return self._array.ndim

    def numel(self) -> int:
        return self._array.size

    nelement = numel

    # ------------------------------------------------------------------- host access
    def asnumpy(self) -> np.ndarray:
        """A copy of the data (graphspore returns a copy, so later in-place updates of a
        Parameter do not change arrays handed out before)."""
        return self._array.copy()

    numpy = asnumpy

    @staticmethod
    def from_numpy(array) -> "Tensor":
        """A Tensor sharing `array`'s memory (MindSpore's `Tensor.from_numpy`) when it is
        C-contiguous, writeable and of a supported dtype; a copy otherwise."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"Tensor.from_numpy: expected a numpy.ndarray, got "
                            f"{type(array).__name__}")
        if not (array.flags.c_contiguous and array.flags.writeable
                and is_native(array.dtype)):
            return Tensor(array)
        tensor = Tensor.__new__(Tensor)
        tensor._array = array
        return tensor

    @property
    def strides(self) -> tuple:
        """Bytes to step along each axis (the data is C-contiguous)."""
        return self._array.strides

    def item(self, *index):
        return self._array.item(*index)

    def tolist(self):
        return self._array.tolist()

    def copy(self) -> "Tensor":
        return Tensor(self)

    def init_data(self) -> "Tensor":
        return self

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)

    def __len__(self) -> int:
        if self._array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._array.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self._array.size != 1:
            raise ValueError(f"the truth value of a tensor with {self._array.size} elements "
                             f"is ambiguous")
        return bool(self._array.reshape(()))

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def __index__(self) -> int:
        if self._array.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self._scalar())

    def _scalar(self):
        if self._array.size != 1:
            raise TypeError(f"only tensors with one element can be converted to Python "
                            f"scalars, got shape {self.shape}")
        return self._array.reshape(()).item()

    def __format__(self, spec: str) -> str:
        if spec and self._array.size == 1:
            return format(self._scalar(), spec)
        return format(str(self), spec)

    __hash__ = object.__hash__

    # ------------------------------------------------------------------- indexing
    def __getitem__(self, index):
        return _getitem(self, _static_index(index))

    def __setitem__(self, index, value):
        """In-place write into the host buffer (data movement, no arithmetic)."""
        value = value._array if isinstance(value, Tensor) else value
        self._array[_host_index(index)] = value

    # -------------------------------------------------------------------- printing
    def __str__(self) -> str:
        return str(self._array)

    def __repr__(self) -> str:
        separator = "\n" if self._array.ndim > 1 else " "
        return (f"Tensor(shape={list(self._array.shape)}, dtype={self.dtype}, "
                f"value={separator}{format_values(self._array)})")

    # ------------------------------------------------------------------- operators
    __add__, __radd__ = _binary("add"), _binary("add", True)
    __sub__, __rsub__ = _binary("sub"), _binary("sub", True)
    __mul__, __rmul__ = _binary("mul"), _binary("mul", True)
    __truediv__, __rtruediv__ = _binary("div"), _binary("div", True)
    __pow__, __rpow__ = _binary("pow"), _binary("pow", True)
    __matmul__, __rmatmul__ = _binary("matmul_nd"), _binary("matmul_nd", True)
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")

    def __floordiv__(self, other): return _run_syntax(_FLOORDIV, self, other)
    def __rfloordiv__(self, other): return _run_syntax(_FLOORDIV, other, self)
    def __mod__(self, other): return _run_syntax(_MOD, self, other)
    def __rmod__(self, other): return _run_syntax(_MOD, other, self)
    def __and__(self, other): return _run_syntax(_AND, self, other)
    def __rand__(self, other): return _run_syntax(_AND, other, self)
    def __or__(self, other): return _run_syntax(_OR, self, other)
    def __ror__(self, other): return _run_syntax(_OR, other, self)
    def __xor__(self, other): return _run_syntax(_XOR, self, other)
    def __rxor__(self, other): return _run_syntax(_XOR, other, self)
    def __neg__(self): return _NEG(self)
    def __pos__(self): return self
    def __abs__(self): return _ABS(self)
    def __invert__(self): return _INVERT(self)


for _name in methods.TENSOR_METHODS:
    if _name not in methods.TENSOR_PROPERTIES:
        setattr(Tensor, _name, _method(_name))

_getitem = gs_op(lambda x, index: methods.op("getitem")(x, index))
_FLOORDIV, _MOD = gs_op(methods.floor_divide), gs_op(methods.modulo)
_AND, _OR, _XOR = (_syntax(n) for n in (methods.ast.BitAnd, methods.ast.BitOr,
                                         methods.ast.BitXor))
_INVERT = gs_op(methods.UNARY_OPS[methods.ast.Invert])
_NEG, _ABS = gs_op(methods.op("neg")), gs_op(methods.op("abs"))


def _static_index(index):
    """Indices with rank-0 integer Tensors replaced by Python ints; other Tensors stay
    (getitem gathers with an integer one and explains why a bool mask is refused)."""
    if isinstance(index, tuple):
        return tuple(_static_index(i) for i in index)
    if isinstance(index, Tensor) and index.ndim == 0 and index._array.dtype.kind in "iu":
        return int(index._scalar())
    return index


def _host_index(index):
    """Indices for a numpy write into the host buffer: Tensors become their arrays."""
    if isinstance(index, tuple):
        return tuple(_host_index(i) for i in index)
    return index._array if isinstance(index, Tensor) else index


def tensor(input_data=None, dtype=None, shape=None, init=None, const_arg=False, device=None):
    """`mindspore.tensor(...)`: the function form of `Tensor(...)` (same arguments, same
    result; MindSpore adds a type annotation for its graph compiler, graphspore needs none)."""
    return Tensor(input_data, dtype, shape, init, const_arg=const_arg)


# ------------------------------------------------------------------------- Parameter

PARAMETER_NAME_DEFAULT = "Parameter"


class Parameter(Tensor):
    """A trainable weight: `Parameter(default_input, name=None, requires_grad=True)`.
    Graphs bind it as a weight input; updates are written into its buffer in place."""

    __gs_parameter__ = True
    __slots__ = ("name", "requires_grad", "layerwise_parallel", "parallel_optimizer",
                 "is_init", "__dict__")

    def __init__(self, default_input, name=None, requires_grad=True, layerwise_parallel=False,
                 parallel_optimizer=True, storage_format=""):
        super().__init__(default_input)
        self.name = PARAMETER_NAME_DEFAULT if name is None else str(name)
        self.requires_grad = bool(requires_grad)
        self.layerwise_parallel, self.parallel_optimizer = layerwise_parallel, parallel_optimizer
        self.is_init = False

    def __repr__(self) -> str:
        return (f"Parameter (name={self.name}, shape={self.shape}, dtype={self.dtype}, "
                f"requires_grad={self.requires_grad})")

    __str__ = __repr__

    @property
    def data(self) -> "Parameter":
        return self

    def value(self) -> Tensor:
        return Tensor(self)

    def set_data(self, data, slice_shape=False) -> "Parameter":
        """Replace the value: in place when the shape is unchanged (cast to this Parameter's
        dtype), with a new aligned buffer when the shape differs."""
        array = _host_array(data)
        if array.shape == self._array.shape:
            np.copyto(self._array, array, casting="unsafe")
        else:
            self._array = aligned_copy(array, self._array.dtype)
        return self

    def assign_value(self, value) -> "Parameter":
        """In-place assignment of a value of the same shape."""
        array = _host_array(value)
        if array.shape != self._array.shape:
            raise ValueError(f"assign_value: parameter {self.name} has shape {self.shape}, "
                             f"value has shape {array.shape}")
        np.copyto(self._array, array, casting="unsafe")
        return self

    def clone(self, init="same") -> "Parameter":
        return Parameter(self, self.name, self.requires_grad)

    def __reduce__(self):
        return (Parameter, (Tensor._from_array(self._array.copy()), self.name,
                            self.requires_grad))


register_tensor_class(Tensor)        # type(x) of a tensor inside a compiled function

__all__ = ["Tensor", "Parameter", "tensor", "gs_op", "format_values", "aligned_empty", "aligned_copy"]
