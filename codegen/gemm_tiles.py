"""Register-tiled float matrix products for static shapes, split into row tasks.

Two tile kernels, by where the reduction index ``p`` is contiguous:

- *Outer product* (``A @ B`` and ``A.T @ B``: B rows contiguous along ``n``). A tile of
  ``rows x width`` of C lives in vector registers; for each ``p`` it loads B[p, j0:j0+width]
  once and adds A[i, p] * that row for every row i of the tile (one broadcast, one FMA per
  vector). With AVX2 the tile is 6 x 16 floats: 12 accumulators + 2 B vectors + 1 broadcast,
  within the 16 ymm registers; with AVX-512 12 x 32 (8 x 32 when that divides m and 12 does
  not; m rows when m is smaller).
- *Dot* (``A @ B.T``: both operands contiguous along ``p``, Dense's forward ``x @ W.T``).
  A tile of 3 x 4 outputs (4 x 4 with 32 registers when 4 divides m) keeps one vector
  accumulator per output of partial sums along ``p``; at the end each row's accumulators are
  folded into one vector of 4 sums by a shuffle/add tree. A ``p`` tail that is not a whole
  vector is added with scalar FMAs.

Each tile shape is a *micro-kernel*, an internal function of the module taking the tile's
addresses, strides and ``k`` at run time (:func:`_micro_kernel`), made once and called by every
product of the module with that kind, dtype and tile shape. A product itself is a small task
function: loops over its row tiles and column tiles, each one call. Why: unrolled in place for
each call site's exact sizes, the tiles were 87% of a train step's LLVM IR (377 KB for the
digits MLP step), which Python took ~90 ms to emit and LLVM O3 + codegen then chewed; shared,
the step's IR is 138 KB at the same speed (a call per tile costs nanoseconds against the
tile's hundreds of FMAs). Widths that are not a multiple of the vector are covered by
narrower vectors (8 + 2 for a tail of 10), each width its own kernel; a last row tile with
fewer rows (and a dot tile with fewer columns) calls the full kernel with its row count. Work is split by row tiles into tasks ``task(ctx, t)``; the kernel hands them to
``gs_parallel_for`` (:mod:`graphspore.runtime.thread_pool`) when the product is big enough
to pay for a second thread, or runs them in a loop. ``ctx`` is a stack array ``[a, b, c,
extra...]`` of the kernel's buffer pointers.

An :class:`Epilogue` replaces the store of C: the micro-kernel writes the tile to a buffer on
the task's stack (in L1), and each row of it then goes through the caller's code (``emit(
builder, extra_pointers, i, j, acc)``) in a loop, inside the task. A fused bias + ReLU or an
SGD step on the product then costs no pass over memory, runs on the core that computed those
rows, and its code appears once per vector width, not once per register of the tile.
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
# A product's own row tasks may be more: with 2 threads 11 tasks of 2 row tiles (n = 256) left
# one core idle for up to a task at the end; one row tile a task keeps that under 1/40.
MAX_ROW_TASKS = 64
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
            if registers == 32 and m % 4 == 0:
                self.rows = 4              # 16 accumulators + 4 + 1 vectors of 32
        else:                              # outer-product kernel: rows x 2 vectors
            self.rows, self.cols = (6 if registers == 16 else 12), 2 * self.lanes
            if registers == 32 and m % 12 and m % 8 == 0:
                self.rows = 8              # whole tiles: no work wasted on a short one
            self.rows = min(self.rows, m)  # m < rows: one exact tile (10 rows computed as
                                           # 8 + 8 ran 1.24x slower at 10 x 128 x 64)

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
    tasks = max(1, min(row_tiles, MAX_ROW_TASKS, (m * n * k) // MIN_TASK_FMAS))
    tiles_per_task = -(-row_tiles // tasks)
    tasks = -(-row_tiles // tiles_per_task)
    _fill_task_body(task, shape, tiles_per_task)
    pointers = [a_ptr, b_ptr, ir.Constant(_PTR, None) if c_ptr is None else c_ptr]
    pointers += epilogue.pointers if epilogue is not None else []
    ctx = pointer_context(builder, pointers)
    if parallel and tasks > 1:
        call_parallel_for(builder, task, ctx, tasks)
    else:
        _count_loop(builder, tasks, lambda t: builder.call(task, [ctx, t]))


def _fill_task_body(function, shape, tiles_per_task):
    """Task t computes row tiles [t * tiles_per_task, ...), the last one possibly short: for
    each, every column tile then the narrower column tail, each one call of a micro-kernel
    (:func:`_micro_kernel`) into C, or into a tile buffer that the epilogue then reads."""
    b = ir.IRBuilder(function.append_basic_block("entry"))
    ctx, task = function.args
    extra = len(shape.epilogue.pointers) if shape.epilogue is not None else 0
    a, bm, c, *shape.extra = load_context(b, ctx, 3 + extra)
    tile = None
    if shape.epilogue is not None:
        tile = b.alloca(shape.scalar, size=ir.Constant(_I64, shape.rows * shape.cols))
        tile.align = 64
    row_tiles = -(-shape.m // shape.rows)
    first = b.mul(task, ir.Constant(_I64, tiles_per_task))
    end = b.add(first, ir.Constant(_I64, tiles_per_task))
    end = b.select(b.icmp_unsigned("<", end, ir.Constant(_I64, row_tiles)), end,
                   ir.Constant(_I64, row_tiles))

    def row_tile(index):
        i0 = b.mul(b.add(first, index), ir.Constant(_I64, shape.rows))
        _row_panel(b, shape, a, bm, c, tile, i0)
    _count_loop(b, b.sub(end, first), row_tile)
    b.ret_void()


def _row_panel(b, shape, a, bm, c, tile, i0):
    """Rows [i0, i0 + rows) of C (rows = the tile height, fewer in the last row tile): every
    column tile, then the narrower column tail."""
    full_cols, tail = divmod(shape.n, shape.cols)
    short = shape.m % shape.rows
    rows = ir.Constant(_I64, shape.rows)
    if short:
        rows = b.select(b.icmp_unsigned("<", b.add(i0, rows), ir.Constant(_I64, shape.m)),
                        rows, ir.Constant(_I64, short))
    if full_cols:
        def column_tile(index):
            _tile(b, shape, a, bm, c, tile, i0, b.mul(index, ir.Constant(_I64, shape.cols)),
                  rows, shape.cols)
        _count_loop(b, full_cols, column_tile)
    if tail:
        _tile(b, shape, a, bm, c, tile, i0, ir.Constant(_I64, full_cols * shape.cols), rows,
              tail)


def _tile(b, shape, a, bm, c, tile, i0, j0, rows, width):
    """C[i0:i0+rows, j0:j0+width] by one micro-kernel call (``rows`` an i64, at most the
    tile height), then the epilogue over the tile buffer."""
    if shape.ta:          # A[p, i] at a + p*m + i
        a_tile, a_row, a_step = _offset(b, shape, a, i0), 1, shape.m
    else:                 # A[i, p] at a + i*k + p
        a_tile, a_row, a_step = _offset(b, shape, a, b.mul(i0, ir.Constant(_I64, shape.k))), \
            shape.k, 1
    if shape.tb:          # B[j, p] at b + j*k + p
        b_tile, b_stride = _offset(b, shape, bm, b.mul(j0, ir.Constant(_I64, shape.k))), shape.k
    else:                 # B[p, j] at b + p*n + j
        b_tile, b_stride = _offset(b, shape, bm, j0), shape.n
    if tile is None:
        out, ldc = _address(b, shape, c, i0, j0, shape.n), shape.n
    else:
        out, ldc = tile, shape.cols
    arguments = [a_tile, ir.Constant(_I64, a_row), ir.Constant(_I64, a_step), b_tile,
                 ir.Constant(_I64, b_stride), ir.Constant(_I64, shape.k), out,
                 ir.Constant(_I64, ldc), rows, ir.Constant(_I64, width)]
    # Dot tiles always use the full-width kernel (the column count is an argument); outer
    # tiles have one kernel per width (its vectors), each taking the row count.
    kernel_width = shape.cols if shape.tb else width
    b.call(_micro_kernel(b.module, shape, shape.rows, kernel_width), arguments)
    if tile is not None:
        _count_loop(b, rows, lambda r: _epilogue_row(b, shape, tile, i0, j0, r, width))


def _epilogue_row(b, shape, tile, i0, j0, r, width):
    """The epilogue on row ``r`` of the tile buffer: its whole vectors in a loop (one copy of
    the epilogue's code), then the narrower tail vectors."""
    i = b.add(i0, r)
    row = _offset(b, shape, tile, b.mul(r, ir.Constant(_I64, shape.cols)))

    def piece(off, vt):
        value = b.load(_offset(b, shape, row, off), typ=vt, align=_BYTES[shape.dtype])
        shape.epilogue.emit(b, shape.extra, i, b.add(j0, off), value)

    whole, offset = width // shape.lanes, 0
    if whole:
        _count_loop(b, whole, lambda v: piece(b.mul(v, ir.Constant(_I64, shape.lanes)),
                                              shape.vector(shape.lanes)))
        offset = whole * shape.lanes
    for lanes in shape.widths(width - offset):
        piece(ir.Constant(_I64, offset), shape.vector(lanes))
        offset += lanes


_KERNEL_ARGUMENTS = ("a", "a_row", "a_step", "b", "b_stride", "k", "c", "ldc", "rows", "cols")


def _micro_kernel(module, shape, rows, width):
    """The module's function computing one tile of at most ``rows x width``, made on first
    use and shared by every product of the module with that tile, kind and dtype::

        void (ptr a, i64 a_row, i64 a_step, ptr b, i64 b_stride, i64 k, ptr c, i64 ldc,
              i64 rows, i64 cols)

    A[r, p] is at ``a + r*a_row + p*a_step``; B[p, j] at ``b + p*b_stride + j`` (outer
    product) or B[j, p] at ``b + j*b_stride + p`` (dot); the tile goes to ``c + r*ldc + j``.
    Only the first ``rows`` rows (1 <= rows <= the kernel's) are read and stored, and for a
    dot tile only the first ``cols`` columns: the missing ones are computed again from the
    last real row or column and dropped, so a short last tile needs no kernel of its own.
    Sizes and strides are arguments: one body serves any product, where code specialised
    to each call site made the tiles ~87% of a train step's IR (and of its LLVM time)."""
    kind = "dot" if shape.tb else "outer"
    name = f"gs.mm.{kind}.{shape.dtype}x{shape.lanes}.{rows}x{width}"
    function = module.globals.get(name)
    if function is not None:
        return function
    function = ir.Function(module, ir.FunctionType(
        ir.VoidType(), [_PTR, _I64, _I64, _PTR, _I64, _I64, _PTR, _I64, _I64, _I64]), name)
    function.linkage = "internal"
    function.attributes.add("nounwind")
    function.attributes.add("noinline")
    for argument, label in zip(function.args, _KERNEL_ARGUMENTS):
        argument.name = label
    for index in (0, 3, 6):
        function.args[index].add_attribute("noalias")
    b = ir.IRBuilder(function.append_basic_block("entry"))
    (_dot_tile if shape.tb else _outer_tile)(b, shape, *function.args, rows, width)
    b.ret_void()
    return function


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


def _reduction_loop(b, trip, accumulators, step, may_skip=False):
    """``for p in range(trip)`` (a Python int or an i64 value >= 1, or >= 0 with
    ``may_skip``), carrying ``accumulators`` (list of values) through phis; ``step(p, values)
    -> values``. Returns the final values."""
    if isinstance(trip, int):
        trip = ir.Constant(_I64, trip)
    preheader = b.block
    loop = b.function.append_basic_block("mm.p")
    after = b.function.append_basic_block("mm.p.end")
    if may_skip:
        b.cbranch(b.icmp_signed(">", trip, ir.Constant(_I64, 0)), loop, after)
    else:
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
    latch = b.block
    following = b.add(p, ir.Constant(_I64, 1), flags=("nuw", "nsw"))
    p.add_incoming(following, latch)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, latch)
    b.cbranch(b.icmp_unsigned("<", following, trip), loop, after)
    b.position_at_end(after)
    if not may_skip:
        return updated
    merged = []
    for initial, value in zip(accumulators, updated):
        phi = b.phi(value.type)
        phi.add_incoming(initial, preheader)
        phi.add_incoming(value, latch)
        merged.append(phi)
    return merged


