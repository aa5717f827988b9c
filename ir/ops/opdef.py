"""The op record and registry: `OpDef` (type rule, numpy reference, VJP, groups), `OPS`, and
the operand helpers every op module uses (constants, weak-typed promotion).

An `OpDef` is also the function that emits it: `ir.ops.exp(x)` appends `gs.exp` to the current
builder (or runs it eagerly). Python numbers given as operands become constants, with MindSpore's
weak-typing promotion applied by the op's `prepare` step. Lowerings live in `codegen/`, keyed by
the same name. The op modules (`elementwise.py`, `reduce.py`, ...) import this module only,
so they never depend on the package's `__init__`; the registry is complete once `ir.ops` is
imported.

VJP rules have the signature `vjp(g, out, *xs, **attrs) -> tuple[Value | None, ...]`: one entry
per operand, None for "no gradient". They are graph code in the same ops, so autodiff applies to
its own output. Rules may return a cotangent whose shape broadcasts to the operand's: the
autodiff pass sums it back to the operand's shape (`unbroadcast`) once, for all rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..core import Value, current_builder
from ..types import DType, TensorType, promote, promote_weak, scalar_dtype

# Group sets (compare tinygrad's GroupOp): what codegen and passes dispatch on.
ELEMENTWISE = "elementwise"   # pure per-element map over broadcast operands
UNARY = "unary"
BINARY = "binary"
COMPARE = "compare"
REDUCE = "reduce"
MOVEMENT = "movement"         # reshape/transpose/broadcast/slice/concat/pad
VIEW = "view"                 # an index map: element i reads the operand at f(i), no arithmetic
GATHER = "gather"             # an index map through loaded positions (gather, gather_elements)
LINALG = "linalg"
SOURCE = "source"             # constant, iota: no operands
NONDIFF = "nondiff"           # no gradient flows through (compare, argmax, cast to int)
EFFECT = "effect"             # observable when run (print): never folded, merged or dropped


@dataclass(frozen=True, slots=True)
class OpDef:
    """A primitive: `name` as printed (`gs.mul`), `infer(*types, **attrs) -> TensorType`
    (raises ValueError/TypeError with what was expected and found), `reference(*arrays,
    **attrs) -> ndarray`, `vjp` (None: not differentiable), its groups and a one-line doc with
    a printed example. Calling it emits the op: `prepare(*operands, **attrs)` turns Python
    numbers and mixed dtypes into Values first."""

    name: str
    infer: Callable[..., TensorType]
    reference: Callable[..., np.ndarray]
    vjp: Callable[..., tuple] | None = None
    groups: frozenset = field(default_factory=frozenset)
    doc: str = ""
    prepare: Callable[..., tuple] | None = None

    def __call__(self, *operands, **attrs) -> Value:
        if self.prepare is not None:
            operands = self.prepare(*operands)
        return current_builder().add_op(self.name, operands, attrs)

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]


OPS: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name} registered twice")
    OPS[opdef.name] = opdef
    return opdef


def in_group(name: str, group: str) -> bool:
    return group in OPS[name].groups


def group(name: str) -> frozenset[str]:
    """The registered op names in `group` (`group(ELEMENTWISE)`): what fusion and lowering
    dispatch on, so a new op joins them by its groups alone."""
    return frozenset(n for n, opdef in OPS.items() if name in opdef.groups)


def evaluated_in_place(name: str) -> bool:
    """True for ops a consumer's loop evaluates at its own index (elementwise ops, views,
    gathers, sources); every other op is a kernel root with its own loop structure."""
    return bool(OPS[name].groups & {ELEMENTWISE, VIEW, GATHER, SOURCE})


# ---------------------------------------------------------------- operands and constants

def constant(value, dtype: DType | None = None) -> Value:
    """A constant value (`gs.constant`); Python numbers default to their kind's dtype."""
    try:
        array = np.asarray(value, dtype=(dtype.np if dtype else None))
    except OverflowError:
        where = dtype.np.name if dtype else "its dtype"
        raise ValueError(f"the Python number {value!r} is out of range for {where} "
                         f"(a number takes the tensor's dtype, as in MindSpore and numpy; "
                         f"cast the tensor to a wider dtype first)") from None
    if dtype is None:
        if array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)          # Python float -> float32
        array = array.astype(DType.from_numpy(array.dtype).np)
    return current_builder().add_op("gs.constant", (), {"value": np.array(array)})


def as_value(x, like: DType | None = None) -> Value:
    """A Value for `x`: Values pass through; numbers become constants of dtype `like`
    (weakly typed) or of their default dtype; arrays become constants."""
    if isinstance(x, Value):
        return x
    if hasattr(x, "__gs_value__"):
        return x.__gs_value__()
    if isinstance(x, (bool, int, float, np.number, np.bool_)) and like is not None:
        return constant(x, promote_weak(like, x))
    return constant(x)


def is_number(x) -> bool:
    return isinstance(x, (bool, int, float, np.number, np.bool_))


def promote_operands(*xs, to_float: bool = False) -> tuple[Value, ...]:
    """Bring operands to one dtype (tensors promote strongly, numbers weakly), inserting casts.

    `to_float` makes integer/bool results float32 (true division, exp of an int tensor...).
    """
    tensors = [x for x in xs if not is_number(x)]
    tensors = [as_value(x) for x in tensors]
    if tensors:
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = promote(dtype, t.dtype)
        for x in xs:
            if is_number(x):
                dtype = promote_weak(dtype, x)
    else:
        dtype = scalar_dtype(xs[0])
        for x in xs[1:]:
            dtype = promote(dtype, scalar_dtype(x))
    if to_float and not dtype.is_float:
        dtype = DType.f32
    out = []
    for x in xs:
        v = constant(x, dtype) if is_number(x) else as_value(x)
        out.append(v if v.dtype is dtype else OPS["gs.cast"](v, dtype=dtype))
    return tuple(out)
