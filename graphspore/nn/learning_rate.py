"""Learning-rate schedules, as MindSpore's `nn.dynamic_lr` and `nn.learning_rate_schedule`.

Two forms, both accepted by every optimizer as `learning_rate` (or as a group's `'lr'`):

* list functions (`cosine_decay_lr`, ...) run on the host once and return one float per step;
  the optimizer stores the list in its `learning_rate` Parameter and reads entry
  `min(global_step, len - 1)` each step.
* `LearningRateSchedule` Cells compute the rate from the step counter: `construct(global_step)`
  is ops code, inlined into the optimizer's graph, so a compiled train step stays one program
  while the step advances (the counter is a Parameter, the schedule's floats are constants).

`lr_source` turns what a user passed into what an optimizer stores (a Parameter or the Cell)
and `lr_at_step` reads it at a step.

In the list functions, epoch `e = floor(i / step_per_epoch)` plays the role of the step.
Formulas and argument checks follow MindSpore's code. Where MindSpore's documentation and
code disagree (NaturalExpDecayLR), the code is followed: it is what MindSpore computes, and it
matches the documented `natural_exp_decay_lr`. CosineDecayLR computes MindSpore's value in a
form that does not cancel near the end of the schedule (see its docstring).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import dtype as mstype
from .. import ops
from .cell import Cell
from ..tensor_type import Parameter, Tensor

# ------------------------------------------------------------------------ argument checks


def _check_int(owner: str, name: str, value) -> int:
    """A positive int (bool is not an int here), as MindSpore's `check_positive_int`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"For '{owner}', '{name}' must be an int, but got "
                        f"{type(value).__name__}.")
    if value <= 0:
        raise ValueError(f"For '{owner}', '{name}' must be greater than 0, but got {value}.")
    return value


def _check_float(owner: str, name: str, value, positive: bool = True) -> float:
    """A float (ints are refused, as MindSpore's `check_is_float`), > 0 or >= 0."""
    if not isinstance(value, float):
        raise TypeError(f"For '{owner}', '{name}' must be a float, but got "
                        f"{type(value).__name__}.")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "greater than or equal to 0"
        raise ValueError(f"For '{owner}', '{name}' must be {bound}, but got {value}.")
    return value


def _check_bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"For '{owner}', '{name}' must be a bool, but got "
                        f"{type(value).__name__}.")
    return value


def _check_decay(owner: str, learning_rate, decay_rate, steps: tuple, is_stair) -> None:
    """The shared checks of the exponential, natural-exponential and inverse decays."""
    for name, value in steps:
        _check_int(owner, name, value)
    _check_float(owner, "learning_rate", learning_rate)
    _check_float(owner, "decay_rate", decay_rate)
    _check_bool(owner, "is_stair", is_stair)


def _check_min_max(owner: str, min_lr, max_lr) -> None:
    _check_float(owner, "min_lr", min_lr, positive=False)
    _check_float(owner, "max_lr", max_lr)
    if min_lr >= max_lr:
        raise ValueError(f"For '{owner}', 'max_lr' must be greater than 'min_lr', but got "
                         f"max_lr={max_lr}, min_lr={min_lr}.")


