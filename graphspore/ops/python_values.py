"""`mindspore.ops.functional`'s helpers over Python values and functions (not tensors):
`partial`, the tuple and list helpers (`tuple_div`, `tuple_len`, `make_tuple`, ...), the
scalar arithmetic and comparisons (`scalar_add`, `scalar_lt`, ...) and `shape_mul`.

They run as Python while a graph is built (their arguments are constants then), so the
same functions serve eager code and compiled functions; `partial` may also bind tensors.
"""
from __future__ import annotations

import functools
import math
import operator


__all__ = ["partial", "tuple_div", "tuple_len", "list_len", "tuple_reversed", "tuple_getitem",
           "tuple_setitem", "list_getitem", "list_setitem", "make_tuple", "make_list",
           "tuple_equal", "list_equal", "shape_mul", "scalar_add", "scalar_sub",
           "scalar_mul", "scalar_div", "scalar_floordiv", "scalar_mod", "scalar_pow",
           "scalar_log", "scalar_uadd", "scalar_usub", "scalar_gt", "scalar_ge", "scalar_lt",
           "scalar_le", "scalar_eq", "scalar_ne", "bool_and", "bool_or", "bool_not",
           "bool_eq", "string_eq", "string_concat", "in_dict", "not_in_dict"]


def partial(func, *args, **kwargs):
    """`ops.partial(func, *args)`: func with its first arguments bound (Tensors eagerly,
    graph values inside compiled functions)."""
    return functools.partial(func, *args, **kwargs)


partial.__gs_op__ = True         # the frontend calls it with the Values it binds



def tuple_div(x: tuple, y: tuple) -> tuple:
    """Elementwise integer division of two shapes; every x[i] must be divisible by y[i]."""
    if len(x) != len(y):
        raise ValueError(f"tuple_div: the tuples have lengths {len(x)} and {len(y)}")
    out = []
    for a, b in zip(x, y):
        if b == 0 or a % b:
            raise ValueError(f"tuple_div: {a} is not divisible by {b} (in {x} / {y})")
        out.append(a // b)
    return tuple(out)


def tuple_len(x) -> int:
    return len(x)


list_len = tuple_len


def tuple_reversed(x: tuple) -> tuple:
    return tuple(reversed(x))


def tuple_getitem(x, index):
    return x[index]


list_getitem = tuple_getitem


def tuple_setitem(x: tuple, index: int, value) -> tuple:
    """A new tuple with x[index] replaced (tuples are immutable)."""
    items = list(x)
    items[index] = value
    return tuple(items)


def list_setitem(x: list, index: int, value) -> list:
    items = list(x)
    items[index] = value
    return items


def make_tuple(*items) -> tuple:
    return tuple(items)


def make_list(*items) -> list:
    return list(items)


def tuple_equal(x, y) -> bool:
    return tuple(x) == tuple(y)


list_equal = tuple_equal


def shape_mul(shape: tuple) -> int:
    """The product of a shape's dimensions (1 for a scalar's empty shape)."""
    return math.prod(shape)


def scalar_log(x) -> float:
    return math.log(x)


def _binary(fn, name):
    def scalar(x, y):
        return fn(x, y)
    scalar.__name__ = scalar.__qualname__ = name
    return scalar


scalar_add, scalar_sub, scalar_mul = (_binary(operator.add, "scalar_add"),
                                      _binary(operator.sub, "scalar_sub"),
                                      _binary(operator.mul, "scalar_mul"))
scalar_div, scalar_floordiv = (_binary(operator.truediv, "scalar_div"),
                               _binary(operator.floordiv, "scalar_floordiv"))
scalar_mod, scalar_pow = _binary(operator.mod, "scalar_mod"), _binary(operator.pow,
                                                                       "scalar_pow")
scalar_gt, scalar_ge = _binary(operator.gt, "scalar_gt"), _binary(operator.ge, "scalar_ge")
scalar_lt, scalar_le = _binary(operator.lt, "scalar_lt"), _binary(operator.le, "scalar_le")
scalar_eq, scalar_ne = _binary(operator.eq, "scalar_eq"), _binary(operator.ne, "scalar_ne")
bool_and, bool_or = _binary(operator.and_, "bool_and"), _binary(operator.or_, "bool_or")
bool_eq, string_eq = _binary(operator.eq, "bool_eq"), _binary(operator.eq, "string_eq")
string_concat = _binary(operator.add, "string_concat")


def scalar_uadd(x):
    return +x


def scalar_usub(x):
    return -x


def bool_not(x) -> bool:
    return not x


def in_dict(key, dictionary) -> bool:
    return key in dictionary


def not_in_dict(key, dictionary) -> bool:
    return key not in dictionary
