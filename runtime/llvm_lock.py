"""The process-wide LLVM lock and the error LLVM failures raise, shared by the engine, the
linker and the thread pool (which compiles itself through the engine).

llvmlite serialises single C calls, but a module being built, optimised or code-generated
from two threads at once is still a race: all LLVM work runs under :data:`LLVM_LOCK`.
"""

import threading

from .fork_guard import guard

LLVM_LOCK = guard(threading.RLock())  # a fork waits for LLVM work in flight (fork_guard.py)


class CompileError(RuntimeError):
    """LLVM rejected the module (parse or verify error, or an unresolved external symbol)."""
