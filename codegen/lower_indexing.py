"""Lowering of the indexing primitives: gather and gather_elements as index maps, scatter_add
as a kernel of its own.

Index maps. Element `o` of `gather(x, indices, axis)` is x at `o` with the indices' axes
replaced by one position, `clamp(indices[o[axis:axis+k]])`: a load whose index holds a load.
Like a view, it is expanded at its consumer's index, so a gather fuses into the elementwise
kernel or reduction that reads it. `gather_elements` maps `o` to `o` with axis `dim` replaced
by `clamp(index[o])`.

Clamping keeps every address inside x: a negative index gets n added, then the position is
limited to [0, n-1]. An index that was out of range is reported by the program's index-check
output (`ir.passes.index_checks`), never silently used.

scatter_add: `out = x` (one loop nest), then serially over `updates`:
`out[target(i)] = out[target(i)] + updates[i]`. Two iterations may hit one element (duplicate
indices), so the accumulation stays one serial loop nest (`parallel.outer_split` refuses a
store at a data-dependent index) and LLVM cannot vectorise it (the store address is loaded).
"""
from __future__ import annotations

from ..ir.core import Op
from ..ir.types import DType
from . import loops as L


def clamped(position: L.Expr, dtype: DType, n: int) -> L.Expr:
    """`position` (an index of dtype `dtype` into an axis of size n) as an in-range i64 index:
    negative positions count from the end, then the result is clamped to [0, n-1]."""
    i64 = DType.i64
    if dtype is not i64:
        position = L.Call("cast", (position,), i64, {"dtype": i64})
    zero = L.index_const(0)
    negative = L.Call("less", (position, zero), DType.bool)
    wrapped = L.Call("select", (negative, L.Call("add", (position, L.index_const(n)), i64),
                                position), i64)
    return L.Call("minimum", (L.Call("maximum", (wrapped, zero), i64),
                              L.index_const(max(n - 1, 0))), i64)


def gather_at(lw, op: Op, index: list) -> L.Expr:
    """Element `index` of a gather: x at the clamped position read from the indices."""
    x, indices = op.operands
    axis, k = op.attrs["axis"], indices.ndim
    position = lw.value_at(indices, index[axis:axis + k])
    source = index[:axis] + [clamped(position, indices.dtype, x.shape[axis])] + index[axis + k:]
    return lw.value_at(x, source)


def gather_elements_at(lw, op: Op, index: list) -> L.Expr:
    """Element `index` of a gather_elements: x at `index` with axis `dim` read from `index`."""
    x, positions = op.operands
    dim = op.attrs["dim"]
    source = list(index)
    source[dim] = clamped(lw.value_at(positions, index), positions.dtype, x.shape[dim])
    return lw.value_at(x, source)


def lower_scatter_add(lw, op: Op, out: L.Buffer) -> list:
    """Copy x into `out`, then add each element of `updates` at its clamped target."""
    x, indices, updates = op.operands
    axis, k = op.attrs["axis"], indices.ndim
    copy = L.nest(out.shape, "o", lambda ox: [
        L.Store(out, L.linear(ox, out.shape), lw.value_at(x, ox))])

    def accumulate(ix):
        position = clamped(lw.value_at(indices, ix[axis:axis + k]), indices.dtype,
                           x.shape[axis])
        target = L.linear(ix[:axis] + [position] + ix[axis + k:], out.shape)
        total = L.Call("add", (L.Load(out, target), lw.value_at(updates, ix)), out.dtype)
        return [L.Store(out, target, total)]
    return copy + L.nest(updates.shape, "i", accumulate)


def lower_update_row(lw, op: Op, out: L.Buffer) -> list:
    """`out = x` (skipped when x already lives in `out`), then `out[i] = row` at the clamped
    row index: a tape write costs one row when the tape is updated in place."""
    x, row, i = op.operands
    copy = [] if lw.stored.get(x) is out else L.nest(out.shape, "o", lambda ox: [
        L.Store(out, L.linear(ox, out.shape), lw.value_at(x, ox))])
    position = clamped(lw.value_at(i, []), i.dtype, x.shape[0])
    return copy + L.nest(row.shape, "i", lambda ix: [
        L.Store(out, L.linear([position] + ix, out.shape), lw.value_at(row, ix))])
