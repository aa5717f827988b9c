"""Register-tiled float matrix products for static shapes, split into row tasks.

The shapes of every product are known when the graph compiles, so each call site gets code for
exactly its sizes: no packing decisions, no dispatch, no size checks at run time. Two tile
kernels, by where the reduction index ``p`` is contiguous:

- *Outer product* (``A @ B`` and ``A.T @ B``: B rows contiguous along ``n``). A tile of
  ``rows x width`` of C lives in vector registers; for each ``p`` it loads B[p, j0:j0+width]
  once and adds A[i, p] * that row for every row i of the tile (one broadcast, one FMA per
  vector). With AVX2 the tile is 6 x 16 floats: 12 accumulators + 2 B vectors + 1 broadcast,
  within the 16 ymm registers.
- *Dot* (``A @ B.T``: both operands contiguous along ``p``, Dense's forward ``x @ W.T``).
  A tile of 3 x 4 outputs keeps 12 vector accumulators of partial sums along ``p``; at the end
  each row's 4 accumulators are folded into one vector of 4 sums by a shuffle/add tree and
  stored at once. A ``p`` tail that is not a whole vector is added with scalar FMAs.

Widths that are not a multiple of the vector are covered by narrower vectors (8 + 2 for a tail
of 10), and a last row tile with fewer rows, all static. Work is split by row tiles into tasks
``task(ctx, t)``; the kernel hands them to ``gs_parallel_for`` (:mod:`graphspore.runtime.
thread_pool`) when the product is big enough to pay for a second thread, or runs them in a
loop. ``ctx`` is a stack array ``[a, b, c, extra...]`` of the kernel's buffer pointers.

An :class:`Epilogue` replaces the store of C: each finished element goes through the caller's
code (``emit(builder, extra_pointers, i, j, acc)``) inside the task, while the tile is still in
registers. A fused bias + ReLU or an SGD step on the product then costs no pass over memory,
and runs on the core that computed those rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llvmlite import ir

from .vector_constants import splat as _splat, undef, zeros as _zeros
from .parallel import call_parallel_for, load_context, pointer_context, task_function

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_PTR = ir.PointerType()
_SCALARS = {"f32": ir.FloatType(), "f64": ir.DoubleType()}
_BYTES = {"f32": 4, "f64": 8}
# A task should hold at least this many multiply-adds: a hand-off to another core costs
# about 0.2-0.5 us, the time of ~10k FMAs on one core.
MIN_TASK_FMAS = 48 * 1024
MAX_TASKS = 16
DOT_TILE = (3, 4)          # rows x columns of C per dot tile (A @ B.T)


@dataclass(frozen=True)
class Epilogue:
    """What to do with each element of C instead of storing it: ``emit(builder, pointers, i,
    j, acc)`` emits that code at ``builder``, where ``pointers`` are ``pointers`` (values of
    the calling function) as seen inside the task function, ``i, j`` are i64 values and
    ``acc`` is C[i, j] (a scalar) or C[i, j:j+lanes] (a vector)."""

    pointers: list
    emit: Callable


def supported(m: int, n: int, k: int, dtype: str, transpose_a: bool, transpose_b: bool) -> bool:
    """True when :func:`emit_tiled_matmul` handles this product (float, not both transposed)."""
    return dtype in _SCALARS and m > 0 and n > 0 and k > 0 and not (transpose_a and transpose_b)


class _Shape:
    """Static sizes of one product and the tile geometry chosen for them."""

    def __init__(self, m, n, k, dtype, transpose_a, transpose_b, vector_bits, epilogue=None):
        self.m, self.n, self.k = m, n, k
        self.epilogue = epilogue
        self.extra = []                    # the epilogue's pointers inside the task function
        self.dtype, self.ta, self.tb = dtype, transpose_a, transpose_b
        self.scalar = _SCALARS[dtype]
        self.lanes = max(1, vector_bits // (8 * _BYTES[dtype]))
        registers = 32 if vector_bits >= 512 else 16
        if transpose_b:                    # dot kernel
            self.rows, self.cols = DOT_TILE
        else:                              # outer-product kernel: rows x 2 vectors
            self.rows, self.cols = (6 if registers == 16 else 12), 2 * self.lanes

    def vector(self, width):
        return ir.VectorType(self.scalar, width)

    def widths(self, total):
        """Split ``total`` columns into vectors: full ones, then halving widths."""
        parts, width = [], self.lanes
        while total:
            while width > total:
                width //= 2
            parts.append(width)
            total -= width
        return parts


def emit_tiled_matmul(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype,
                      transpose_a=False, transpose_b=False, vector_bits=256, parallel=True,
                      epilogue=None):
    """Emit C = op(A) @ op(B) at ``builder``: build the task function, then run its tasks.
    With an ``epilogue``, C is not stored (``c_ptr`` may be None)."""
    shape = _Shape(m, n, k, dtype, transpose_a, transpose_b, vector_bits, epilogue)
    module = builder.module
    owner = builder.function.name
    task = task_function(
        module, f"{owner}.mm{sum(1 for g in module.globals if g.startswith(owner + '.mm'))}")
    row_tiles = -(-m // shape.rows)
    tasks = max(1, min(row_tiles, MAX_TASKS, (m * n * k) // MIN_TASK_FMAS))
    tiles_per_task = -(-row_tiles // tasks)
    tasks = -(-row_tiles // tiles_per_task)
    _fill_task_body(task, shape, tiles_per_task, tasks)
    pointers = [a_ptr, b_ptr, ir.Constant(_PTR, None) if c_ptr is None else c_ptr]
    pointers += epilogue.pointers if epilogue is not None else []
    ctx = pointer_context(builder, pointers)
    if parallel and tasks > 1:
        call_parallel_for(builder, task, ctx, tasks)
    else:
        _count_loop(builder, tasks, lambda t: builder.call(task, [ctx, t]))


def _fill_task_body(function, shape, tiles_per_task, tasks):
    """Task t computes row tiles [t * tiles_per_task, ...) and, if last, the short row tile."""
    b = ir.IRBuilder(function.append_basic_block("entry"))
    ctx, task = function.args
    extra = len(shape.epilogue.pointers) if shape.epilogue is not None else 0
    a, bm, c, *shape.extra = load_context(b, ctx, 3 + extra)
    full_tiles, short = divmod(shape.m, shape.rows)
    first = b.mul(task, ir.Constant(_I64, tiles_per_task))
    end = b.add(first, ir.Constant(_I64, tiles_per_task))
    end = b.select(b.icmp_unsigned("<", end, ir.Constant(_I64, full_tiles)), end,
                   ir.Constant(_I64, full_tiles))
    count = b.sub(end, first)
    with b.if_then(b.icmp_signed(">", count, ir.Constant(_I64, 0))):
        def row_tile(index):
            tile = b.add(first, index)
            _row_panel(b, shape, a, bm, c, b.mul(tile, ir.Constant(_I64, shape.rows)),
                       shape.rows)
        _count_loop(b, count, row_tile)
    if short:
        last = b.icmp_unsigned("==", task, ir.Constant(_I64, tasks - 1))
        with b.if_then(last):
            _row_panel(b, shape, a, bm, c, ir.Constant(_I64, full_tiles * shape.rows), short)
    b.ret_void()


def _row_panel(b, shape, a, bm, c, i0, rows):
    """Rows [i0, i0 + rows) of C: every column tile, then the narrower column tail."""
    full_cols, tail = divmod(shape.n, shape.cols)
    kernel = _dot_tile if shape.tb else _outer_tile
    if full_cols:
        def column_tile(index):
            kernel(b, shape, a, bm, c, i0, b.mul(index, ir.Constant(_I64, shape.cols)),
                   rows, shape.cols)
        _count_loop(b, full_cols, column_tile)
    if tail:
        kernel(b, shape, a, bm, c, i0, ir.Constant(_I64, full_cols * shape.cols), rows, tail)


def _count_loop(b, count, body):
    """``for index in range(count)``; ``count`` is a Python int or an i64 value >= 1."""
    if isinstance(count, int) and count == 1:
        body(ir.Constant(_I64, 0))
        return

    def step(index, _):
        body(index)
        return []
    _reduction_loop(b, count, [], step)


def _address(b, shape, base, row, column, stride):
    return _offset(b, shape, base, b.add(b.mul(row, ir.Constant(_I64, stride)), column))


def _offset(b, shape, base, offset):
    """``base + offset`` elements."""
    return b.gep(base, [offset], inbounds=True, source_etype=shape.scalar)


def _fma(b, x, y, z):
    """x * y + z with one rounding (llvm.fma on the value's scalar or vector type)."""
    typ = x.type
    if isinstance(typ, ir.VectorType):
        suffix = f"v{typ.count}{'f32' if typ.element == ir.FloatType() else 'f64'}"
    else:
        suffix = "f32" if typ == ir.FloatType() else "f64"
    name = f"llvm.fma.{suffix}"
    function = b.module.globals.get(name) or ir.Function(
        b.module, ir.FunctionType(typ, [typ] * 3), name)
    return b.call(function, [x, y, z])


def _load(b, pointer, typ, shape):
    return b.load(pointer, typ=typ, align=_BYTES[shape.dtype])


def _reduction_loop(b, trip, accumulators, step):
    """``for p in range(trip)`` (a Python int or an i64 value >= 1), carrying ``accumulators``
    (list of values) through phis; ``step(p, values) -> values``. Returns the final values."""
    if isinstance(trip, int):
        trip = ir.Constant(_I64, trip)
    preheader = b.block
    loop = b.function.append_basic_block("mm.p")
    after = b.function.append_basic_block("mm.p.end")
    b.branch(loop)
    b.position_at_end(loop)
    p = b.phi(_I64)
    p.add_incoming(ir.Constant(_I64, 0), preheader)
    phis = []
    for value in accumulators:
        phi = b.phi(value.type)
        phi.add_incoming(value, preheader)
        phis.append(phi)
    updated = step(p, phis)
    following = b.add(p, ir.Constant(_I64, 1), flags=("nuw", "nsw"))
    p.add_incoming(following, b.block)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, b.block)
    b.cbranch(b.icmp_unsigned("<", following, trip), loop, after)
    b.position_at_end(after)
    return updated


