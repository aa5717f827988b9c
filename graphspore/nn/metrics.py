"""Evaluation metrics after `mindspore.train` / `mindspore.nn`: Accuracy, Loss, MAE, MSE.

A metric accumulates on the host, in numpy, over the batches of an evaluation: `clear()`
resets it, `update(*inputs)` adds one batch (Tensors or arrays), `eval()` returns the value.
Calling the metric does all three on one batch. Like MindSpore's, they run outside compiled
graphs: the network's outputs are computed natively, then read back once per batch.

`Model(..., metrics={'accuracy', 'loss'})` builds these by name (`get_metric_fn`); a dict
`{'name': metric}` passes instances.
"""
from __future__ import annotations

import numpy as np


def _as_array(value) -> np.ndarray:
    if hasattr(value, "asnumpy"):
        return np.asarray(value.asnumpy())
    if isinstance(value, (list, tuple, np.ndarray, int, float, np.number)):
        return np.asarray(value)
    raise TypeError(f"metric input must be a Tensor, a numpy array or a list, got "
                    f"{type(value).__name__}")


def _no_samples(name: str) -> RuntimeError:
    return RuntimeError(f"'{name}' cannot be calculated because no samples were seen: call "
                        f"update() with non-empty inputs before eval()")


class Metric:
    """Base class: subclasses define clear, update and eval."""

    def __init__(self):
        self._indexes = None

    def clear(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define clear()")

    def update(self, *inputs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def eval(self):
        raise NotImplementedError(f"{type(self).__name__} must define eval()")

    @property
    def indexes(self):
        """Which outputs of the evaluation network `update` receives (None: all of them)."""
        return self._indexes

    def set_indexes(self, indexes) -> "Metric":
        if not isinstance(indexes, (list, tuple)) or not all(isinstance(i, int)
                                                             for i in indexes):
            raise TypeError(f"set_indexes: expected a list of ints, got {indexes!r}")
        self._indexes = list(indexes)
        return self

    def __call__(self, *inputs):
        self.clear()
        self.update(*inputs)
        return self.eval()

    @staticmethod
    def _convert_data(value) -> np.ndarray:
        return _as_array(value)

    @staticmethod
    def _check_inputs(inputs, count: int, name: str) -> None:
        if len(inputs) != count:
            raise ValueError(f"{name}.update needs {count} inputs, got {len(inputs)}")


class Accuracy(Metric):
    """Fraction of correct predictions. 'classification': y_pred (N, C) scores against class
    indices y (N,) or one-hot y (N, C), compared at argmax. 'multilabel': y_pred and y are
    0/1 arrays (N, C, ...) and a sample counts when all its labels match."""

    def __init__(self, eval_type="classification"):
        super().__init__()
        if eval_type not in ("classification", "multilabel"):
            raise ValueError(f"Accuracy: eval_type must be 'classification' or 'multilabel', "
                             f"got {eval_type!r}")
        self._type = eval_type
        self.clear()

    def clear(self) -> None:
        self._correct_num, self._total_num, self._class_num = 0, 0, 0

    def update(self, *inputs) -> None:
        self._check_inputs(inputs, 2, "Accuracy")
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if y_pred.ndim < 2:
            raise ValueError(f"Accuracy: y_pred must have shape (N, C, ...), got {y_pred.shape}")
        classes = y_pred.shape[1]
        if self._class_num == 0:
            self._class_num = classes
        elif classes != self._class_num:
            raise ValueError(f"Accuracy: y_pred has {classes} classes, earlier batches had "
                             f"{self._class_num}")
        if self._type == "classification":
            if y.ndim == y_pred.ndim:          # one-hot labels
                y = y.argmax(axis=1)
            if y.shape != y_pred.shape[:1] + y_pred.shape[2:]:
                raise ValueError(f"Accuracy: labels of shape {y.shape} do not fit predictions "
                                 f"of shape {y_pred.shape}")
            result = (y_pred.argmax(axis=1) == y).reshape(-1)
        else:
            if y.shape != y_pred.shape:
                raise ValueError(f"Accuracy: multilabel y {y.shape} and y_pred {y_pred.shape} "
                                 f"must have the same shape")
            for what, array in (("y_pred", y_pred), ("y", y)):
                if not np.isin(array, (0, 1)).all():
                    raise ValueError(f"Accuracy: multilabel {what} must contain only 0 and 1")
            flat_pred = np.moveaxis(y_pred, 1, -1).reshape(-1, classes)
            flat_true = np.moveaxis(y, 1, -1).reshape(-1, classes)
            result = (flat_pred == flat_true).all(axis=1)
        self._correct_num += int(result.sum())
        self._total_num += int(result.shape[0])

    def eval(self) -> float:
        if self._total_num == 0:
            raise _no_samples("Accuracy")
        return self._correct_num / self._total_num


class Loss(Metric):
    """Mean of the per-batch losses; a batch's loss (a scalar or a 1-D vector) counts by its
    mean."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self) -> None:
        self._sum_loss, self._total_num = 0.0, 0

    def update(self, *inputs) -> None:
        self._check_inputs(inputs, 1, "Loss")
        loss = self._convert_data(inputs[0])
        if loss.ndim == 0:
            loss = loss.reshape(1)
        if loss.ndim != 1:
            raise ValueError(f"Loss: the loss must be a scalar or a 1-D vector, got shape "
                             f"{loss.shape}")
        self._sum_loss += float(loss.mean(-1))
        self._total_num += 1

    def eval(self) -> float:
        if self._total_num == 0:
            raise _no_samples("Loss")
        return self._sum_loss / self._total_num


class _ErrorMetric(Metric):
    """Sum of an elementwise error of y_pred against y (reshaped to y_pred), divided by the
    number of samples (first axis) seen."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self) -> None:
        self._error_sum, self._samples_num = 0.0, 0

    def update(self, *inputs) -> None:
        self._check_inputs(inputs, 2, type(self).__name__)
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        error = self._error(y.reshape(y_pred.shape).astype(np.float64) - y_pred)
        self._error_sum += float(error.sum())
        self._samples_num += int(y.shape[0]) if y.ndim else 1

    def eval(self) -> float:
        if self._samples_num == 0:
            raise _no_samples(type(self).__name__)
        return self._error_sum / self._samples_num


class MAE(_ErrorMetric):
    """Mean absolute error: sum |y - y_pred| / number of samples."""

    @staticmethod
    def _error(diff):
        return np.abs(diff)


class MSE(_ErrorMetric):
    """Mean squared error: sum (y - y_pred)^2 / number of samples."""

    @staticmethod
    def _error(diff):
        return diff * diff


_BY_NAME = {"accuracy": Accuracy, "acc": Accuracy, "loss": Loss, "mae": MAE, "mse": MSE}


def names() -> list[str]:
    """The metric names `get_metric_fn` and `Model(metrics=...)` accept."""
    return sorted(_BY_NAME)


def get_metric_fn(name: str, *args, **kwargs) -> Metric:
    """A new metric object for a name ('accuracy', 'loss', 'mae', 'mse')."""
    key = str(name).lower()
    if key not in _BY_NAME:
        raise KeyError(f"unknown metric '{name}'; supported: {names()}")
    return _BY_NAME[key](*args, **kwargs)


__all__ = ["Metric", "Accuracy", "Loss", "MAE", "MSE", "names", "get_metric_fn"]
