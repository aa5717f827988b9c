"""Optimizers: `optimizer(grads)` updates its Parameters in place with `ops.assign`.

An optimizer is a Cell whose `construct(gradients)` is ordinary ops code: a loop over the
Python tuple `self.parameters` zipped with the gradients (unrolled while parsing), arithmetic,
and one `ops.assign` per updated buffer. Eagerly each assign writes the Parameter's host buffer;
inside a compiled `train_step` it becomes one of the graph's `updates`, so forward, backward
and update are one native call.

All optimizer state is Parameters owned by the optimizer, named as in MindSpore
(`moment1.fc1.weight`, `global_step`, `learning_rate`), so it lives in persistent buffers, is
visible to the compiled graph as bound inputs, and is saved by `save_checkpoint`. The learning
rate is a Parameter too: changing it does not recompile. `requires_grad=False` keeps state out
of `trainable_params()`.

Weight decay follows MindSpore: a float `weight_decay` is applied to parameters whose names
contain neither 'beta' nor 'gamma' (normalisation scales and shifts are not decayed).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .cell import Cell
from ..tensor import Parameter, Tensor


def _state(value, name: str) -> Parameter:
    return Parameter(Tensor(value), name=name, requires_grad=False)


def _param_list(params) -> list:
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if isinstance(p, dict):
            raise TypeError("grouped parameters (a list of dicts) are not supported; pass the "
                            "Parameters, e.g. net.trainable_params()")
        if not getattr(p, "__gs_parameter__", False):
            raise TypeError(f"optimizer parameters must be Parameters, got {type(p).__name__}")
    names = [p.name for p in params]
    duplicate = {n for n in names if names.count(n) > 1}
    if duplicate:
        raise ValueError(f"optimizer: parameter names must be unique, repeated: "
                         f"{sorted(duplicate)}")
    return params


def _learning_rate(value) -> float:
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    value = float(np.asarray(value))
    if value < 0:
        raise ValueError(f"learning_rate must be non-negative, got {value}")
    return value


class Optimizer(Cell):
    """Base class: parameters, learning rate, weight decay and the step counter."""

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale=1.0):
        super().__init__(auto_prefix=False)
        self.parameters = tuple(_param_list(parameters))
        self.learning_rate = _state(np.array(_learning_rate(learning_rate), np.float32),
                                    "learning_rate")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
        self.weight_decay = float(weight_decay)
        self.loss_scale = float(loss_scale)
        self.decay_flags = tuple("beta" not in p.name and "gamma" not in p.name
                                 for p in self.parameters)
        self.global_step = _state(np.array(0, np.int32), "global_step")

    def clone_state(self, prefix: str, init: float = 0.0) -> tuple:
        """One state Parameter per parameter, `prefix.<name>`, filled with `init`."""
        states = tuple(_state(np.full(p.shape, init, _host(p).dtype), f"{prefix}.{p.name}")
                       for p in self.parameters)
        for state in states:        # registered, so the state is saved with the optimizer
            self.insert_param_to_cell(state.name, state, check_name_contain_dot=False)
        return states

    def get_lr(self):
        return self.learning_rate

    def decayed(self, param, grad, decay):
        """grad + weight_decay * param for decayed parameters (L2 penalty), else grad."""
        if self.loss_scale != 1.0:
            grad = grad * (1.0 / self.loss_scale)
        if decay and self.weight_decay > 0.0:
            return grad + self.weight_decay * param
        return grad

    def _check(self, gradients):
        if len(gradients) != len(self.parameters):
            raise ValueError(f"{type(self).__name__} updates {len(self.parameters)} parameters "
                             f"but got {len(gradients)} gradients")


def _host(p) -> np.ndarray:
    return p.asnumpy()


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as MindSpore's SGD:
        g = grad + weight_decay * p
        v = g on the first step, else momentum * v + (1 - dampening) * g
        p = p - lr * (g + momentum * v if nesterov else v)       (momentum > 0)
        p = p - lr * g                                           (momentum = 0)
    """

    def __init__(self, params, learning_rate=0.1, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False, loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if momentum < 0:
            raise ValueError(f"momentum must be non-negative, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov = bool(nesterov)
        if self.momentum > 0:
            self.accum = self.clone_state("accum")

    def construct(self, gradients):
        self._check(gradients)
        lr = self.get_lr()
        if self.momentum > 0:
            first = ops.cast(self.global_step == 0, self.learning_rate.dtype)
            for param, grad, accum, decay in zip(self.parameters, gradients, self.accum,
                                                 self.decay_flags):
                grad = self.decayed(param, grad, decay)
                blended = accum * self.momentum + grad * (1.0 - self.dampening)
                velocity = first * grad + (1.0 - first) * blended
                ops.assign(accum, velocity)
                if self.nesterov:
                    ops.assign(param, param - lr * (grad + velocity * self.momentum))
                else:
                    ops.assign(param, param - lr * velocity)
        else:
            for param, grad, decay in zip(self.parameters, gradients, self.decay_flags):
                ops.assign(param, param - lr * self.decayed(param, grad, decay))
        ops.assign(self.global_step, self.global_step + 1)


class Momentum(Optimizer):
    """MindSpore's Momentum: v = momentum * v + g; p = p - lr * v
    (with use_nesterov: p = p - lr * (g + momentum * v)); g includes weight decay."""

    def __init__(self, params, learning_rate, momentum, weight_decay=0.0, loss_scale=1.0,
                 use_nesterov=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if momentum < 0:
            raise ValueError(f"momentum must be non-negative, got {momentum}")
        self.momentum, self.use_nesterov = float(momentum), bool(use_nesterov)
        self.moments = self.clone_state("moments")

    def construct(self, gradients):
        self._check(gradients)
        lr = self.get_lr()
        for param, grad, moment, decay in zip(self.parameters, gradients, self.moments,
                                              self.decay_flags):
            grad = self.decayed(param, grad, decay)
            velocity = moment * self.momentum + grad
            ops.assign(moment, velocity)
            if self.use_nesterov:
                ops.assign(param, param - lr * (grad + velocity * self.momentum))
            else:
                ops.assign(param, param - lr * velocity)
        ops.assign(self.global_step, self.global_step + 1)


class Adam(Optimizer):
    """Adam with bias correction folded into the step size (MindSpore's Adam):
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t = step + 1
        p = p - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    `beta1_power` and `beta2_power` hold b1^t and b2^t; g includes weight decay (L2)."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 use_locking=False, use_nesterov=False, weight_decay=0.0, loss_scale=1.0,
                 use_amsgrad=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        _check_betas(beta1, beta2, eps)
        if use_amsgrad:
            raise ValueError("Adam: use_amsgrad=True is not supported")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.use_nesterov = bool(use_nesterov)
        self.beta1_power = _state(np.array(1.0, np.float32), "beta1_power")
        self.beta2_power = _state(np.array(1.0, np.float32), "beta2_power")
        self.moment1 = self.clone_state("moment1")
        self.moment2 = self.clone_state("moment2")

    def construct(self, gradients):
        self._check(gradients)
        beta1_power = self.beta1_power * self.beta1
        beta2_power = self.beta2_power * self.beta2
        ops.assign(self.beta1_power, beta1_power)
        ops.assign(self.beta2_power, beta2_power)
        lr = self.get_lr() * ops.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
        for param, grad, m, v, decay in zip(self.parameters, gradients, self.moment1,
                                            self.moment2, self.decay_flags):
            grad = self.decayed(param, grad, decay)
            m_new = m * self.beta1 + grad * (1.0 - self.beta1)
            v_new = v * self.beta2 + grad * grad * (1.0 - self.beta2)
            ops.assign(m, m_new)
            ops.assign(v, v_new)
            if self.use_nesterov:
                step = m_new * self.beta1 + grad * (1.0 - self.beta1)
            else:
                step = m_new
            ops.assign(param, param - lr * step / (ops.sqrt(v_new) + self.eps))
        ops.assign(self.global_step, self.global_step + 1)


class AdamWeightDecay(Optimizer):
    """Adam with decoupled weight decay and no bias correction (MindSpore's AdamWeightDecay):
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p = p - lr * (m / (sqrt(v) + eps) + weight_decay * p)"""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6,
                 weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        _check_betas(beta1, beta2, eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.moments1 = self.clone_state("adam_m")
        self.moments2 = self.clone_state("adam_v")

    def construct(self, gradients):
        self._check(gradients)
        lr = self.get_lr()
        for param, grad, m, v, decay in zip(self.parameters, gradients, self.moments1,
                                            self.moments2, self.decay_flags):
            m_new = m * self.beta1 + grad * (1.0 - self.beta1)
            v_new = v * self.beta2 + grad * grad * (1.0 - self.beta2)
            ops.assign(m, m_new)
            ops.assign(v, v_new)
            update = m_new / (ops.sqrt(v_new) + self.eps)
            if decay and self.weight_decay > 0.0:
                update = update + param * self.weight_decay
            ops.assign(param, param - lr * update)
        ops.assign(self.global_step, self.global_step + 1)


def _check_betas(beta1, beta2, eps) -> None:
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")


__all__ = ["Optimizer", "SGD", "Momentum", "Adam", "AdamWeightDecay"]
