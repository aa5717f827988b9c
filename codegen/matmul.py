"""Matrix product kernels with static shapes: C[m, n] = op(A)[m, k] @ op(B)[k, n].

All buffers are row-major and contiguous; ``op`` is the identity or the transpose
(``transpose_a``: A is stored as [k, m]; ``transpose_b``: B is stored as [n, k]).

Three strategies, chosen per call site from the static sizes (:func:`choose_strategy`):

- Register tiles (float32/float64 up to ``TILES_MAX_FMAS`` multiply-adds, a graph's float32
  products up to ``LARGE_TILES_MAX_FMAS`` with AVX-512, not both operands transposed):
  :mod:`.gemm_tiles`' micro-kernels, split into row tasks that run on the runtime's thread
  pool. At the sizes a training step of a small model
  has (64x128x128), this beats OpenBLAS, which pays for dispatch, packing and a wake-up of its
  own threads on every call.
- BLAS (larger float products): ``scipy_cblas_sgemm`` / ``scipy_cblas_dgemm`` from
  scipy-openblas32 (row-major CBLAS, 32-bit ints). The runtime binds the symbols listed in
  :data:`BLAS_SYMBOLS` before compiling. Its cache blocking wins once the operands leave L2.
  The product is cut into up to :data:`BLAS_MAX_TASKS` blocks of rows of C (of columns when
  C is wider than tall), each one single-threaded sgemm call, run as tasks on the runtime's
  thread pool (:func:`_emit_blas_tasks`); OpenBLAS's own pool stays at one thread. Why:
  one pool for the whole program instead of two that spin against each other between the
  products and the elementwise kernels of a step, and on a loaded machine a descheduled
  worker delays nothing (the caller claims its blocks), where OpenBLAS's static split waits
  for it: measured on the 2-core VM under load, n=256..1024, 1.1-10x faster than OpenBLAS
  with 2 threads, and about equal when quiet.
- Generated loops (integer products, and float products with both operands transposed that
  are too small for BLAS): without ``transpose_b`` the nest is i-p-j (C row zeroed, then
  ``C[i, :] += A[i, p] * B[p, :]``), whose inner loop is unit-stride and vectorises to FMA;
  with ``transpose_b`` it is i-j-p with a register accumulator.
"""

from llvmlite import ir

from . import gemm_tiles
from .gemm_tiles import emit_tiled_matmul
from .parallel import call_parallel_for, load_context, pointer_context, task_function

BLAS_SYMBOLS = {"f32": "scipy_cblas_sgemm", "f64": "scipy_cblas_dgemm"}
BLAS_THRESHOLD = 16 * 16 * 16
# Blocks of a BLAS product run as pool tasks: at most this many (and at most one per usable
# CPU), each at least this many rows (or columns) of C, a multiple of 16 (OpenBLAS's
# micro-tile height here). Every block packs its own copy of the shared operand, so blocks
# stay large: on 2 CPUs 4 blocks cost 5-7% more CPU time than 2 at n = 1024 (1-2% at 2048;
# one thread, same process, interleaved), more than dynamic balance wins back on a quiet
# machine.
BLAS_MAX_TASKS = 4
BLAS_MIN_TASK_ROWS = 64
_INT32_MAX = 2 ** 31 - 1
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_CONTRACT = ("contract",)
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)

_ELEMENT_TYPES = {
    "f32": ir.FloatType(),
    "f64": ir.DoubleType(),
    "i32": ir.IntType(32),
    "i64": ir.IntType(64),
}
_ELEMENT_BYTES = {"f32": 4, "f64": 8, "i32": 4, "i64": 8}


def uses_blas(m, n, k, dtype):
    """True when :func:`emit_matmul` will call BLAS for these sizes and dtype."""
    return (dtype in BLAS_SYMBOLS and m > 0 and n > 0 and k > 0
            and m * n * k > BLAS_THRESHOLD and max(m, n, k) <= _INT32_MAX)


TILES_MAX_FMAS = 1 << 22
# A graph's own float32 products (`large_tiles`) keep register tiles up to 512^3 on targets
# with 32 vector registers (AVX-512): there the 12 x 32 tiles ran at 96 GFLOP/s per
# CPU-second at n = 256 and 512 against OpenBLAS's 77-88 (one thread, CPU time, same
# process, interleaved). Above, B's rows 4 KB apart alias in the caches of the unpacked tiles
# (57 GFLOP/s at n = 1024, 15 at 2048) and OpenBLAS's packing wins.
LARGE_TILES_MAX_FMAS = 1 << 27


