"""PyTorch-style optimizers as MindSpore's `experimental.optim` has them.

`param_groups` is a list of dicts, one per group: 'params' and the hyper-parameters (the
constructor's values unless the group gives its own). Each group's 'lr' is a Parameter
(`learning_rate_group_<i>`), so an `lr_scheduler` changes it without recompiling a step that
calls the optimizer; the other hyper-parameters are read when a step is compiled. An
optimizer is a Cell: `optimizer(grads)` (grads in `optimizer.parameters` order) updates the
parameters with `ops.assign`, eagerly or inside a compiled step, like `nn` optimizers.
"""
from __future__ import annotations

import numpy as np

from ... import ops
from ...nn.cell import Cell
from ...parameter_tuple import ParameterTuple
from ...tensor_type import Parameter, Tensor


def _state(value, name: str) -> Parameter:
    return Parameter(Tensor(value), name=name, requires_grad=False)


def _non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"invalid {name}: {value!r} (a non-negative number)")
    return float(value)


class Optimizer(Cell):
    """Base class: `params` is a list of Parameters or of group dicts; `defaults` holds the
    hyper-parameters a group does not set."""

    def __init__(self, params, defaults: dict):
        super().__init__(auto_prefix=False)
        if isinstance(params, Parameter) or isinstance(params, dict) and "params" not in params:
            raise TypeError("params must be a list of Parameters or of dicts with 'params'")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups = []
        for index, group in enumerate(groups):
            self.add_param_group(dict(group), index)
        self.parameters = ParameterTuple(p for g in self.param_groups for p in g["params"])
        self.step_t = _state(np.array(0.0, np.float32), "step_t")

    def add_param_group(self, group: dict, index: int | None = None) -> None:
        """Add a group: its Parameters plus any hyper-parameters overriding the defaults."""
        index = len(self.param_groups) if index is None else index
        params = group.get("params")
        params = [params] if isinstance(params, Parameter) else list(params or [])
        if not params or not all(isinstance(p, Parameter) for p in params):
            raise TypeError(f"parameter group {index}: 'params' must be Parameters")
        unknown = sorted(set(group) - {"params"} - set(self.defaults))
        if unknown:
            raise ValueError(f"parameter group {index}: unknown option(s) {unknown}")
        merged = {**self.defaults, **group, "params": params}
        lr = merged["lr"]
        if not isinstance(lr, Parameter):
            lr = _state(np.array(_non_negative("lr", float(lr)), np.float32),
                        f"learning_rate_group_{index}")
        merged["lr"] = lr
        merged.setdefault("initial_lr", float(lr.asnumpy()))
        setattr(self, f"learning_rate_group_{index}", lr)     # saved with the optimizer
        self.param_groups.append(merged)

    def group_records(self, gradients):
        """(parameter, gradient, group) triples in `self.parameters` order."""
        gradients = tuple(gradients)
        if len(gradients) != len(self.parameters):
            raise ValueError(f"{type(self).__name__} updates {len(self.parameters)} parameters "
                             f"but got {len(gradients)} gradients")
        groups = [g for g in self.param_groups for _ in g["params"]]
        return list(zip(self.parameters, gradients, groups))


class SGD(Optimizer):
    """`SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
    maximize=False)`, PyTorch's update:
        g = grad + weight_decay * p          (-grad when maximize)
        b = g on the first step, else momentum * b + (1 - dampening) * g
        p = p - lr * (g + momentum * b if nesterov else b)          (momentum > 0)"""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=_non_negative("momentum", momentum),
                        dampening=float(dampening),
                        weight_decay=_non_negative("weight_decay", weight_decay),
                        nesterov=bool(nesterov), maximize=bool(maximize))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        self.momentum_buffer = self.parameters.clone(prefix="momentum_buffer", init="zeros")

    def construct(self, gradients):
        first = ops.cast(self.step_t == 0, self.step_t.dtype)
        for (param, grad, group), buf in zip(self.group_records(gradients),
                                             self.momentum_buffer):
            grad = -grad if group["maximize"] else grad
            if group["weight_decay"] > 0:
                grad = grad + group["weight_decay"] * param
            momentum = group["momentum"]
            if momentum > 0:
                blended = buf * momentum + grad * (1.0 - group["dampening"])
                buf_new = first * grad + (1.0 - first) * blended
                ops.assign(buf, buf_new)
                grad = grad + momentum * buf_new if group["nesterov"] else buf_new
            ops.assign(param, param - group["lr"] * grad)
        ops.assign(self.step_t, self.step_t + 1)


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    *, maximize=False)`, PyTorch's update with t = step + 1:
        g = grad + weight_decay * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v_max or v) / sqrt(1 - b2^t) + eps)"""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        b1, b2 = betas
        for name, beta in (("beta1", b1), ("beta2", b2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid {name}: {beta} (in [0, 1))")
        defaults = dict(lr=lr, betas=(float(b1), float(b2)), eps=_non_negative("eps", eps),
                        weight_decay=_non_negative("weight_decay", weight_decay),
                        amsgrad=bool(amsgrad), maximize=bool(maximize))
        super().__init__(params, defaults)
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.max_exp_avg_sq = self.parameters.clone(prefix="max_exp_avg_sq", init="zeros")

    def construct(self, gradients):
        t = self.step_t + 1
        ops.assign(self.step_t, t)
        for (param, grad, group), m, v, v_max in zip(self.group_records(gradients),
                                                     self.exp_avg, self.exp_avg_sq,
                                                     self.max_exp_avg_sq):
            b1, b2 = group["betas"]
            grad = -grad if group["maximize"] else grad
            if group["weight_decay"] > 0:
                grad = grad + group["weight_decay"] * param
            m_new = m * b1 + grad * (1.0 - b1)
            v_new = v * b2 + grad * grad * (1.0 - b2)
            ops.assign(m, m_new)
            ops.assign(v, v_new)
            if group["amsgrad"]:
                v_new = ops.maximum(v_max, v_new)
                ops.assign(v_max, v_new)
            correction1 = 1.0 - ops.pow(b1, t)
            correction2 = 1.0 - ops.pow(b2, t)
            denom = ops.sqrt(v_new) / ops.sqrt(correction2) + group["eps"]
            ops.assign(param, param - group["lr"] / correction1 * m_new / denom)


__all__ = ["Optimizer", "SGD", "Adam"]
