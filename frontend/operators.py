"""Tables from Python's operators, builtins and Tensor methods to IR ops.

The translator folds an operator whose operands are all Python values with Python itself
(`PYTHON_BINARY`, `PYTHON_COMPARE`); when an operand is an IR `Value` it emits the op in
`BINARY_OPS` / `COMPARE_OPS` / `UNARY_OPS`. `TENSOR_METHODS` maps a Tensor method name to a
function of `(x: Value, *args, **kwargs)` that emits ops; `graphspore.Tensor` reuses the same
table for its eager methods, and names in `TENSOR_PROPERTIES` are read as attributes
(`x.shape`, `x.T`). `BUILTINS` lists the Python builtins a graph function may call.

Ops are looked up by name (`op("mean")`), first in `ir.ops`, then in `ir.ops.composite`, so
this module does not depend on which of the two defines an op. The Tensor methods of the
registry's unary, binary and compare primitives and of the composites in
`composite.TENSOR_METHODS` are derived; the entries written here give MindSpore's signatures.
"""
from __future__ import annotations

import ast
import builtins
import operator

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import Value
from ..ir.ops import composite
from ..ir.ops.shape import axes_of as normalize_axes
from ..ir.types import DType, promote, promote_weak, scalar_dtype, to_dtype


def op(name: str):
    """The op function `name` from `ir.ops`, else from `ir.ops.composite`."""
    fn = getattr(ir_ops, name, None)
    if fn is None:
        fn = getattr(composite, name, None)
    if fn is None:
        raise LookupError(f"no op named '{name}' in ir.ops or ir.ops.composite")
    return fn


def is_number(x) -> bool:
    return isinstance(x, (bool, int, float, np.number, np.bool_))


def _emit(name: str):
    return lambda *xs: op(name)(*xs)


# ----------------------------------------------------------------------- operators

def _result_dtype(a, b) -> DType:
    """The dtype a binary op on `a` and `b` computes in (Values strong, numbers weak)."""
    values = [x for x in (a, b) if isinstance(x, Value)]
    dtype = values[0].dtype
    for v in values[1:]:
        dtype = promote(dtype, v.dtype)
    for x in (a, b):
        if not isinstance(x, Value) and is_number(x):
            dtype = promote_weak(dtype, x)
    return dtype


def floor_divide(a, b) -> Value:
    """`a // b` (`gs.floor_div`: exact on integers, numpy's results)."""
    return op("floor_div")(a, b)


def divide(input, other, *, rounding_mode=None) -> Value:
    """`input / other` (true division: int/int is float32); `rounding_mode` 'floor' or
    'trunc' rounds the quotient and keeps an integer dtype for integer inputs."""
    if rounding_mode is None:
        return op("div")(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got "
                         f"{rounding_mode!r}")
    if not _result_dtype(input, other).is_float:
        # Exact on integers: the floor quotient, one up where it rounded away from zero.
        floored, rest = op("floor_div")(input, other), op("floor_mod")(input, other)
        away = op("logical_and")(op("not_equal")(rest, 0), op("not_equal")(
            op("less")(rest, 0), op("less")(input, 0)))
        return op("select")(away, op("add")(floored, 1), floored)
    quotient = op("div")(input, other)
    return op("mul")(op("sign")(quotient), op("floor")(op("abs")(quotient)))


def modulo(a, b) -> Value:
    """`a % b` with Python's sign convention (the result has the sign of b)."""
    return op("floor_mod")(a, b)


def _logical(name: str, symbol: str):
    def emit(a, b):
        for x in (a, b):
            if isinstance(x, Value) and not x.dtype.is_bool:
                raise TypeError(f"'{symbol}' needs bool tensors, got {x.type}; bitwise "
                                f"operations on integer tensors are not supported")
        return op(name)(a, b)
    return emit


BINARY_OPS = {
    ast.Add: _emit("add"), ast.Sub: _emit("sub"), ast.Mult: _emit("mul"),
    ast.Div: _emit("div"), ast.Pow: _emit("pow"), ast.MatMult: _emit("matmul_nd"),
    ast.FloorDiv: floor_divide, ast.Mod: modulo,
    ast.BitAnd: _logical("logical_and", "&"), ast.BitOr: _logical("logical_or", "|"),
    ast.BitXor: _logical("not_equal", "^"),
}

PYTHON_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}

SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
    ast.FloorDiv: "//", ast.Mod: "%", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
    ast.LShift: "<<", ast.RShift: ">>", ast.USub: "-", ast.UAdd: "+", ast.Invert: "~",
    ast.Not: "not", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
    ast.GtE: ">=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


def _invert(x: Value) -> Value:
    if not x.dtype.is_bool:
        raise TypeError(f"'~' needs a bool tensor, got {x.type}; bitwise operations on "
                        f"integer tensors are not supported")
    return op("logical_not")(x)


UNARY_OPS = {ast.USub: _emit("neg"), ast.UAdd: lambda x: x, ast.Invert: _invert}
PYTHON_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
                ast.Not: operator.not_}

COMPARE_OPS = {ast.Eq: "equal", ast.NotEq: "not_equal", ast.Lt: "less", ast.LtE: "less_equal",
               ast.Gt: "greater", ast.GtE: "greater_equal"}
PYTHON_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_,
    ast.IsNot: operator.is_not, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


# Python syntax the translator rejects: node type -> (what it is called, what to do instead)
UNSUPPORTED = {
    "Try": ("try/except", "errors are raised while the graph is built; remove the try"),
    "TryStar": ("try/except*", "remove the try block"),
    "With": ("the with statement", "call the code inside directly"),
    "AsyncWith": ("async with", "compiled functions are synchronous"),
    "AsyncFor": ("async for", "compiled functions are synchronous"),
    "AsyncFunctionDef": ("async def", "compiled functions are synchronous"),
    "Await": ("await", "compiled functions are synchronous"),
    "Yield": ("yield", "return a tuple of results instead of generating them"),
    "YieldFrom": ("yield from", "return a tuple of results instead of generating them"),
    "Global": ("the global statement", "read module globals directly; keep state in "
               "Parameters"),
    "Nonlocal": ("the nonlocal statement", "return new values instead of rebinding"),
    "Delete": ("del", "rebind the name instead"),
    "ClassDef": ("a class definition inside a compiled function", "define it at module "
                 "level"),
    "Import": ("import inside a compiled function", "import at module level"),
    "ImportFrom": ("import inside a compiled function", "import at module level"),
    "Match": ("the match statement", "use if/elif on compile-time values"),
    "NamedExpr": ("the walrus operator ':='", "assign in a separate statement"),
    "Set": ("set displays", "use a tuple"),
    "SetComp": ("set comprehensions", "use a tuple"),
    "Starred": ("starred expressions here", "unpack a tuple of known length explicitly"),
}

# ------------------------------------------------------------------- Tensor methods

def tensor_sum(x: Value, axis=None, dtype=None, keepdims=False, initial=None) -> Value:
    if dtype is not None:
        x = astype(x, dtype)
    axes = normalize_axes(x, axis)
    out = op("reduce_sum")(x, axes=axes, keep_dims=bool(keepdims)) if axes else x
    return out if initial is None else op("add")(out, initial)


def tensor_mean(x: Value, axis=None, keep_dims=False, keepdims=None) -> Value:
    keep = bool(keep_dims if keepdims is None else keepdims)
    axes = normalize_axes(x, axis)
    return op("mean")(x, axes=axes, keep_dims=keep) if axes else x


def _reduction(name: str):
    def reduce(x: Value, axis=None, keepdims=False, *, initial=None, where=None,
               keep_dims=None) -> Value:
        if where is not None:
            raise TypeError(f"{name}: the 'where' argument is not supported")
        keep = bool(keepdims if keep_dims is None else keep_dims)
        axes = normalize_axes(x, axis)
        out = op(name)(x, axes=axes, keep_dims=keep) if axes else x
        if initial is None:
            return out
        return op("maximum" if name == "reduce_max" else "minimum")(out, initial)
    return reduce


def argmax(x: Value, axis=None, keepdims=False) -> Value:
    if axis is None:
        flat = op("argmax")(reshape(x, -1), axis=0, keep_dims=False)
        return reshape(flat, (1,) * x.ndim) if keepdims else flat
    (axis,) = normalize_axes(x, axis)
    return op("argmax")(x, axis=axis, keep_dims=bool(keepdims))


def argmin(x: Value, axis=None, keepdims=False) -> Value:
    """Index of the minimum (the first one on ties), int64: the argmax of -x (of ~x for
    integers: exact and order-reversing, signed or unsigned)."""
    if x.dtype.is_int:
        return argmax(composite.invert(x), axis, keepdims)
    x = x if x.dtype.is_float else op("cast")(x, dtype=DType.f32)
    return argmax(op("neg")(x), axis, keepdims)


