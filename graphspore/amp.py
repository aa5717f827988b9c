"""`mindspore.amp`: loss scalers and `all_finite`; `auto_mixed_precision` at level O0.

The cast-inserting levels O1/O2/O3 (per-Cell float16 casts) are not implemented yet and are
refused with a clear error (float16 tensors themselves work); the loss scalers are plain arithmetic on Tensors and work as MindSpore documents."""
from __future__ import annotations

import numpy as np

from .tensor_type import Tensor


def _map(inputs, fn):
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_map(x, fn) for x in inputs)
    return fn(inputs)


def all_finite(inputs) -> Tensor:
    """A bool scalar Tensor: whether every element of every tensor in `inputs` is finite."""
    items = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    return Tensor(bool(all(np.isfinite(np.asarray(x.asnumpy() if hasattr(x, "asnumpy")
                                                         else x)).all() for x in items)))


class LossScaler:
    """The loss-scaler interface: `scale`, `unscale`, `adjust`."""

    def scale(self, inputs):
        raise NotImplementedError

    def unscale(self, inputs):
        raise NotImplementedError

    def adjust(self, grads_finite):
        raise NotImplementedError


class StaticLossScaler(LossScaler):
    """Multiply by a fixed `scale_value` (scale) and divide by it (unscale)."""

    def __init__(self, scale_value):
        if not isinstance(scale_value, (int, float)) or scale_value <= 0:
            raise ValueError(f"StaticLossScaler: scale_value must be a positive number, got "
                             f"{scale_value!r}")
        self.scale_value = Tensor(float(scale_value))

    def scale(self, inputs):
        return _map(inputs, lambda x: x * self.scale_value)

    def unscale(self, inputs):
        return _map(inputs, lambda x: x / self.scale_value)

    def adjust(self, grads_finite):
        return False


class DynamicLossScaler(StaticLossScaler):
    """MindSpore's dynamic scaler: after `scale_window` finite steps in a row the scale grows
    by `scale_factor`; a non-finite step divides it by `scale_factor` (not below 1) and
    restarts the count."""

    def __init__(self, scale_value, scale_factor, scale_window):
        super().__init__(scale_value)
        self.scale_factor, self.scale_window = float(scale_factor), int(scale_window)
        self.counter = 0

    def adjust(self, grads_finite):
        value = float(self.scale_value.asnumpy())
        if bool(np.asarray(grads_finite.asnumpy() if hasattr(grads_finite, "asnumpy")
                           else grads_finite)):
            self.counter += 1
            if self.counter >= self.scale_window:
                value *= self.scale_factor
                self.counter = 0
        else:
            value = max(value / self.scale_factor, 1.0)
            self.counter = 0
        self.scale_value = Tensor(np.float32(value))
        return True


def auto_mixed_precision(network, amp_level="O0", dtype=None):
    """Level O0 (float32 throughout) returns `network` unchanged; the float16-casting levels
    are not implemented yet."""
    if amp_level == "O0":
        return network
    if amp_level not in ("O1", "O2", "O3", "auto"):
        raise ValueError(f"auto_mixed_precision: amp_level must be O0, O1, O2, O3 or auto, "
                         f"got {amp_level!r}")
    raise ValueError(f"auto_mixed_precision: amp_level {amp_level!r} casts Cells to float16, "
                     f"which graphspore's amp does not implement yet; use amp_level='O0' and "
                     f"cast explicitly (Tensor.astype(mindspore.float16))")


__all__ = ["all_finite", "LossScaler", "StaticLossScaler", "DynamicLossScaler",
           "auto_mixed_precision"]
