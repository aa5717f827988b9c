"""Explicit vector loops for flat elementwise kernels, with streaming (non-temporal) stores
for those larger than the cache.

A flat elementwise loop (its body one store at the loop index, coefficient 1, every load
stepping by 1 (a vector load) or 0 (a splat) with it, as in a matrix product's epilogue,
:class:`~.emit_llvm.LanesEmitter`) that streams (below) or evaluates an op with its own
vector code (a float32 ``sigmoid`` uses AVX-512's ``vrcp14ps``/``vscalefps``, which exist
only as vector intrinsics; see :mod:`.vector_math`) is emitted as a loop over full vectors of
the widest width, then one masked vector (``llvm.masked.load/store``) for the rest, instead
of a scalar loop for LLVM's vectoriser to widen: every element goes through the same vector
code, whatever the size. Other loops and gathers keep the plain loop.

A normal store to a line that is not cached first reads the line (read-for-ownership), so an
elementwise kernel from DRAM moves 12 bytes per f32 element (read x, read and write y) where a
copy with non-temporal stores (glibc's memcpy above a few MB, numpy's copyto) moves 8. When
a kernel touches more than :data:`STREAM_MIN_BYTES` (the shared L3 of the CPUs this was tuned
on, 32 MB, half of it per core), its output would leave the cache before anyone reread it
anyway, so its stores go around the cache: the chunk ``[start, end)`` a task runs is split
into a masked vector up to the first vector-aligned output element, a vector loop whose
stores are aligned ``!nontemporal`` (``vmovntps``), and a masked tail; then an ``sfence``
orders the weakly-ordered stores before the task reports done. An output not aligned to its
element (it cannot reach vector alignment) takes the plain vector loop.
"""
from __future__ import annotations

import math

from llvmlite import ir

from . import loops as L
from .emit_llvm import (ExprEmitter, LaneVectorEmitter, _to_memory, lanes_load,
                        memory_type)
from .vector_constants import splat, zeros
from .vector_math import call_intrinsic
from ..ir.types import DType

STREAM_MIN_BYTES = 32 << 20
_STREAM_DTYPES = (DType.f32, DType.f64, DType.i32, DType.i64)
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _bytes(buffer: L.Buffer) -> int:
    return math.prod(buffer.shape) * buffer.dtype.itemsize


def vectorizes(loop: L.Loop) -> bool:
    """True when :func:`emit_vector_loop` emits `loop` (a kernel's only loop, or a split
    kernel's outer loop): a flat elementwise loop (:func:`_flat`) that streams or evaluates
    an op whose vector code differs from its scalar code (``vector_math.has_vector_form``:
    the float32 sigmoid on AVX-512), so that all its elements get the vector code. Others
    keep the scalar loop LLVM's vectoriser widens: as fast, and cheaper to compile (no
    masked copy of the body)."""
    return _flat(loop) and (_large(loop) or _has_vector_form(loop.body[0].value))


def streams(loop: L.Loop) -> bool:
    """True when the vector loop of `loop` stores around the cache (it touches more than
    :data:`STREAM_MIN_BYTES`)."""
    return _flat(loop) and _large(loop)


def _flat(loop: L.Loop) -> bool:
    """x86-64 with AVX2 or AVX-512, one store at the loop index of a 4- or 8-byte dtype,
    loads that step by 0 or 1."""
    from ..runtime.target import host
    target = host()
    if not target.triple.startswith("x86_64") or target.vector_width_bits < 256:
        return False
    if len(loop.body) != 1 or not isinstance(loop.body[0], L.Store) or loop.extent < 1:
        return False
    store = loop.body[0]
    if store.buffer.dtype not in _STREAM_DTYPES or L.coefficient(store.index, loop.var) != 1:
        return False
    if not _only_var(store.index, loop.var) or not _only_var(store.value, loop.var):
        return False
    return all(L.coefficient(load.index, loop.var) in (0, 1)      # else a gather
               for load in L.loads_in(store.value))


def _large(loop: L.Loop) -> bool:
    store = loop.body[0]
    touched = {id(store.buffer): store.buffer}
    for load in L.loads_in(store.value):
        touched.setdefault(id(load.buffer), load.buffer)
    return sum(_bytes(b) for b in touched.values()) >= STREAM_MIN_BYTES


def _has_vector_form(expr: L.Expr) -> bool:
    if not isinstance(expr, L.Call):
        return False
    from .vector_math import has_vector_form
    return has_vector_form(expr.op, expr.dtype.bits) or any(_has_vector_form(a)
                                                             for a in expr.args)


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


def _mangle(vector: ir.VectorType) -> str:
    element = vector.element
    if isinstance(element, ir.FloatType):
        name = "f32"
    elif isinstance(element, ir.DoubleType):
        name = "f64"
    elif isinstance(element, ir.HalfType):
        name = "f16"
    else:
        name = f"i{element.width}"
    return f"v{vector.count}{name}"


