"""Loss functions as Cells, after `mindspore.nn`: construct(logits, labels) -> loss.

Every loss is a composition of `graphspore.ops` calls (eager and compiled alike). Class
indices become one-hot rows (`ops.one_hot`), so picking `logp[i, y_i]` or `weight[y_i]` is a
multiply-and-sum that autodiff differentiates with existing rules. An index equal to
`ignore_index` (or any out-of-range index) gets an all-zero one-hot row and contributes nothing.

`reduction` is 'mean' (default unless noted), 'sum' or 'none'. Piecewise losses (SmoothL1,
Huber) pick their branch with `ops.where`, so each branch's gradient flows only where chosen.
"""
from __future__ import annotations

from .. import ops
from .cell import Cell

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got '{reduction}'")
    return reduction


class LossBase(Cell):
    """Holds `reduction` and applies it (`get_loss`), optionally with elementwise weights."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def get_loss(self, x, weights=1.0):
        x = x * weights
        if self.reduction == "mean":
            return ops.mean(x)
        if self.reduction == "sum":
            return ops.sum(x)
        return x


class MSELoss(LossBase):
    """(logits - labels)^2."""

    def construct(self, logits, labels):
        diff = logits - labels
        return self.get_loss(diff * diff)


class L1Loss(LossBase):
    """|logits - labels|."""

    def construct(self, logits, labels):
        return self.get_loss(ops.abs(logits - labels))


class MAELoss(L1Loss):
    """MindSpore's MAELoss: the mean absolute error |logits - labels| (L1Loss's formula)."""


class BCEWithLogitsLoss(LossBase):
    """Binary cross-entropy on logits x with targets y, in the overflow-free form
        l = (1 - y) * x + (1 + (pos_weight - 1) * y) * (log(1 + exp(-|x|)) + max(-x, 0)),
    times `weight`; `pos_weight` scales the positive term, broadcast along the last axis."""

    def __init__(self, reduction="mean", weight=None, pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def construct(self, logits, labels):
        softplus = ops.log(1.0 + ops.exp(-ops.abs(logits))) + ops.maximum(-logits, 0.0)
        if self.pos_weight is None:
            loss = (1.0 - labels) * logits + softplus
        else:
            loss = (1.0 - labels) * logits + (1.0 + (self.pos_weight - 1.0) * labels) * softplus
        if self.weight is not None:
            loss = loss * self.weight
        return self.get_loss(loss)


class SoftmaxCrossEntropyWithLogits(LossBase):
    """-sum(labels * log_softmax(logits), -1) per sample; with `sparse=True` labels are class
    indices. MindSpore's default reduction here is 'none'."""

    def __init__(self, sparse=False, reduction="none"):
        super().__init__(reduction)
        self.sparse = bool(sparse)

    def construct(self, logits, labels):
        if self.sparse:
            labels = ops.one_hot(labels, logits.shape[-1], 1.0, 0.0)
        loss = -ops.sum(ops.log_softmax(logits, -1) * labels, -1)
        return self.get_loss(loss)


class NLLLoss(LossBase):
    """-weight[y_i] * logp[i, y_i] for log-probabilities logp (N, C) and class indices y (N);
    'mean' divides by the sum of the picked weights."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def construct(self, logits, labels):
        hot = ops.one_hot(labels, logits.shape[-1], 1.0, 0.0)
        if self.weight is not None:
            hot = hot * self.weight
        loss = -ops.sum(logits * hot, -1)
        if self.reduction == "mean":
            return ops.sum(loss) / ops.sum(hot)
        return self.get_loss(loss)


class CrossEntropyLoss(LossBase):
    """Cross-entropy of logits (N, C) against class indices (N,) or class probabilities (N, C).

    Indices: l_i = -w[y_i] * logp[i, y_i]; 'mean' divides by sum_i w[y_i] (ignored indices
    excluded). Probabilities: l_i = -sum_c w_c * p_ic * logp_ic; 'mean' divides by N. With
    label smoothing e the target becomes (1 - e) * target + e / C (for indices, the smoothing
    term of sample i is weighted by w_c per class and normalised like the main term).
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = float(label_smoothing)

    def construct(self, logits, labels):
        classes = logits.shape[-1]
        logp = ops.log_softmax(logits, -1)
        if len(labels.shape) == len(logits.shape) - 1:
            return self._from_indices(logp, labels, classes)
        target = labels
        if self.label_smoothing > 0.0:
            target = target * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        if self.weight is not None:
            target = target * self.weight
        return self.get_loss(-ops.sum(logp * target, -1))

    def _from_indices(self, logp, labels, classes):
        hot = ops.one_hot(labels, classes, 1.0, 0.0)
        valid = ops.sum(hot, -1)                      # 0 for ignored / out-of-range indices
        weight_rows = hot if self.weight is None else hot * self.weight
        picked = ops.sum(weight_rows, -1)             # w[y_i]
        loss = -ops.sum(logp * weight_rows, -1)
        if self.label_smoothing > 0.0:
            per_class = logp if self.weight is None else logp * self.weight
            smooth = -ops.sum(per_class, -1) * valid * (1.0 / classes)
            loss = loss * (1.0 - self.label_smoothing) + smooth * self.label_smoothing
        if self.reduction == "mean":
            return ops.sum(loss) / ops.sum(picked)
        return self.get_loss(loss)


