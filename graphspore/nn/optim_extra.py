"""RMSProp and Adagrad after `mindspore.nn`, on the `Optimizer` base of optim.py.

Same structure as SGD/Momentum/Adam there: `construct(gradients)` reads the step's learning
rate once (`get_lr`, which also advances `global_step`), then loops over the parameters with
one `ops.assign` per updated buffer, so a compiled train step updates weights and state in its
single native call. The gradient includes weight decay and the loss-scale division
(`Optimizer.decayed`), as MindSpore applies them before the update rule. State Parameters are
named as MindSpore's (`mean_square.<param>`, `moment.<param>`, `mean_grad.<param>`,
`accum.<param>`) so checkpoints line up.

The update rules are those of MindSpore's primitives (ApplyRMSProp, ApplyCenteredRMSProp,
ApplyAdagrad), which is what its optimizers run.
"""
from __future__ import annotations

from .. import ops
from .optim import Optimizer


def _non_negative(value, owner: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a float, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{owner}: {name} must be non-negative, got {value}")
    return float(value)


class RMSProp(Optimizer):
    """Root-mean-square propagation (MindSpore's RMSProp):
        s = decay * s + (1 - decay) * g^2
        m = momentum * m + lr * g / sqrt(s + epsilon)
        p = p - m
    With centered=True the mean gradient a = decay * a + (1 - decay) * g is tracked too and
    the denominator is sqrt(s - a^2 + epsilon). `mean_square` starts at 1 (as MindSpore's),
    `moment` and `mean_grad` at 0."""

    def __init__(self, params, learning_rate=0.1, decay=0.9, momentum=0.0, epsilon=1e-10,
                 use_locking=False, centered=False, loss_scale=1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.decay = _non_negative(decay, "RMSProp", "decay")
        self.momentum = _non_negative(momentum, "RMSProp", "momentum")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"RMSProp: epsilon must be a positive float, got {epsilon!r}")
        if not isinstance(centered, bool) or not isinstance(use_locking, bool):
            raise TypeError("RMSProp: centered and use_locking must be bools")
        self.epsilon, self.centered = float(epsilon), centered
        self.mean_square = self.clone_state("mean_square", 1.0)
        self.moment = self.clone_state("moment")
        self.mean_grad = self.clone_state("mean_grad") if centered else (None,) * len(
            self.parameters)

    def construct(self, gradients):
        self._check(gradients)
        lrs = self.lr_per_parameter(self.get_lr())
        decay = self.decay
        for param, grad, square, moment, mean_grad, lr, weight_decay in zip(
                self.parameters, gradients, self.mean_square, self.moment, self.mean_grad, lrs,
                self.applied_weight_decay):
            grad = self.decayed(param, grad, weight_decay)
            square_new = square * decay + grad * grad * (1.0 - decay)
            ops.assign(square, square_new)
            if self.centered:
                mean_new = mean_grad * decay + grad * (1.0 - decay)
                ops.assign(mean_grad, mean_new)
                denominator = ops.sqrt(square_new - mean_new * mean_new + self.epsilon)
            else:
                denominator = ops.sqrt(square_new + self.epsilon)
            moment_new = moment * self.momentum + lr * grad / denominator
            ops.assign(moment, moment_new)
            ops.assign(param, param - moment_new)


class Adagrad(Optimizer):
    """Adagrad (MindSpore's, i.e. ApplyAdagrad): with update_slots (the default)
        accum = accum + g^2;   p = p - lr * g / sqrt(accum)
    and without it `accum` keeps its value. `accum` starts at the `accum` argument (0.1), so
    the first division is safe without an epsilon."""

    def __init__(self, params, accum=0.1, learning_rate=0.001, update_slots=True,
                 loss_scale=1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        initial = _non_negative(accum, "Adagrad", "accum")
        if not isinstance(update_slots, bool):
            raise TypeError(f"Adagrad: update_slots must be a bool, got "
                            f"{type(update_slots).__name__}")
        self.update_slots = update_slots
        self.accum = self.clone_state("accum", initial)

    def construct(self, gradients):
        self._check(gradients)
        lrs = self.lr_per_parameter(self.get_lr())
        for param, grad, accum, lr, weight_decay in zip(self.parameters, gradients, self.accum,
                                                        lrs, self.applied_weight_decay):
            grad = self.decayed(param, grad, weight_decay)
            total = accum
            if self.update_slots:
                total = accum + grad * grad
                ops.assign(accum, total)
            ops.assign(param, param - lr * grad / ops.sqrt(total))


__all__ = ["RMSProp", "Adagrad"]