class VectorEmitter(LaneVectorEmitter):
    """Emits the store of a flat elementwise loop for `lanes` consecutive values of the loop
    index `var` at once (vector values): a plain vector store, an aligned non-temporal one,
    or, given `mask` (the lanes below the count left), masked loads and a masked store."""

    def __init__(self, builder, params, var, index, lanes, nontemporal=False, mask=None):
        super().__init__(builder, params, {var: index})
        self.var, self.lanes, self.nontemporal, self.mask = var, lanes, nontemporal, mask
        self.indices = ExprEmitter(builder, params, {var: index})
        self.lane_var = var

    def store(self, stmt: L.Store) -> None:
        b = self.builder
        value = _to_memory(b, self.expr(stmt.value), stmt.buffer.dtype)
        address = self.indices.address(stmt.buffer, stmt.index)
        itemsize = stmt.buffer.dtype.itemsize
        if self.mask is not None:
            call_intrinsic(b, f"llvm.masked.store.{_mangle(value.type)}.p0", ir.VoidType(),
                           [value, address, ir.Constant(_I32, itemsize), self.mask])
            return
        if not self.nontemporal:
            b.store(value, address, align=itemsize)
            return
        instruction = b.store(value, address, align=self.lanes * itemsize)
        instruction.set_metadata("nontemporal", b.module.add_metadata([ir.Constant(_I32, 1)]))

    def _load(self, e: L.Load) -> ir.Value:
        if self.mask is not None and L.coefficient(e.index, self.var) == 1:
            vector = ir.VectorType(memory_type(e.buffer.dtype), self.lanes)
            return call_intrinsic(self.builder, f"llvm.masked.load.{_mangle(vector)}.p0",
                                  vector, [self.indices.address(e.buffer, e.index),
                                           ir.Constant(_I32, e.buffer.dtype.itemsize),
                                           self.mask, zeros(vector)])
        vector = lanes_load(self, e, self.lane_var)
        if vector is None:                                 # vectorizes() admits no others
            raise AssertionError(f"vector loop with a strided load: {e.index}")
        return vector


def emit_vector_loop(emitter, loop: L.Loop, start: ir.Value, end: ir.Value) -> None:
    """`loop` over [start, end) (start < end, both i64 values) at `emitter` (a
    KernelEmitter) as vectors: see the module docstring."""
    from ..runtime.target import host
    b = emitter.builder
    store = loop.body[0]
    itemsize = store.buffer.dtype.itemsize
    lanes = host().vector_width_bits // (8 * itemsize)
    if not streams(loop):
        _plain_vectors(emitter, loop, store, start, end, lanes)
        return
    width = lanes * itemsize
    first = ExprEmitter(b, emitter.params, {loop.var: start}).address(store.buffer, store.index)
    address = b.ptrtoint(first, _I64)
    count = b.sub(end, start)
    aligned = b.icmp_unsigned("==", b.and_(address, ir.Constant(_I64, itemsize - 1)),
                              ir.Constant(_I64, 0))
    with b.if_else(aligned) as (then, otherwise):
        with then:
            head = b.lshr(b.and_(b.sub(ir.Constant(_I64, 0), address),
                                 ir.Constant(_I64, width - 1)),
                          ir.Constant(_I64, itemsize.bit_length() - 1))
            head = b.select(b.icmp_unsigned("<", head, count), head, count)
            middle = b.add(start, head)
            vectors = b.and_(b.sub(count, head), ir.Constant(_I64, -lanes))
            tail = b.add(middle, vectors)
            with b.if_then(b.icmp_unsigned(">", head, ir.Constant(_I64, 0))):
                _masked_vector(emitter, loop, store, start, head, lanes)
            with b.if_then(b.icmp_unsigned(">", vectors, ir.Constant(_I64, 0))):
                _vector_loop(emitter, loop, store, middle, tail, lanes, nontemporal=True)
            with b.if_then(b.icmp_unsigned("<", tail, end)):
                _masked_vector(emitter, loop, store, tail, b.sub(end, tail), lanes)
        with otherwise:
            _plain_vectors(emitter, loop, store, start, end, lanes)
    module = b.module
    fence = module.globals.get("llvm.x86.sse.sfence") or ir.Function(
        module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
    b.call(fence, [])


def _plain_vectors(emitter, loop, store, start, end, lanes) -> None:
    """Full vectors from `start` with plain (unaligned) stores, then one masked vector."""
    b = emitter.builder
    vectors = b.and_(b.sub(end, start), ir.Constant(_I64, -lanes))
    tail = b.add(start, vectors)
    with b.if_then(b.icmp_unsigned(">", vectors, ir.Constant(_I64, 0))):
        _vector_loop(emitter, loop, store, start, tail, lanes, nontemporal=False)
    with b.if_then(b.icmp_unsigned("<", tail, end)):
        _masked_vector(emitter, loop, store, tail, b.sub(end, tail), lanes)


def _masked_vector(emitter, loop, store, index, count, lanes) -> None:
    """The elements [index, index + count) (0 < count < lanes) as one masked vector."""
    b = emitter.builder
    lane = ir.Constant(ir.VectorType(_I32, lanes), list(range(lanes)))     # (count < lanes)
    mask = b.icmp_unsigned("<", lane, splat(b, b.trunc(count, _I32), lanes))
    VectorEmitter(b, emitter.params, loop.var, index, lanes, mask=mask).store(store)


def _vector_loop(emitter, loop, store, start, end, lanes, nontemporal) -> None:
    b = emitter.builder
    before = b.block
    body = b.function.append_basic_block(f"{loop.var}.vector")
    after = b.function.append_basic_block(f"{loop.var}.vector.exit")
    b.branch(body)
    b.position_at_end(body)
    index = b.phi(_I64, name=f"{loop.var}.v")
    index.add_incoming(start, before)
    VectorEmitter(b, emitter.params, loop.var, index, lanes, nontemporal).store(store)
    following = b.add(index, ir.Constant(_I64, lanes), flags=("nuw", "nsw"))
    index.add_incoming(following, b.block)
    b.cbranch(b.icmp_unsigned("<", following, end), body, after)
    b.position_at_end(after)
