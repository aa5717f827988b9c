"""Tensor methods that forward to `graphspore.ops`: `x.std(axis)` is `ops.std(x, axis)`.

MindSpore's Tensor methods take the same arguments as the functional op after its first
one. The frontend's method table (`frontend.operators.TENSOR_METHODS`) cannot import
`graphspore.ops` (the frontend sits below it), so this module adds the entries once `ops`
is loaded; the eager `Tensor` methods are made from the same entries, so `x.std()` means
one thing in both modes.
"""
from __future__ import annotations

from . import array, elementwise, math, nn
from ..frontend import operators as methods
from ..tensor_type import Tensor, _method

FORWARDED = ("std", "var", "prod", "cumsum", "tile", "round", "isnan", "isinf", "isfinite",
             "norm", "split", "narrow", "masked_fill", "repeat_interleave", "floor", "neg",
             "square", "pow", "clamp", "clip", "flatten", "argmin", "permute", "unsqueeze",
             "matmul", "add", "sub", "mul", "div", "maximum", "minimum", "erf", "rsqrt",
             "softmax", "log_softmax", "relu", "sign", "reciprocal", "topk", "logsumexp",
             "amax", "amin")


_FUNCTIONS = {name: getattr(module, name) for module in (array, elementwise, math, nn)
              for name in module.__all__}
VARARGS = ("permute",)      # Tensor.permute(1, 0) and Tensor.permute((1, 0)); ops takes a tuple


def _forward(function):
    return lambda x, *args, **kwargs: function(x, *args, **kwargs)


def _forward_varargs(function):
    def method(x, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return function(x, dims)
    return method


def register() -> None:
    """Add a method per name in FORWARDED that the table and Tensor do not define yet."""
    for name in FORWARDED:
        if name in methods.TENSOR_METHODS or hasattr(Tensor, name):
            continue
        wrap = _forward_varargs if name in VARARGS else _forward
        methods.TENSOR_METHODS[name] = wrap(_FUNCTIONS[name])
        setattr(Tensor, name, _method(name))


register()
