"""Simplify: constant folding, algebraic identities, common subexpressions, dead code.

Expects a verified graph. Guarantees a NEW verified graph (the input is not modified) that
computes the same outputs and updates, bit for bit on the reference interpreter, except for
the sign of a zero where noted (`x + 0.0` gives +0 for x = -0). Inputs, bindings, updates,
the graph's name and location are kept; every kept op keeps its location and its result's
name hint; a value that replaces another keeps (or takes) the replaced value's name, and ops
introduced by a rule take the location of the op they replace. Every replacement has exactly
the replaced value's `TensorType` (`rewrite.fit` inserts `gs.cast`/`gs.broadcast_to` if needed).

Algorithm (`simplify`): rounds of the shared rewrite driver (`rewrite.rewrite_graph`, with
CSE), repeated until a round changes nothing (at most `MAX_ROUNDS`). Per op, in order:
   a. fold it: if all operands are constants and the result has at most `FOLD_LIMIT`
      elements, run the op's numpy reference and emit a `gs.constant` instead;
   b. else try the op's rules in `RULES[op.name]` in order; the first that returns a value
      replaces the op's result;
   c. else, if an op with the same name, operands and attributes was already emitted
      (CSE), reuse its result; otherwise copy the op.
Then the driver drops ops whose results reach no output or update (DCE).
Region ops are simplified by `simplify_regions` (each region on its own, constant `if`s
inlined, unread results and operands dropped), through the driver's region hook.
"""
from __future__ import annotations

import numpy as np

from ..core import Builder, Graph, Op, Value
from ..ops import COLLECTIVE, EFFECT, OPS
from ..types import TensorType
from .rewrite import Rule, apply_rules, fit, rewrite_graph
from .simplify_regions import simplify_region_op, used_values

FOLD_LIMIT = 1024
MAX_ROUNDS = 10


# ------------------------------------------------------------------------------- helpers

def constant_of(value: Value) -> np.ndarray | None:
    """The data of `value` if a `gs.constant` defines it."""
    op = value.op
    return op.attrs["value"] if op is not None and op.name == "gs.constant" else None


def splat_of(value: Value):
    """The single element of a constant whose elements are all equal (also seen through
    broadcasts and reshapes: the cotangent of a sum is a broadcast 1), else None."""
    while value.op is not None and value.op.name in ("gs.broadcast_to", "gs.reshape"):
        value = value.op.operands[0]
    data = constant_of(value)
    if data is None or data.size == 0:
        return None
    first = data.reshape(-1)[0]
    return first.item() if np.all(data == first) else None


def is_splat(value: Value, number) -> bool:
    element = splat_of(value)
    return element is not None and element == number


def producer(value: Value, name: str) -> Op | None:
    """The op defining `value` if it is a `name` op."""
    return value.op if value.op is not None and value.op.name == name else None


def fill(number, out: TensorType, b: Builder) -> Value:
    """A value of type `out` with every element `number`: a scalar constant broadcast."""
    scalar = b.add_op("gs.constant", (), {"value": np.array(number, dtype=out.dtype.np)})
    return fit(scalar, out, b)


# ------------------------------------------------------------------------- the rule table
# Each rule: (operands, attrs, result type, builder) -> replacement Value or None.
# Rules may return a value of another shape or dtype; `fit` restores the result type.

def _right_identity(number):
    """x op c -> x where c is the op's right identity."""
    return lambda xs, attrs, out, b: xs[0] if is_splat(xs[1], number) else None


def _left_identity(number):
    """c op x -> x where c is the op's left identity."""
    return lambda xs, attrs, out, b: xs[1] if is_splat(xs[0], number) else None


def _times_zero(xs, attrs, out, b):
    # x * 0 = 0 = 0 * x, for integer and bool dtypes only: for floats NaN * 0 = NaN and
    # inf * 0 = NaN, so the product is not known without knowing x.
    if out.dtype.is_float:
        return None
    if is_splat(xs[0], 0) or is_splat(xs[1], 0):
        return fill(0, out, b)
    return None


