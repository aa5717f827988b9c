"""Binding of JIT code to an external BLAS (scipy-openblas32) for large matrix products.

Generated kernels call ``scipy_cblas_sgemm`` / ``scipy_cblas_dgemm`` (32-bit ints, row-major
CBLAS). :func:`ensure_blas` loads ``libscipy_openblas`` from the ``scipy_openblas32`` wheel once and
registers those symbols with LLVM (``llvm.add_symbol``) so MCJIT resolves them. It returns False
when the package or library is missing; the engine then refuses modules that need BLAS with a
clear error instead of letting MCJIT abort on an unresolved symbol.

Threads. numpy bundles its own OpenBLAS (``libscipy_openblas64_``, different symbols) with its own
thread pool. Two pools spinning on the same few cores slow each other down a lot (measured in
shared/notes: numpy matmul and 2-thread sgemm both halved). The default here is
``GRAPHSPORE_BLAS_THREADS`` if set, else ``min(2, os.cpu_count())``: on the 2-core dev VM two
threads gave about 1.6x over one thread for n >= 256 when numpy's pool is idle, which is the
normal state while compiled code runs (numpy does no arithmetic on that path).
"""

import ctypes
import os
import threading

import llvmlite.binding as llvm

SYMBOLS = ("scipy_cblas_sgemm", "scipy_cblas_dgemm")
_lock = threading.Lock()
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
    requested = os.environ.get("GRAPHSPORE_BLAS_THREADS")
    if requested:
        try:
            return max(1, int(requested))
        except ValueError:
            pass
    return max(1, min(2, os.cpu_count() or 1))


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
