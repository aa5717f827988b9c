"""`mindspore.dataset.transforms`: TypeCast, OneHot and Compose on numpy column values."""
from __future__ import annotations

import numpy as np


def _numpy_dtype(data_type) -> np.dtype:
    """A graphspore/MindSpore dtype (`mstype.int32`) or a numpy dtype as a numpy dtype."""
    from .. import dtype as mstype
    try:
        return np.dtype(data_type)
    except TypeError:
        return mstype.to_ir(data_type).np


class TypeCast:
    """Cast a column value to `data_type`."""

    def __init__(self, data_type):
        self.dtype = _numpy_dtype(data_type)

    def __call__(self, value):
        return np.asarray(value).astype(self.dtype)


class OneHot:
    """Labels of shape (*) to one-hot rows of shape (*, num_classes), keeping the label
    dtype (MindSpore's: int64 labels give int64 rows)."""

    def __init__(self, num_classes, smoothing_rate=0.0):
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            raise TypeError(f"OneHot: num_classes must be an int, got {num_classes!r}")
        if not isinstance(smoothing_rate, (int, float)) or not 0.0 <= smoothing_rate <= 1.0:
            raise ValueError(f"OneHot: smoothing_rate must be in [0.0, 1.0], got "
                             f"{smoothing_rate!r}")
        if smoothing_rate:
            raise ValueError("OneHot: smoothing_rate > 0 is not supported by graphspore "
                             "(integer labels cannot hold smoothed values)")
        self.num_classes = num_classes

    def __call__(self, label):
        label = np.asarray(label)
        if label.dtype.kind not in "iu":
            raise TypeError(f"OneHot: labels must be integers, got {label.dtype}")
        if label.size and (label.min() < 0 or label.max() >= self.num_classes):
            raise ValueError(f"OneHot: labels must be in [0, {self.num_classes}), got "
                             f"values from {label.min()} to {label.max()}")
        return (label[..., None] == np.arange(self.num_classes)).astype(label.dtype)


class Compose:
    """Apply `transforms` in order, as one operation."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, *values):
        for t in self.transforms:
            values = t(*values)
            values = values if isinstance(values, tuple) else (values,)
        return values if len(values) > 1 else values[0]


__all__ = ["TypeCast", "OneHot", "Compose"]
