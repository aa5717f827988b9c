"""Optimizers: `optimizer(grads)` updates its Parameters in place with `ops.assign`.

An optimizer is a Cell whose `construct(gradients)` is ordinary ops code: a loop over the
Python tuple `self.parameters` zipped with the gradients (unrolled while parsing), arithmetic,
and one `ops.assign` per updated buffer. Eagerly each assign writes the Parameter's host buffer;
inside a compiled `train_step` it becomes one of the graph's `updates`, so forward, backward
and update are one native call.

All optimizer state is Parameters owned by the optimizer, named as in MindSpore
(`moment1.fc1.weight`, `global_step`, `learning_rate`), so it lives in persistent buffers, is
visible to the compiled graph as bound inputs, and is saved by `save_checkpoint`.
`requires_grad=False` keeps state out of `trainable_params()`.

Learning rates (MindSpore's forms): a number or 0-d Tensor is fixed; a list/tuple, 1-D array
or 1-D Tensor gives step i the value lr[i] (steps past the end keep the last value); a
`LearningRateSchedule` Cell is called on the step counter. Numbers and vectors are kept in the
`learning_rate` Parameter, so neither changing the rate nor advancing the step recompiles.
`get_lr()` returns the current step's rate as graph code and advances `global_step`, as
MindSpore's does: a per-step vector is read by a one-hot dot product, since compiled code
cannot index a tensor by a tensor.

Parameter groups: `params` may be a list of dicts with 'params' (Parameters) and optional
'lr' and 'weight_decay', which override the optimizer's values for that group (a group's rate
is the Parameter `learning_rate_group_<i>`), plus at most one `{'order_params': [...]}` dict
giving the order of `self.parameters` (every grouped parameter, once). Each parameter belongs
to one group.

Weight decay follows MindSpore (`mindspore.nn.Optimizer`, note on weight_decay): without
groups, `weight_decay` applies to parameters whose names contain neither 'beta' nor 'gamma'
(normalisation scales and shifts); with groups, to every parameter of a group whose weight
decay (its own, else the optimizer's) is positive, whatever its name.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import dtype as mstype
from .. import ops
from .cell import Cell
from .learning_rate import LearningRateSchedule, lr_at_step, lr_source
from ..parameter_tuple import ParameterTuple
from ..tensor_type import Parameter, Tensor

GROUP_KEYS = ("params", "lr", "weight_decay")


def _state(value, name: str) -> Parameter:
    return Parameter(Tensor(value), name=name, requires_grad=False)


def _is_parameter(p) -> bool:
    return getattr(p, "__gs_parameter__", False)

# ----------------------------------------------------------------------- parameter groups


def _weight_decay(value, where: str = "weight_decay"):
    """A non-negative number as a float, or a Cell (MindSpore's dynamic weight decay: called
    with the step number)."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a float or an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{where} must be non-negative, got {value}")
    return float(value)


