"""MindSpore's spellings of graphspore's ops: the one table to edit when a name differs.

Everything else is derived from the op registry (`ir.ops.OPS` and the groups on each
`OpDef`): an elementwise primitive `gs.<name>` becomes the function `ops.<name>`, the
Primitive class `ops.<CamelName>` (`logical_and` -> `LogicalAnd`) and the Tensor method
`x.<name>()`. Add an entry here only where MindSpore spells one of those otherwise.
"""
from __future__ import annotations

# registry short name -> the `ops` function that is its public face, where the names differ
# (those primitives take attributes, so their functions are written by hand)
FUNCTIONS = {
    "constant": "full", "iota": "arange", "reduce_sum": "sum", "reduce_max": "amax",
    "reverse": "flip", "slice": "strided_slice", "scatter_add": "tensor_scatter_add",
    "print": "print_", "im2col": "unfold", "col2im": "fold", "max_pool2d_grad": "max_pool2d",
    "conv2d_input_grad": "conv2d", "conv2d_filter_grad": "conv2d",
}

# `ops` function -> its Primitive class, where CamelCase of the function's name is not
# MindSpore's (`relu` -> `ReLU`, not `Relu`)
PRIMITIVES = {"relu": "ReLU", "relu6": "ReLU6", "addn": "AddN", "fmod": "Mod"}

# Primitive classes that are another class under a second name
PRIMITIVE_ALIASES = {"RealDiv": "Div"}

# `ops` functions (not primitives of the registry) that also get a stateless Primitive class
# forwarding to them: `ops.Rsqrt()(x)` is `ops.rsqrt(x)`
STATELESS_PRIMITIVES = ("rsqrt", "relu6", "erf", "square", "reshape", "transpose",
                        "expand_dims", "tile", "zeros", "ones", "fill", "zeros_like",
                        "ones_like", "addn", "shape", "rank", "size", "inv", "invert",
                        "reciprocal", "softsign", "fmod", "rint", "round", "identity",
                        "truncate_mod")


def function_name(short_name: str) -> str:
    """The `ops` function of the registry op `short_name` (`reduce_sum` -> `sum`)."""
    return FUNCTIONS.get(short_name, short_name)


def primitive_name(function: str) -> str:
    """The Primitive class of the `ops` function `function` (`logical_and` -> `LogicalAnd`)."""
    return PRIMITIVES.get(function) or "".join(p.capitalize() for p in function.split("_"))