def _clamped(b, index, count):
    """``min(index, count - 1)`` for a Python int ``index`` and an i64 ``count`` >= 1."""
    if index == 0:
        return ir.Constant(_I64, 0)
    last = b.sub(count, ir.Constant(_I64, 1))
    return b.select(b.icmp_unsigned("<", ir.Constant(_I64, index), count),
                    ir.Constant(_I64, index), last)


def _stores_up_to(b, count, total, store):
    """``store(r)`` for r < ``count`` (an i64, 1..total): the first unconditionally, each
    further one only while r < count."""
    store(0)
    for r in range(1, total):
        with b.if_then(b.icmp_unsigned("<", ir.Constant(_I64, r), count)):
            store(r)


def _outer_tile(b, shape, a, a_row, a_step, bm, b_stride, k, c, ldc, count, _cols, rows,
                width):
    """c[r, 0:width] = sum_p A[r, p] * B[p, 0:width] for r < count <= rows (k >= 1)."""
    pieces, offset = [], 0
    for lanes in shape.widths(width):
        pieces.append((offset, shape.vector(lanes)))
        offset += lanes
    zeros = [_zeros(vt) for _ in range(rows) for _, vt in pieces]
    # Loop-invariant addresses are formed once, before the p loop: per step each row costs
    # one gep, one load, one broadcast per vector width and its FMAs.
    columns = [ir.Constant(_I64, off) for off, _ in pieces]
    a_bases = [_offset(b, shape, a, b.mul(a_row, _clamped(b, r, count))) for r in range(rows)]

    def step(p, accumulators):
        b_row = _offset(b, shape, bm, b.mul(p, b_stride))
        row_vectors = [_load(b, _offset(b, shape, b_row, j), vt, shape)
                       for j, (_, vt) in zip(columns, pieces)]
        a_offset = b.mul(p, a_step)
        updated = []
        for base in a_bases:
            scalar = _load(b, _offset(b, shape, base, a_offset), shape.scalar, shape)
            broadcast = {}
            for (_, vt), row_vector in zip(pieces, row_vectors):
                if vt.count not in broadcast:
                    broadcast[vt.count] = _splat(b, scalar, vt.count)
                acc = accumulators[len(updated)]
                updated.append(_fma(b, broadcast[vt.count], row_vector, acc))
        return updated

    sums = _reduction_loop(b, k, zeros, step)

    def store(r):
        row = _offset(b, shape, c, b.mul(ldc, ir.Constant(_I64, r)))
        for index, j in enumerate(columns):
            b.store(sums[r * len(columns) + index], _offset(b, shape, row, j),
                    align=_BYTES[shape.dtype])
    _stores_up_to(b, count, rows, store)