def reshape(x: Value, *shape) -> Value:
    """`x.reshape(2, 3)` or `x.reshape((2, 3))`; one dimension may be -1."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one dimension may be -1, got {shape}")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or x.type.size % known:
            raise ValueError(f"cannot reshape {x.type} to {shape}")
        shape = tuple(x.type.size // known if d == -1 else d for d in shape)
    if shape == x.shape:
        return x
    return op("reshape")(x, shape=shape)


def transpose(x: Value, *axes) -> Value:
    """`x.transpose()` reverses the axes; `x.transpose(1, 0)` or `((1, 0))` permutes them."""
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = tuple(axes[0] or ())
    perm = tuple(int(a) % max(x.ndim, 1) for a in axes) or tuple(reversed(range(x.ndim)))
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: {axes} is not a permutation of the axes of {x.type}")
    return x if perm == tuple(range(x.ndim)) else op("transpose")(x, perm=perm)


def astype(x: Value, dtype) -> Value:
    dtype = to_dtype(dtype)
    return x if x.dtype is dtype else op("cast")(x, dtype=dtype)


def gather(x: Value, input_indices, axis, batch_dims=0) -> Value:
    """`x.gather(indices, axis)`: MindSpore's Tensor.gather (batch_dims=0 only)."""
    if batch_dims != 0:
        raise ValueError(f"gather: only batch_dims=0 is supported, got {batch_dims}")
    return op("gather")(x, input_indices, axis=int(axis))


def _unary(name: str):
    return lambda x: op(name)(x)


def _forward(name: str):
    return lambda x, *args, **kwargs: op(name)(x, *args, **kwargs)


# Every unary, binary and compare primitive of the registry is a method (x.exp(),
# x.logical_and(y)), derived from its groups, and so is every composite of
# composite.TENSOR_METHODS (x.std(), x.cumsum(1)); the entries below give MindSpore's
# signatures and spellings.
_DERIVED_METHODS = {
    **{opdef.short_name: _forward(opdef.short_name) for opdef in ir_ops.OPS.values()
       if opdef.groups & {ir_ops.UNARY, ir_ops.BINARY, ir_ops.COMPARE}},
    **{name: getattr(composite, name) for name in composite.TENSOR_METHODS}}


def _permute(x: Value, *dims) -> Value:
    """`x.permute(1, 0)` or `x.permute((1, 0))`."""
    return transpose(x, *dims)


def _unsqueeze(x: Value, dim=None, *, axis=None) -> Value:
    """`x.unsqueeze(dim)`: a unit axis at `dim` (also spelled `axis`)."""
    return op("expand_dims")(x, axis=dim if axis is None else axis)


def _truth_reduction(name: str):
    """`x.all()` / `x.any()` (MindSpore's `axis`, `keep_dims`): whether every / some element
    along the axes is non-zero, as a bool tensor; an empty reduction is True / False (numpy)."""
    def truth(x: Value, axis=None, keep_dims=False, *, keepdims=None) -> Value:
        keep = bool(keep_dims if keepdims is None else keepdims)
        flags = x if x.dtype.is_bool else op("not_equal")(x, 0)
        if name == "all":
            flags = op("logical_not")(flags)
        axes = normalize_axes(x, axis)
        count = op("cast")(flags, dtype=DType.i32)
        count = op("reduce_sum")(count, axes=axes, keep_dims=keep) if axes else count
        return op("equal" if name == "all" else "greater")(count, 0)
    return truth


TENSOR_METHODS = {
    **_DERIVED_METHODS, "all": _truth_reduction("all"), "any": _truth_reduction("any"), "div": divide, "clip": composite.clamp, "permute": _permute,
    "unsqueeze": _unsqueeze, "matmul": _forward("matmul_nd"),
    "argmin": argmin, "amax": _reduction("reduce_max"), "amin": _reduction("reduce_min"),
    "sum": tensor_sum, "mean": tensor_mean, "max": _reduction("reduce_max"),
    "min": _reduction("reduce_min"), "argmax": argmax, "reshape": reshape, "view": reshape,
    "transpose": transpose, "T": lambda x: transpose(x),
    "expand_dims": lambda x, axis: op("expand_dims")(x, axis=axis),
    "squeeze": lambda x, axis=None: op("squeeze")(x, axis=axis),
    "astype": astype, "exp": _unary("exp"), "log": _unary("log"), "sqrt": _unary("sqrt"),
    "abs": _unary("abs"), "tanh": _unary("tanh"), "sigmoid": _unary("sigmoid"),
    "sin": _unary("sin"), "cos": _unary("cos"),
    "shape": lambda x: x.shape, "dtype": lambda x: x.dtype, "ndim": lambda x: x.ndim,
    "size": lambda x: x.type.size,
    "gather": gather,
    "gather_elements": lambda x, dim, index: op("gather_elements")(x, index, dim=int(dim)),
}
TENSOR_PROPERTIES = frozenset({"shape", "dtype", "ndim", "size", "T"})