def _check_parameters(params, where: str) -> list:
    if isinstance(params, (dict, str)) or not isinstance(params, Iterable):
        raise TypeError(f"{where} must be a list of Parameters, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"optimizer got an empty parameter list ({where})")
    for p in params:
        if not _is_parameter(p):
            raise TypeError(f"{where}: optimizer parameters must be Parameters, got "
                            f"{type(p).__name__}")
    return params


def _parse_groups(parameters) -> tuple[list, list | None, bool]:
    """The groups as (index, dict) pairs, the 'order_params' list (or None) and whether the
    parameters were grouped. A flat list of Parameters is the one group (0, {'params': ...})."""
    if parameters is None or isinstance(parameters, (dict, str)) or not isinstance(
            parameters, Iterable):
        raise TypeError(f"optimizer parameters must be a list of Parameters or of dicts, got "
                        f"{type(parameters).__name__}")
    parameters = list(parameters)
    if not any(isinstance(p, dict) for p in parameters):
        return [(0, {"params": _check_parameters(parameters, "parameters")})], None, False
    if not all(isinstance(p, dict) for p in parameters):
        raise TypeError("optimizer parameters must be all Parameters or all dicts (groups)")
    groups, order = [], None
    for index, group in enumerate(parameters):
        if "order_params" in group:
            if len(group) > 1 or order is not None:
                raise ValueError("'order_params' must be alone in its dict, and given once")
            order = _check_parameters(group["order_params"], "'order_params'")
            continue
        unknown = [key for key in group if key not in GROUP_KEYS]
        if unknown:
            raise ValueError(f"parameter group {index}: unknown key {unknown[0]!r}; a group "
                             f"takes 'params', 'lr' and 'weight_decay' ('order_params' goes "
                             f"in a dict of its own)")
        if "params" not in group:
            raise ValueError(f"parameter group {index} has no 'params'")
        groups.append((index, dict(group, params=_check_parameters(
            group["params"], f"group {index} 'params'"))))
    if not groups:
        raise ValueError("optimizer got no parameter group besides 'order_params'")
    return groups, order, True


def _check_unique(records: list, grouped: bool) -> None:
    """Each parameter (by name, as MindSpore) is updated by one group only."""
    seen = {}
    for param, group_index, *_ in records:
        if param.name in seen:
            if grouped:
                raise ValueError(f"optimizer: parameter {param.name!r} is in group "
                                 f"{seen[param.name]} and in group {group_index}; each "
                                 f"parameter belongs to one group")
            raise ValueError(f"optimizer: parameter names must be unique, repeated: "
                             f"{param.name!r}")
        seen[param.name] = group_index


def _ordered(records: list, order: list) -> list:
    """`records` (one per parameter, parameter first) in the order of `order_params`."""
    by_name = {record[0].name: record for record in records}
    names = [p.name for p in order]
    if sorted(names) != sorted(by_name):
        missing = sorted(set(by_name) - set(names))
        unknown = sorted(set(names) - set(by_name))
        raise ValueError(f"'order_params' must list every grouped parameter once: missing "
                         f"{missing}, not in any group {unknown}, {len(names)} given for "
                         f"{len(by_name)} parameters")
    return [by_name[name] for name in names]

# ------------------------------------------------------------------------------ optimizer


class Optimizer(Cell):
    """Base class: parameters (or groups), learning rates, weight decay and the step
    counter. Subclasses read `get_lr()` once per update, then loop over `self.parameters`
    with `lr_per_parameter(lr)` and `applied_weight_decay`."""

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale=1.0):
        super().__init__(auto_prefix=False)
        weight_decay = _weight_decay(weight_decay)
        self.loss_scale = float(loss_scale)
        groups, order, self.is_group = _parse_groups(parameters)
        self.is_group_lr = any("lr" in group for _, group in groups)
        self.learning_rate = lr_source(learning_rate, "learning_rate")
        records = []            # (parameter, group index, lr source, weight decay)
        for index, group in groups:
            lr = self.learning_rate
            if "lr" in group:
                lr = lr_source(group["lr"], f"learning_rate_group_{index}")
                setattr(self, f"learning_rate_group_{index}", lr)   # saved with the optimizer
            decay = _weight_decay(group.get("weight_decay", weight_decay),
                                  f"group {index} 'weight_decay'")
            records += [(p, index, lr, decay) for p in group["params"]]
        _check_unique(records, self.is_group)
        if order is not None:
            records = _ordered(records, order)
        self._init_per_parameter(records, weight_decay)
        self.global_step = _state(np.array(0, np.int32), "global_step")

    def _init_per_parameter(self, records: list, weight_decay: float) -> None:
        """Per-parameter tuples in `self.parameters` order, with MindSpore's names."""
        self.parameters = ParameterTuple(record[0] for record in records)
        self.group_lr = tuple(record[2] for record in records)
        self.lr_sources = tuple({id(lr): lr for lr in self.group_lr}.values())
        self.lr_index = tuple([id(s) for s in self.lr_sources].index(id(lr))
                              for lr in self.group_lr)
        self.dynamic_lr = any(isinstance(s, LearningRateSchedule) or s.ndim == 1
                              for s in self.lr_sources)
        if self.is_group:
            self.weight_decay = tuple(record[3] for record in records)
            self.decay_flags = tuple(isinstance(decay, Cell) or decay > 0.0
                                     for decay in self.weight_decay)
        else:
            self.weight_decay = weight_decay
            self.decay_flags = tuple("beta" not in p.name and "gamma" not in p.name
                                     for p in self.parameters)
        decays = self.weight_decay if self.is_group else (weight_decay,) * len(records)
        self.static_weight_decay = tuple(decay if flag else 0.0
                                         for decay, flag in zip(decays, self.decay_flags))
        self.dynamic_weight_decay = any(isinstance(d, Cell) for d in self.static_weight_decay)

    @property
    def applied_weight_decay(self) -> tuple:
        """The weight decay of each parameter; a decay Cell is called on the number of the step
        being taken (`global_step - 1`, read after `get_lr` advanced it), as MindSpore's
        `get_weight_decay` calls it on `global_step`."""
        if not self.dynamic_weight_decay:
            return self.static_weight_decay
        values = {}
        for decay in self.static_weight_decay:
            if isinstance(decay, Cell) and id(decay) not in values:
                values[id(decay)] = decay(self.global_step - 1)
        return tuple(values[id(d)] if isinstance(d, Cell) else d
                     for d in self.static_weight_decay)

    def clone_state(self, prefix: str, init: float = 0.0) -> tuple:
        """One state Parameter per parameter, `prefix.<name>`, filled with `init`."""
        states = tuple(_state(np.full(p.shape, init, _host(p).dtype), f"{prefix}.{p.name}")
                       for p in self.parameters)
        for state in states:        # registered, so the state is saved with the optimizer
            self.insert_param_to_cell(state.name, state, check_name_contain_dot=False)
        return states

    def get_lr(self):
        """The current step's learning rate (graph code), then `global_step += 1`, as
        MindSpore's get_lr. With per-group rates, a tuple with one rate per parameter."""
        step = self.global_step
        if self.is_group_lr:
            rates = tuple(lr_at_step(source, step) for source in self.lr_sources)
            lr = tuple(rates[i] for i in self.lr_index)
        else:
            lr = lr_at_step(self.learning_rate, step)
        ops.assign(self.global_step, step + 1)
        return lr

    def lr_per_parameter(self, lr) -> tuple:
        """`get_lr()`'s result as one rate per parameter."""
        return lr if self.is_group_lr else (lr,) * len(self.parameters)

    def get_lr_parameter(self, param):
        """The stored rate (Parameter or schedule) updating `param`; a list for a list."""
        params = param if isinstance(param, list) else [param]
        ids = [id(p) for p in self.parameters]
        for p in params:
            if id(p) not in ids:
                raise ValueError(f"get_lr_parameter: {getattr(p, 'name', p)!r} is not "
                                 f"updated by this optimizer")
        rates = [self.group_lr[ids.index(id(p))] for p in params]
        return rates if isinstance(param, list) else rates[0]

    def decayed(self, param, grad, weight_decay):
        """grad / loss_scale + weight_decay * param (the L2 penalty; none when 0)."""
        if self.loss_scale != 1.0:
            grad = grad * (1.0 / self.loss_scale)
        if not isinstance(weight_decay, float) or weight_decay > 0.0:   # a tensor: dynamic
            return grad + weight_decay * param
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
        first = ops.cast(self.global_step == 0, mstype.float32)     # read before get_lr
        lrs = self.lr_per_parameter(self.get_lr())
        if self.momentum > 0:
            for param, grad, accum, lr, decay in zip(self.parameters, gradients, self.accum,
                                                     lrs, self.applied_weight_decay):
                grad = self.decayed(param, grad, decay)
                blended = accum * self.momentum + grad * (1.0 - self.dampening)
                velocity = first * grad + (1.0 - first) * blended
                ops.assign(accum, velocity)
                if self.nesterov:
                    ops.assign(param, param - lr * (grad + velocity * self.momentum))
                else:
                    ops.assign(param, param - lr * velocity)
        else:
            for param, grad, lr, decay in zip(self.parameters, gradients, lrs,
                                              self.applied_weight_decay):
                ops.assign(param, param - lr * self.decayed(param, grad, decay))


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
        lrs = self.lr_per_parameter(self.get_lr())
        for param, grad, moment, lr, decay in zip(self.parameters, gradients, self.moments,
                                                  lrs, self.applied_weight_decay):
            grad = self.decayed(param, grad, decay)
            velocity = moment * self.momentum + grad
            ops.assign(moment, velocity)
            if self.use_nesterov:
                ops.assign(param, param - lr * (grad + velocity * self.momentum))
            else:
                ops.assign(param, param - lr * velocity)


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
        root, denominator = ops.sqrt(1.0 - beta2_power), 1.0 - beta1_power
        lrs = tuple(lr * root / denominator for lr in self.lr_per_parameter(self.get_lr()))
        for param, grad, m, v, lr, decay in zip(self.parameters, gradients, self.moment1,
                                                self.moment2, lrs, self.applied_weight_decay):
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
        lrs = self.lr_per_parameter(self.get_lr())
        for param, grad, m, v, lr, decay in zip(self.parameters, gradients, self.moments1,
                                                self.moments2, lrs, self.applied_weight_decay):
            m_new = m * self.beta1 + grad * (1.0 - self.beta1)
            v_new = v * self.beta2 + grad * grad * (1.0 - self.beta2)
            ops.assign(m, m_new)
            ops.assign(v, v_new)
            update = m_new / (ops.sqrt(v_new) + self.eps)
            if not isinstance(decay, float) or decay > 0.0:       # a tensor: dynamic
                update = update + param * decay
            ops.assign(param, param - lr * update)


def _check_betas(beta1, beta2, eps) -> None:
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")


__all__ = ["Optimizer", "SGD", "Momentum", "Adam", "AdamWeightDecay"]
