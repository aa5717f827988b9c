"""Batch normalization after `mindspore.nn`: BatchNorm1d, BatchNorm2d, BatchNorm3d.

    y = (x - mean) / sqrt(var + eps) * gamma + beta,   statistics per channel (axis 1)

With batch statistics (training, or use_batch_statistics=True) mean and var are the batch's,
over every axis but the channel one, and the moving statistics are updated in place:
    moving_mean     = momentum * moving_mean     + (1 - momentum) * mean
    moving_variance = momentum * moving_variance + (1 - momentum) * var
(MindSpore's convention: momentum=0.9 keeps 90% of the old value, the opposite of PyTorch's).
Otherwise (evaluation, or use_batch_statistics=False) the moving statistics normalise.

`var` is the biased batch variance (divided by the element count, not count - 1) both for
normalising and for the moving update. MindSpore's documentation calls it "the observed
variance of the batch" without saying more; its CPU kernel (oneDNN) uses the biased one, which
is followed here. (Its GPU/Ascend kernels apply count / (count - 1) to the moving update.)

The per-channel factors are computed on (C,)-shaped values first, y = x * scale + shift with
scale = gamma / sqrt(var + eps): one multiply-add per element, and the square root is not
fused into a preceding Dense layer's matmul epilogue (codegen cannot emit a vector `llvm.sqrt`
there yet: `matmul(x, w) / sqrt(v)` under jit fails with llvmlite's "VectorType has no
intrinsic_name").

The updates are `ops.assign` calls, as optimizers update their state: eagerly they write the
Parameters' buffers, and in a compiled train step they become graph updates, so forward,
backward, optimizer and moving statistics are one native call. The moving statistics are
Parameters with requires_grad=False: saved in checkpoints, never trained. The train/eval
choice is a Python `if` on `self.training`, folded when the graph is built (a compiled
program is specialised to the flag, see `Cell.set_train`).
"""
from __future__ import annotations

from .. import ops
from .cell import Cell
from .init import initial_array
from ..tensor_type import Parameter, Tensor


def _check_int(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    return value


class _BatchNorm(Cell):
    """Shared by BatchNorm1d/2d/3d; subclasses set `ranks` (accepted input ranks)."""

    ranks: tuple[int, ...] = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones",
                 beta_init="zeros", moving_mean_init="zeros", moving_var_init="ones",
                 use_batch_statistics=None, data_format="NCHW", dtype=None):
        super().__init__()
        owner = type(self).__name__
        num_features = _check_int(num_features, "num_features", owner)
        if num_features < 1:
            raise ValueError(f"{owner}: num_features must be at least 1, got {num_features}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (
                0.0 <= momentum <= 1.0):
            raise ValueError(f"{owner}: momentum must be a number in [0, 1], got {momentum!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"{owner}: eps must be a positive float, got {eps!r}")
        if use_batch_statistics is not None and not isinstance(use_batch_statistics, bool):
            raise ValueError(f"{owner}: use_batch_statistics must be a bool or None, got "
                             f"{use_batch_statistics!r}")
        if data_format != "NCHW":
            raise ValueError(f"{owner}: only data_format='NCHW' is supported (channels on "
                             f"axis 1), got {data_format!r}")
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.affine, self.use_batch_statistics = bool(affine), use_batch_statistics
        shape = (num_features,)
        self.gamma = Parameter(Tensor(initial_array(gamma_init, shape, dtype)), name="gamma",
                               requires_grad=self.affine)
        self.beta = Parameter(Tensor(initial_array(beta_init, shape, dtype)), name="beta",
                              requires_grad=self.affine)
        self.moving_mean = Parameter(Tensor(initial_array(moving_mean_init, shape, dtype)),
                                     name="moving_mean", requires_grad=False)
        self.moving_variance = Parameter(Tensor(initial_array(moving_var_init, shape, dtype)),
                                         name="moving_variance", requires_grad=False)

    def _check_input(self, x):
        rank = len(x.shape)
        if rank not in self.ranks:
            expected = " or ".join(str(r) for r in self.ranks)
            raise ValueError(f"{type(self).__name__} expects a {expected}-D input (N, C, ...), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[1]} channels on "
                             f"axis 1, expected num_features={self.num_features}")

    def construct(self, x):
        self._check_input(x)
        rank = len(x.shape)
        axes = (0,) + tuple(range(2, rank))
        channels = (1, self.num_features) + (1,) * (rank - 2)
        use_batch = self.training if self.use_batch_statistics is None else (
            self.use_batch_statistics)
        if use_batch:
            mean = ops.mean(x, axes, True)
            centered = x - mean
            var = ops.mean(centered * centered, axes, True)
            scale = ops.reshape(self.gamma, channels) / ops.sqrt(var + self.eps)
            keep = self.momentum
            ops.assign(self.moving_mean, self.moving_mean * keep
                       + ops.reshape(mean, (self.num_features,)) * (1.0 - keep))
            ops.assign(self.moving_variance, self.moving_variance * keep
                       + ops.reshape(var, (self.num_features,)) * (1.0 - keep))
            return centered * scale + ops.reshape(self.beta, channels)
        scale = self.gamma / ops.sqrt(self.moving_variance + self.eps)
        shift = self.beta - self.moving_mean * scale
        return x * ops.reshape(scale, channels) + ops.reshape(shift, channels)

    def extend_repr(self) -> str:
        return (f"num_features={self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs, statistics per feature C."""

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of NCHW inputs, statistics per channel over (N, H, W)."""

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization of NCDHW inputs, statistics per channel over (N, D, H, W)."""

    ranks = (5,)

    def __init__(self, num_features, eps=1e-5, momentum=0.9, affine=True, gamma_init="ones",
                 beta_init="zeros", moving_mean_init="zeros", moving_var_init="ones",
                 use_batch_statistics=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, gamma_init, beta_init,
                         moving_mean_init, moving_var_init, use_batch_statistics, "NCHW", dtype)


__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
