"""Parse, optimise and code-generate several independent modules at once, one thread each.

Why not plain llvmlite calls: every call into libllvmlite takes one process-wide lock
(``llvmlite.binding.ffi.lib._lock``), held for the whole call, so two threads that each run
the pass pipeline take turns. The four long calls (parse, verify, run the pass manager, emit
the object) are therefore made through the underlying ctypes functions (:func:`_unlocked`),
which release the GIL and take no lock. This is safe because each thread owns everything those
calls touch: its own LLVMContext (the module is parsed into it), TargetMachine and pass builder.
LLVM supports concurrent compilation in separate contexts (lld's parallel LTO codegen does the
same); what is process-wide (the target registry, command-line options, the symbol table MCJIT
resolves against) is only read here. The short calls (creating a context, pass builder, freeing
strings) keep llvmlite's lock.

Threads: :func:`compile_objects` starts ``min(len(jobs), compile_threads()) - 1`` workers, runs
its own share on the calling thread and joins them all before it returns or raises, so no
thread outlives a compile and a fork (which waits for the engine's :data:`LLVM_LOCK`, held
around this call) never copies one mid-compile.
"""

import ctypes
import queue
import threading

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from .llvm_lock import CompileError
from .target import host, requested_threads, usable_cpus


# Default cap: a part costs about 2 ms of its own, and a program has a few dozen kernels.
MAX_DEFAULT_THREADS = 8


def compile_threads():
    """How many threads a compile may use: ``GRAPHSPORE_COMPILE_THREADS`` if set (at most the
    usable CPUs), else the CPUs this process may run on (``os.sched_getaffinity``), at most
    :data:`MAX_DEFAULT_THREADS`."""
    return requested_threads("GRAPHSPORE_COMPILE_THREADS",
                             min(usable_cpus(), MAX_DEFAULT_THREADS))


def _unlocked(name):
    """The ctypes function behind llvmlite's ``ffi.lib.<name>``, without llvmlite's lock."""
    return getattr(ffi.lib, name)._cfn


class PartError(CompileError):
    """LLVM rejected one part (parse or verification): the caller recompiles the whole text,
    whose error message names the line of the text it was given."""


def compile_object(text, optimize):
    """Object code (ELF bytes) of module ``text``, optimised by ``optimize(module, tm)``,
    compiled in a private context on the calling thread."""
    target = host()
    context = llvm.create_context()
    module = None
    try:
        with ffi.OutputString() as error:
            pointer = _unlocked("LLVMPY_ParseAssembly")(
                context, ctypes.c_char_p(text.encode()), error)
            if error:
                raise PartError(f"LLVM IR parse error: {error}")
        module = llvm.ModuleRef(pointer, context)
        module.triple = target.triple
        module.data_layout = target.data_layout
        with ffi.OutputString() as error:
            if _unlocked("LLVMPY_VerifyModule")(module, error):
                raise PartError(f"LLVM IR verification failed: {error}")
        machine = target.create_target_machine()
        optimize(module, machine, _unlocked("LLVMPY_RunNewModulePassManager"))
        with ffi.OutputString() as error:
            buffer = _unlocked("LLVMPY_TargetMachineEmitToMemory")(machine, module, 1, error)
            if not buffer:
                raise CompileError(f"LLVM code generation failed: {error}")
        try:
            return ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buffer),
                                    ffi.lib.LLVMPY_GetBufferSize(buffer))
        finally:
            ffi.lib.LLVMPY_DisposeMemoryBuffer(buffer)
    finally:
        if module is not None:
            module.close()
        context.close()


def compile_objects(jobs, on_calling_thread=None):
    """Object code for each ``(text, optimize, cost)`` of ``jobs`` (:func:`compile_object`),
    in order, compiled on up to :func:`compile_threads` threads, the costliest first.
    ``on_calling_thread()``, if given, runs on the calling thread once the workers have
    started (the engine binds external symbols there meanwhile). The first exception raised
    anywhere is re-raised here after every thread has finished."""
    results = [None] * len(jobs)
    errors = []
    work = queue.SimpleQueue()
    for index in sorted(range(len(jobs)), key=lambda k: -jobs[k][2]):
        work.put(index)

    def drain():
        while not errors:
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            text, optimize, _ = jobs[index]
            try:
                results[index] = compile_object(text, optimize)
            except BaseException as error:  # noqa: BLE001 - re-raised on the calling thread
                errors.append(error)

    workers = [threading.Thread(target=drain, name=f"gs-llvm-compile-{k}", daemon=True)
               for k in range(min(len(jobs), compile_threads()) - 1)]
    for worker in workers:
        worker.start()
    try:
        if on_calling_thread is not None:
            on_calling_thread()
        drain()
    except BaseException as error:  # noqa: BLE001
        errors.append(error)
    finally:
        for worker in workers:
            worker.join()
    if errors:
        raise errors[0]
    return results