def _dot_tile(b, shape, a, a_row, a_step, bm, b_stride, k, c, ldc, count, col_count, rows,
              cols):
    """c[r, j] = sum_p A[r, p] * B[j, p] for r < count <= rows, j < col_count <= cols, both
    contiguous along p (``a_step`` is 1): vector partial sums over whole vectors of p, folded
    to one 4-lane vector per row, then scalar FMAs for the last ``k % lanes`` steps."""
    lanes = shape.lanes
    vt = shape.vector(lanes)
    chunks = b.udiv(k, ir.Constant(_I64, lanes))
    a_rows = [_offset(b, shape, a, b.mul(a_row, _clamped(b, r, count))) for r in range(rows)]
    b_rows = [_offset(b, shape, bm, b.mul(b_stride, _clamped(b, j, col_count)))
              for j in range(cols)]

    def step(p, accumulators):
        start = b.mul(p, ir.Constant(_I64, lanes))
        a_vectors = [_load(b, _offset(b, shape, row, start), vt, shape) for row in a_rows]
        updated = list(accumulators)
        for jj, row in enumerate(b_rows):
            b_vector = _load(b, _offset(b, shape, row, start), vt, shape)
            for r in range(rows):
                slot = r * cols + jj
                updated[slot] = _fma(b, a_vectors[r], b_vector, accumulators[slot])
        return updated

    sums = _reduction_loop(b, chunks, [_zeros(vt)] * (rows * cols), step, may_skip=True)
    totals = [_fold_rows(b, shape, sums[r * cols:(r + 1) * cols]) for r in range(rows)]
    out_type = totals[0].type
    done = b.mul(chunks, ir.Constant(_I64, lanes))

    def tail_step(q, accumulators):
        p = b.add(done, q)
        packed = _zeros(out_type)
        for jj, row in enumerate(b_rows):
            value = _load(b, _offset(b, shape, row, p), shape.scalar, shape)
            packed = b.insert_element(packed, value, ir.Constant(_I32, jj))
        return [_fma(b, _splat(b, _load(b, _offset(b, shape, row, p), shape.scalar, shape),
                               out_type.count), packed, total)
                for row, total in zip(a_rows, accumulators)]

    totals = _reduction_loop(b, b.sub(k, done), totals, tail_step, may_skip=True)
    lanes_of = ir.VectorType(_I64, out_type.count)
    mask = b.icmp_unsigned("<", ir.Constant(lanes_of, list(range(out_type.count))),
                           _splat(b, col_count, out_type.count))
    suffix = f"v{out_type.count}{shape.dtype}.p0"
    masked_store = b.module.globals.get(f"llvm.masked.store.{suffix}") or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), [out_type, _PTR, _I32, mask.type]),
        f"llvm.masked.store.{suffix}")

    def store(r):       # lanes j < col_count of row r
        row = _offset(b, shape, c, b.mul(ldc, ir.Constant(_I64, r)))
        b.call(masked_store, [totals[r], row, ir.Constant(_I32, _BYTES[shape.dtype]), mask])
    _stores_up_to(b, count, rows, store)


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
