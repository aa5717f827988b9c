"""`mindspore.experimental.optim.lr_scheduler`: schedulers that set the 'lr' Parameter of each
parameter group of an experimental optimizer on every `step()`."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class LRScheduler:
    """Base: `step()` advances `last_epoch` and writes `get_lr()` into the groups;
    `get_last_lr()` is the list of rates last written."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a "
                            f"mindspore.experimental.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        rates = self.get_lr()
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"].set_data(np.array(rate, np.float32))
        self._last_lr = [float(group["lr"].asnumpy()) for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (last_epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


__all__ = ["LRScheduler", "StepLR"]