def tiles_limit(dtype, large_tiles=False):
    """The most multiply-adds a product takes as register tiles."""
    if large_tiles and dtype == "f32":
        from ..runtime.target import host
        if host().vector_width_bits >= 512:
            return LARGE_TILES_MAX_FMAS
    return TILES_MAX_FMAS


def choose_strategy(m, n, k, dtype, transpose_a=False, transpose_b=False, large_tiles=False):
    """'tiles', 'blas' or 'loops' for a product of these static sizes. ``large_tiles``: a
    graph's own matmul (conv's per-image products keep :data:`TILES_MAX_FMAS`)."""
    if (gemm_tiles.supported(m, n, k, dtype, transpose_a, transpose_b)
            and m * n * k <= tiles_limit(dtype, large_tiles)):
        return "tiles"
    if uses_blas(m, n, k, dtype):
        return "blas"
    return "loops"


def emit_matmul(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype,
                transpose_a=False, transpose_b=False, parallel=True, epilogue=None,
                alpha=None, accumulate=False, large_tiles=False):
    """Emit code at ``builder``'s position that writes C = op(A) @ op(B).

    ``m``, ``n``, ``k`` are Python ints (static shapes); ``dtype`` is 'f32', 'f64', 'i32' or
    'i64'. C must not overlap A or B. ``parallel=False`` keeps tiled products on the calling
    thread (no ``gs_parallel_for``: for objects linked outside this process). An
    :class:`~.gemm_tiles.Epilogue` replaces the store of C (``c_ptr`` is then None); only the
    tiles strategy takes one. ``alpha`` (a scalar LLVM value) and ``accumulate`` make the BLAS
    strategy compute C = alpha * op(A) @ op(B) (+ C): an SGD step on a large product as one
    call. ``large_tiles`` is :func:`choose_strategy`'s. On return ``builder`` is positioned
    after the product.
    """
    if dtype not in _ELEMENT_TYPES:
        raise ValueError(f"matmul dtype must be one of {sorted(_ELEMENT_TYPES)}, got {dtype!r}")
    for name, size in (("m", m), ("n", n), ("k", k)):
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"matmul size {name} must be a non-negative int, got {size!r}")
    if m == 0 or n == 0:
        return
    strategy = choose_strategy(m, n, k, dtype, transpose_a, transpose_b, large_tiles)
    if epilogue is not None and strategy != "tiles":
        raise ValueError(f"a {m}x{n}x{k} {dtype} product uses {strategy}, which takes no "
                         "epilogue (see epilogue_ok)")
    if (alpha is not None or accumulate) and strategy != "blas":
        raise ValueError(f"a {m}x{n}x{k} {dtype} product uses {strategy}, which takes no "
                         "alpha or accumulate")
    if k == 0:
        _emit_zero(builder, c_ptr, m * n * _ELEMENT_BYTES[dtype])
        return
    if strategy == "tiles":
        from ..runtime.target import host
        emit_tiled_matmul(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a,
                          transpose_b, host().vector_width_bits, parallel=parallel,
                          epilogue=epilogue)
    elif strategy == "blas":
        blocks = blas_blocks(m, n) if parallel else None
        if blocks is None:
            _emit_blas_call(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a,
                            transpose_b, alpha, accumulate)
        else:
            _emit_blas_tasks(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a,
                             transpose_b, alpha, accumulate, *blocks)
    elif transpose_b:
        _emit_dot_loops(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a)
    else:
        _emit_axpy_loops(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a)


