"""Shape placeholders and `Cell.set_inputs`: MindSpore's dynamic-shape declarations.

`Tensor(shape=[None, 3], dtype=ms.float32)` (or `shape=None`: any rank) declares an input
without data. `net.set_inputs(placeholder, ...)` records them; each call is then checked
against them (dtype, rank, the fixed dimensions) before it runs. graphspore compiles static
shapes, so every concrete shape seen compiles once and later calls of that shape reuse it.
"""
from __future__ import annotations

from . import dtype as mstype
from .ir.core import GraphsporeError, GraphsporeTypeError, user_loc
from .tensor_type import Tensor


class InputShapeError(GraphsporeError, ValueError):
    """A call whose tensor does not have the rank or fixed dimensions set_inputs declared."""


class TensorPlaceholder(Tensor):
    """A Tensor with a dtype and a shape whose dimensions may be None (any size), or no shape
    at all (any rank), and no data."""

    __slots__ = ("_shape", "_dtype")

    def __init__(self, input_data=None, dtype=None, shape=None, init=None, internal=False,
                 const_arg=False):
        self._array = None
        self._dtype = mstype.to_public(dtype)
        self._shape = None if shape is None else tuple(
            None if d is None or d == -1 else int(d) for d in (
                (shape,) if isinstance(shape, int) else shape))

    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self):
        return self._dtype

    @property
    def ndim(self):
        if self._shape is None:
            raise ValueError("a placeholder of any rank (shape=None) has no ndim")
        return len(self._shape)

    @property
    def ir_type(self):
        raise TypeError(f"{self!r} is a shape placeholder without data: give it to "
                        f"Cell.set_inputs, and call the Cell with real tensors")

    def asnumpy(self):
        raise ValueError(f"{self!r} is a shape placeholder without data")

    def __repr__(self) -> str:
        shape = "None" if self._shape is None else \
            "[" + ", ".join("-1" if d is None else str(d) for d in self._shape) + "]"
        return f"Tensor(shape={shape}, dtype={self._dtype}, value=<placeholder>)"

    __str__ = __repr__

    def accepts(self, tensor) -> str | None:
        """Why `tensor` does not fit (None if it does)."""
        if tensor.dtype != self._dtype:
            return f"dtype {tensor.dtype}, expected {self._dtype}"
        if self._shape is None:
            return None
        if len(tensor.shape) != len(self._shape):
            return f"rank {len(tensor.shape)} (shape {tensor.shape}), expected rank " \
                   f"{len(self._shape)}"
        for axis, (got, want) in enumerate(zip(tensor.shape, self._shape)):
            if want is not None and got != want:
                return f"shape {tensor.shape}: dimension {axis} is {got}, expected {want}"
        return None


def check_inputs(cell, signature: tuple, args: tuple) -> None:
    """Raise if the call's arguments do not fit the inputs declared by `set_inputs`."""
    name = type(cell).__name__
    if len(args) != len(signature):
        raise InputShapeError(f"{name}: set_inputs declared {len(signature)} inputs, the "
                              f"call gives {len(args)}", user_loc())
    for i, (want, got) in enumerate(zip(signature, args)):
        if not isinstance(want, Tensor):
            continue
        if not isinstance(got, Tensor):
            raise GraphsporeTypeError(f"{name}: input {i} must be a Tensor (set_inputs "
                                      f"declared {want!r}), got {type(got).__name__}",
                                      user_loc())
        spec = want if isinstance(want, TensorPlaceholder) else \
            TensorPlaceholder(dtype=want.dtype, shape=want.shape)
        problem = spec.accepts(got)
        if problem is not None:
            kind = GraphsporeTypeError if problem.startswith("dtype") else InputShapeError
            raise kind(f"{name}: input {i} has {problem} (declared by set_inputs as "
                       f"{spec!r})", user_loc())


__all__ = ["TensorPlaceholder", "InputShapeError", "check_inputs"]
