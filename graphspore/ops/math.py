"""`mindspore.ops` math: reductions (sum, mean, amax, argmax, max, ...) and matrix products
with MindSpore 2.4's names and signatures, and the math composites of
`ir/ops/composite/` (isnan, round, erf, prod, std, norm, cumsum, topk, ...) as public ops.

The reductions translate MindSpore's conventions (`dim`/`axis`, None for every axis, the
(values, indices) pair of `ops.max`) into the IR's reductions; everything else is graph code
defined once, in the composites, and made public here by `gs_op`.
"""
from __future__ import annotations

from ..eager import gs_op
from ..frontend import operators as methods
from ..frontend.operators import op as _op, normalize_axes
from ..ir import ops as ir_ops
from ..ir.ops import composite

# Composites that are public ops functions under their own names.
COMPOSITES = {name: gs_op(getattr(composite, name)) for name in (
    "isnan", "isinf", "isfinite", "rsqrt", "round", "erf", "prod", "var", "std", "var_mean",
    "std_mean", "norm", "cumsum", "topk", "bmm")}
globals().update(COMPOSITES)

# ------------------------------------------------------------------------ reductions


@gs_op
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over `dim` (None: every axis)."""
    return methods.tensor_sum(input, dim, dtype, keepdim)


@gs_op
def mean(input, axis=None, keep_dims=False):
    """Mean over `axis` (None: every axis)."""
    return methods.tensor_mean(input, axis, keep_dims)


def _reduce(name, x, axis, keep):
    axes = normalize_axes(x, axis)
    return _op(name)(x, axes=axes, keep_dims=bool(keep)) if axes else x


@gs_op
def amax(input, axis=None, keepdims=False):
    """Maximum over `axis` (None: every axis)."""
    return _reduce("reduce_max", ir_ops.as_value(input), axis, keepdims)


@gs_op
def amin(input, axis=None, keepdims=False):
    """Minimum over `axis` (None: every axis)."""
    return _reduce("reduce_min", ir_ops.as_value(input), axis, keepdims)


@gs_op
def argmax(input, dim=None, keepdim=False):
    """Index of the maximum along `dim` (None: of the flattened input), int64."""
    return methods.argmax(input, dim, keepdim)


argmin = gs_op(methods.argmin)


def _values_and_indices(which: str, index):
    """MindSpore's `ops.max`/`ops.min`: (the extreme values, their indices) along `axis`."""
    extreme, bound = ("reduce_max", "maximum") if which == "max" else ("reduce_min", "minimum")

    def function(input, axis=None, keepdims=False, *, initial=None, where=None):
        if where is not None:
            raise ValueError(f"{which}: the 'where' argument is not supported")
        x = ir_ops.as_value(input)
        values = _reduce(extreme, x, axis, keepdims)
        values = values if initial is None else _op(bound)(values, initial)
        return values, index(x, axis, keepdims)
    function.__name__ = function.__qualname__ = which
    function.__doc__ = (f"MindSpore's `ops.{which}`: the tuple ({which}imum values, their "
                        f"indices) along `axis`.")
    return gs_op(function)


max = _values_and_indices("max", methods.argmax)  # noqa: A001  (MindSpore's names)
min = _values_and_indices("min", methods.argmin)  # noqa: A001


@gs_op
def logsumexp(input, axis, keep_dims=False):
    """log(sum(exp(input))) over `axis`."""
    x = ir_ops.as_value(input)
    return _op("logsumexp")(x, axes=normalize_axes(x, axis), keep_dims=bool(keep_dims))


# -------------------------------------------------------------------- linear algebra

@gs_op
def matmul(input, other):
    """numpy matmul semantics: 1-D operands are vectors, leading axes batch."""
    return _op("matmul_nd")(input, other)


@gs_op
def dot(input, other):
    """numpy.dot for operands of rank >= 2: sum over the last axis of `input` and the
    second-to-last of `other`; shape input.shape[:-1] + other.shape[:-2] + other.shape[-1:]."""
    a, b = ir_ops.promote_operands(input, other)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"dot: both operands must have rank >= 2, got {a.type} and {b.type}")
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ValueError(f"dot: contracting sizes differ: {a.type} . {b.type}")
    rows = _op("reshape")(a, shape=(-1, k))
    perm = (b.ndim - 2,) + tuple(range(b.ndim - 2)) + (b.ndim - 1,)
    cols = _op("reshape")(_op("transpose")(b, perm=perm), shape=(k, -1))
    out = _op("matmul")(rows, cols)
    return _op("reshape")(out, shape=a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


__all__ = [*COMPOSITES, "sum", "mean", "amax", "amin", "argmax", "argmin", "max", "min",
           "logsumexp", "matmul", "dot"]