def blas_blocks(m, n):
    """``(by_rows, block, tasks)`` when a BLAS product of C[m, n] runs as pool tasks (blocks
    of ``block`` rows of C, or columns when ``by_rows`` is False), else None."""
    by_rows = m >= n
    extent = m if by_rows else n
    tasks = min(BLAS_MAX_TASKS, _blas_cpus(), extent // BLAS_MIN_TASK_ROWS)
    if tasks < 2:
        return None
    block = -(-extent // tasks)
    block = -(-block // 16) * 16
    return by_rows, block, -(-extent // block)


def _blas_cpus():
    """CPUs this process may run on (the pool's default thread count)."""
    from ..runtime.target import usable_cpus
    return usable_cpus()


def _emit_blas_tasks(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a, transpose_b,
                     alpha, accumulate, by_rows, block, tasks):
    """C = op(A) @ op(B) as ``tasks`` sgemm calls on blocks of C's rows (``by_rows``) or
    columns, each a task of ``gs_parallel_for``. A row block starts at row i0 of op(A) and
    of C; a column block at column j0 of op(B) and of C; the leading dimensions stay those
    of the whole matrices. ``alpha`` reaches the tasks through a stack slot."""
    module = builder.module
    owner = builder.function.name
    task = task_function(
        module, f"{owner}.blas{sum(1 for g in module.globals if g.startswith(owner + '.blas'))}")
    element = _ELEMENT_TYPES[dtype]
    b = ir.IRBuilder(task.append_basic_block("entry"))
    ctx, t = task.args
    a, bm, c, alpha_slot = load_context(b, ctx, 4)
    extent = m if by_rows else n
    first = b.mul(t, ir.Constant(_I64, block))
    left = b.sub(ir.Constant(_I64, extent), first)
    count = b.trunc(b.select(b.icmp_signed("<", left, ir.Constant(_I64, block)), left,
                             ir.Constant(_I64, block)), _I32)

    def at(base, offset):
        return b.gep(base, [offset], source_etype=element)

    if by_rows:       # rows i0.. of op(A): A[i0, 0] (A stored [m, k]) or A[0, i0] ([k, m])
        a = at(a, first if transpose_a else b.mul(first, ir.Constant(_I64, k)))
        c = at(c, b.mul(first, ir.Constant(_I64, n)))
        sizes = (count, n)
    else:             # columns j0.. of op(B): B[0, j0] (B stored [k, n]) or B[j0, 0] ([n, k])
        bm = at(bm, b.mul(first, ir.Constant(_I64, k)) if transpose_b else first)
        c = at(c, first)
        sizes = (m, count)
    scale = None if alpha is None else b.load(alpha_slot, typ=element)
    _emit_blas_call(b, a, bm, c, *sizes, k, dtype, transpose_a, transpose_b, scale, accumulate,
                    leading=(m if transpose_a else k, k if transpose_b else n, n))
    b.ret_void()
    slot = ir.Constant(ir.PointerType(), None)
    if alpha is not None:
        slot = builder.alloca(element)
        builder.store(alpha, slot)
    call_parallel_for(builder, task, pointer_context(builder, [a_ptr, b_ptr, c_ptr, slot]),
                      tasks)


def _declare(module, name, function_type):
    function = module.globals.get(name)
    if function is None:
        function = ir.Function(module, function_type, name)
    return function


def _emit_zero(builder, c_ptr, nbytes):
    memset = builder.module.declare_intrinsic("llvm.memset", [ir.PointerType(), _I64])
    builder.call(memset, [c_ptr, ir.Constant(ir.IntType(8), 0), ir.Constant(_I64, nbytes),
                          ir.Constant(ir.IntType(1), 0)])


def _emit_blas_call(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a, transpose_b,
                    alpha=None, accumulate=False, leading=None):
    """One CBLAS gemm call; ``m``/``n`` may be i32 values (a block's size), ``leading`` the
    (lda, ldb, ldc) of the whole matrices when they are."""
    element = _ELEMENT_TYPES[dtype]
    ptr = ir.PointerType()
    function_type = ir.FunctionType(
        ir.VoidType(), [_I32] * 6 + [element, ptr, _I32, ptr, _I32, element, ptr, _I32])
    gemm = _declare(builder.module, BLAS_SYMBOLS[dtype], function_type)
    if leading is None:
        leading = (m if transpose_a else k, k if transpose_b else n, n)
    lda, ldb, ldc = (max(1, size) for size in leading)

    def i32(value):
        return value if isinstance(value, ir.Value) else ir.Constant(_I32, value)

    builder.call(gemm, [
        i32(_ROW_MAJOR), i32(_TRANS if transpose_a else _NO_TRANS),
        i32(_TRANS if transpose_b else _NO_TRANS), i32(m), i32(n), i32(k),
        ir.Constant(element, 1.0) if alpha is None else alpha, a_ptr, i32(lda), b_ptr, i32(ldb),
        ir.Constant(element, 1.0 if accumulate else 0.0), c_ptr, i32(ldc)])


def _no_unroll_loop_id(module):
    """A fresh loop ID ``!N = !{!N, !{!"llvm.loop.unroll.disable"}}``.

    Why: with constant trip counts <= 32 LLVM fully unrolls the unit-stride inner loop early
    in the O3 pipeline, LICM then turns the C row into scalars and neither vectoriser recovers
    (measured: 2 GFLOP/s at 32^3 instead of 15+). Forbidding the unroll leaves the loop to the
    loop vectoriser, which still interleaves it. MDValue is built directly because
    ``Module.add_metadata`` deduplicates by operands and cannot express the self-reference.
    """
    disable = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    loop_id = ir.values.MDValue(module, [disable], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, disable)
    return loop_id


def _for_range(builder, count, body, carried=None, no_unroll=False):
    """Emit ``for index in range(count)`` (count >= 1, a Python int).

    ``body(index, value) -> value`` emits the loop body; ``value`` is a loop-carried SSA value
    starting at ``carried`` (None when nothing is carried). Returns the final carried value.
    ``no_unroll`` attaches :func:`_no_unroll_loop_id` to the loop.
    """
    function = builder.function
    preheader = builder.block
    loop = function.append_basic_block("mm.loop")
    after = function.append_basic_block("mm.after")
    builder.branch(loop)
    builder.position_at_end(loop)
    index = builder.phi(_I64, name="mm.i")
    index.add_incoming(ir.Constant(_I64, 0), preheader)
    value = None
    if carried is not None:
        value = builder.phi(carried.type, name="mm.acc")
        value.add_incoming(carried, preheader)
    result = body(index, value)
    latch = builder.block
    following = builder.add(index, ir.Constant(_I64, 1))
    index.add_incoming(following, latch)
    if carried is not None:
        value.add_incoming(result, latch)
    branch = builder.cbranch(builder.icmp_unsigned("<", following, ir.Constant(_I64, count)),
                             loop, after)
    if no_unroll:
        branch.set_metadata("llvm.loop", _no_unroll_loop_id(builder.module))
    builder.position_at_end(after)
    return result


def _arith(dtype):
    """(multiply, add) emitters for ``dtype``; float ops may contract into FMA."""
    if dtype.startswith("f"):
        return (lambda b, x, y: b.fmul(x, y, flags=_CONTRACT),
                lambda b, x, y: b.fadd(x, y, flags=_CONTRACT))
    return (lambda b, x, y: b.mul(x, y), lambda b, x, y: b.add(x, y))


def _element(builder, base, element, row, column, row_stride):
    """Address of ``base[row * row_stride + column]``; row/column are i64 values."""
    offset = builder.add(builder.mul(row, ir.Constant(_I64, row_stride)), column)
    return builder.gep(base, [offset], source_etype=element)


def _emit_axpy_loops(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a):
    """i-p-j nest: C[i, :] = 0; C[i, :] += A[i, p] * B[p, :]. Inner loop unit-stride."""
    element = _ELEMENT_TYPES[dtype]
    multiply, add = _arith(dtype)
    _emit_zero(builder, c_ptr, m * n * _ELEMENT_BYTES[dtype])

    def row_body(i, _):
        def depth_body(p, _):
            if transpose_a:
                a_address = _element(builder, a_ptr, element, p, i, m)
            else:
                a_address = _element(builder, a_ptr, element, i, p, k)
            a_value = builder.load(a_address, typ=element)

            def column_body(j, _):
                b_value = builder.load(_element(builder, b_ptr, element, p, j, n), typ=element)
                c_address = _element(builder, c_ptr, element, i, j, n)
                c_value = builder.load(c_address, typ=element)
                builder.store(add(builder, c_value, multiply(builder, a_value, b_value)),
                              c_address)

            _for_range(builder, n, column_body, no_unroll=True)

        _for_range(builder, k, depth_body)

    _for_range(builder, m, row_body)


def _emit_dot_loops(builder, a_ptr, b_ptr, c_ptr, m, n, k, dtype, transpose_a):
    """i-j-p nest for B stored as [n, k]: C[i, j] = sum_p A[i, p] * B[j, p]."""
    element = _ELEMENT_TYPES[dtype]
    multiply, add = _arith(dtype)
    zero = ir.Constant(element, 0.0 if dtype.startswith("f") else 0)

    def row_body(i, _):
        def column_body(j, _):
            def depth_body(p, total):
                if transpose_a:
                    a_address = _element(builder, a_ptr, element, p, i, m)
                else:
                    a_address = _element(builder, a_ptr, element, i, p, k)
                a_value = builder.load(a_address, typ=element)
                b_value = builder.load(_element(builder, b_ptr, element, j, p, k), typ=element)
                return add(builder, total, multiply(builder, a_value, b_value))

            total = _for_range(builder, k, depth_body, carried=zero)
            builder.store(total, _element(builder, c_ptr, element, i, j, n))

        _for_range(builder, n, column_body)

    _for_range(builder, m, row_body)
