"""Composites: functions written once in terms of primitives, one module per concept.

    elementwise  square, reciprocal, where, clamp, masked_fill, isnan/isinf/isfinite, round,
                 rsqrt, erf
    activation   relu6, leaky_relu, softplus
    reduction    mean, reduce_min, softmax, log_softmax, logsumexp, prod, var/std, norm,
                 cumsum, topk
    shape        expand_dims, squeeze, swapaxes, tile, repeat_interleave, split, ...
    creation     full, zeros, ones, zeros_like, ones_like, one_hot
    linalg       matmul_nd (numpy's matmul)
    loss         binary_cross_entropy_with_logits, mse_loss, l1_loss
    indexing     getitem (Python indexing)

They emit primitives into the current builder, so they work unchanged in eager mode and while
a graph is built, and they need no VJP, lowering or test row of their own: autodiff and codegen
see only primitives. Attribute arguments (axes, shapes, indices) must be Python values known
while the graph is built. This package only re-exports (no name is in two modules' `__all__`).
"""
from __future__ import annotations

from .activation import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from . import activation, creation, elementwise, indexing, linalg, loss, reduction, shape

# Composites that are also Tensor methods (x.std(), x.cumsum(1)); frontend/operators.py
# derives the method table from this and from the registry's groups.
TENSOR_METHODS = ("square", "reciprocal", "clamp", "masked_fill", "isnan", "isinf", "isfinite",
                  "rsqrt", "round", "erf", "softmax", "log_softmax", "logsumexp", "prod", "var",
                  "std", "norm", "cumsum", "topk", "tile", "repeat_interleave", "split",
                  "narrow", "flatten", "bmm")

__all__ = [*activation.__all__, *creation.__all__, *elementwise.__all__, *indexing.__all__,
           *linalg.__all__, *loss.__all__, *reduction.__all__, *shape.__all__]
