"""`mindspore.ops` functional nn: activations, softmax, `dropout` and losses, with MindSpore
2.4's names and signatures.

Activations are written so that no
branch overflows even where `select` discards it (elu takes exp(min(x, 0)); softplus uses the
overflow-free composite), because a discarded inf still turns its zero cotangent into NaN.

`dropout` draws its mask with the counter-based generator of `nn.Dropout` (ordinary ops, so
it runs the same eagerly and compiled): element i of a call gets
    u = fract(v * v * 3571 + v * 1021),  v = fract(i * phi + state)
in float64, and keeps the element when u >= p. The state lives in one module-level Parameter
that every call advances with `ops.assign`, so a compiled function draws a new mask on each
run instead of a frozen constant; `set_seed` redraws the state, so masks are reproducible.

The losses take class scores on axis 1 ((N, C) or (N, C, d1, ...)), as MindSpore's do. Class
indices become one-hot rows, so picking x[n, t_n] or weight[t_n] is a multiply-and-sum that
autodiff handles with existing rules (the idiom of `nn.CrossEntropyLoss`); an index equal to
`ignore_index` (or outside [0, C)) contributes nothing and is left out of the mean.
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..eager import gs_op
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ir.ops import composite
from ..ir.ops.shape import normalize_axis
from ..ir.types import DType
from .creation import assign, zeros_like
from .math import erf
from ..tensor_type import Parameter, Tensor


# Composites that are public ops functions under their own names.
COMPOSITES = {name: gs_op(getattr(composite, name)) for name in ("relu6", "leaky_relu",
                                                                   "softsign")}
globals().update(COMPOSITES)


def _float(x):
    return ir_ops.promote_operands(x, to_float=True)[0]


# ----------------------------------------------------------------------- activations


@gs_op
def softplus(input, beta=1, threshold=20):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    x = _float(input)
    scaled = x * beta
    smooth = _op("softplus")(scaled) / beta
    return _op("where")(_op("greater")(scaled, threshold), x, smooth)


@gs_op
def silu(input):
    """x * sigmoid(x) (swish)."""
    x = _float(input)
    return x * _op("sigmoid")(x)


@gs_op
def gelu(input, approximate="none"):
    """x * Phi(x): 'none' uses erf, x / 2 * (1 + erf(x / sqrt(2))); 'tanh' uses
    x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))."""
    x = _float(input)
    if approximate == "none":
        return x * 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)
        return x * 0.5 * (1 + _op("tanh")(inner))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@gs_op
def elu(input_x, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    x = _float(input_x)
    negative = (_op("exp")(_op("minimum")(x, 0)) - 1) * alpha
    return _op("where")(_op("greater")(x, 0), x, negative)


@gs_op
def hardswish(x):
    """x * relu6(x + 3) / 6."""
    x = _float(x)
    return x * composite.relu6(x + 3) * (1 / 6)


@gs_op
def softmax(input, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`."""
    x = ir_ops.as_value(input)
    return _op("softmax")(x, axis=normalize_axis(axis, x.ndim))


@gs_op
def log_softmax(logits, axis=-1):
    """log(softmax(logits)) along `axis`, computed stably."""
    x = ir_ops.as_value(logits)
    return _op("log_softmax")(x, axis=normalize_axis(axis, x.ndim))


# --------------------------------------------------------------------------- dropout

_PHI = 0.6180339887498949          # golden-ratio conjugate: spreads element indices
_ADVANCE = 0.7548776662466927      # the state's step per call (plastic-number conjugate)


def _initial_state() -> np.ndarray:
    return np.asarray(_random.numpy_generator().uniform(0.0, 0.5), np.float64)


_STATE = Parameter(Tensor(_initial_state()), name="ops.dropout.state", requires_grad=False)


def _reseed_state() -> None:
    _STATE.set_data(Tensor(_initial_state()))


_random.on_set_seed(_reseed_state)


