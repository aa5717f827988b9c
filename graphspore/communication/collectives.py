"""The bucketed gradient reduction behind `nn.DistributedGradReducer`: gradients packed into
flat buckets, one `gs.all_reduce` each (a native MPI call inside compiled steps)."""
from __future__ import annotations

from ..eager import gs_op
from ..ir import ops as ir_ops

# Gradients are packed into flat buckets of at most this many bytes (per dtype), one
# all-reduce each: a 26k-parameter MLP's gradients are one call, a 100 MB model's a few.
BUCKET_BYTES = 64 << 20


def buckets(sizes_bytes: list[tuple[int, str]], limit: int = BUCKET_BYTES) -> list[list[int]]:
    """Indices grouped into buckets: same dtype, in order, each at most `limit` bytes unless
    one gradient alone is larger."""
    open_buckets: dict[str, tuple[list[int], int]] = {}
    done: list[list[int]] = []
    for i, (size, dtype) in enumerate(sizes_bytes):
        members, total = open_buckets.get(dtype, ([], 0))
        if members and total + size > limit:
            done.append(members)
            members, total = [], 0
        open_buckets[dtype] = (members + [i], total + size)
    return done + [members for members, _ in open_buckets.values()]


@gs_op
def reduce_gradients(grads, mean=False, degree=1, bucket_bytes=BUCKET_BYTES):
    """Every gradient summed over the ranks (times 1/degree when `mean`): each bucket is
    concat(reshape(g, -1)) -> all_reduce in place -> slices reshaped back."""
    grads = tuple(grads)
    out = list(grads)
    sizes = [(g.type.size * g.dtype.np.itemsize, g.dtype.mlir) for g in grads]
    for members in buckets(sizes, bucket_bytes):
        flat = [ir_ops.reshape(grads[i], shape=(grads[i].type.size,)) for i in members]
        packed = flat[0] if len(flat) == 1 else ir_ops.concat(*flat, axis=0)
        reduced = ir_ops.all_reduce(packed, op="sum")
        offset = 0
        for i in members:
            g = grads[i]
            piece = ir_ops.slice(reduced, begin=(offset,), end=(offset + g.type.size,),
                                 strides=(1,))
            if mean and degree != 1:
                piece = ir_ops.mul(piece, 1.0 / degree)
            out[i] = ir_ops.reshape(piece, shape=g.shape)
            offset += g.type.size
    return tuple(out)


__all__ = ["reduce_gradients", "buckets", "BUCKET_BYTES"]