class TensorMethod:
    """`x.sum` before the call: the method's function with the tensor bound."""

    __slots__ = ("name", "function", "value")

    def __init__(self, name: str, value: Value):
        self.name, self.function, self.value = name, TENSOR_METHODS[name], value

    def __call__(self, *args, **kwargs):
        return self.function(self.value, *args, **kwargs)


# ------------------------------------------------------------------------- builtins

def _no_tensor(name: str, args) -> None:
    for a in args:
        if isinstance(a, Value):
            raise TypeError(f"{name}() cannot take a tensor while the graph is built: its "
                            f"value is known only when the graph runs")


def _on_constants(fn):
    def call(*args, **kwargs):
        _no_tensor(fn.__name__, list(args) + list(kwargs.values()))
        return fn(*args, **kwargs)
    return call


def _sequence(fn, materialize=tuple):
    """Builtins over iterables: fine on tuples of tensors, not on a tensor itself."""
    def call(*args):
        for a in args:
            if isinstance(a, Value):
                raise TypeError(f"{fn.__name__}() cannot iterate over a tensor ({a.type}); "
                                f"index it with constant indices instead, e.g. x[i] for i in "
                                f"range(x.shape[0])")
        return materialize(fn(*args))
    return call


def _len(x):
    if isinstance(x, Value):
        if x.ndim == 0:
            raise TypeError(f"len() of a rank-0 tensor ({x.type})")
        return x.shape[0]
    return len(x)


def _abs(x):
    return op("abs")(x) if isinstance(x, Value) else abs(x)


def _isinstance(x, classes):
    if isinstance(x, Value):
        classes = classes if isinstance(classes, tuple) else (classes,)
        return any(getattr(c, "__gs_tensor__", False) or c is Value for c in classes)
    return isinstance(x, classes)


def _getattr(x, name, *default):
    if isinstance(x, Value):
        if name in TENSOR_PROPERTIES:
            return TENSOR_METHODS[name](x)
        if name in TENSOR_METHODS:
            return TensorMethod(name, x)
        if default:
            return default[0]
        raise AttributeError(f"tensors have no attribute '{name}'")
    return getattr(x, name, *default)


def _hasattr(x, name):
    return name in TENSOR_METHODS if isinstance(x, Value) else hasattr(x, name)


def _sum(items, start=0):
    _no_tensor("sum", [items])
    return sum(items, start)


BUILTINS = {
    "len": _len, "abs": _abs, "isinstance": _isinstance, "getattr": _getattr,
    "hasattr": _hasattr, "sum": _sum, "range": _on_constants(range),
    "int": _on_constants(int), "float": _on_constants(float), "bool": _on_constants(bool),
    "str": _on_constants(str), "round": _on_constants(round), "min": _on_constants(min),
    "max": _on_constants(max), "divmod": _on_constants(divmod), "slice": _on_constants(slice),
    "tuple": _sequence(tuple), "list": _sequence(list, list), "enumerate": _sequence(enumerate),
    "zip": _sequence(zip), "reversed": _sequence(reversed), "sorted": _sequence(sorted, list),
    "dict": _on_constants(dict), "type": _on_constants(type),
}
BUILTIN_HINTS = {
    "min": "on tensors use ops.minimum(x, y) or x.min()",
    "max": "on tensors use ops.maximum(x, y) or x.max()",
    "float": "use x.astype(mindspore.float32) to change a tensor's dtype",
    "int": "use x.astype(mindspore.int32) to change a tensor's dtype",
    "bool": "a tensor's truth value is known only at run time; use ops.select(cond, x, y)",
}


def builtin_name(fn) -> str | None:
    """The name of `fn` if it is one of Python's builtins (function, type or exception)."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and getattr(builtins, name, None) is fn:
        return name
    return None
