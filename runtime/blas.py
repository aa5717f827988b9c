"""Binding of JIT code to an external BLAS (scipy-openblas32) for large matrix products.

Generated kernels call ``scipy_cblas_sgemm`` / ``scipy_cblas_dgemm`` (32-bit ints, row-major
CBLAS). :func:`ensure_blas` loads ``libscipy_openblas`` from the ``scipy_openblas32`` wheel once and
registers those symbols with LLVM (``llvm.add_symbol``) so MCJIT resolves them. It returns False
when the package or library is missing; the engine then refuses modules that need BLAS with a
clear error instead of letting MCJIT abort on an unresolved symbol.

Threads. OpenBLAS runs one thread: generated code cuts a large product into blocks of rows
(or columns) of C, one single-threaded sgemm call each, and runs them as tasks on the
runtime's own pool (``codegen.matmul._emit_blas_tasks``, :mod:`.thread_pool`). So a compiled
program has one pool, not two whose workers spin against each other between the products and
the elementwise kernels of a step; and a worker that the OS deschedules on a loaded machine
only means the caller runs more blocks, where OpenBLAS's static split waits for it. It also
keeps OpenBLAS's pool from starving numpy's (numpy bundles its own OpenBLAS,
``libscipy_openblas64_``, whose workers spin after each call too: alternating a compiled and a
numpy 256^3 product took 8-16 ms per pair with two spinning pools, 0.8 ms without).
``GRAPHSPORE_BLAS_THREADS`` (or :func:`set_num_threads`) gives OpenBLAS more threads for each
block's call, which only pays with ``GRAPHSPORE_NUM_THREADS=1`` (the blocks then run one
after the other on the calling thread); the thread count follows the process' affinity mask
either way (:func:`.target.usable_cpus`, never more than the CPUs it may run on).
"""

import ctypes
import os
import threading

import llvmlite.binding as llvm

from .fork_guard import guard
from .target import requested_threads

SYMBOLS = ("scipy_cblas_sgemm", "scipy_cblas_dgemm")
_lock = guard(threading.Lock(), hold=False)  # a leaf lock, taken under LLVM_LOCK
_state = {"loaded": None, "library": None, "path": None}


def library_path():
    """Absolute path of libscipy_openblas, or None if scipy_openblas32 is not installed."""
    try:
        import scipy_openblas32
    except ImportError:
        return None
    path = os.path.join(scipy_openblas32.get_lib_dir(),
                        scipy_openblas32.get_library(fullname=True))
    return path if os.path.exists(path) else None


def ensure_blas():
    """Load the BLAS and register its gemm symbols with LLVM, once. True if available."""
    if _state["loaded"] is not None:
        return _state["loaded"]
    with _lock:
        if _state["loaded"] is None:
            _state["loaded"] = _load()
    return _state["loaded"]


def _load():
    path = library_path()
    if path is None:
        return False
    try:
        library = ctypes.CDLL(path)
        for name in SYMBOLS:
            address = ctypes.cast(getattr(library, name), ctypes.c_void_p).value
            llvm.add_symbol(name, address)
    except (OSError, AttributeError):
        return False
    _state["library"] = library
    _state["path"] = path
    set_num_threads(_default_threads())
    return True


def _default_threads():
    """``GRAPHSPORE_BLAS_THREADS`` if set (at most the usable CPUs: a process pinned to one
    core must not run two BLAS threads on it), else 1: parallelism comes from splitting each
    product over the runtime's pool (module docstring)."""
    return requested_threads("GRAPHSPORE_BLAS_THREADS", 1)


def set_num_threads(count):
    """Set the scipy-openblas thread pool size (no-op when BLAS is not loaded)."""
    library = _state["library"]
    if library is not None:
        library.scipy_openblas_set_num_threads(ctypes.c_int(int(count)))


def get_num_threads():
    """Current scipy-openblas thread count, or 0 when BLAS is not loaded."""
    library = _state["library"]
    if library is None:
        return 0
    return int(library.scipy_openblas_get_num_threads())
