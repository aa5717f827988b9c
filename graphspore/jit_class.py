"""`mindspore.jit_class`: a user class whose instances compiled functions may use.

graphspore's frontend already reads the attributes of any Python object and inlines its
methods; the decorator additionally lets `construct` create instances from tensors: inside a
graph, `Cls(x)` runs `__init__` inlined on a fresh object, so `self.attr = tensor` there
holds the graph value (later reads in the same graph see it).
"""
from __future__ import annotations


def jit_class(cls):
    """Mark `cls` for use in compiled functions (MindSpore's `@jit_class`); returns it."""
    if not isinstance(cls, type):
        raise TypeError(f"jit_class: decorate a class, not a {type(cls).__name__}")
    if getattr(cls, "__gs_cell__", False):
        raise TypeError(f"jit_class: {cls.__name__} is a Cell, which compiled functions use "
                        f"already; decorate plain classes only")
    cls.__gs_jit_class__ = True
    return cls


__all__ = ["jit_class"]
