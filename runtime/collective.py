"""Native all-reduce for JIT code: ``i32 gs_allreduce_<op>_<f32|f64>(ptr buf, i64 count)``.

Compiled step modules only *declare* these functions, so their IR text (the object-cache key)
holds no MPI constant and is the same under MPICH and Open MPI. The definitions come from a
small per-process *shim* module, generated here from the handles mpi4py reports at run time and
registered with ``llvm.add_symbol`` (as :mod:`.blas` and :mod:`.thread_pool` do):

- :func:`bind_mpi` (called by ``graphspore.communication.init()``): each function calls
  ``MPI_Allreduce(MPI_IN_PLACE, buf, n, type, op, comm)`` in chunks of at most
  :data:`CHUNK` elements (MPI counts are C ints) and ORs the return codes. Handles are ``i32``
  for the MPICH family (mask sign-extended values to 32 bits) and pointers for Open MPI.
- :func:`ensure_collectives` (called by the engine for a module that declares one of
  :data:`SYMBOLS` before MPI was bound): the one-process definitions, which return at once
  (a reduction over one rank is the identity). Binding MPI after that is refused: programs
  compiled before would keep calling the identity.

The communicator is the library's own duplicate of ``COMM_WORLD`` with ``MPI_ERRORS_ARE_FATAL``,
so a failing collective ends the job instead of returning a code nobody reads.
"""

import os
import threading

import llvmlite.binding as llvm

from .llvm_lock import LLVM_LOCK
from .target import host

OPS = ("sum", "max", "min", "prod")
DTYPES = ("f32", "f64")
SYMBOLS = tuple(f"gs_allreduce_{op}_{dtype}" for op in OPS for dtype in DTYPES)
CHUNK = int(os.environ.get("GRAPHSPORE_ALLREDUCE_CHUNK", 1 << 30))
MPI_SYMBOL = "gs_mpi_allreduce"       # MPI_Allreduce bound under a private name
_lock = threading.Lock()
_state = {"mode": None, "engine": None}


class CollectiveError(RuntimeError):
    """MPI cannot be bound (already bound to one process, or no MPI_Allreduce)."""


def bound_mode():
    """None (nothing bound yet), "single" (one-process identity) or "mpi"."""
    return _state["mode"]


def single_process_ir():
    """Definitions that reduce over one rank: return 0, leave the buffer as it is."""
    lines = []
    for name in SYMBOLS:
        lines += [f"define i32 @{name}(ptr %buf, i64 %n) {{", "  ret i32 0", "}"]
    return "\n".join(lines) + "\n"


def shim_ir(handles, handle_bits, chunk=None):
    """The MPI shim: `handles` maps comm, in_place, f32, f64, sum, max, min, prod to integer
    handle values; `handle_bits` is 32 (MPICH family: i32 handles) or 64 (pointers)."""
    chunk = CHUNK if chunk is None else int(chunk)
    if handle_bits == 32:
        htype = "i32"
        const = lambda value: str(_signed32(value))                 # noqa: E731
    else:
        htype = "ptr"
        const = lambda value: f"inttoptr (i64 {_signed64(value)} to ptr)"   # noqa: E731
    in_place = f"inttoptr (i64 {_signed64(handles['in_place'])} to ptr)"
    lines = [f"declare i32 @{MPI_SYMBOL}(ptr, ptr, i32, {htype}, {htype}, {htype})", ""]
    for op in OPS:
        for dtype in DTYPES:
            size = 4 if dtype == "f32" else 8
            args = (f"{htype} {const(handles[dtype])}, {htype} {const(handles[op])}, "
                    f"{htype} {const(handles['comm'])}")
            lines += [
                f"define i32 @gs_allreduce_{op}_{dtype}(ptr %buf, i64 %n) {{",
                "entry:",
                "  %empty = icmp sle i64 %n, 0",
                "  br i1 %empty, label %done, label %loop",
                "loop:",
                "  %off = phi i64 [0, %entry], [%next, %loop]",
                "  %err = phi i32 [0, %entry], [%err.next, %loop]",
                "  %left = sub i64 %n, %off",
                f"  %small = icmp slt i64 %left, {chunk}",
                f"  %count64 = select i1 %small, i64 %left, i64 {chunk}",
                "  %count = trunc i64 %count64 to i32",
                f"  %bytes = mul i64 %off, {size}",
                "  %ptr = getelementptr inbounds i8, ptr %buf, i64 %bytes",
                f"  %rc = call i32 @{MPI_SYMBOL}(ptr {in_place}, ptr %ptr, i32 %count, {args})",
                "  %err.next = or i32 %err, %rc",
                "  %next = add i64 %off, %count64",
                "  %more = icmp slt i64 %next, %n",
                "  br i1 %more, label %loop, label %done",
                "done:",
                "  %result = phi i32 [0, %entry], [%err.next, %loop]",
                "  ret i32 %result",
                "}",
                ""]
    return "\n".join(lines)


def _signed32(value):
    value = int(value) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _signed64(value):
    value = int(value) & 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def _compile_and_register(text):
    """Compile `text` with its own MCJIT engine (no object cache: MPI handles are per process)
    and register every function of :data:`SYMBOLS` under its name."""
    with LLVM_LOCK:
        module = llvm.parse_assembly(text)
        module.verify()
        engine = llvm.create_mcjit_compiler(module, host().create_target_machine())
        engine.finalize_object()
        for name in SYMBOLS:
            llvm.add_symbol(name, engine.get_function_address(name))
    return engine


def ensure_collectives():
    """Make :data:`SYMBOLS` resolvable: MPI's when bound, else the one-process identity. True."""
    if _state["mode"] is None:
        with _lock:
            if _state["mode"] is None:
                _state["engine"] = _compile_and_register(single_process_ir())
                _state["mode"] = "single"
    return True


def bind_mpi(allreduce_address, handles, handle_bits):
    """Bind :data:`SYMBOLS` to MPI: `allreduce_address` is MPI_Allreduce's address in the
    libmpi that mpi4py initialised; `handles` and `handle_bits` as in :func:`shim_ir`."""
    with _lock:
        if _state["mode"] == "mpi":
            return
        if _state["mode"] == "single":
            raise CollectiveError(
                "graphspore.communication.init() must run before the first compiled program "
                "that reduces across processes: programs compiled before it run as one process")
        llvm.add_symbol(MPI_SYMBOL, int(allreduce_address))
        _state["engine"] = _compile_and_register(shim_ir(handles, handle_bits))
        _state["mode"] = "mpi"
