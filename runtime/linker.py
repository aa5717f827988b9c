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
import threading

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


_prefetch = {"thread": None}


def prefetch():
    """Compile the thread pool's module on a background thread, once per process, so that a
    cold first compile does not wait for it: started when a compile begins, it runs on another
    core while the Python stages (parse, passes, IR emission) hold the GIL, and it is done
    long before the module that calls ``gs_parallel_for`` is bound (the pool compile holds
    :data:`.llvm_lock.LLVM_LOCK`, so a compile reaching LLVM first just waits for it). The
    thread is not a daemon: exiting waits for the compile instead of tearing LLVM down under
    it. Workers are not started here (:func:`bind_on_demand` does that, as before)."""
    if _prefetch["thread"] is not None:
        return
    _prefetch["thread"] = threading.Thread(target=_preload_pool, name="gs-pool-prefetch")
    _prefetch["thread"].start()


def _preload_pool():
    try:
        thread_pool.preload()
    except Exception:  # noqa: BLE001 - recorded by the pool; the compile that needs it reports
        pass


def compile_module(llvm_ir, entry_names):
    """Compile ``llvm_ir`` for the host (:func:`.engine.compile_module`), binding BLAS and the
    thread pool when the module declares them."""
    return engine.compile_module(llvm_ir, entry_names, bind_external=bind_on_demand)
