"""Collectives across ranks: `ops.AllReduce(op=ReduceOp.SUM)(x)` and `ops.all_reduce`, graph
code over `gs.all_reduce`, so they run eagerly (one mpi4py call) and inside compiled steps
(a native in-place MPI_Allreduce). In one process they are the identity."""
from __future__ import annotations

from ..communication.management import GlobalComm, _check_group
from ..eager import gs_op
from ..ir import ops as ir_ops


class ReduceOp:
    """MindSpore's reduction names for AllReduce."""
    SUM = "sum"
    MAX = "max"
    MIN = "min"
    PROD = "prod"


@gs_op
def all_reduce(x, op=ReduceOp.SUM):
    """`x` reduced elementwise over every rank (identity in one process)."""
    return ir_ops.all_reduce(x, op=op)


class AllReduce:
    """`ops.AllReduce(op=ReduceOp.SUM, group=GlobalComm.WORLD_COMM_GROUP)(x)`."""

    __gs_op__ = True

    def __init__(self, op=ReduceOp.SUM, group=GlobalComm.WORLD_COMM_GROUP):
        _check_group(group)
        self.op, self.group = op, group

    def __call__(self, x):
        return all_reduce(x, self.op)

    def __repr__(self) -> str:
        return f"AllReduce(op={self.op!r}, group={self.group!r})"


__all__ = ["ReduceOp", "AllReduce", "all_reduce"]
