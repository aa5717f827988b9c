"""`mindspore.ops` elementwise functions: arithmetic, comparisons, logic, select and cast.

Every function is graph code over IR values wrapped by `gs_op`: inside a graph the frontend
calls it with Values; eagerly it takes Tensors and returns Tensors, running each op's numpy
reference. The functions translate MindSpore's calling conventions into the IR's primitives
and composites, looked up by name (`frontend.operators.op`), so this module holds no
arithmetic.
"""
from __future__ import annotations

from . import names
from ..eager import gs_op
from ..frontend import operators as methods
from ..frontend.operators import op as _op
from ..ir import ops as ir_ops
from ..ir.ops import composite

# ------------------------------------------------------------------------- elementwise


def _primitive_function(opdef: ir_ops.OpDef):
    """`ops.<name>(input[, other])` for an elementwise primitive without attributes."""
    emit = _op(opdef.short_name)
    if ir_ops.UNARY in opdef.groups:
        def function(input):
            return emit(input)
    else:
        def function(input, other):
            return emit(input, other)
    function.__name__ = function.__qualname__ = names.function_name(opdef.short_name)
    function.__doc__ = f"Elementwise `{opdef.name}`, broadcast and promoted: {opdef.doc}"
    function.__module__ = __name__
    return gs_op(function)




# Written by hand: the primitives whose functions take more than operands (cast's dtype,
# div's rounding mode) or MindSpore's other signatures; every other unary, binary and
# compare primitive of the registry gets its function in PRIMITIVE_FUNCTIONS below.
_BY_HAND = ("cast", "div", "pow", "select")

PRIMITIVE_FUNCTIONS = {
    names.function_name(opdef.short_name): _primitive_function(opdef)
    for opdef in ir_ops.OPS.values()
    if opdef.groups & {ir_ops.UNARY, ir_ops.BINARY, ir_ops.COMPARE}
    and opdef.short_name not in _BY_HAND}
globals().update(PRIMITIVE_FUNCTIONS)

# Composites that are public ops functions under their own names.
COMPOSITES = {name: gs_op(getattr(composite, name)) for name in (
    "square", "reciprocal", "where", "clamp", "clip_by_value", "masked_fill", "truncate_mod",
    "invert", "identity")}
globals().update(COMPOSITES)
clip = COMPOSITES["clamp"]

lt, le, gt, ge, ne = (PRIMITIVE_FUNCTIONS[n] for n in ("less", "less_equal", "greater",
                                                      "greater_equal", "not_equal"))
negative, absolute = PRIMITIVE_FUNCTIONS["neg"], PRIMITIVE_FUNCTIONS["abs"]
inv = COMPOSITES["reciprocal"]                       # MindSpore's ops.inv: 1 / x
fmod = COMPOSITES["truncate_mod"]                    # the sign of x (ops.Mod's rule)
remainder = PRIMITIVE_FUNCTIONS["floor_mod"]         # the sign of y (Python's %)
rint = gs_op(lambda input: composite.round(input))  # noqa: A002  (half to even)
rint.__name__ = "rint"


div = divide = gs_op(methods.divide)


@gs_op
def true_divide(input, other):
    """`input / other` (true division: int/int is float32)."""
    return _op("div")(input, other)


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
def cast(input, dtype):
    """`input` converted to `dtype` (a mindspore dtype)."""
    return methods.astype(input, dtype)








__all__ = [*PRIMITIVE_FUNCTIONS, *COMPOSITES, "lt", "le", "gt", "ge", "ne", "negative",
           "absolute", "div", "divide", "true_divide", "floor_divide", "pow", "select", "cast",
           "clip", "inv", "fmod", "remainder", "rint"]