def _involution(name):
    """f(f(x)) = x for an involution f (neg, logical_not)."""
    def rule(xs, attrs, out, b):
        inner = producer(xs[0], name)
        return inner.operands[0] if inner is not None else None
    return rule


def _pow(xs, attrs, out, b):
    x, exponent = xs[0], splat_of(xs[1])
    if exponent is None:
        return None
    if exponent == 1:                                  # x ** 1 = x
        return x
    if exponent == 0:                                  # x ** 0 = 1 (IEEE pow: also for NaN)
        return fill(1, out, b)
    if exponent == 2:                                  # x ** 2 = x * x
        return b.add_op("gs.mul", (x, x), {})
    if exponent == 0.5 and out.dtype.is_float:
        # x ** 0.5 = sqrt(x) for x >= 0 and NaN (both NaN for x < 0); differs only at x = -inf
        # (pow gives +inf, sqrt NaN) and x = -0 (pow +0, sqrt -0).
        return b.add_op("gs.sqrt", (x,), {})
    return None


def _same_operands(xs, attrs, out, b):
    # max(x, x) = x = min(x, x) (also for NaN: NaN propagates either way).
    return xs[0] if xs[0] is xs[1] else None


def _cast_same(xs, attrs, out, b):
    # cast(x: T, T) = x
    return xs[0] if attrs["dtype"] == xs[0].dtype else None


def _reshape(xs, attrs, out, b):
    x = xs[0]
    if tuple(attrs["shape"]) == x.shape:               # reshape(x, shape(x)) = x
        return x
    inner = producer(x, "gs.reshape")                  # reshape(reshape(y, s1), s2)
    if inner is not None:                              #   = reshape(y, s2) (row-major order)
        return b.add_op("gs.reshape", inner.operands, {"shape": tuple(attrs["shape"])})
    return None


def _transpose(xs, attrs, out, b):
    perm = tuple(attrs["perm"])
    if perm == tuple(range(len(perm))):                # transpose(x, identity) = x
        return xs[0]
    inner = producer(xs[0], "gs.transpose")
    if inner is not None:
        # transpose(transpose(y, p), q) = transpose(y, r) with r[j] = p[q[j]]:
        # axis j of the result is axis q[j] of the middle, which is axis p[q[j]] of y.
        p = tuple(inner.attrs["perm"])
        return b.add_op("gs.transpose", inner.operands, {"perm": tuple(p[j] for j in perm)})
    return None


def _reverse(xs, attrs, out, b):
    # reverse(reverse(y, p), q) = reverse(y, p xor q): an axis flipped twice is unchanged.
    inner = producer(xs[0], "gs.reverse")
    if inner is None:
        return None
    axes = tuple(sorted(set(inner.attrs["axes"]) ^ set(attrs["axes"])))
    return b.add_op("gs.reverse", inner.operands, {"axes": axes}) if axes else inner.operands[0]


def _broadcast_to(xs, attrs, out, b):
    x = xs[0]
    if tuple(attrs["shape"]) == x.shape:               # broadcast_to(x, shape(x)) = x
        return x
    inner = producer(x, "gs.broadcast_to")             # broadcasting composes:
    if inner is not None:                              #   bcast(bcast(y, s1), s2) = bcast(y, s2)
        return b.add_op("gs.broadcast_to", inner.operands, {"shape": tuple(attrs["shape"])})
    return None


def _select(xs, attrs, out, b):
    cond, x, y = xs
    if x is y:                                         # select(c, x, x) = x
        return x
    flag = splat_of(cond)
    if flag is None:
        return None
    return x if flag else y                            # select(true, x, y) = x; false: y


def _no_axes(xs, attrs, out, b):
    # A reduction over no axes is the identity: sum_{} x = x, max_{} x = x.
    return xs[0] if len(tuple(attrs["axes"])) == 0 else None


