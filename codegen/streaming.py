"""Streaming (non-temporal) stores for elementwise kernels larger than the cache.

A normal store to a line that is not cached first reads the line (read-for-ownership), so an
elementwise kernel from DRAM moves 12 bytes per f32 element (read x, read and write y) where a
copy with non-temporal stores (glibc's memcpy above a few MB, numpy's copyto) moves 8. When
a kernel touches more than :data:`STREAM_MIN_BYTES` (the shared L3 of the CPUs this was tuned
on, 32 MB, half of it per core), its output would leave the cache before anyone reread it
anyway, so its stores go around the cache: the chunk ``[start, end)`` a task runs is split
into a scalar head up to the first vector-aligned output element, an explicit vector loop
whose stores are aligned ``!nontemporal`` (``vmovntps``), and a scalar tail; then an
``sfence`` orders the weakly-ordered stores before the task reports done.

Only a flat loop whose body is one store at the loop index (coefficient 1) qualifies, and
only if every load steps by 1 (a vector load) or 0 (a splat) with it, as in a matrix
product's epilogue (:class:`~.emit_llvm.LanesEmitter`); gathers keep the plain loop.
"""
from __future__ import annotations

import math

from llvmlite import ir

from . import loops as L
from .emit_llvm import ExprEmitter, _from_memory, _to_memory, lanes_load
from .vector_constants import splat
from ..ir.types import DType

STREAM_MIN_BYTES = 32 << 20
_STREAM_DTYPES = (DType.f32, DType.f64, DType.i32, DType.i64)
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _bytes(buffer: L.Buffer) -> int:
    return math.prod(buffer.shape) * buffer.dtype.itemsize


def streams(loop: L.Loop) -> bool:
    """True when the chunks of `loop` (a split kernel's outer loop) store around the cache."""
    from ..runtime.target import host
    target = host()
    if not target.triple.startswith("x86_64") or target.vector_width_bits < 256:
        return False
    if len(loop.body) != 1 or not isinstance(loop.body[0], L.Store):
        return False
    store = loop.body[0]
    if store.buffer.dtype not in _STREAM_DTYPES or L.coefficient(store.index, loop.var) != 1:
        return False
    if not _only_var(store.index, loop.var) or not _only_var(store.value, loop.var):
        return False
    touched = {id(store.buffer): store.buffer}
    for load in L.loads_in(store.value):
        if L.coefficient(load.index, loop.var) not in (0, 1):
            return False         # a gather: element-by-element either way
        touched.setdefault(id(load.buffer), load.buffer)
    return sum(_bytes(b) for b in touched.values()) >= STREAM_MIN_BYTES


def _only_var(expr: L.Expr, var: str) -> bool:
    """No locals and no loop index but `var` anywhere in `expr` (loads' indices included)."""
    if isinstance(expr, L.Var):
        return expr.name == var
    if isinstance(expr, L.LocalRef):
        return False
    if isinstance(expr, L.Load):
        return _only_var(expr.index, var)
    if isinstance(expr, L.Call):
        return all(_only_var(a, var) for a in expr.args)
    return True


class StreamEmitter(ExprEmitter):
    """Emits the store of a flat elementwise loop for `lanes` consecutive values of the loop
    index `var` at once (vector value), as an aligned non-temporal store."""

    def __init__(self, builder, params, var, index, lanes):
        super().__init__(builder, params, {var: index})
        self.var, self.lanes = var, lanes
        self.indices = ExprEmitter(builder, params, {var: index})

    def _splat(self, value):
        return splat(self.builder, value, self.lanes)

    def store(self, stmt: L.Store) -> None:
        b = self.builder
        value = _to_memory(b, self.expr(stmt.value), stmt.buffer.dtype)
        instruction = b.store(value, self.indices.address(stmt.buffer, stmt.index),
                              align=self.lanes * stmt.buffer.dtype.itemsize)
        instruction.set_metadata("nontemporal", b.module.add_metadata([ir.Constant(_I32, 1)]))

    def _load(self, e: L.Load) -> ir.Value:
        vector = lanes_load(self, e, self.var)
        if vector is None:                                   # streams() admits no others
            raise AssertionError(f"streaming kernel with a strided load: {e.index}")
        return vector

    def _expr(self, e: L.Expr) -> ir.Value:
        b = self.builder
        if isinstance(e, L.Const):
            return self._splat(super()._expr(e))
        if isinstance(e, L.Var):
            value = self._splat(self.indices.expr(e))
            return b.add(value, ir.Constant(value.type, list(range(self.lanes))))
        if isinstance(e, L.Load):
            return _from_memory(b, self._load(e), e.buffer.dtype)
        return super()._expr(e)


def emit_streaming_loop(emitter, loop: L.Loop, start: ir.Value, end: ir.Value) -> None:
    """`loop` over [start, end) (non-empty) at `emitter` (a KernelEmitter): scalar head to the
    first aligned output vector, aligned non-temporal vector loop, scalar tail, sfence."""
    from ..runtime.target import host
    b = emitter.builder
    store = loop.body[0]
    itemsize = store.buffer.dtype.itemsize
    lanes = host().vector_width_bits // (8 * itemsize)
    width = lanes * itemsize
    first = ExprEmitter(b, emitter.params, {loop.var: start}).address(store.buffer, store.index)
    address = b.ptrtoint(first, _I64)
    count = b.sub(end, start)
    head = b.lshr(b.and_(b.sub(ir.Constant(_I64, 0), address), ir.Constant(_I64, width - 1)),
                  ir.Constant(_I64, itemsize.bit_length() - 1))
    # An output not aligned to its element cannot reach vector alignment: all scalar.
    aligned = b.icmp_unsigned("==", b.and_(address, ir.Constant(_I64, itemsize - 1)),
                              ir.Constant(_I64, 0))
    head = b.select(aligned, head, count)
    head = b.select(b.icmp_unsigned("<", head, count), head, count)
    middle = b.add(start, head)
    vectors = b.and_(b.sub(count, head), ir.Constant(_I64, -lanes))
    tail = b.add(middle, vectors)
    with b.if_then(b.icmp_unsigned(">", head, ir.Constant(_I64, 0))):
        emitter.loop(loop, start=start, end=middle)
    with b.if_then(b.icmp_unsigned(">", vectors, ir.Constant(_I64, 0))):
        _vector_loop(emitter, loop, store, middle, tail, lanes)
    with b.if_then(b.icmp_unsigned("<", tail, end)):
        emitter.loop(loop, start=tail, end=end)
    module = b.module
    fence = module.globals.get("llvm.x86.sse.sfence") or ir.Function(
        module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
    b.call(fence, [])


def _vector_loop(emitter, loop, store, start, end, lanes) -> None:
    b = emitter.builder
    before = b.block
    body = b.function.append_basic_block(f"{loop.var}.stream")
    after = b.function.append_basic_block(f"{loop.var}.stream.exit")
    b.branch(body)
    b.position_at_end(body)
    index = b.phi(_I64, name=f"{loop.var}.v")
    index.add_incoming(start, before)
    StreamEmitter(b, emitter.params, loop.var, index, lanes).store(store)
    following = b.add(index, ir.Constant(_I64, lanes), flags=("nuw", "nsw"))
    index.add_incoming(following, b.block)
    b.cbranch(b.icmp_unsigned("<", following, end), body, after)
    b.position_at_end(after)