def _epochs(total_step: int, step_per_epoch: int) -> list:
    """floor(i / step_per_epoch) for each step i."""
    return [i // step_per_epoch for i in range(total_step)]

# --------------------------------------------------------------------------- list functions


def piecewise_constant_lr(milestone, learning_rates):
    """learning_rates[t] for steps in [milestone[t-1], milestone[t]); milestone[-1] steps."""
    for name, value in (("milestone", milestone), ("learning_rates", learning_rates)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"For 'piecewise_constant_lr', '{name}' must be a list or tuple, "
                            f"but got {type(value).__name__}.")
    if len(milestone) != len(learning_rates):
        raise ValueError(f"For 'piecewise_constant_lr', 'milestone' and 'learning_rates' must "
                         f"have the same size, but got {len(milestone)} and "
                         f"{len(learning_rates)}.")
    lr, last = [], 0
    for i, (stop, rate) in enumerate(zip(milestone, learning_rates)):
        _check_int("piecewise_constant_lr", f"milestone[{i}]", stop)
        _check_float("piecewise_constant_lr", f"learning_rates[{i}]", rate, positive=False)
        if stop < last:
            raise ValueError(f"For 'piecewise_constant_lr', 'milestone' must be increasing, "
                             f"but got milestone[{i}]={stop} after {last}.")
        lr += [rate] * (stop - last)
        last = stop
    return lr


def exponential_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                         is_stair=False):
    """learning_rate * decay_rate ** (e / decay_epoch); the exponent floored if is_stair."""
    _check_decay("exponential_decay_lr", learning_rate, decay_rate,
                 (("total_step", total_step), ("step_per_epoch", step_per_epoch),
                  ("decay_epoch", decay_epoch)), is_stair)
    return [learning_rate * decay_rate ** (e // decay_epoch if is_stair else e / decay_epoch)
            for e in _epochs(total_step, step_per_epoch)]


def natural_exp_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                         is_stair=False):
    """learning_rate * exp(-decay_rate * e); with is_stair, e is first rounded down to a
    multiple of decay_epoch (MindSpore does not divide by decay_epoch here)."""
    _check_decay("natural_exp_decay_lr", learning_rate, decay_rate,
                 (("total_step", total_step), ("step_per_epoch", step_per_epoch),
                  ("decay_epoch", decay_epoch)), is_stair)
    return [learning_rate * math.e ** (-decay_rate * (e // decay_epoch * decay_epoch
                                                      if is_stair else e))
            for e in _epochs(total_step, step_per_epoch)]


