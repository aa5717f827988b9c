"""Binding of JIT code to an external BLAS (scipy-openblas32) for large matrix products.

Generated kernels call ``scipy_cblas_sgemm`` / ``scipy_cblas_dgemm`` (32-bit ints, row-major
CBLAS). :func:`ensure_blas` loads ``libscipy_openblas`` from the ``scipy_openblas32`` wheel once and
registers those symbols with LLVM (``llvm.add_symbol``) so MCJIT resolves them. It returns False
when the package or library is missing; the engine then refuses modules that need BLAS with a
clear error instead of letting MCJIT abort on an unresolved symbol.

Threads. numpy bundles its own OpenBLAS (``libscipy_openblas64_``, different symbols) with its own
thread pool, and OpenBLAS workers spin for a while after each call. Measured on the 2-core VM,
f32 256^3: scipy-openblas 1 thread 68-85 GFLOP/s, 2 threads 106; numpy 119-122. But alternating
one compiled product with one numpy product (what tests, the reference interpreter and eager
mode do all the time) took 0.73-0.81 ms per pair with 1 thread and 8-16 ms with 2 threads:
the two spinning pools starve each other. The default is every CPU in the process' affinity mask, since
only products above ``codegen.matmul.TILES_MAX_FMAS`` reach BLAS and those scale with cores;
set ``GRAPHSPORE_BLAS_THREADS=1`` (or call :func:`set_num_threads`) for a program that
alternates large numpy and graphspore products.
"""

import ctypes
import os
import threading

import llvmlite.binding as llvm

from .fork_guard import guard
from .target import usable_cpus

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
    """The CPUs this process may run on (its affinity mask, not ``os.cpu_count()``: a process
    pinned to one core must not run two BLAS threads on it), capped at 8: large GEMMs scale
    with them. A program that
    interleaves numpy and graphspore GEMMs can starve one pool with the other's spinning
    threads; GRAPHSPORE_BLAS_THREADS=1 avoids that."""
    requested = os.environ.get("GRAPHSPORE_BLAS_THREADS")
    if requested:
        try:
            return max(1, int(requested))
        except ValueError:
            pass
    return max(1, min(usable_cpus(), 8))


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
