"""graphspore.runtime: LLVM host target, JIT engine with on-disk object cache, buffers, and the
Executable that checks arguments and calls compiled kernels, and the native thread pool kernels
split their work over (:mod:`.thread_pool`).

Imports only llvmlite, numpy and the standard library (plus scipy_openblas32, located lazily by
:mod:`.blas`).
"""

from .blas import ensure_blas
from .buffers import WorkspacePool, aligned_empty
from .cache import cache_dir, clear as clear_cache
from .engine import CompiledModule
from .executable import ArgumentError, Executable
from .linker import compile_module
from .llvm_lock import CompileError
from .print_callback import set_print_handler
from .target import add_function_attributes, function_attributes, host
from .thread_pool import ensure_pool

__all__ = [
    "ArgumentError", "CompileError", "CompiledModule", "Executable", "WorkspacePool",
    "add_function_attributes", "aligned_empty", "cache_dir", "clear_cache", "compile_module",
    "ensure_blas", "ensure_pool", "function_attributes", "host", "set_print_handler",
]
