"""The op registry: one `OpDef` per primitive, holding its type rule, numpy reference and VJP.

An `OpDef` (ir/ops/opdef.py) is also the function that emits it: `ir.ops.exp(x)` appends
`gs.exp` to the current builder (or runs it eagerly). Primitives are defined by concept in
`source.py`, `elementwise.py`, `reduce.py`, `shape.py`, `linalg.py`, `indexing.py`,
`effects.py` and `conv.py`, each
importing only `opdef.py` and the modules below it; composites (built from primitives) live in
`composite/`. Lowerings live in `codegen/`, keyed by the same name. This package only
re-exports: the registry `OPS` is complete once it is imported.

VJP rules have the signature `vjp(g, out, *xs, **attrs) -> tuple[Value | None, ...]`: one entry
per operand, None for "no gradient". They are graph code in the same ops, so autodiff applies to
its own output. Rules may return a cotangent whose shape broadcasts to the operand's: the
autodiff pass sums it back to the operand's shape (`unbroadcast`) once, for all rules.
"""
from __future__ import annotations

from ..core import Value
from .opdef import (OpDef, OPS, register, in_group, group, evaluated_in_place,  # noqa: F401
                    constant, as_value, is_number, promote_operands, ELEMENTWISE, UNARY, BINARY,
                    COMPARE, REDUCE, MOVEMENT, VIEW, GATHER, LINALG, SOURCE, NONDIFF,
                    EFFECT)
from .source import iota  # noqa: F401
from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .indexing import INDEXING  # noqa: F401  (group of gather, gather_elements, scatter_add)
from .effects import print_  # noqa: F401
from .collective import *  # noqa: F401,F403
from .hooks import grad_hook, host_hook  # noqa: F401
from .control import *  # noqa: F401,F403
from .control import REGION  # noqa: F401  (group of the ops holding regions)
from .reduce import reduce_sum
from .shape import reshape


def unbroadcast(g: Value, shape: tuple[int, ...]) -> Value:
    """Sum `g` down to `shape`, undoing numpy broadcasting (leading axes and size-1 axes)."""
    if g.shape == tuple(shape):
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    summed = reduce_sum(g, axes=axes, keep_dims=False) if axes else g  # noqa: F405
    return summed if summed.shape == tuple(shape) else reshape(summed, shape=tuple(shape))  # noqa
