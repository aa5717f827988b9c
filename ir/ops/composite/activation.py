"""Activation composites written in primitives (relu itself is a primitive)."""
from __future__ import annotations

from ...core import Value
from ..elementwise import (abs, div, exp, greater, log, maximum, minimum, neg, relu,  # noqa: A004
                           select)
from ..opdef import as_value, promote_operands

__all__ = ["relu6", "leaky_relu", "softplus", "softsign"]


def relu6(x) -> Value:
    """min(max(x, 0), 6)."""
    return minimum(relu(x), 6)


def leaky_relu(input, alpha: float = 0.2) -> Value:  # noqa: A002  (MindSpore's name)
    """input where input > 0, alpha * input elsewhere (MindSpore's default alpha is 0.2)."""
    x = as_value(input)
    return select(greater(x, 0), x, x * alpha)


def softplus(x) -> Value:
    """log(1 + exp(x)) computed as max(x, 0) + log(1 + exp(-|x|)), which never overflows."""
    x = promote_operands(x, to_float=True)[0]
    return maximum(x, 0) + log(1 + exp(neg(abs(x))))


def softsign(x) -> Value:
    """x / (1 + |x|) (MindSpore's Softsign), float result."""
    x = promote_operands(x, to_float=True)[0]
    return div(x, 1 + abs(x))
