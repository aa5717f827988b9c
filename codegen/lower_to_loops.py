"""Lowering: fused graph + memory plan -> loop program (`codegen.loops`).

One loop-nest helper per kernel class (`KERNEL_LOWERINGS`): elementwise (also copies), reduce,
argmax, matmul, pad and concat. A matmul with an epilogue is a `Matmul` statement carrying the
store of its elementwise ops, written in terms of `acc` (the product's element) and `i0, i1`.
Inside a kernel, a value that is not stored is *expanded* at the index where it is needed:
elementwise ops become scalar `Call`s on their operands' expansions, broadcasting gives
stride-0 axes, and sources, views and gathers are index maps (`INDEX_MAP_LOWERINGS`). Scalar constants are inlined; array constants become `const` buffers (LLVM
globals). Loops of extent 1 are dropped (their index is the constant 0).
"""
from __future__ import annotations

import importlib
import json
import re

import numpy as np

from ..ir.core import Op, Value
from .fuse import FusedGraph, FusedKernel
from .memory_plan import MemoryPlan
from ..ir.types import DType
from . import loops as L
from .simplify_index import simplify_body
from .lower_matmul import (lower_matmul, lower_matmul_accumulate, lower_matmul_epilogue,
                           uses_tiles)
from .scalar_ops import SCALAR_OPS, LoweringError


def _later(module: str, name: str):
    """`codegen.<module>.<name>`, imported at its first call: the convolution, window and
    indexing lowerings are a sixth of codegen's source, most programs use none of them, and
    without a bytecode cache every module costs its compile in every process."""
    def call(*args):
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(*args)
    call.__name__ = name
    return call


def _later_in(module: str, table: str, op: str):
    """The lowering of `op` in `codegen.<module>.<table>`, imported at its first call."""
    def call(*args):
        return getattr(importlib.import_module(f"{__package__}.{module}"), table)[op](*args)
    call.__name__ = f"lower_{op}"
    return call


# The ops of lower_conv.CONV_LOWERINGS and lower_window.WINDOW_LOWERINGS (kept equal by
# tests/test_lazy_imports.py), dispatched here without importing those modules.
CONV_OPS = ("gs.conv2d", "gs.conv2d_input_grad", "gs.conv2d_filter_grad")
WINDOW_OPS = ("gs.im2col", "gs.col2im", "gs.max_pool2d", "gs.max_pool2d_grad")
backward_pairs = _later("lower_conv", "backward_pairs")
lower_conv_backward = _later("lower_conv", "lower_conv_backward")
lower_conv_epilogue = _later("lower_conv", "lower_conv_epilogue")


def _has_conv(fused: FusedGraph) -> bool:
    """Whether a kernel of `fused` computes a convolution (else no gradient pairs)."""
    for k in fused.kernels:
        ops = list(k.ops) + [getattr(v, "op", None) for v in (k.value, k.product)]
        if any(op is not None and op.name in CONV_OPS for op in ops):
            return True
    return False


def _axes(axes, rank: int) -> tuple[int, ...]:
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % rank for a in axes)) if rank else ()


_nest = L.nest


def _identity(op: str, dtype: DType):
    if op == "add":
        return False if dtype.is_bool else 0.0 if dtype.is_float else 0
    if dtype.is_float:
        return float("-inf")
    if dtype.is_bool or dtype.is_unsigned:
        return False if dtype.is_bool else 0
    return -(2 ** (dtype.bits - 1))


