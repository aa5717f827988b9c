"""Compile a module whose external symbols are bound on demand: the runtime's public
``compile_module``.

Modules may declare five kinds of external functions besides LLVM intrinsics: libc's malloc
and free (:data:`LIBC_SYMBOLS`), BLAS
(``scipy_cblas_sgemm``/``dgemm``, :mod:`.blas`), the thread pool's ``gs_parallel_for``
(:mod:`.thread_pool`), the print callback ``gs_print`` (:mod:`.print_callback`) and the
all-reduce functions (:mod:`.collective`: MPI's once ``communication.init()`` bound them, else
the one-process identity). :func:`bind_on_demand` loads the library or starts the pool the first
time a module needs it. The engine stays below both (the pool compiles itself through it), so
``runtime`` has no import cycle.
"""

import ctypes

import llvmlite.binding as llvm

from . import blas, collective, engine, hook_callback, print_callback, thread_pool
from .llvm_lock import CompileError

# libc functions generated code may call (convolutions allocate their packing scratch);
# MCJIT does not see the process's libc by itself, so they are bound by address.
LIBC_SYMBOLS = ("malloc", "free")


def bind_on_demand(name):
    """Make external function ``name`` resolvable if the runtime provides it; raise
    :class:`CompileError` when it provides it but cannot load it here."""
    if name in blas.SYMBOLS and not blas.ensure_blas():
        raise CompileError(f"module calls {name} but scipy-openblas32 is not available")
    if name in collective.SYMBOLS:
        collective.ensure_collectives()
    if name in thread_pool.SYMBOLS and not thread_pool.ensure_pool():
        raise CompileError(f"module calls {name} but the thread pool could not be built: "
                           f"{thread_pool.pool_error()}")
    if name in print_callback.SYMBOLS:
        print_callback.ensure_print_callback()
    if name in hook_callback.SYMBOLS:
        hook_callback.ensure_hook_callback()
    if name in LIBC_SYMBOLS and not llvm.address_of_symbol(name):
        llvm.add_symbol(name, ctypes.cast(getattr(ctypes.CDLL(None), name),
                                          ctypes.c_void_p).value)


def compile_module(llvm_ir, entry_names):
    """Compile ``llvm_ir`` for the host (:func:`.engine.compile_module`), binding BLAS and the
    thread pool when the module declares them."""
    return engine.compile_module(llvm_ir, entry_names, bind_external=bind_on_demand)
