"""Batching: a graph over one example -> the same computation over a batch (`vmap`).

`batch_graph(graph, batched, size)` re-emits `graph` into the current builder with some of
its inputs carrying an extra leading axis of `size` examples. Every value is tracked as
`(value, batched)`, a batched value always holding the batch on axis 0, so each rule only
prepends an axis to its op's attributes:

1. Ops with no batched operand are re-emitted unchanged (constants, parameter math).
2. Elementwise ops (derived from the ELEMENTWISE group): batched operands of lower
   per-example rank get unit axes after the batch axis, so numpy broadcasting lines the
   example axes up; unbatched operands broadcast as they are.
3. Explicit rules for reductions and argmax (axes + 1), views, pad and concat (one more
   leading axis), matmul (the batch folded into rows when only the left operand is batched,
   else a batched product), gather/scatter (axis + 1 when the indices are shared), pooling
   (the batch folded into the images' N axis), convolutions (images folded into N, or
   batched filters as more groups), and the collective (elementwise over ranks).
4. What a rule cannot express as one op (indices that differ per example) is unrolled: the op
   runs once per example on its slices and the results are stacked. Shapes are static, so
   this is exact; it costs one kernel per example.

An op without a rule raises `VmapError` naming it (`RULES` is the table; tests check that every
registered op has a row). The result is an ordinary graph, so autodiff, simplify and codegen
apply to it: `grad(vmap(f))`, `vmap(grad(f))` and nested `vmap` compose.
"""
from __future__ import annotations

from typing import Callable

from ..core import Graph, GraphsporeError, Op, Value, current_builder
from .. import ops as O
from ..ops import ELEMENTWISE, OPS, SOURCE
from ..ops.composite import matmul_nd

Batched = tuple[Value, bool]


class VmapError(GraphsporeError, ValueError):
    """An op has no batching rule, or the axes given to vmap do not fit the arguments."""


def batch_graph(graph: Graph, inputs: list[Batched], size: int) -> list[Batched]:
    """Emit `graph` batched into the current builder; `inputs` (one per graph input) are
    `(value, batched)` with the batch on axis 0. Returns the outputs the same way."""
    if graph.updates:
        raise VmapError(f"vmap: {graph.name} assigns Parameters; a batched function cannot "
                        "update one parameter once per example")
    env: dict[Value, Batched] = dict(zip(graph.inputs, inputs))
    builder = current_builder()
    saved = builder.loc
    try:
        for op in graph.ops:
            builder.loc = op.loc
            operands = [env[v] for v in op.operands]
            if op.regions:                  # gs.if / gs.while / gs.for: several results
                env.update(zip(op.results, batch_region_op(op, operands, size)))
            else:
                env[op.result] = batch_op(op, operands, size)
    finally:
        builder.loc = saved
    return [env[v] for v in graph.outputs]


def batch_op(op: Op, operands: list[Batched], size: int) -> Batched:
    """One op over batched operands (rule 1, then the table)."""
    if not any(b for _, b in operands):
        return _emit(op, [v for v, _ in operands]), False
    rule = RULES.get(op.name)
    if rule is None:
        raise VmapError(f"vmap: no batching rule for {op.name}", op.loc)
    return rule(op, operands, size)


def batch_region_op(op: Op, operands: list[Batched], size: int) -> list[Batched]:
    """A region op (its regions are closed graphs over one example): re-emitted as it is when
    no operand is batched, else once per example on its slices (rule 4), each result
    stacked. The condition of a tensor `if`/`while` may differ per example, so one region op
    over the whole batch could not express it."""
    builder = current_builder()
    if op.name not in RULES:
        raise VmapError(f"vmap: no batching rule for {op.name}", op.loc)
    if not any(b for _, b in operands):
        return [(v, False) for v in builder.add_region_op(op.name, [v for v, _ in operands],
                                                          op.regions, op.attrs)]
    per_result: list[list[Value]] = [[] for _ in op.results]
    for i in range(size):
        parts = [_example(v, i) if batched else v for v, batched in operands]
        for slot, value in zip(per_result, builder.add_region_op(op.name, parts, op.regions,
                                                                 op.attrs)):
            slot.append(O.reshape(value, shape=(1,) + value.shape))
    return [((r[0] if size == 1 else O.concat(*r, axis=0)), True) for r in per_result]


def _emit(op: Op, operands, **attrs) -> Value:
    return current_builder().add_op(op.name, operands, {**op.attrs, **attrs})


# -------------------------------------------------------------------------- helpers

