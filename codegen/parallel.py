"""Kernels on the runtime's thread pool: the task calling convention, and which loops split.

Generated code hands work to ``gs_parallel_for(task, ctx, ntasks)``
(:mod:`graphspore.runtime.thread_pool`), which runs ``task(ctx, t)`` for t in [0, ntasks) on
the caller and the pool's workers. ``ctx`` is a stack array of the kernel's buffer pointers.
Matrix products split their row tiles (:mod:`.gemm_tiles`); other kernels split their
outermost loop when :func:`outer_split` allows it.

A kernel is split when its whole body is one loop whose iterations are independent: every
store inside writes at an affine index (never one holding a load, as a scatter's does: two
iterations may then write one element) that steps with the outer variable (so iterations write
disjoint elements: the lowerings index outputs row-major, outer axis first), and every load
of a buffer the kernel also stores to reads at exactly a stored index (an in-place update
reading its own element). Elementwise kernels, copies, tiled transposes and reductions
whose kept axis is outermost qualify; reductions that accumulate into their output buffer
(two top-level loops) and pad/concat do not, and neither do matrix products (they split
themselves, see `gemm_tiles`).

Tasks get contiguous chunks of the outer range, at least `MIN_TASK_ITERATIONS` innermost
iterations each (a hand-off to another core costs ~0.2-0.5 us, the time of ~16k simple
elements), at most `MAX_TASKS`.
"""
from __future__ import annotations

from llvmlite import ir

from . import loops as L

PARALLEL_SYMBOL = "gs_parallel_for"
_I64 = ir.IntType(64)
_PTR = ir.PointerType()
MIN_TASK_ITERATIONS = 16 * 1024
MAX_TASKS = 16


def outer_split(kernel: L.Kernel) -> tuple[int, int] | None:
    """(tasks, chunk) when `kernel`'s outer loop runs as `tasks` chunks of `chunk` iterations
    (the last one shorter), or None when it stays one serial loop."""
    if len(kernel.body) != 1 or not isinstance(kernel.body[0], L.Loop):
        return None
    loop = kernel.body[0]
    per_iteration = _iterations(loop.body)
    if per_iteration is None or not _independent(loop):
        return None
    tasks = min(MAX_TASKS, loop.extent, loop.extent * per_iteration // MIN_TASK_ITERATIONS)
    if tasks < 2:
        return None
    chunk = -(-loop.extent // tasks)
    return -(-loop.extent // chunk), chunk


def _iterations(body: list) -> int | None:
    """Innermost iterations of one pass over `body`; None if it holds a matrix product."""
    total = 0
    for stmt in body:
        if isinstance(stmt, L.Loop):
            inner = _iterations(stmt.body)
            if inner is None:
                return None
            total += stmt.extent * max(inner, 1)
        elif isinstance(stmt, (L.Matmul, L.Conv)):
            return None
        else:
            total += 1
    return total


def _independent(loop: L.Loop) -> bool:
    stores: list[L.Store] = []
    loads: list[L.Load] = []
    _collect(loop.body, stores, loads)
    if not stores:
        return False
    for store in stores:
        if L.loads_in(store.index):      # a scatter: where it writes depends on the data
            return False
        step = L.coefficient(store.index, loop.var)
        if step is None or step <= 0:
            return False
    written = {id(s.buffer): [L.print_expr(x.index) for x in stores if x.buffer is s.buffer]
               for s in stores}
    return all(L.print_expr(load.index) in written[id(load.buffer)]
               for load in loads if id(load.buffer) in written)


def _collect(body: list, stores: list, loads: list) -> None:
    for stmt in body:
        if isinstance(stmt, L.Loop):
            _collect(stmt.body, stores, loads)
        elif isinstance(stmt, L.Store):
            stores.append(stmt)
            loads.extend(L.loads_in(stmt.value) + L.loads_in(stmt.index))
        elif isinstance(stmt, L.Assign):
            loads.extend(L.loads_in(stmt.value))


# ----------------------------------------------------------------------- the task convention

def task_function(module: ir.Module, name: str) -> ir.Function:
    """A new internal ``void name(ptr ctx, i64 task)``."""
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR, _I64]), name)
    function.linkage = "internal"
    function.attributes.add("nounwind")
    function.args[0].name, function.args[1].name = "ctx", "task"
    return function


def pointer_context(builder: ir.IRBuilder, pointers: list) -> ir.Value:
    """A stack array holding ``pointers``: the ``ctx`` every task receives."""
    ctx = builder.alloca(_PTR, size=ir.Constant(_I64, len(pointers)), name="ctx")
    for index, pointer in enumerate(pointers):
        builder.store(pointer, builder.gep(ctx, [ir.Constant(_I64, index)], source_etype=_PTR))
    return ctx


def load_context(builder: ir.IRBuilder, ctx: ir.Value, count: int) -> list:
    """The ``count`` pointers of ``ctx``, inside a task."""
    return [builder.load(builder.gep(ctx, [ir.Constant(_I64, i)], source_etype=_PTR), typ=_PTR)
            for i in range(count)]


def call_parallel_for(builder: ir.IRBuilder, task: ir.Function, ctx: ir.Value,
                      tasks: int) -> None:
    """``gs_parallel_for(task, ctx, tasks)``: returns when every task has run."""
    module = builder.module
    pool = module.globals.get(PARALLEL_SYMBOL) or ir.Function(
        module, ir.FunctionType(ir.VoidType(), [_PTR, _PTR, _I64]), PARALLEL_SYMBOL)
    builder.call(pool, [task, ctx, ir.Constant(_I64, tasks)])
