"""Gradient hooks: `gs.grad_hook` marks a value in the forward graph, and its VJP is a
`gs.host_hook`, a call back into Python with the cotangent when the backward pass runs.

`gs.grad_hook(x) {hook = id}` is the identity (simplify drops it after autodiff). Its VJP
`gs.host_hook(g) {hook = id}` hands `g` to the Python function registered under `id` in
`HOOKS` and returns its replacement (or `g` unchanged). Compiled, the host hook is a kernel of
its own: `g` copied into the result's buffer, then one native call
`gs_host_hook(i64 id, ptr buffer, i64 count)` (runtime/hook_callback.py) that lets Python
overwrite it in place, in program order, on the calling thread. Being in the COLLECTIVE group
it is never folded, merged with another or moved. Ids are per process (`register_hook`).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..types import TensorType
from .collective import COLLECTIVE
from .opdef import register, as_value
from .shape import AttrOpDef

__all__ = ["grad_hook", "host_hook", "HOOKS", "register_hook"]

# id -> `callback(array) -> array | None` (the replacement, shaped like the array)
HOOKS: dict[int, object] = {}
_ids = itertools.count(1)


def register_hook(callback) -> int:
    """A new id for `callback(cotangent array) -> replacement or None`."""
    hook = next(_ids)
    HOOKS[hook] = callback
    return hook


def run_hook(hook: int, array: np.ndarray) -> np.ndarray:
    """The cotangent after hook `hook` saw it (`array` itself when it returned None)."""
    callback = HOOKS.get(hook)
    if callback is None:
        raise RuntimeError(f"gradient hook {hook} is not registered in this process")
    replaced = callback(array)
    if replaced is None:
        return array
    replaced = np.asarray(replaced)
    if replaced.shape != array.shape:
        raise ValueError(f"a gradient hook returned shape {replaced.shape} for a gradient of "
                         f"shape {array.shape}")
    return replaced.astype(array.dtype, copy=False)


def _normalize(x, *, hook) -> dict:
    return {"hook": int(hook)}


def _infer(x: TensorType, *, hook) -> TensorType:
    if not x.dtype.is_float:
        raise TypeError(f"a gradient hook needs a float tensor, got {x}")
    return x


def _vjp_mark(g, out, x, *, hook):
    return (host_hook(g, hook=hook),)


def _vjp_host(g, out, x, *, hook):
    raise ValueError("a gradient hook's backward call has no gradient of its own (hooks in "
                     "higher-order gradients are not supported)")


grad_hook = register(AttrOpDef(
    "gs.grad_hook", _infer, lambda x, *, hook: np.array(x, copy=True), _vjp_mark,
    frozenset(),
    '`%y = "gs.grad_hook"(%x) {hook = 1} : (tensor<3xf32>) -> tensor<3xf32>`: the identity, '
    'whose cotangent goes through the Python hook `hook`',
    lambda x: (as_value(x),), _normalize))

host_hook = register(AttrOpDef(
    "gs.host_hook", _infer, lambda g, *, hook: run_hook(hook, np.array(g, copy=True)),
    _vjp_host, frozenset({COLLECTIVE}),
    '`%h = "gs.host_hook"(%g) {hook = 1} : (tensor<3xf32>) -> tensor<3xf32>`: `%g` after '
    'the Python hook `hook` (its return value, or `%g` when it returns None)',
    lambda g: (as_value(g),), _normalize))
