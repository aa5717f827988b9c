"""Loss composites: BCE with logits (the stable form), MSE and L1, each reduced."""
from __future__ import annotations

from ...core import Value
from ..elementwise import abs, exp, log, maximum, neg, sub
from ..opdef import as_value, promote_operands
from ..reduce import reduce_sum
from .elementwise import square
from .reduction import mean

__all__ = ["binary_cross_entropy_with_logits", "mse_loss", "l1_loss"]


def _reduce_loss(loss: Value, reduction: str) -> Value:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return reduce_sum(loss, axes=None)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def binary_cross_entropy_with_logits(logits, label, weight=None, pos_weight=None,
                                     reduction: str = "mean") -> Value:
    """MindSpore's BCEWithLogitsLoss, in the stable form
    (1 - y) x + (1 + (pw - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)), which for pw = 1 is
    max(x, 0) - x y + log(1 + exp(-|x|)); times `weight`, then reduced."""
    x, y = promote_operands(logits, label, to_float=True)
    weight, pos_weight = (None if w is None else as_value(w, x.dtype) for w in (weight, pos_weight))
    soft = log(1 + exp(neg(abs(x))))
    if pos_weight is None:
        loss = maximum(x, 0) - x * y + soft
    else:
        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * (soft + maximum(neg(x), 0))
    return _reduce_loss(loss if weight is None else loss * weight, reduction)


def mse_loss(prediction, target, reduction: str = "mean") -> Value:
    """(prediction - target)^2, reduced."""
    return _reduce_loss(square(sub(prediction, target)), reduction)


def l1_loss(prediction, target, reduction: str = "mean") -> Value:
    """|prediction - target|, reduced."""
    return _reduce_loss(abs(sub(prediction, target)), reduction)