class SmoothL1Loss(LossBase):
    """0.5 d^2 / beta where d = |logits - labels| < beta, else d - 0.5 beta. MindSpore's
    default reduction here is 'none'."""

    def __init__(self, beta=1.0, reduction="none"):
        super().__init__(reduction)
        self.beta = _positive(beta, "SmoothL1Loss", "beta")

    def construct(self, logits, labels):
        diff = ops.abs(logits - labels)
        loss = ops.where(diff < self.beta, diff * diff * (0.5 / self.beta),
                         diff - 0.5 * self.beta)
        return self.get_loss(loss)


class HuberLoss(LossBase):
    """0.5 d^2 where d = |logits - labels| < delta, else delta * (d - 0.5 delta)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = _positive(delta, "HuberLoss", "delta")

    def construct(self, logits, labels):
        diff = ops.abs(logits - labels)
        loss = ops.where(diff < self.delta, diff * diff * 0.5,
                         (diff - 0.5 * self.delta) * self.delta)
        return self.get_loss(loss)


class BCELoss(LossBase):
    """Binary cross-entropy of probabilities x (e.g. sigmoid outputs) against targets y:
        l = -weight * (y log(x + eps) + (1 - y) log(1 - x + eps)),  eps = 1e-12,
    the epsilon of MindSpore's CPU kernel, which keeps x = 0 or 1 finite."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def construct(self, logits, labels):
        loss = -(labels * ops.log(logits + _BCE_EPS)
                 + (1.0 - labels) * ops.log(1.0 - logits + _BCE_EPS))
        if self.weight is not None:
            loss = loss * self.weight
        return self.get_loss(loss)


class KLDivLoss(LossBase):
    """target * (log(target) - x) for log-probabilities x, 0 where target <= 0 (MindSpore's
    CPU kernel turns the NaN of 0 * log 0 into 0). Reductions: 'mean' over all elements (the
    default), 'batchmean' (sum / x.shape[0], the true KL divergence), 'sum' or 'none'."""

    def __init__(self, reduction="mean"):
        if reduction not in _REDUCTIONS + ("batchmean",):
            raise ValueError(f"KLDivLoss: reduction must be one of {_REDUCTIONS + ('batchmean',)}"
                             f", got '{reduction}'")
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.reduction = reduction

    def construct(self, logits, labels):
        positive = labels > 0.0
        safe = ops.where(positive, labels, 1.0)
        loss = ops.where(positive, labels * (ops.log(safe) - logits), 0.0)
        if self.reduction == "batchmean":
            if len(logits.shape) == 0:
                raise ValueError("KLDivLoss: reduction 'batchmean' needs a batch axis, got a "
                                 "scalar input")
            return ops.sum(loss) * (1.0 / logits.shape[0])
        return self.get_loss(loss)


def _positive(value, owner: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a float, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value}")
    return float(value)


_BCE_EPS = 1e-12


__all__ = ["LossBase", "MSELoss", "L1Loss", "MAELoss", "BCEWithLogitsLoss",
           "SoftmaxCrossEntropyWithLogits", "NLLLoss", "CrossEntropyLoss", "SmoothL1Loss",
           "HuberLoss", "BCELoss", "KLDivLoss"]
