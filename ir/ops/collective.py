"""Collectives across processes: `gs.all_reduce` over every rank of the world communicator.

The IR knows nothing of MPI. The reference (eager mode, the interpreter, constant folding is
never applied: the op is in the COLLECTIVE group) calls the backend that
`graphspore.communication.init()` installs in `BACKEND`; without one the program runs as one
process and the reduction over one rank is the identity. Every rank compiles the same graph,
so every rank issues its collectives in the same order.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from .opdef import register, as_value
from .shape import AttrOpDef

__all__ = ["all_reduce", "COLLECTIVE", "REDUCE_OPS", "BACKEND"]

COLLECTIVE = "collective"      # talks to other processes: never folded, never reordered
REDUCE_OPS = ("sum", "max", "min", "prod")

# `BACKEND["all_reduce"](array, op) -> array`, set by graphspore.communication.init().
BACKEND: dict = {"all_reduce": None}


def _normalize(x, *, op="sum") -> dict:
    op = str(op).lower()
    if op not in REDUCE_OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(REDUCE_OPS)}, got {op!r}")
    return {"op": op}


def _infer(x: TensorType, *, op: str) -> TensorType:
    if not x.dtype.is_float:
        raise TypeError(f"all_reduce takes a float32 or float64 tensor, got {x}")
    return x


def _reference(x, *, op):
    backend = BACKEND["all_reduce"]
    return np.array(x, copy=True) if backend is None else backend(np.asarray(x), op)


def _vjp(g, out, x, *, op):
    # y = sum over ranks of x_r, and the loss sums every rank's contribution, so each rank's
    # dL/dx_r = sum over ranks of g_r: the adjoint of an all-reduce-sum is an all-reduce-sum.
    if op != "sum":
        raise ValueError(f"all_reduce(op={op!r}) has no gradient; only op='sum' does")
    return (all_reduce(g, op="sum"),)


all_reduce = register(AttrOpDef(
    "gs.all_reduce", _infer, _reference, _vjp, frozenset({COLLECTIVE}),
    '`%s = "gs.all_reduce"(%g) {op = "sum"} : (tensor<128xf32>) -> tensor<128xf32>`: the '
    'elementwise reduction of `%g` over every rank',
    lambda x: (as_value(x),), _normalize))