def _outer_tile(b, shape, a, bm, c, i0, j0, rows, width):
    """C[i0:i0+rows, j0:j0+width] = sum_p A[i, p] * B[p, j0:j0+width]."""
    m, n, k = shape.m, shape.n, shape.k
    pieces, offset = [], 0
    for lanes in shape.widths(width):
        pieces.append((offset, shape.vector(lanes)))
        offset += lanes
    zeros = [_zeros(vt) for _ in range(rows) for _, vt in pieces]
    # Loop-invariant addresses are formed once, before the p loop: per step each row costs
    # one gep, one load, one broadcast per vector width and its FMAs (fewer instructions for
    # LLVM to optimise and select; the machine code is the same after LICM).
    columns = [b.add(j0, ir.Constant(_I64, off)) for off, _ in pieces]
    rows_i = [b.add(i0, ir.Constant(_I64, r)) for r in range(rows)]
    if shape.ta:    # A[p, i]: row r's element at a + i (+ p*m inside the loop)
        a_bases = [_offset(b, shape, a, i) for i in rows_i]
    else:           # A[i, p]: row r starts at a + i*k
        a_bases = [_offset(b, shape, a, b.mul(i, ir.Constant(_I64, k))) for i in rows_i]

    def step(p, accumulators):
        b_row = _offset(b, shape, bm, b.mul(p, ir.Constant(_I64, n)))
        row_vectors = [_load(b, _offset(b, shape, b_row, j), vt, shape)
                       for j, (_, vt) in zip(columns, pieces)]
        a_step = b.mul(p, ir.Constant(_I64, m)) if shape.ta else p
        updated = []
        for base in a_bases:
            scalar = _load(b, _offset(b, shape, base, a_step), shape.scalar, shape)
            broadcast = {}
            for (_, vt), row_vector in zip(pieces, row_vectors):
                if vt.count not in broadcast:
                    broadcast[vt.count] = _splat(b, scalar, vt.count)
                acc = accumulators[len(updated)]
                updated.append(_fma(b, broadcast[vt.count], row_vector, acc))
        return updated

    sums = _reduction_loop(b, k, zeros, step)
    index = 0
    for i in rows_i:
        for j in columns:
            _finish(b, shape, c, i, j, sums[index])
            index += 1


