"""More activations after `mindspore.nn`: ReLU6, LeakyReLU, GELU, SiLU, ELU, HSwish, HSigmoid,
Identity.

Each `construct` is a short composition of `graphspore.ops` (eager and compiled alike), so the
gradients come from existing VJP rules. A branch that `where` discards still gets a zero
cotangent multiplied by its own derivative, so a branch that could overflow there (ELU's exp
for large x) is evaluated on a clamped input: its derivative stays finite and 0 * finite = 0.
"""
from __future__ import annotations

import math

from .. import ops
from .cell import Cell

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _relu6(x):
    return ops.minimum(ops.relu(x), 6.0)


class ReLU6(Cell):
    """min(max(x, 0), 6)."""

    def construct(self, x):
        return _relu6(x)


class LeakyReLU(Cell):
    """x for x >= 0, alpha * x otherwise; computed as MindSpore does, as max(alpha * x, x)
    (min(alpha * x, x) when alpha > 1)."""

    def __init__(self, alpha=0.2):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"LeakyReLU: alpha must be a float or an int, got "
                            f"{type(alpha).__name__}")
        self.alpha = float(alpha)

    def construct(self, x):
        if self.alpha > 1.0:
            return ops.minimum(x * self.alpha, x)
        return ops.maximum(x * self.alpha, x)

    def extend_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Cell):
    """x * Phi(x). approximate=True (MindSpore's default) is the tanh form
        0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
    approximate=False is the exact 0.5 x (1 + erf(x / sqrt(2)))."""

    def __init__(self, approximate=True):
        super().__init__()
        if not isinstance(approximate, bool):
            raise TypeError(f"GELU: approximate must be a bool, got {type(approximate).__name__}")
        self.approximate = approximate

    def construct(self, x):
        if self.approximate:
            inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
            return x * (ops.tanh(inner) + 1.0) * 0.5
        return x * (ops.erf(x * _SQRT_HALF) + 1.0) * 0.5

    def extend_repr(self) -> str:
        return f"approximate={self.approximate}"


class SiLU(Cell):
    """x * sigmoid(x) (also called swish)."""

    def construct(self, x):
        return x * ops.sigmoid(x)


class ELU(Cell):
    """x for x >= 0, alpha * (exp(x) - 1) otherwise. MindSpore's Elu kernel accepts only
    alpha = 1.0; any positive alpha works here."""

    def __init__(self, alpha=1.0):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"ELU: alpha must be a float, got {type(alpha).__name__}")
        self.alpha = float(alpha)

    def construct(self, x):
        negative = (ops.exp(ops.minimum(x, 0.0)) - 1.0) * self.alpha
        return ops.where(x >= 0.0, x, negative)

    def extend_repr(self) -> str:
        return f"alpha={self.alpha}"


class HSwish(Cell):
    """Hard swish: x * relu6(x + 3) / 6."""

    def construct(self, x):
        return x * _relu6(x + 3.0) * (1.0 / 6.0)


class HSigmoid(Cell):
    """Hard sigmoid: relu6(x + 3) / 6."""

    def construct(self, x):
        return _relu6(x + 3.0) * (1.0 / 6.0)


class Identity(Cell):
    """Returns its input unchanged (a placeholder layer)."""

    def construct(self, x):
        return x


__all__ = ["ReLU6", "LeakyReLU", "GELU", "SiLU", "ELU", "HSwish", "HSigmoid", "Identity"]