def _matmul_of_transpose(xs, attrs, out, b):
    # (A^T) B = matmul(A, B, transpose_a) and A (B^T) = matmul(A, B, transpose_b), where ^T
    # is transpose(perm=(1, 0)): the GEMM reads the operand transposed instead of a copy.
    a, c = xs
    ta, tb = bool(attrs["transpose_a"]), bool(attrs["transpose_b"])
    inner_a, inner_c = producer(a, "gs.transpose"), producer(c, "gs.transpose")
    swap_a = inner_a is not None and tuple(inner_a.attrs["perm"]) == (1, 0)
    swap_c = inner_c is not None and tuple(inner_c.attrs["perm"]) == (1, 0)
    if not (swap_a or swap_c):
        return None
    if swap_a:
        a, ta = inner_a.operands[0], not ta
    if swap_c:
        c, tb = inner_c.operands[0], not tb
    return b.add_op("gs.matmul", (a, c), {"transpose_a": ta, "transpose_b": tb})


def _identity(xs, attrs, out, b):
    # stop_gradient(x) = x: it only matters to autodiff, which runs before simplify.
    return xs[0]


RULES: dict[str, list[Rule]] = {
    "gs.add": [_right_identity(0), _left_identity(0)],      # x + 0 = x = 0 + x (-0 -> +0)
    "gs.sub": [_right_identity(0)],                         # x - 0 = x
    "gs.mul": [_right_identity(1), _left_identity(1),       # x * 1 = x = 1 * x
               _times_zero],
    "gs.div": [_right_identity(1)],                         # x / 1 = x
    "gs.pow": [_pow],
    "gs.neg": [_involution("gs.neg")],                      # -(-x) = x
    "gs.logical_not": [_involution("gs.logical_not")],      # not(not x) = x
    "gs.maximum": [_same_operands],
    "gs.minimum": [_same_operands],
    "gs.cast": [_cast_same],
    "gs.reshape": [_reshape],
    "gs.transpose": [_transpose],
    "gs.reverse": [_reverse],
    "gs.broadcast_to": [_broadcast_to],
    "gs.select": [_select],
    "gs.reduce_sum": [_no_axes],
    "gs.reduce_max": [_no_axes],
    "gs.stop_gradient": [_identity],
    "gs.grad_hook": [_identity],            # a hook mark only matters to autodiff
    "gs.matmul": [_matmul_of_transpose],
}


# ------------------------------------------------------------------------------ the pass

def simplify(graph: Graph) -> Graph:
    """Fold constants, apply `RULES`, merge common subexpressions and remove dead code.

    See the module docstring for what it expects, guarantees and the steps of one round.
    """
    current = graph
    for _ in range(MAX_ROUNDS):
        current, changed = _round(current)
        if not changed:
            break
    return current


def _round(graph: Graph) -> tuple[Graph, bool]:
    """One round: fold or rewrite each op, simplify region ops, CSE and DCE; also reports
    whether anything changed."""
    used = used_values(graph) if any(op.regions for op in graph.ops) else set()
    return rewrite_graph(graph, _fold_or_rewrite, cse=True,
                         region_op=lambda op, xs, b: simplify_region_op(op, xs, b, used,
                                                                        simplify))


def _fold_or_rewrite(op: Op, xs: tuple, b: Builder) -> Value | None:
    """Steps a and b: a folded constant, or the first rule's replacement, or None."""
    new = _fold(op, xs, b)
    return new if new is not None else apply_rules(RULES, op, xs, b)


def _fold(op: Op, xs: tuple, b: Builder) -> Value | None:
    """Step a: the op evaluated on constant operands, as a new constant."""
    out = op.result.type
    if (op.name == "gs.constant" or out.size > FOLD_LIMIT
            or OPS[op.name].groups & {EFFECT, COLLECTIVE}):
        return None
    arrays = [constant_of(x) for x in xs]
    if any(a is None for a in arrays):
        return None
    try:
        with np.errstate(all="ignore"):
            data = OPS[op.name].reference(*arrays, **op.attrs)
        data = np.asarray(data).astype(out.dtype.np)
    except Exception:       # an op the reference cannot evaluate here is left in place
        return None
    if data.shape != out.shape:
        return None
    return b.add_op("gs.constant", (), {"value": data})