def _dot_tile(b, shape, a, bm, c, i0, j0, rows, cols):
    """C[i, j] = sum_p A[i, p] * B[j, p] for a rows x cols tile, B stored [n, k]."""
    n, k, lanes = shape.n, shape.k, shape.lanes
    vt = shape.vector(lanes)
    chunks, tail = divmod(k, lanes)
    row_index = [b.add(i0, ir.Constant(_I64, r)) for r in range(rows)]
    col_index = [b.add(j0, ir.Constant(_I64, j)) for j in range(cols)]
    totals = None
    if chunks:
        zeros = [_zeros(vt)] * (rows * cols)

        def step(p, accumulators):
            start = b.mul(p, ir.Constant(_I64, lanes))
            a_vectors = [_load(b, _address(b, shape, a, i, start, k), vt, shape)
                         for i in row_index]
            updated = list(accumulators)
            for jj, j in enumerate(col_index):
                b_vector = _load(b, _address(b, shape, bm, j, start, k), vt, shape)
                for r in range(rows):
                    slot = r * cols + jj
                    updated[slot] = _fma(b, a_vectors[r], b_vector, accumulators[slot])
            return updated

        sums = _reduction_loop(b, chunks, zeros, step)
        totals = [_fold_rows(b, shape, sums[r * cols:(r + 1) * cols]) for r in range(rows)]
    out_type = shape.vector(4 if cols > 1 else 1) if totals is None else totals[0].type
    if totals is None:
        totals = [_zeros(out_type)] * rows
    for p in range(chunks * lanes, k):
        column = [_load(b, _address(b, shape, bm, j, ir.Constant(_I64, p), k), shape.scalar,
                        shape) for j in col_index]
        packed = undef(out_type)
        for jj, value in enumerate(column):
            packed = b.insert_element(packed, value, ir.Constant(_I32, jj))
        for r, i in enumerate(row_index):
            scalar = _load(b, _address(b, shape, a, i, ir.Constant(_I64, p), k), shape.scalar,
                           shape)
            totals[r] = _fma(b, _splat(b, scalar, out_type.count), packed, totals[r])
    for r, i in enumerate(row_index):
        if cols == out_type.count:
            _finish(b, shape, c, i, j0, totals[r])
        else:
            for jj, j in enumerate(col_index):
                _finish(b, shape, c, i, j, b.extract_element(totals[r], ir.Constant(_I32, jj)))


