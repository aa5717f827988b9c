"""`mindspore.communication`: init, ranks and group sizes, over MPI (mpi4py).

Before `init()` a program is rank 0 of 1, as in MindSpore, so a data-parallel script runs in
one process unchanged. `init()` (idempotent):

1. imports mpi4py (missing: one process when no MPI launcher started this one, else an
   ImportError naming `pip install 'graphspore[mpi]'`) and takes
   the library's own duplicate of COMM_WORLD, with errors fatal (a failed collective ends the
   job, never returns a code nobody reads);
2. with more than one rank, binds the native all-reduce that compiled steps call
   (`graphspore.runtime.collective`, from mpi4py's handles) and the eager one the reference
   interpreter calls (with one rank both stay the identity);
3. divides the cores among the ranks on this host (thread pool and BLAS threads =
   cores // local ranks) unless GRAPHSPORE_NUM_THREADS is set: two ranks each spinning a
   2-thread pool on 2 cores run 2.75x slower;
4. installs an excepthook that calls MPI_Abort after printing the traceback, so a rank that
   raises ends the whole job at once instead of leaving the others waiting in a collective.

Launch with `mpirun -n N python train.py` (see README).
"""
from __future__ import annotations

import ctypes
import os
import sys

import numpy as np

from ..ir.ops import collective as collective_ops
from ..runtime import collective, thread_pool


class GlobalComm:
    """MindSpore's names for the backend and the world group (CPU: "mccl")."""
    BACKEND = "mccl"
    WORLD_COMM_GROUP = "mccl_world_group"
    INITED = False


HCCL_WORLD_COMM_GROUP = NCCL_WORLD_COMM_GROUP = GlobalComm.WORLD_COMM_GROUP
# Variables MindSpore's own launchers set (msrun, the rank table), and MPI launchers' own.
_MINDSPORE_LAUNCHER_SIZES = ("RANK_SIZE", "MS_WORKER_NUM", "WORLD_SIZE")
_MPI_LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


_state = {"comm": None, "local": None, "MPI": None}
_MPI_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN", "prod": "PROD"}


def _check_group(group) -> None:
    if group is not None and group != GlobalComm.WORLD_COMM_GROUP:
        raise ValueError(f"communication group {group!r} does not exist: graphspore has only "
                         f"the world group {GlobalComm.WORLD_COMM_GROUP!r}")


def init(backend_name=None) -> None:
    """Join the job started by `mpirun` (a plain `python` run is a one-process job)."""
    if backend_name not in (None, "mccl", "mpi"):
        raise ValueError(f"init: backend {backend_name!r} is not available: graphspore runs on "
                         "the CPU and communicates over MPI (backend_name=None, 'mccl' or "
                         "'mpi')")
    _refuse_foreign_launcher()
    if _state["comm"] is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError as error:
        if not any(os.environ.get(name) for name in _MPI_LAUNCHER_SIZES):
            GlobalComm.INITED = True     # no MPI and no launcher: a world of one process
            return
        raise ImportError("graphspore.communication.init() needs mpi4py and an MPI library: "
                          "pip install 'graphspore[mpi]' (mpi4py and the MPICH wheel), then "
                          "launch with mpirun -n N python script.py") from error
    comm = MPI.COMM_WORLD.Dup()
    comm.Set_errhandler(MPI.ERRORS_ARE_FATAL)
    handles = {"comm": MPI._handleof(comm), "in_place": int(MPI.IN_PLACE),
               "f32": MPI._handleof(MPI.FLOAT), "f64": MPI._handleof(MPI.DOUBLE)}
    handles.update({op: MPI._handleof(getattr(MPI, name)) for op, name in _MPI_OPS.items()})
    if comm.Get_size() > 1:      # one rank: the compiled and eager identity stay correct
        library = ctypes.CDLL(MPI.__file__)
        address = ctypes.cast(library.MPI_Allreduce, ctypes.c_void_p).value
        collective.bind_mpi(address, handles, 8 * MPI._sizeof(MPI.Comm))
        collective_ops.BACKEND["all_reduce"] = _eager_all_reduce
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    _state.update(comm=comm, local=local, MPI=MPI)
    GlobalComm.INITED = True
    if not os.environ.get("GRAPHSPORE_NUM_THREADS") and local.Get_size() > 1:
        threads = max(1, thread_pool.get_num_threads() // local.Get_size())
        thread_pool.set_num_threads(threads)   # BLAS products run on this pool (blas.py)
    if comm.Get_size() > 1:
        _install_abort_hook(comm)


def _refuse_foreign_launcher() -> None:
    """A job started by msrun (or another launcher that is not MPI's) would have every rank
    train alone: say so, and how to launch instead."""
    if any(os.environ.get(name) for name in _MPI_LAUNCHER_SIZES):
        return
    for name in _MINDSPORE_LAUNCHER_SIZES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            raise RuntimeError(f"communication.init: {name} says the launcher started {value} "
                               f"ranks, but graphspore's ranks meet over MPI: launch with "
                               f"mpirun -n {value} python script.py")


def _eager_all_reduce(array: np.ndarray, op: str) -> np.ndarray:
    """The reference: one in-place MPI_Allreduce over a contiguous copy."""
    MPI = _state["MPI"]
    buffer = np.array(array, copy=True, order="C")
    _state["comm"].Allreduce(MPI.IN_PLACE, buffer, op=getattr(MPI, _MPI_OPS[op]))
    return buffer


def _install_abort_hook(comm) -> None:
    previous = sys.excepthook

    def abort_job(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.flush()
        comm.Abort(1)
    sys.excepthook = abort_job


def release() -> None:
    """Leave the job's groups (MPI itself is finalised when the process exits)."""
    if _state["comm"] is not None:
        GlobalComm.INITED = False


def get_rank(group=None) -> int:
    """This process' rank in `group` (0 before init)."""
    _check_group(group)
    return 0 if _state["comm"] is None else _state["comm"].Get_rank()


def get_group_size(group=None) -> int:
    """Number of ranks in `group` (1 before init)."""
    _check_group(group)
    return 1 if _state["comm"] is None else _state["comm"].Get_size()


def get_local_rank(group=None) -> int:
    """This process' rank among the ranks on its host."""
    _check_group(group)
    return 0 if _state["local"] is None else _state["local"].Get_rank()


def get_local_rank_size(group=None) -> int:
    """Number of ranks on this host."""
    _check_group(group)
    return 1 if _state["local"] is None else _state["local"].Get_size()


def get_world_rank_from_group_rank(group, group_rank_id) -> int:
    _check_group(group)
    return int(group_rank_id)


def get_group_rank_from_world_rank(world_rank_id, group) -> int:
    _check_group(group)
    return int(world_rank_id)


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if _state["comm"] is not None:
        _state["comm"].Barrier()


def is_initialized() -> bool:
    return _state["comm"] is not None


__all__ = ["GlobalComm", "HCCL_WORLD_COMM_GROUP", "NCCL_WORLD_COMM_GROUP", "init", "release", "get_rank", "get_group_size", "get_local_rank",
           "get_local_rank_size", "get_world_rank_from_group_rank",
           "get_group_rank_from_world_rank", "barrier", "is_initialized"]
