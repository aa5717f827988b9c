"""`mindspore.ops.functional` (imported as `F` in MindSpore code): every `ops` function
(`F.square`, `F.cast`, `F.grad`, `F.get_grad`, ... are looked up in `graphspore.ops` when
read), plus what only this namespace has: `typeof`.

`F.partial` is `ops.partial` where graphspore.ops defines it, else `functools.partial`
(which compiled code accepts too).
"""
from __future__ import annotations

import functools

import numpy as np

from ..ir.core import Value


class TensorTypeOf:
    """What `typeof` gives for a tensor: prints as MindSpore's `Tensor[Float32]`; equal to
    another of the same element dtype; `element_type()` is the dtype."""

    __slots__ = ("_element",)

    def __init__(self, element):
        self._element = element

    def element_type(self):
        return self._element

    def __eq__(self, other):
        return isinstance(other, TensorTypeOf) and other._element is self._element

    def __hash__(self):
        return hash(("Tensor", self._element))

    def __repr__(self) -> str:
        return f"Tensor[{self._element}]"


class SequenceTypeOf:
    """What `typeof` gives for a tuple or list: `Tuple[Int64, Tensor[Float32]]`."""

    __slots__ = ("kind", "elements")

    def __init__(self, kind: str, elements: tuple):
        self.kind, self.elements = kind, elements

    def __eq__(self, other):
        return (isinstance(other, SequenceTypeOf) and other.kind == self.kind
                and other.elements == self.elements)

    def __hash__(self):
        return hash((self.kind, self.elements))

    def __repr__(self) -> str:
        return f"{self.kind}[{', '.join(map(repr, self.elements))}]"


def typeof(x):
    """MindSpore's `F.typeof`: the type of `x` as MindSpore names it. A tensor gives
    `Tensor[<dtype>]`, a Python bool/int/float the dtype `Bool`/`Int64`/`Float32` (how
    MindSpore types them in graphs), a tuple/list `Tuple[...]`/`List[...]`; anything else
    its Python type. Works eagerly and inside compiled functions (called while parsing)."""
    from .. import dtype
    if isinstance(x, Value):
        return TensorTypeOf(dtype.from_ir(x.dtype))
    if getattr(x, "__gs_tensor__", False) and not isinstance(x, type):
        return TensorTypeOf(x.dtype)
    if isinstance(x, (bool, np.bool_)):
        return dtype.bool_
    if isinstance(x, (int, np.integer)):
        return dtype.int64
    if isinstance(x, (float, np.floating)):
        return dtype.float32
    if isinstance(x, (tuple, list)):
        return SequenceTypeOf("Tuple" if isinstance(x, tuple) else "List",
                              tuple(typeof(v) for v in x))
    return type(x)


typeof.__gs_op__ = True


def __getattr__(name: str):
    """Every other name is graphspore.ops' (read when used)."""
    from .. import ops
    try:
        return getattr(ops, name)
    except AttributeError:
        if name == "partial":
            return functools.partial
        raise AttributeError(f"module 'graphspore.ops.functional' has no attribute "
                             f"{name!r}") from None


__all__ = ["typeof"]