def move_axis(x: Value, source: int, destination: int) -> Value:
    """`x` with axis `source` moved to position `destination`."""
    rank = x.ndim
    source, destination = source % rank, destination % rank
    if source == destination:
        return x
    perm = [a for a in range(rank) if a != source]
    perm.insert(destination, source)
    return O.transpose(x, perm=tuple(perm))


def with_batch(x: Batched, size: int) -> Value:
    """A batched value for `x`: unbatched ones are broadcast along a new axis 0."""
    value, batched = x
    return value if batched else O.broadcast_to(value, shape=(size,) + value.shape)


def _aligned(x: Batched, rank: int) -> Value:
    """A batched operand with unit axes after the batch, up to `rank` example axes."""
    value, batched = x
    if not batched or value.ndim - 1 >= rank:
        return value
    shape = value.shape[:1] + (1,) * (rank - value.ndim + 1) + value.shape[1:]
    return O.reshape(value, shape=shape)


def _example_rank(x: Batched) -> int:
    value, batched = x
    return value.ndim - 1 if batched else value.ndim


def _shifted(axes) -> tuple[int, ...]:
    return tuple(a + 1 for a in axes)


# ---------------------------------------------------------------------------- rules

def elementwise(op: Op, operands: list[Batched], size: int) -> Batched:
    rank = max(_example_rank(x) for x in operands)
    return _emit(op, [_aligned(x, rank) for x in operands]), True


def reduction(op: Op, operands, size):
    (x,) = operands
    return _emit(op, [x[0]], axes=_shifted(op.attrs["axes"])), True


def argmax(op: Op, operands, size):
    return _emit(op, [operands[0][0]], axis=op.attrs["axis"] + 1), True


def reshape(op: Op, operands, size):
    return _emit(op, [operands[0][0]], shape=(size,) + tuple(op.attrs["shape"])), True


def broadcast_to(op: Op, operands, size):
    shape = tuple(op.attrs["shape"])
    return _emit(op, [_aligned(operands[0], len(shape))], shape=(size,) + shape), True


def transpose(op: Op, operands, size):
    return _emit(op, [operands[0][0]], perm=(0,) + _shifted(op.attrs["perm"])), True


def reverse(op: Op, operands, size):
    return _emit(op, [operands[0][0]], axes=tuple(a + 1 for a in op.attrs["axes"])), True


def slice_(op: Op, operands, size):
    a = op.attrs
    return _emit(op, [operands[0][0]], begin=(0,) + tuple(a["begin"]),
                 end=(size,) + tuple(a["end"]), strides=(1,) + tuple(a["strides"])), True


def pad(op: Op, operands, size):
    a = op.attrs
    return _emit(op, [operands[0][0]], low=(0,) + tuple(a["low"]),
                 high=(0,) + tuple(a["high"]), stride=(1,) + tuple(a["stride"])), True


def concat(op: Op, operands, size):
    return _emit(op, [with_batch(x, size) for x in operands], axis=op.attrs["axis"] + 1), True


def matmul(op: Op, operands, size):
    (a, a_batched), (b, b_batched) = operands
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    if a_batched and not b_batched and not ta:      # fold the batch into the rows
        m, k = a.shape[1:]
        rows = O.reshape(a, shape=(size * m, k))
        product = _emit(op, [rows, b])
        return O.reshape(product, shape=(size, m, product.shape[1])), True
    if ta:
        a = move_axis(a, -1, -2) if a_batched else O.transpose(a, perm=(1, 0))
    if tb:
        b = move_axis(b, -1, -2) if b_batched else O.transpose(b, perm=(1, 0))
    return matmul_nd(a, b), True


def gather(op: Op, operands, size):
    (x, x_batched), (indices, i_batched) = operands
    if not i_batched:
        return _emit(op, [x, indices], axis=op.attrs["axis"] + 1), True
    return unrolled(op, operands, size)


def scatter_add(op: Op, operands, size):
    (x, _), (indices, i_batched), updates = operands
    if not i_batched:
        return _emit(op, [with_batch(operands[0], size), indices, with_batch(updates, size)],
                     axis=op.attrs["axis"] + 1), True
    return unrolled(op, operands, size)


def gather_elements(op: Op, operands, size):
    # indices and x have one rank: batch both and gather along dim + 1
    return _emit(op, [with_batch(x, size) for x in operands], dim=op.attrs["dim"] + 1), True


def all_reduce(op: Op, operands, size):
    return _emit(op, [operands[0][0]]), True


def pooling(op: Op, operands, size):
    """max_pool2d(_grad): the batch folds into the images' N axis (windows never cross it)."""
    parts = [with_batch(x, size) for x in operands]
    images = [O.reshape(x, shape=(size * x.shape[1],) + x.shape[2:]) for x in parts]
    result = _emit(op, images)
    return O.reshape(result, shape=(size, parts[0].shape[1]) + result.shape[1:]), True