class Lowerer:
    """Lowers one fused graph. A region's lowerer (`lower_regions`) has a `parent`, whose
    buffer and kernel lists and names it shares: `io` gives the buffers of its inputs and
    outputs, `ws_base` the offset of its scratch block, `prefix` its kernels' name prefix."""

    def __init__(self, fused: FusedGraph, plan: MemoryPlan, entry: str,
                 parent: "Lowerer | None" = None, io: dict | None = None, ws_base: int = 0,
                 prefix: str = ""):
        graph = fused.graph
        self.fused, self.plan, self.entry = fused, plan, entry
        self.ws_base, self.prefix = ws_base, prefix
        self.names: set[str] = parent.names if parent else set()
        self.homes: dict[tuple[str, int], L.Buffer] = dict(io or {})
        self.buffers: list[L.Buffer] = parent.buffers if parent else []
        self.kernels: list[L.Kernel] = parent.kernels if parent else []
        n_in = len(graph.inputs)
        if parent is None:
            for i, v in enumerate(graph.inputs):
                self._add(("in", i), L.Buffer(self._name(v, "arg"), v.shape, v.dtype, "in", i))
            for j, v in enumerate(graph.outputs):
                self._add(("out", j), L.Buffer(self._name(v, "out"), v.shape, v.dtype, "out",
                                               n_in + j))
        self.stored: dict[Value, L.Buffer] = {}
        for v, home in fused.homes.items():
            if home[0] == "ws":
                self.stored[v] = L.Buffer(self._name(v, "t"), v.shape, v.dtype, "ws",
                                          offset=ws_base + plan.offsets[v])
                self.buffers.append(self.stored[v])
            else:
                self.stored[v] = self.homes[home]
        self.constants: dict[Value, L.Buffer] = {}
        self.in_registers: dict[Value, L.Expr] = {}   # epilogue: product -> Var("acc")

    def _add(self, key, buffer: L.Buffer) -> None:
        self.homes[key] = buffer
        self.buffers.append(buffer)

    def _name(self, v: Value, default: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", v.name or "") or default
        name, n = base, 0
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    # ----------------------------------------------------------------------- expansion

    def value_at(self, v: Value, index: list) -> L.Expr:
        """The expression for element `index` of `v`: a load if stored, else its op's body."""
        if v in self.in_registers:
            return self.in_registers[v]
        if v in self.stored:
            return L.Load(self.stored[v], L.linear(index, v.shape))
        return self.op_at(v.op, index)

    def buffer_of(self, v: Value) -> L.Buffer:
        if v in self.stored:
            return self.stored[v]
        if v.op is not None and v.op.name == "gs.constant":
            return self.constant_buffer(v)
        raise LoweringError(f"value {v} of {v.op} was not materialised")

    def constant_buffer(self, v: Value) -> L.Buffer:
        if v not in self.constants:
            data = np.ascontiguousarray(v.op.attrs["value"], dtype=v.dtype.np)
            self.constants[v] = L.Buffer(self._name(v, "const"), v.shape, v.dtype, "const",
                                         data=data)
            self.buffers.append(self.constants[v])
        return self.constants[v]

    def op_at(self, op: Op, index: list) -> L.Expr:
        name = op.name.split(".", 1)[1]
        out = op.result
        index_map = INDEX_MAP_LOWERINGS.get(name)
        if index_map is not None:
            return index_map(self, op, index)
        if name not in SCALAR_OPS:
            raise LoweringError(f"no lowering for {op.name}")
        args = tuple(self.value_at(x, _broadcast_index(index, x.shape)) for x in op.operands)
        attrs = {"dtype": op.attrs["dtype"]} if name == "cast" else {}
        return L.Call(name, args, out.dtype, attrs)

    # ----------------------------------------------------------------------- kernels

    def kernel(self, k: FusedKernel) -> L.Kernel:
        if k.kind == "copy":
            target = self.homes[k.target]
            source = self.buffer_of(k.value)
            body = _nest(k.value.shape, "i", lambda ix: [L.Store(
                target, L.linear(ix, target.shape), L.Load(source, L.linear(ix, target.shape)))])
        elif k.product is not None:
            out = self.buffer_of(k.value)
            if k.product.op.name in CONV_OPS:
                body = lower_conv_epilogue(self, k, out)
            elif uses_tiles(k.product):
                body = lower_matmul_epilogue(self, k, out)
            else:
                body = lower_matmul_accumulate(self, k, out)
        else:
            op = k.value.op
            lower = KERNEL_LOWERINGS.get(op.name, lower_elementwise)
            body = lower(self, op, self.buffer_of(k.value))
        body = simplify_body(body)
        return L.Kernel(self.prefix + k.name, _buffers_in(body), body)

    def steps(self) -> list:
        """The entry steps of this graph's kernels; every kernel is also added to
        `self.kernels`. Region kernels become `If`/`While`/`For` steps (`lower_regions`)."""
        from .lower_regions import lower_region
        steps = []
        pairs = backward_pairs(self.fused) if _has_conv(self.fused) else {}   # conv
        # gradients sharing one pass over dy
        for index, k in enumerate(self.fused.kernels):
            if k.regions:
                steps.extend(lower_region(self, k))
            elif index in pairs:
                if pairs[index] is None:
                    continue
                body = lower_conv_backward(self, *pairs[index])
                kernel = L.Kernel(self.prefix + k.name, _buffers_in(body), body)
                self.kernels.append(kernel)
                steps.append(kernel)
            else:
                kernel = self.kernel(k)
                self.kernels.append(kernel)
                steps.append(kernel)
        return steps

    def program(self) -> L.Program:
        steps = self.steps()
        return L.Program(self.entry, self.buffers, self.kernels, self.plan.arena_size, steps)


def _broadcast_index(index: list, shape: tuple[int, ...]) -> list:
    """numpy broadcasting: trailing axes align; size-1 axes read element 0."""
    lead = len(index) - len(shape)
    return [L.index_const(0) if d == 1 else index[lead + a] for a, d in enumerate(shape)]


def _reshape_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    x = op.operands[0]
    flat = L.linear(index, op.result.shape)
    if x in lw.stored:
        return L.Load(lw.stored[x], flat)
    return lw.value_at(x, L.delinearize(flat, x.shape))


def _transpose_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    perm = op.attrs["perm"]
    source = [None] * len(perm)
    for axis, p in enumerate(perm):
        source[p] = index[axis]
    return lw.value_at(op.operands[0], source)


def _slice_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    x = op.operands[0]
    begin, strides = op.attrs["begin"], op.attrs.get("strides") or (1,) * x.ndim
    source = [L.iadd(L.index_const(b % d if d else 0), L.imul(i, L.index_const(s)))
              for i, b, s, d in zip(index, begin, strides, x.shape)]
    return lw.value_at(x, source)


def _reverse_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    """Element i of a reversed axis of size n reads n-1-i: affine, no table, no unrolling."""
    x, source = op.operands[0], list(index)
    for a in op.attrs["axes"]:
        source[a] = L.iadd(L.index_const(x.shape[a] - 1), L.imul(index[a], L.index_const(-1)))
    return lw.value_at(x, source)


def _constant_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    value, out = op.attrs["value"], op.result
    if value.size == 1:
        return L.Const(value.reshape(-1)[0].item(), out.dtype)
    return L.Load(lw.constant_buffer(out), L.linear(index, out.shape))


def _iota_at(lw: Lowerer, op: Op, index: list) -> L.Expr:
    out = op.result
    ramp = index[op.attrs["axis"]] if out.shape else L.index_const(0)
    return L.Call("cast", (ramp,), out.dtype, {"dtype": out.dtype})


# Ops a consumer evaluates at its own index without arithmetic (sources, views, gathers):
# op short name -> fn(lowerer, op, index) -> the element's expression. Elementwise ops go
# through codegen/scalar_ops.py; every other op is a kernel root (KERNEL_LOWERINGS).
INDEX_MAP_LOWERINGS = {
    "constant": _constant_at,
    "iota": _iota_at,
    "reshape": _reshape_at,
    "broadcast_to": lambda lw, op, ix: lw.value_at(op.operands[0],
                                                   _broadcast_index(ix, op.operands[0].shape)),
    "transpose": _transpose_at,
    "reverse": _reverse_at,
    "slice": _slice_at,
    "gather": _later("lower_indexing", "gather_at"),   # index maps through a loaded position
    "gather_elements": _later("lower_indexing", "gather_elements_at"),
}


def _buffers_in(body: list) -> list[L.Buffer]:
    seen: dict[int, L.Buffer] = {}

    def expr(e) -> None:
        if isinstance(e, L.Load):
            seen.setdefault(id(e.buffer), e.buffer)
            expr(e.index)
        elif isinstance(e, L.Call):
            for a in e.args:
                expr(a)

    def stmts(items) -> None:
        for s in items:
            if isinstance(s, L.Loop):
                stmts(s.body)
            elif isinstance(s, L.Store):
                seen.setdefault(id(s.buffer), s.buffer)
                expr(s.index)
                expr(s.value)
            elif isinstance(s, L.Assign):
                expr(s.value)
            elif isinstance(s, L.AllReduce):
                seen.setdefault(id(s.buffer), s.buffer)
            elif isinstance(s, L.Print):
                for b in s.buffers:
                    seen.setdefault(id(b), b)
            elif isinstance(s, (L.Matmul, L.Conv)):
                extra = (s.w, s.dx, s.y) if isinstance(s, L.Conv) else ()
                for b in (s.c, s.a, s.b) + extra:
                    if b is not None:
                        seen.setdefault(id(b), b)
                if s.epilogue is not None:
                    stmts([s.epilogue])
                if isinstance(s, L.Matmul) and s.alpha is not None:
                    expr(s.alpha)

    stmts(body)
    return list(seen.values())


# ------------------------------------------------------------------ one helper per kernel class

def lower_elementwise(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """out[i] = f(i) over the output shape: maps, views, sources and their fused chains.

    When a load is strided along the innermost output axis but unit-stride along another
    (a transpose), those two axes are tiled by TILE so both sides stay in cache."""
    body = simplify_body(_nest(out.shape, "i", lambda ix: [
        L.Store(out, L.linear(ix, out.shape), lw.op_at(op, ix))]))
    if _blocking_divisions(body):
        return _refined_nest(lw, op, out, body)
    axis = _transposed_axis(body, out.shape)
    if axis is None:
        return body
    last, tile = len(out.shape) - 1, TILE

    def tiled(ix):
        ix = list(ix)
        for a in (axis, last):
            ix[a] = L.iadd(L.imul(L.Var(f"b{a}"), L.index_const(tile)), L.Var(f"t{a}"))
        return [L.Store(out, L.linear(ix, out.shape), lw.op_at(op, ix))]
    inner = [L.Loop(f"t{axis}", tile, [L.Loop(f"t{last}", tile, tiled(
        [L.Var(f"i{a}") for a in range(len(out.shape))]))])]
    inner = [L.Loop(f"b{axis}", out.shape[axis] // tile, [
        L.Loop(f"b{last}", out.shape[last] // tile, inner)])]
    for a in reversed(range(len(out.shape))):
        if a not in (axis, last) and out.shape[a] != 1:
            inner = [L.Loop(f"i{a}", out.shape[a], inner)]
    return inner


TILE = 32


def _blocking_divisions(body: list) -> list[tuple[int, dict]]:
    """(divisor, {variable: coefficient}) of each `//` or `%` left in the loads of `body`."""
    found = []

    def expr(e) -> None:
        if isinstance(e, L.Call):
            if e.op in ("//", "%") and isinstance(e.args[1], L.Const):
                terms = _terms(e.args[0])
                if terms is not None:
                    found.append((int(e.args[1].value), terms))
            for a in e.args:
                expr(a)
        elif isinstance(e, L.Load):
            expr(e.index)

    def stmts(items) -> None:
        for stmt in items:
            if isinstance(stmt, L.Loop):
                stmts(stmt.body)
            elif isinstance(stmt, L.Store):
                expr(stmt.value)
    stmts(body)
    return found


def _terms(e) -> dict | None:
    """{variable: coefficient} of an affine index (None if not affine)."""
    if isinstance(e, L.Var):
        return {e.name: 1}
    if isinstance(e, L.Const):
        return {}
    if isinstance(e, L.Call) and e.op == "+":
        parts = [_terms(a) for a in e.args]
        if None in parts:
            return None
        merged: dict = {}
        for part in parts:
            for v, c in part.items():
                merged[v] = merged.get(v, 0) + c
        return merged
    if isinstance(e, L.Call) and e.op == "*" and isinstance(e.args[1], L.Const):
        inner = _terms(e.args[0])
        return None if inner is None else {v: c * e.args[1].value for v, c in inner.items()}
    return None


def _split_at(pieces: list[int], boundary: int) -> list[int] | None:
    """Pieces of one axis (mixed radix, outermost first) with a piece boundary at place value
    `boundary`, or None if it cannot be one (or already is)."""
    trailing = 1
    for p in reversed(range(len(pieces))):
        if boundary == trailing:
            return None
        if boundary % trailing == 0 and pieces[p] % (boundary // trailing) == 0 \
                and boundary // trailing < pieces[p]:
            f = boundary // trailing
            return pieces[:p] + [pieces[p] // f, f] + pieces[p + 1:]
        trailing *= pieces[p]
    return None


def _refined_nest(lw: Lowerer, op: Op, out: L.Buffer, body: list) -> list:
    """Split output axes so that views which delinearise an axis (a reshape of a transpose)
    index the pieces affinely: while a division by d remains whose numerator holds a loop
    variable of axis a with coefficient c, give axis a a piece boundary at d / c, and
    rebuild. Axis a runs as loops over its pieces (variables ``i<a>_<p>``), its index their
    mixed-radix combination, so the flat store index is unchanged."""
    refined = [[d] for d in out.shape]
    for _ in range(8):
        changed = False
        for d, terms in _blocking_divisions(body):
            for var, c in terms.items():
                axis = int(var[1:].split("_")[0]) if var[:1] == "i" else None
                if axis is None or axis >= len(refined) or c % d == 0 or d % c:
                    continue
                place = _place_value(refined[axis], var)
                if place is None or (d // c) * place == 0:
                    continue
                split = _split_at(refined[axis], (d // c) * place)
                if split is not None:
                    refined[axis], changed = split, True
                    break
            if changed:
                break
        if not changed:
            return body
        body = _nest_pieces(lw, op, out, refined)
    return body


def _place_value(pieces: list[int], var: str) -> int | None:
    """Place value in its axis of the loop variable `var` (``i<a>`` or ``i<a>_<p>``)."""
    parts = var[1:].split("_")
    if len(parts) == 1:
        return 1 if len(pieces) == 1 else None
    p = int(parts[1])
    if p >= len(pieces):
        return None
    value = 1
    for extent in pieces[p + 1:]:
        value *= extent
    return value


def _nest_pieces(lw: Lowerer, op: Op, out: L.Buffer, refined: list) -> list:
    variables, index = [], []
    for a, pieces in enumerate(refined):
        names = [f"i{a}" if len(pieces) == 1 else f"i{a}_{p}" for p in range(len(pieces))]
        combined, stride = L.index_const(0), 1
        for name, extent in reversed(list(zip(names, pieces))):
            if extent != 1:
                combined = L.iadd(L.imul(L.Var(name), L.index_const(stride)), combined)
            stride *= extent
        index.append(combined)
        variables += list(zip(names, pieces))
    body = [L.Store(out, L.linear(index, out.shape), lw.op_at(op, index))]
    for name, extent in reversed(variables):
        if extent != 1:
            body = [L.Loop(name, extent, body)]
    return simplify_body(body)


def _transposed_axis(body: list, shape: tuple[int, ...]) -> int | None:
    """The output axis along which some load is unit-stride while it is strided along the
    innermost axis, if both extents are multiples of TILE; else None."""
    if len(shape) < 2 or shape[-1] % TILE or not body:
        return None
    store = body[0]
    while isinstance(store, L.Loop):
        store = store.body[0]
    last = f"i{len(shape) - 1}"
    for load in L.loads_in(store.value):
        if L.coefficient(load.index, last) in (0, 1, None):
            continue
        for a in range(len(shape) - 1):
            if L.coefficient(load.index, f"i{a}") == 1 and shape[a] % TILE == 0:
                return a
    return None


def lower_reduce(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """reduce_sum / reduce_max. If the innermost input axis is reduced, a register
    accumulator runs over the reduced axes (vectorised with reassoc); otherwise the output
    buffer is the accumulator and the loops follow the input's layout (unit stride inside)."""
    x = op.operands[0]
    axes = _axes(op.attrs["axes"], x.ndim)
    combine = "add" if op.name == "gs.reduce_sum" else "maximum"
    init = L.Const(_identity(combine, out.dtype), out.dtype)

    def element(ix):
        value = lw.value_at(x, ix)
        if x.dtype is not out.dtype:
            value = L.Call("cast", (value,), out.dtype, {"dtype": out.dtype})
        return value

    def out_index(ix):
        kept = [L.index_const(0) if a in axes else i for a, i in enumerate(ix)]
        if not op.attrs.get("keep_dims", False):
            kept = [i for a, i in enumerate(kept) if a not in axes]
        return L.linear(kept, out.shape)

    if x.ndim and x.ndim - 1 in axes and x.type.size:
        acc = L.Local("acc", out.dtype)
        kept_shape = [1 if a in axes else d for a, d in enumerate(x.shape)]
        red_shape = [d if a in axes else 1 for a, d in enumerate(x.shape)]

        def outer(kx):
            def inner(rx):
                ix = [r if a in axes else k for a, (k, r) in enumerate(zip(kx, rx))]
                return [L.Assign(acc, L.Call(combine, (L.LocalRef(acc), element(ix)),
                                             out.dtype))]
            return [L.Assign(acc, init), *_nest(red_shape, "r", inner),
                    L.Store(out, out_index(kx), L.LocalRef(acc))]
        return _nest(kept_shape, "i", outer)
    fill = _nest(out.shape, "o", lambda ox: [L.Store(out, L.linear(ox, out.shape), init)])
    return fill + _nest(x.shape, "i", lambda ix: [L.Store(out, out_index(ix), L.Call(
        combine, (L.Load(out, out_index(ix)), element(ix)), out.dtype))])


def lower_argmax(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """First index of the maximum along `axis` (the first NaN wins, as in numpy)."""
    x = op.operands[0]
    axis = _axes(op.attrs["axis"], x.ndim)[0] if x.ndim else 0
    best, where = L.Local("best", x.dtype), L.Local("best_index", DType.i64)
    value, take = L.Local("x", x.dtype), L.Local("take", DType.bool)
    kept_shape = [1 if a == axis else d for a, d in enumerate(x.shape)]

    def outer(kx):
        def inner(rx):
            ix = list(kx)
            if x.ndim:
                ix[axis] = rx[0]
            current, known = L.LocalRef(value), L.LocalRef(best)
            greater = L.Call("greater", (current, known), DType.bool)
            if x.dtype.is_float:
                first_nan = L.Call("logical_and", (
                    L.Call("not_equal", (current, current), DType.bool),
                    L.Call("equal", (known, known), DType.bool)), DType.bool)
                greater = L.Call("logical_or", (greater, first_nan), DType.bool)
            return [L.Assign(value, lw.value_at(x, ix)), L.Assign(take, greater),
                    L.Assign(best, L.Call("select", (L.LocalRef(take), current, known),
                                          x.dtype)),
                    L.Assign(where, L.Call("select", (L.LocalRef(take), rx[0],
                                                      L.LocalRef(where)), DType.i64))]
        red = _nest((x.shape[axis],) if x.ndim else (), "r", inner)
        kept = [i for a, i in enumerate(kx) if a != axis or op.attrs.get("keep_dims")]
        result = L.LocalRef(where) if out.dtype is DType.i64 else L.Call(
            "cast", (L.LocalRef(where),), out.dtype, {"dtype": out.dtype})
        return [L.Assign(best, L.Const(_identity("max", x.dtype), x.dtype)),
                L.Assign(where, L.index_const(0)), *red,
                L.Store(out, L.linear(kept, out.shape), result)]
    return _nest(kept_shape, "i", outer)


def lower_pad(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """Zero the output, then out[low + i*stride] = x[i]."""
    x = op.operands[0]
    low = op.attrs["low"]
    stride = op.attrs.get("stride") or (1,) * x.ndim
    if isinstance(stride, int):
        stride = (stride,) * x.ndim
    zero = L.Const(_identity("add", out.dtype), out.dtype)
    fill = _nest(out.shape, "o", lambda ox: [L.Store(out, L.linear(ox, out.shape), zero)])

    def place(ix):
        target = [L.iadd(L.index_const(lo), L.imul(i, L.index_const(s)))
                  for i, lo, s in zip(ix, low, stride)]
        return [L.Store(out, L.linear(target, out.shape), lw.value_at(x, ix))]
    return fill + _nest(x.shape, "i", place)


def lower_concat(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """One loop nest per operand, writing at its offset along `axis`."""
    axis = op.attrs["axis"] % len(out.shape)
    body, offset = [], 0
    for x in op.operands:
        def place(ix, offset=offset, x=x):
            target = list(ix)
            target[axis] = L.iadd(ix[axis], L.index_const(offset))
            return [L.Store(out, L.linear(target, out.shape), lw.value_at(x, ix))]
        body += _nest(x.shape, "i", place)
        offset += x.shape[axis]
    return body


def _into(lw: Lowerer, x: Value, out: L.Buffer) -> list:
    """out = x, elementwise; nothing when x already lives in out."""
    if lw.stored.get(x) is out:
        return []
    return _nest(out.shape, "i", lambda ix: [
        L.Store(out, L.linear(ix, out.shape), lw.value_at(x, ix))])


def lower_all_reduce(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """out = x, then out reduced over every process in place: one native call, no second
    buffer for MPI."""
    return _into(lw, op.operands[0], out) + [L.AllReduce(out, op.attrs["op"])]


def lower_grad_hook(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """out = x: a gradient hook's mark (simplify drops it; this copy runs only when a graph
    is compiled without simplify)."""
    return _into(lw, op.operands[0], out)


def lower_host_hook(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """out = g, then the Python hook's call on out, which may overwrite it."""
    return _into(lw, op.operands[0], out) + [L.HostHook(out, op.attrs["hook"])]


def lower_print(lw: Lowerer, op: Op, out: L.Buffer) -> list:
    """The print's call back into Python with its operands' buffers, and its token (0)."""
    buffers = [lw.buffer_of(x) for x in op.operands]
    return [L.Print(print_spec(op.attrs["strings"], op.attrs["layout"], buffers), buffers),
            L.Store(out, L.index_const(0), L.Const(0, out.dtype))]


def print_spec(strings, layout, buffers: list) -> str:
    """The JSON the runtime's print callback reads: a list of one print, with its strings,
    layout and, per tensor, its slot in the pointer array, shape and numpy dtype."""
    return json.dumps([{"strings": list(strings), "layout": list(layout),
                        "tensors": [[k, list(b.shape), b.dtype.np.str]
                                    for k, b in enumerate(buffers)]}],
                      separators=(",", ":"))


KERNEL_LOWERINGS = {
    "gs.print": lower_print,
    "gs.all_reduce": lower_all_reduce,
    "gs.host_hook": lower_host_hook,
    "gs.grad_hook": lower_grad_hook,
    "gs.scatter_add": _later("lower_indexing", "lower_scatter_add"),
    "gs.update_row": _later("lower_indexing", "lower_update_row"),
    "gs.reduce_sum": lower_reduce,
    "gs.reduce_max": lower_reduce,
    "gs.argmax": lower_argmax,
    "gs.matmul": lower_matmul,
    "gs.pad": lower_pad,
    "gs.concat": lower_concat,
    **{op: _later_in("lower_window", "WINDOW_LOWERINGS", op) for op in WINDOW_OPS},
    **{op: _later_in("lower_conv", "CONV_LOWERINGS", op) for op in CONV_OPS},
}


def lower_to_loops(fused: FusedGraph, plan: MemoryPlan, entry: str = "main") -> L.Program:
    """The loop program of `fused` with buffers placed by `plan`."""
    return Lowerer(fused, plan, entry).program()
