"""`mindspore.ops` elementwise functions: arithmetic, comparisons, logic, select and cast.

Every function is graph code over IR values wrapped by `gs_op`: inside a graph the frontend
calls it with Values; eagerly it takes Tensors and returns Tensors, running each op's numpy
reference. The functions translate MindSpore's calling conventions into the IR's primitives
and composites, looked up by name (`frontend.operators.op`), so this module holds no
arithmetic.
"""
from __future__ import annotations

from ..frontend import operators as methods
from ..frontend.operators import op as _op
from ..eager import gs_op

# ------------------------------------------------------------------------- elementwise


def _binary(name: str, doc: str):
    def function(input, other):
        return _op(name)(input, other)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return gs_op(function)


def _unary(name: str, doc: str):
    def function(input):
        return _op(name)(input)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return gs_op(function)


add = _binary("add", "`input + other` with broadcasting and MindSpore's type promotion.")
sub = _binary("sub", "`input - other`.")
mul = _binary("mul", "`input * other`.")
maximum = _binary("maximum", "Elementwise maximum.")
minimum = _binary("minimum", "Elementwise minimum.")
equal = _binary("equal", "`input == other` (bool).")
not_equal = _binary("not_equal", "`input != other` (bool).")
less = _binary("less", "`input < other` (bool).")
less_equal = _binary("less_equal", "`input <= other` (bool).")
greater = _binary("greater", "`input > other` (bool).")
greater_equal = _binary("greater_equal", "`input >= other` (bool).")
logical_and = _binary("logical_and", "Elementwise and of bool tensors.")
logical_or = _binary("logical_or", "Elementwise or of bool tensors.")
neg = _unary("neg", "`-input`.")
exp = _unary("exp", "e**input (float32 for int inputs).")
log = _unary("log", "Natural logarithm.")
sqrt = _unary("sqrt", "Square root.")
tanh = _unary("tanh", "Hyperbolic tangent.")
sigmoid = _unary("sigmoid", "1 / (1 + exp(-input)).")
sin = _unary("sin", "Sine (float32 for int inputs).")
cos = _unary("cos", "Cosine (float32 for int inputs).")
relu = _unary("relu", "max(input, 0).")
abs = _unary("abs", "|input|.")  # noqa: A001  (MindSpore's name)
sign = _unary("sign", "-1, 0 or 1 by the sign of input.")
floor = _unary("floor", "Round down.")
logical_not = _unary("logical_not", "Elementwise not of a bool tensor.")
square = _unary("square", "input * input.")
reciprocal = _unary("reciprocal", "1 / input.")
stop_gradient = _unary("stop_gradient", "The value of input; no gradient flows through it.")
lt, le, gt, ge, ne = less, less_equal, greater, greater_equal, not_equal
negative, absolute = neg, abs


@gs_op
def div(input, other, *, rounding_mode=None):
    """`input / other` (true division: int/int is float32); `rounding_mode` 'floor' or
    'trunc' rounds the quotient and keeps an integer dtype for integer inputs."""
    if rounding_mode is None:
        return _op("div")(input, other)
    if rounding_mode == "floor":
        return methods.floor_divide(input, other)
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got "
                         f"{rounding_mode!r}")
    if not methods._result_dtype(input, other).is_float:
        # Exact on integers: the floor quotient, one up where it rounded away from zero.
        floored, rest = _op("floor_div")(input, other), _op("floor_mod")(input, other)
        away = _op("logical_and")(_op("not_equal")(rest, 0), _op("not_equal")(
            _op("less")(rest, 0), _op("less")(input, 0)))
        return _op("select")(away, _op("add")(floored, 1), floored)
    quotient = _op("div")(input, other)
    return _op("mul")(_op("sign")(quotient), _op("floor")(_op("abs")(quotient)))


divide, true_divide = div, _binary("div", "`input / other`.")
floor_divide = gs_op(methods.floor_divide)


@gs_op
def pow(input, exponent):  # noqa: A001  (MindSpore's name)
    """`input ** exponent`."""
    return _op("pow")(input, exponent)


@gs_op
def select(cond, input, other):
    """`input` where `cond` is True, else `other` (broadcast; numbers allowed)."""
    return _op("where")(cond, input, other)


@gs_op
def where(condition, input, other):
    """Same as `select`: MindSpore 2.x `ops.where(condition, input, other)`."""
    return _op("where")(condition, input, other)


@gs_op
def cast(input, dtype):
    """`input` converted to `dtype` (a mindspore dtype)."""
    return methods.astype(input, dtype)


@gs_op
def clamp(input, min=None, max=None):  # noqa: A002  (MindSpore's names)
    """Limit input to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    out = input if min is None else _op("maximum")(input, min)
    return out if max is None else _op("minimum")(out, max)


clip = clamp


@gs_op
def clip_by_value(x, clip_value_min=None, clip_value_max=None):
    """MindSpore's `clip_by_value`: clamp with its argument names."""
    return clamp.__wrapped__(x, clip_value_min, clip_value_max)


__all__ = ["add", "sub", "mul", "maximum", "minimum", "equal", "not_equal", "less", "less_equal",
           "greater", "greater_equal", "logical_and", "logical_or", "neg", "exp", "log", "sqrt",
           "tanh", "sigmoid", "sin", "cos", "relu", "abs", "sign", "floor", "logical_not",
           "square", "reciprocal", "stop_gradient", "lt", "le", "gt", "ge", "ne", "negative",
           "absolute", "div", "divide", "true_divide", "floor_divide", "pow", "select", "where",
           "cast", "clamp", "clip", "clip_by_value"]