def _to_groups(x: Value, size: int) -> Value:
    """(B, N, C, ...) -> (N, B*C, ...): the batch becomes groups of channels."""
    moved = move_axis(x, 0, 1)
    return O.reshape(moved, shape=(moved.shape[0], size * moved.shape[2]) + moved.shape[3:])


def _from_groups(y: Value, size: int) -> Value:
    """(N, B*C, ...) -> (B, N, C, ...)."""
    split = O.reshape(y, shape=(y.shape[0], size, y.shape[1] // size) + y.shape[2:])
    return move_axis(split, 1, 0)


def _fold_images(x: Value) -> Value:
    return O.reshape(x, shape=(x.shape[0] * x.shape[1],) + x.shape[2:])


def convolution(op: Op, operands, size):
    """conv2d and its gradients. A batch of images with shared filters folds into N; a batch
    of filters becomes `size` times the groups (images (N, B*C, H, W), filters (B*O, ...)),
    so every example is still one convolution of the same kernel."""
    groups = op.attrs["groups"] * size
    if op.name == "gs.conv2d_filter_grad":          # sums over N: always the groups form
        x, g = (_to_groups(with_batch(v, size), size) for v in operands)
        dw = _emit(op, [x, g], groups=groups)
        return O.reshape(dw, shape=(size, dw.shape[0] // size) + dw.shape[1:]), True
    (images, _), (w, w_batched) = operands
    images = with_batch(operands[0], size)
    image_attrs = {}
    if not w_batched:
        if op.name == "gs.conv2d_input_grad":
            image = op.attrs["image"]
            image_attrs = {"image": (size * image[0],) + tuple(image[1:])}
        result = _emit(op, [_fold_images(images), w], **image_attrs)
        return O.reshape(result, shape=(size, images.shape[1]) + result.shape[1:]), True
    if op.name == "gs.conv2d_input_grad":
        n, c, h, width = op.attrs["image"]
        image_attrs = {"image": (n, size * c, h, width)}
    filters = O.reshape(w, shape=(size * w.shape[1],) + w.shape[2:])
    result = _emit(op, [_to_groups(images, size), filters], groups=groups, **image_attrs)
    return _from_groups(result, size), True


def unrolled(op: Op, operands, size):
    """Rule 4: the op once per example on its slices, the results stacked on axis 0."""
    results = []
    for i in range(size):
        parts = [_example(v, i) if batched else v for v, batched in operands]
        result = _emit(op, parts)
        results.append(O.reshape(result, shape=(1,) + result.shape))
    return (results[0] if size == 1 else O.concat(*results, axis=0)), True


def _example(x: Value, i: int) -> Value:
    piece = O.slice(x, begin=(i,) + (0,) * (x.ndim - 1), end=(i + 1,) + x.shape[1:],
                    strides=(1,) * x.ndim)
    return O.reshape(piece, shape=x.shape[1:])


RULES: dict[str, Callable[[Op, list[Batched], int], Batched]] = {
    name: elementwise for name, opdef in OPS.items() if ELEMENTWISE in opdef.groups}
RULES.update({name: (lambda op, operands, size: (_emit(op, []), False))
              for name, opdef in OPS.items() if SOURCE in opdef.groups})
RULES.update({
    "gs.reduce_sum": reduction, "gs.reduce_max": reduction, "gs.argmax": argmax,
    "gs.reshape": reshape, "gs.broadcast_to": broadcast_to, "gs.transpose": transpose,
    "gs.reverse": reverse, "gs.slice": slice_, "gs.pad": pad, "gs.concat": concat,
    "gs.matmul": matmul,
    "gs.gather": gather, "gs.scatter_add": scatter_add, "gs.gather_elements": gather_elements,
    "gs.grad_hook": unrolled, "gs.host_hook": unrolled,   # a hook sees each example
    "gs.all_reduce": all_reduce, "gs.print": unrolled, "gs.update_row": unrolled,
    "gs.max_pool2d": pooling, "gs.max_pool2d_grad": pooling,
    "gs.im2col": unrolled, "gs.col2im": unrolled,     # the batch is inside their columns
    "gs.conv2d": convolution, "gs.conv2d_input_grad": convolution,
    "gs.conv2d_filter_grad": convolution,
})
# Region ops are unrolled over the batch by `batch_region_op` (their rows mark them handled).
RULES.update({name: unrolled for name in ("gs.if", "gs.while", "gs.for")})

__all__ = ["batch_graph", "batch_op", "move_axis", "with_batch", "RULES", "VmapError"]
