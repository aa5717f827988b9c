"""`nn.DistributedGradReducer`: gradients summed over the data-parallel ranks, then divided
by their number when `mean` (MindSpore's semantics: `mean=None` takes `gradients_mean` from
the auto-parallel context, `degree=None` is the group size). The gradients are packed into
flat buckets and reduced by one native MPI_Allreduce each inside the compiled step."""
from __future__ import annotations

from .. import parallel_context
from ..communication import GlobalComm, collectives, get_group_size
from .cell import Cell


class DistributedGradReducer(Cell):
    """`DistributedGradReducer(parameters, mean=None, degree=None, fusion_type=1, group=...)`;
    call it on the gradient tuple."""

    def __init__(self, parameters, mean=None, degree=None, fusion_type=1,
                 group=GlobalComm.WORLD_COMM_GROUP):
        super().__init__(auto_prefix=False)
        if mean is None:
            mean = parallel_context.get_auto_parallel_context("gradients_mean")
        if degree is None:
            degree = get_group_size(group)
        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"DistributedGradReducer: degree must be a positive int, got "
                             f"{degree!r}")
        self.mean, self.degree = bool(mean), degree
        self.count = len(tuple(parameters))
        self.fusion_type, self.group = fusion_type, group
        # One process and degree 1: the sum over one rank is the identity, no call at all.
        self.reduces = get_group_size(group) > 1 or degree > 1

    def construct(self, grads):
        if self.reduces:
            return collectives.reduce_gradients(grads, self.mean, self.degree)
        return grads


__all__ = ["DistributedGradReducer"]
