"""`mindspore.communication` on MPI: `init`, `get_rank`, `get_group_size`, `get_local_rank`,
`release`, `GlobalComm` (see `management`)."""
from .management import (GlobalComm, HCCL_WORLD_COMM_GROUP, NCCL_WORLD_COMM_GROUP, barrier,
                         get_group_rank_from_world_rank, get_group_size, get_local_rank,
                         get_local_rank_size, get_rank, get_world_rank_from_group_rank, init,
                         is_initialized, release)
from . import management

__all__ = ["GlobalComm", "HCCL_WORLD_COMM_GROUP", "NCCL_WORLD_COMM_GROUP", "init", "release",
           "get_rank", "get_group_size", "get_local_rank", "get_local_rank_size",
           "get_world_rank_from_group_rank", "get_group_rank_from_world_rank", "barrier",
           "is_initialized", "management"]