@gs_op
def _masked(x, state, p):
    """(x * keep / (1 - p), the next state) for the counter-based mask of the docstring."""
    if not x.dtype.is_float:
        raise TypeError(f"dropout: input must be a float tensor, got {x.type}")
    index = _op("reshape")(ir_ops.iota(shape=(x.type.size,), axis=0, dtype=DType.f64),
                           shape=x.shape)
    v = index * _PHI + state
    v = v - _op("floor")(v)
    u = v * v * 3571.0 + v * 1021.0
    u = u - _op("floor")(u)
    keep = _op("cast")(_op("greater_equal")(u, p), dtype=x.dtype)
    step = state + _ADVANCE
    return x * keep * (1.0 / (1.0 - p)), step - _op("floor")(step)


masked_dropout = gs_op(_masked)
masked_dropout.__doc__ = """`(x * keep / (1 - p), next state)`: one dropout draw from `state`
(a float64 scalar), for layers that keep their own state Parameter (nn.Dropout)."""


def dropout(input, p=0.5, training=True, seed=None):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) when
    `training`; the input itself otherwise. `seed` is accepted for compatibility: masks come
    from the global state (reproducible after `set_seed`)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return zeros_like(input)
    out, state = _masked(input, _STATE, float(p))
    assign(_STATE, state)
    return out


dropout.__gs_op__ = True      # called directly by the frontend (it reads and assigns state)


def _check_probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be a number in [0, 1], got {p!r}")
    return float(p)


@gs_op
def _channel_scale(x, state, p):
    """(keep / (1 - p) per channel, shape (N, C, 1, 1), the next state): the dropout draw of
    `_masked` over the channels of an (N, C, H, W) input."""
    x = ir_ops.as_value(x)
    if x.ndim != 4:
        raise ValueError(f"dropout2d: the input must be 4-D (N, C, H, W), got {x.type}")
    ones = ir_ops.constant(np.ones(x.shape[:2] + (1, 1)), x.dtype)
    return _masked(ones, state, p)


def channel_dropout(input, p: float):
    """`(input * scale, scale)`: whole channels zeroed with probability p (0 <= p < 1), the
    rest scaled by 1 / (1 - p); advances the global dropout state (ops.Dropout2D)."""
    scale, state = _channel_scale(input, _STATE, p)
    assign(_STATE, state)
    return input * scale, scale


