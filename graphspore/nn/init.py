"""Parameter initializers, after `mindspore.common.initializer`.

An `Initializer` fills a host array of a given shape; `initializer(init, shape, dtype)` accepts
an Initializer, its registered name (`'zeros'`, `'normal'`, `'he_uniform'`...), a number or a
Tensor, and returns a Tensor. Random initializers draw from graphspore's global generator, so
`graphspore.set_seed(s)` makes a network's initial weights reproducible. Initialization runs on
the host once per Parameter; it is never part of a graph.

Fans follow MindSpore: for a weight of shape (out, in, *kernel), fan_in = in * prod(kernel)
and fan_out = out * prod(kernel); a 1-D shape has fan_in = fan_out = its length.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def _generator() -> np.random.Generator:
    """graphspore's global random generator (seeded by `graphspore.set_seed`)."""
    from .. import random as gs_random
    return gs_random.numpy_generator()


def _np_dtype(dtype) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float32)
    ir_dtype = getattr(dtype, "ir_dtype", None) or dtype
    as_numpy = getattr(ir_dtype, "np", None)
    return np.dtype(as_numpy if as_numpy is not None else dtype)


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain of a nonlinearity (as `torch.nn.init.calculate_gain`)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity '{nonlinearity}'")


class Initializer:
    """Fills an array: `init(shape, dtype) -> ndarray`."""

    def _fill(self, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError(type(self).__name__)

    def __call__(self, shape, dtype=None) -> np.ndarray:
        shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)
        return np.asarray(self._fill(shape)).astype(_np_dtype(dtype))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Zero(Initializer):
    def _fill(self, shape):
        return np.zeros(shape)


class One(Initializer):
    def _fill(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value):
        self.value = value

    def _fill(self, shape):
        return np.full(shape, self.value)


class Normal(Initializer):
    """N(mean, sigma^2)."""

    def __init__(self, sigma: float = 0.01, mean: float = 0.0):
        self.sigma, self.mean = sigma, mean

    def _fill(self, shape):
        return _generator().normal(self.mean, self.sigma, shape)


class Uniform(Initializer):
    """U(-scale, scale)."""

    def __init__(self, scale: float = 0.07):
        self.scale = scale

    def _fill(self, shape):
        return _generator().uniform(-self.scale, self.scale, shape)


class TruncatedNormal(Initializer):
    """N(mean, sigma^2) restricted to [a, b] (redrawing samples outside)."""

    def __init__(self, sigma: float = 0.01, mean: float = 0.0, a: float = -2.0, b: float = 2.0):
        self.sigma, self.mean, self.a, self.b = sigma, mean, a, b

    def _fill(self, shape):
        rng = _generator()
        out = rng.normal(self.mean, self.sigma, shape)
        bad = (out < self.a) | (out > self.b)
        while bad.any():
            out[bad] = rng.normal(self.mean, self.sigma, int(bad.sum()))
            bad = (out < self.a) | (out > self.b)
        return out


def _he_std(shape, negative_slope, mode, nonlinearity) -> float:
    fan_in, fan_out = compute_fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got '{mode}'")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, negative_slope) / math.sqrt(fan)


class HeUniform(Initializer):
    """Kaiming uniform: U(-b, b), b = gain * sqrt(3 / fan). `HeUniform(math.sqrt(5))` (the
    Dense and Conv2d default) gives b = 1 / sqrt(fan_in)."""

    def __init__(self, negative_slope=0, mode="fan_in", nonlinearity="leaky_relu"):
        self.negative_slope, self.mode, self.nonlinearity = negative_slope, mode, nonlinearity

    def _fill(self, shape):
        bound = math.sqrt(3.0) * _he_std(shape, self.negative_slope, self.mode,
                                         self.nonlinearity)
        return _generator().uniform(-bound, bound, shape)


class HeNormal(Initializer):
    """Kaiming normal: N(0, std^2), std = gain / sqrt(fan)."""

    def __init__(self, negative_slope=0, mode="fan_in", nonlinearity="leaky_relu"):
        self.negative_slope, self.mode, self.nonlinearity = negative_slope, mode, nonlinearity

    def _fill(self, shape):
        std = _he_std(shape, self.negative_slope, self.mode, self.nonlinearity)
        return _generator().normal(0.0, std, shape)


class XavierUniform(Initializer):
    """Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, gain: float = 1):
        self.gain = gain

    def _fill(self, shape):
        fan_in, fan_out = compute_fans(shape)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return _generator().uniform(-bound, bound, shape)


class XavierNormal(Initializer):
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""

    def __init__(self, gain: float = 1):
        self.gain = gain

    def _fill(self, shape):
        fan_in, fan_out = compute_fans(shape)
        return _generator().normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), shape)


_NAMES = {
    "zeros": Zero, "zero": Zero, "ones": One, "one": One,
    "normal": Normal, "uniform": Uniform, "truncatednormal": TruncatedNormal,
    "heuniform": HeUniform, "he_uniform": HeUniform,
    "henormal": HeNormal, "he_normal": HeNormal,
    "xavieruniform": XavierUniform, "xavier_uniform": XavierUniform,
    "xaviernormal": XavierNormal, "xavier_normal": XavierNormal,
}


def as_initializer(init) -> Initializer | None:
    """The Initializer for a name, an Initializer or a number; None for a Tensor/array."""
    if isinstance(init, Initializer):
        return init
    if isinstance(init, str):
        cls = _NAMES.get(init.lower())
        if cls is None:
            raise ValueError(f"unknown initializer '{init}'; known: {sorted(_NAMES)}")
        return cls()
    if isinstance(init, numbers.Number) and not isinstance(init, bool):
        return Constant(init)
    return None


def initial_array(init, shape, dtype=None) -> np.ndarray:
    """A host array of `shape` filled by `init` (Initializer, name, number, Tensor or array)."""
    shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)
    rule = as_initializer(init)
    if rule is not None:
        return rule(shape, dtype)
    array = np.asarray(init.asnumpy() if hasattr(init, "asnumpy") else init)
    if array.shape != shape:
        raise ValueError(f"initializer: the given tensor has shape {array.shape}, expected "
                         f"{shape}")
    return array.astype(_np_dtype(dtype)) if dtype is not None else array.copy()


def initializer(init, shape=None, dtype=None):
    """MindSpore's `initializer(init, shape, dtype)`: a Tensor of `shape` filled by `init`."""
    from ..tensor_type import Tensor
    if shape is None:
        if not hasattr(init, "shape"):
            raise ValueError("initializer: shape is required unless init is a Tensor")
        shape = tuple(init.shape)
    return Tensor(initial_array(init, shape, dtype))


__all__ = ["Initializer", "Zero", "One", "Constant", "Normal", "Uniform", "TruncatedNormal",
           "HeUniform", "HeNormal", "XavierUniform", "XavierNormal", "initializer",
           "compute_fans", "calculate_gain"]
