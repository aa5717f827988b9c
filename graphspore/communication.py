"""`mindspore.communication` for one process: `init()`, `get_rank()` (0),
`get_group_size()` (1), `release()`. graphspore runs on one host process; a launcher that
starts several ranks (msrun, mpirun) is detected and refused with a clear error instead of
every rank silently training alone."""
from __future__ import annotations

import os

_LAUNCHER_SIZES = ("RANK_SIZE", "MS_WORKER_NUM", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                   "WORLD_SIZE")


class GlobalComm:
    """MindSpore's communication constants (one world group)."""
    BACKEND = "cpu"
    WORLD_COMM_GROUP = "hccl_world_group"
    INITED = False


HCCL_WORLD_COMM_GROUP = NCCL_WORLD_COMM_GROUP = GlobalComm.WORLD_COMM_GROUP


def _world_size_from_launcher() -> int:
    for name in _LAUNCHER_SIZES:
        value = os.environ.get(name)
        if value and value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def init(backend_name=None) -> None:
    """Initialise communication: a world of one process."""
    size = _world_size_from_launcher()
    if size > 1:
        raise RuntimeError(f"communication.init: the launcher started {size} ranks, but "
                           f"graphspore runs single-process (multi-process data parallelism "
                           f"is not implemented); run the script once, without the launcher")
    GlobalComm.INITED = True


def release() -> None:
    GlobalComm.INITED = False


def _check_group(group) -> None:
    if group not in (None, GlobalComm.WORLD_COMM_GROUP):
        raise ValueError(f"graphspore has one communication group "
                         f"({GlobalComm.WORLD_COMM_GROUP!r}), not {group!r}")


def get_rank(group=GlobalComm.WORLD_COMM_GROUP) -> int:
    _check_group(group)
    return 0


def get_local_rank(group=GlobalComm.WORLD_COMM_GROUP) -> int:
    _check_group(group)
    return 0


def get_group_size(group=GlobalComm.WORLD_COMM_GROUP) -> int:
    _check_group(group)
    return 1


def get_local_rank_size(group=GlobalComm.WORLD_COMM_GROUP) -> int:
    _check_group(group)
    return 1


__all__ = ["init", "release", "get_rank", "get_local_rank", "get_group_size",
           "get_local_rank_size", "GlobalComm", "HCCL_WORLD_COMM_GROUP",
           "NCCL_WORLD_COMM_GROUP"]