def dropout2d(input, p=0.5, training=True):
    """MindSpore's `ops.dropout2d`: zero each channel (an (H, W) map of an (N, C, H, W) input)
    with probability p and scale the kept ones by 1 / (1 - p) when `training`."""
    p = _check_probability("dropout2d", p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        _channel_scale(input, _STATE, 0.5)          # the shape check
        return zeros_like(input)
    return channel_dropout(input, p)[0]


dropout2d.__gs_op__ = True    # called directly by the frontend (it reads and assigns state)


# ---------------------------------------------------------------------------- losses

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


@gs_op
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    """Sigmoid cross entropy of logits `input` against `target`, optionally weighted;
    reduction 'mean', 'sum' or 'none'."""
    return _op("binary_cross_entropy_with_logits")(input, target, weight, pos_weight,
                                                   reduction)


@gs_op
def mse_loss(input, target, reduction="mean"):
    """(input - target)^2 (broadcast), reduced by 'mean', 'sum' or 'none'."""
    x, y = ir_ops.promote_operands(input, target, to_float=True)
    return _op("mse_loss")(x, y, _check_reduction(reduction))


@gs_op
def l1_loss(input, target, reduction="mean"):
    """|input - target| (broadcast), reduced by 'mean', 'sum' or 'none'."""
    x, y = ir_ops.promote_operands(input, target, to_float=True)
    return _op("l1_loss")(x, y, _check_reduction(reduction))


def _class_weight(weight, x, axis: int):
    """weight (C,) shaped to broadcast along the class axis of x, or None."""
    if weight is None:
        return None
    w = ir_ops.as_value(weight, x.dtype)
    if w.shape != (x.shape[axis],):
        raise ValueError(f"weight must have shape ({x.shape[axis]},), got {w.type}")
    w = w if w.dtype is x.dtype else _op("cast")(w, dtype=x.dtype)
    view = [1] * x.ndim
    view[axis] = x.shape[axis]
    return _op("reshape")(w, shape=tuple(view))


def _nll(logp, target, weight, ignore_index, reduction, label_smoothing, axis):
    """-w[t_n] * logp[n, t_n] per sample, with label smoothing and reduction."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_reduction(reduction)
    target = ir_ops.as_value(target)
    if not target.dtype.is_int:
        raise TypeError(f"target must hold integer class indices, got {target.type}")
    expected = logp.shape[:axis] + logp.shape[axis + 1:]
    if target.shape != expected:
        raise ValueError(f"target must have shape {expected} for inputs {logp.type}, got "
                         f"{target.type}")
    classes = logp.shape[axis]
    valid = _op("cast")(_op("not_equal")(target, ignore_index), dtype=logp.dtype)
    hot = _op("one_hot")(target, classes, 1.0, 0.0, axis) * _op("expand_dims")(valid, axis)
    hot = hot if hot.dtype is logp.dtype else _op("cast")(hot, dtype=logp.dtype)
    w = _class_weight(weight, logp, axis)
    picked = hot if w is None else hot * w
    loss = -_op("reduce_sum")(logp * picked, axes=(axis,), keep_dims=False)
    if label_smoothing > 0.0:
        per_class = logp if w is None else logp * w
        smooth = -_op("reduce_sum")(per_class, axes=(axis,), keep_dims=False) * valid
        loss = loss * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)
    if reduction == "none":
        return loss
    total = _op("reduce_sum")(loss, axes=None)
    if reduction == "sum":
        return total
    return total / _op("reduce_sum")(picked, axes=None)


def _class_axis(x) -> int:
    return 0 if x.ndim == 1 else 1


@gs_op
def nll_loss(inputs, target, weight=None, ignore_index=-100, reduction="mean",
             label_smoothing=0.0):
    """Negative log-likelihood of log-probabilities `inputs` (N, C, ...) at class indices
    `target` (N, ...): -weight[t] * inputs[n, t]; 'mean' divides by the sum of the picked
    weights, label smoothing mixes in -sum_c weight[c] * inputs[n, c] / C."""
    x = _float(inputs)
    return _nll(x, target, weight, ignore_index, reduction, float(label_smoothing),
                _class_axis(x))


@gs_op
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy of logits `input` (C,), (N, C) or (N, C, d1, ...) against class indices
    (integer `target`, as nll_loss of log_softmax) or class probabilities (float `target` of
    input's shape: -sum_c w_c p_c log_softmax(x)_c, 'mean' dividing by the sample count)."""
    x = _float(input)
    axis = _class_axis(x)
    logp = _op("log_softmax")(x, axis=axis)
    target = ir_ops.as_value(target)
    if not target.dtype.is_float:
        return _nll(logp, target, weight, ignore_index, reduction, float(label_smoothing),
                    axis)
    _check_reduction(reduction)
    if target.shape != x.shape:
        raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                         f"{x.shape}, got {target.type}")
    classes = x.shape[axis]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    w = _class_weight(weight, x, axis)
    terms = logp * target if w is None else logp * target * w
    if reduction == "none":
        return -_op("reduce_sum")(terms, axes=(axis,), keep_dims=False)
    total = -_op("reduce_sum")(terms, axes=None)
    return total if reduction == "sum" else total / (x.type.size // classes)


__all__ = [*COMPOSITES, "softplus", "silu", "gelu", "elu", "hardswish", "softmax",
           "log_softmax", "dropout", "dropout2d", "binary_cross_entropy_with_logits",
           "mse_loss", "l1_loss", "nll_loss", "cross_entropy"]