def inverse_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch,
                     is_stair=False):
    """learning_rate / (1 + decay_rate * e / decay_epoch); the ratio floored if is_stair."""
    _check_decay("inverse_decay_lr", learning_rate, decay_rate,
                 (("total_step", total_step), ("step_per_epoch", step_per_epoch),
                  ("decay_epoch", decay_epoch)), is_stair)
    return [learning_rate / (1 + (decay_rate * (e // decay_epoch) if is_stair
                                  else decay_rate * e / decay_epoch))
            for e in _epochs(total_step, step_per_epoch)]


def cosine_decay_lr(min_lr, max_lr, total_step, step_per_epoch, decay_epoch):
    """min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(e, decay_epoch) / decay_epoch))."""
    _check_min_max("cosine_decay_lr", min_lr, max_lr)
    for name, value in (("total_step", total_step), ("step_per_epoch", step_per_epoch),
                        ("decay_epoch", decay_epoch)):
        _check_int("cosine_decay_lr", name, value)
    delta = 0.5 * (max_lr - min_lr)
    return [min_lr + delta * (1 + math.cos(math.pi * min(e, decay_epoch) / decay_epoch))
            for e in _epochs(total_step, step_per_epoch)]


def polynomial_decay_lr(learning_rate, end_learning_rate, total_step, step_per_epoch,
                        decay_epoch, power, update_decay_epoch=False):
    """(learning_rate - end) * (1 - t / d) ** power + end with t = min(e, decay_epoch) and
    d = decay_epoch; with update_decay_epoch, t = e and
    d = decay_epoch * max(ceil(e / decay_epoch), 1)."""
    owner = "polynomial_decay_lr"
    _check_float(owner, "learning_rate", learning_rate)
    _check_float(owner, "end_learning_rate", end_learning_rate, positive=False)
    _check_float(owner, "power", power)
    for name, value in (("total_step", total_step), ("step_per_epoch", step_per_epoch),
                        ("decay_epoch", decay_epoch)):
        _check_int(owner, name, value)
    _check_bool(owner, "update_decay_epoch", update_decay_epoch)
    lr = []
    for e in _epochs(total_step, step_per_epoch):
        if update_decay_epoch:
            decay, t = decay_epoch * max(math.ceil(e / decay_epoch), 1), e
        else:
            decay, t = decay_epoch, min(e, decay_epoch)
        lr.append((learning_rate - end_learning_rate) * (1 - t / decay) ** power
                  + end_learning_rate)
    return lr


def warmup_lr(learning_rate, total_step, step_per_epoch, warmup_epoch):
    """learning_rate * min(e, warmup_epoch) / warmup_epoch."""
    _check_float("warmup_lr", "learning_rate", learning_rate, positive=False)
    for name, value in (("warmup_epoch", warmup_epoch), ("total_step", total_step),
                        ("step_per_epoch", step_per_epoch)):
        _check_int("warmup_lr", name, value)
    return [learning_rate * min(e, warmup_epoch) / warmup_epoch
            for e in _epochs(total_step, step_per_epoch)]

# ---------------------------------------------------------------------------------- Cells


def _float_step(global_step):
    return ops.cast(global_step, mstype.float32)


class LearningRateSchedule(Cell):
    """Base class: `construct(global_step)` returns the learning rate of that step, a 0-d
    float32 tensor, written with ops so that it compiles into the optimizer's graph."""

    def construct(self, global_step):
        raise NotImplementedError(f"{type(self).__name__} must define "
                                  f"construct(global_step)")


class _DecayLR(LearningRateSchedule):
    """The shared arguments of the exponential, natural-exponential and inverse decays."""

    def __init__(self, learning_rate, decay_rate, decay_steps, is_stair=False):
        super().__init__()
        owner = type(self).__name__
        _check_decay(owner, learning_rate, decay_rate, (("decay_steps", decay_steps),),
                     is_stair)
        self.learning_rate, self.decay_rate = learning_rate, decay_rate
        self.decay_steps, self.is_stair = decay_steps, is_stair


class ExponentialDecayLR(_DecayLR):
    """learning_rate * decay_rate ** p, p = step / decay_steps (floored if is_stair)."""

    def construct(self, global_step):
        p = _float_step(global_step) / self.decay_steps
        if self.is_stair:
            p = ops.floor(p)
        return self.learning_rate * ops.pow(self.decay_rate, p)


class NaturalExpDecayLR(_DecayLR):
    """learning_rate * exp(-decay_rate * p) with p = step, or with is_stair p = step rounded
    down to a multiple of decay_steps. This is MindSpore's code; its documentation writes
    p = step / decay_steps."""

    def construct(self, global_step):
        p = _float_step(global_step)
        if self.is_stair:
            p = ops.floor(p / self.decay_steps) * self.decay_steps
        return self.learning_rate * ops.exp(-self.decay_rate * p)


class InverseDecayLR(_DecayLR):
    """learning_rate / (1 + decay_rate * p), p = step / decay_steps (floored if is_stair)."""

    def construct(self, global_step):
        p = _float_step(global_step) / self.decay_steps
        if self.is_stair:
            p = ops.floor(p)
        return self.learning_rate / (1.0 + self.decay_rate * p)


class CosineDecayLR(LearningRateSchedule):
    """min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(step, decay_steps) / decay_steps)).

    MindSpore evaluates that formula as written. Near the end 1 + cos(pi t) cancels: in
    float32, lr - min_lr is then off by 5e-5 (relative) at t = 0.99 and by 6% at t = 0.9997.
    The same value is computed here as 2 sin^2(pi (decay_steps - p) / (2 decay_steps)) with
    p = min(step, decay_steps): the remaining steps are an exact integer, so lr - min_lr keeps
    a relative error below 3e-7 up to the last step, where lr is exactly min_lr.
    """

    def __init__(self, min_lr, max_lr, decay_steps):
        super().__init__()
        _check_min_max("CosineDecayLR", min_lr, max_lr)
        _check_int("CosineDecayLR", "decay_steps", decay_steps)
        self.min_lr, self.max_lr, self.decay_steps = min_lr, max_lr, decay_steps
        self.delta = 0.5 * (max_lr - min_lr)

    def construct(self, global_step):
        # integer arithmetic: compiled code may reassociate (D - p) * c into D c - p c
        remaining = _float_step(self.decay_steps - ops.minimum(global_step, self.decay_steps))
        half = ops.sin(remaining * (math.pi / (2 * self.decay_steps)))
        return self.min_lr + self.delta * (2.0 * half * half)


class PolynomialDecayLR(LearningRateSchedule):
    """(learning_rate - end_learning_rate) * (1 - t / d) ** power + end_learning_rate with
    t = min(step, decay_steps), d = decay_steps; with update_decay_steps, t = step and
    d = decay_steps * max(ceil(step / decay_steps), 1)."""

    def __init__(self, learning_rate, end_learning_rate, decay_steps, power,
                 update_decay_steps=False):
        super().__init__()
        owner = "PolynomialDecayLR"
        _check_float(owner, "learning_rate", learning_rate)
        _check_float(owner, "end_learning_rate", end_learning_rate, positive=False)
        _check_int(owner, "decay_steps", decay_steps)
        _check_bool(owner, "update_decay_steps", update_decay_steps)
        _check_float(owner, "power", power)
        self.start_learning_rate, self.end_learning_rate = learning_rate, end_learning_rate
        self.diff_learning_rate = learning_rate - end_learning_rate
        self.decay_steps, self.power = decay_steps, power
        self.update_decay_steps = update_decay_steps

    def construct(self, global_step):
        step = _float_step(global_step)
        if self.update_decay_steps:
            periods = ops.maximum(-ops.floor(-step / self.decay_steps), 1.0)   # ceil, >= 1
            p = step / (periods * self.decay_steps)
        else:
            p = ops.minimum(step, float(self.decay_steps)) / self.decay_steps
        return self.diff_learning_rate * ops.pow(1.0 - p, self.power) + self.end_learning_rate


class WarmUpLR(LearningRateSchedule):
    """learning_rate * min(step, warmup_steps) / warmup_steps."""

    def __init__(self, learning_rate, warmup_steps):
        super().__init__()
        _check_float("WarmUpLR", "learning_rate", learning_rate, positive=False)
        _check_int("WarmUpLR", "warmup_steps", warmup_steps)
        self.learning_rate, self.warmup_steps = learning_rate, warmup_steps

    def construct(self, global_step):
        steps = _float_step(ops.minimum(global_step, self.warmup_steps))
        return self.learning_rate * steps / self.warmup_steps


# ------------------------------------------------------- the forms an optimizer accepts


def _lr_array(value) -> np.ndarray:
    """A learning rate given as numbers: float32, 0-d (fixed) or 1-D (one value per step)."""
    if isinstance(value, Tensor):
        array = value.asnumpy()
    elif isinstance(value, (int, float, np.number, np.ndarray)):
        array = np.asarray(value)
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict, Cell)):
        array = np.asarray(list(value))
    else:
        raise TypeError(f"learning_rate must be a float, an int, a Tensor, a list of floats, "
                        f"a 1-D array or a LearningRateSchedule, got {type(value).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"learning_rate values must be numbers, got {array.dtype} values")
    if array.ndim > 1:
        raise ValueError(f"learning_rate must be a scalar or 1-D (one value per step), got "
                         f"shape {array.shape}")
    if array.size == 0:
        raise ValueError("learning_rate: the list of per-step values is empty")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"learning_rate must be finite and non-negative, got "
                         f"{array.tolist()}")
    return array.astype(np.float32)


def lr_source(value, name: str):
    """An optimizer's stored learning rate: the schedule Cell itself, or a Parameter named
    `name` holding the fixed value (0-d) or the per-step values (1-D)."""
    if isinstance(value, LearningRateSchedule):
        return value
    return Parameter(Tensor(_lr_array(value)), name=name, requires_grad=False)


def lr_at_step(source, step):
    """The rate `source` gives at `step` (graph code). A per-step vector is read at
    min(step, n - 1) as sum(one_hot(index) * values)."""
    if isinstance(source, LearningRateSchedule):
        return source(step)
    if source.ndim == 0:
        return source
    count = source.shape[0]
    index = ops.minimum(step, count - 1)
    return ops.sum(ops.one_hot(index, count, 1.0, 0.0) * source)


__all__ = ["piecewise_constant_lr", "exponential_decay_lr", "natural_exp_decay_lr",
           "inverse_decay_lr", "cosine_decay_lr", "polynomial_decay_lr", "warmup_lr",
           "LearningRateSchedule", "ExponentialDecayLR", "NaturalExpDecayLR",
           "InverseDecayLR", "CosineDecayLR", "PolynomialDecayLR", "WarmUpLR"]