def _finish(b, shape, c, i, j, value):
    """Store ``value`` (a vector of consecutive elements from (i, j) on, or one scalar) to C,
    or hand it to the epilogue."""
    if shape.epilogue is None:
        b.store(value, _address(b, shape, c, i, j, shape.n), align=_BYTES[shape.dtype])
    else:
        shape.epilogue.emit(b, shape.extra, i, j, value)


def _fold_rows(b, shape, vectors):
    """Fold up to 4 vectors of partial sums into one 4-lane vector of their totals (lane j =
    sum of vectors[j]): halve every vector to 4 lanes, then two pairwise-add rounds."""
    lanes = shape.lanes
    vectors = list(vectors) + [_zeros(vectors[0].type)] * (4 - len(vectors))
    while lanes > 4:
        half = lanes // 2
        low = ir.Constant(ir.VectorType(_I32, half), list(range(half)))
        high = ir.Constant(ir.VectorType(_I32, half), list(range(half, lanes)))
        vectors = [b.fadd(b.shuffle_vector(v, v, low), b.shuffle_vector(v, v, high))
                   for v in vectors]
        lanes = half
    if lanes < 4:   # f64 on 128-bit vectors: widen each vector with zeros to 4 lanes
        widen = ir.Constant(ir.VectorType(_I32, 4), [min(i, lanes) for i in range(lanes)]
                            + [lanes] * (4 - lanes))
        zero = _zeros(vectors[0].type)
        vectors = [b.shuffle_vector(v, zero, widen) for v in vectors]
    even = ir.Constant(ir.VectorType(_I32, 4), [0, 2, 4, 6])
    odd = ir.Constant(ir.VectorType(_I32, 4), [1, 3, 5, 7])

    def pair(x, y):
        return b.fadd(b.shuffle_vector(x, y, even), b.shuffle_vector(x, y, odd))

    return pair(pair(vectors[0], vectors[1]), pair(vectors[2], vectors[3]))
