"""Fusion: group a graph's ops into kernels, each writing one materialised value.

Expects a verified graph. Guarantees: every value a kernel reads is a graph input, a constant,
or materialised by an earlier kernel; outputs and updates are written last, by copies where
needed. The graph itself is not changed.

Algorithm:
1. Liveness: keep only ops reachable backwards from the outputs, the update values and the
   effects (prints, and region ops holding one).
2. Count the uses of every value (each operand slot is one use; so is each output/update).
3. Decide, in op order, which results are *materialised* (stored to a buffer):
   a. kernel roots: reductions, argmax, matmul, pad, concat, scatter_add and the window ops
      (im2col, col2im, max_pool2d and its gradient) (their own loop structure);
   b. graph outputs and update values;
   c. operands of matmul, of the window ops (they read contiguous buffers, each element
      several times) and of prints (the callback views their buffers);
   d. values with more than one use, unless they are cheap to recompute: sources (constant,
      iota) and view ops (reshape, broadcast_to, transpose, slice) of a graph input, a
      constant or a materialised value.
   e. values MAX_INLINE_DEPTH ops deep in inlined ops: a kernel's expression stays shallow
      however long the chain (an unrolled 10,000-step loop becomes kernels of that depth), so
      lowering and LLVM emission never recurse deeply.
   Everything else (single-use elementwise values, views, gathers, sources) is inlined: the
   consumer evaluates it at its own index, through the index maps of the views and gathers in
   between.
4. Homes: graph input i lives in `("in", i)`; output j's value lives in `("out", j)` the first
   time it appears, unless it is an input; every other materialised value lives in the arena
   (`("ws", 0)`, offset chosen by `plan_memory`). Constants are LLVM globals, never copied.
5. Kernels in op order, one per materialised value; then a `copy` kernel for each output whose
   value lives elsewhere (an input, or an earlier output); then, as the last step, a `copy` per
   update from the new value's home into the weight input's buffer.
6. In-place updates: an update's new value is written straight into the weight's buffer, and
   its copy dropped, when its kernel is elementwise, reads the weight only at the element it
   writes (no view of it in between), and no later kernel reads the old weight; or when it
   is `update_row(weight, row, i)` (a loop's tape write: one row, not a copy of the tape).
   An optimizer step `w - lr * g` then costs one pass over w instead of two.

Region ops (`gs.if`, `gs.while`, `gs.for`) are kernels of their own (`fuse_regions`): their
non-constant operands and all their results are materialised, and each region is fused as a
graph of its own.

Matmul epilogues (before step 6, only when the caller passes `epilogue_ok`): a matrix product
read by nothing but one elementwise kernel of its own shape, at its own index, is not stored.
That kernel becomes the product's *epilogue*: the product's kernel moves to its place, keeps
the product in registers and evaluates the elementwise ops on each finished element (bias +
ReLU after `x @ W.T`, the ReLU mask after `dy @ W`, `w - lr * (dy.T @ x)`). So does a reduce
kernel summing every element of elementwise ops of the product at its own index (`sum(conv(x)
* g)`): the sum is taken from the registers, the product never stored. The codegen layer
says through `epilogue_ok(product, kernel)` which pairs it can emit that way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..ir.core import Graph, Op, Value
from ..ir.ops import (COLLECTIVE, GATHER, LINALG, OPS, REDUCE, SOURCE, VIEW,
                      evaluated_in_place, group, in_group)
from ..ir.ops.conv import WINDOW
from ..ir.ops.effects import has_effect

# The op classes fusion dispatches on, from the registry's groups (ir/ops/opdef.py).
VIEWS = group(VIEW)                     # reshape, broadcast_to, transpose, slice
GATHERS = group(GATHER)                 # index maps reading loaded positions
SOURCES = group(SOURCE)                 # constant, iota
WINDOWS = group(WINDOW)                 # im2col, col2im, max_pool2d(_grad): operands stored
KERNEL_ROOTS = frozenset(name for name in OPS if not evaluated_in_place(name))
# Measured, 96-op chain y*0.999+x over 2^20 float32: 1.1-1.3 ms cut at 48, 3.5-4.1 ms uncut.
MAX_INLINE_DEPTH = 48


def kernel_kind(name: str) -> str:
    """The kernel class an op's kernel belongs to (and is named after): reduce, matmul, or
    the op's own loop structure (pad, concat, scatter); elementwise for everything else."""
    if evaluated_in_place(name):
        return "elementwise"
    if in_group(name, REDUCE):
        return "reduce"
    if in_group(name, LINALG):
        return "matmul"
    if in_group(name, COLLECTIVE):
        return "collective"
    if in_group(name, WINDOW):
        return "window"
    return OPS[name].short_name.split("_")[0]


@dataclass(eq=False, slots=True)
class FusedKernel:
    """One kernel: computes `value` (kind != copy) into its home, or copies `value` from its
    home into `target` (kind == copy). `reads` are the materialised values it loads. A matmul
    kernel with an epilogue has `product`, the matrix product it keeps in registers, and
    `value`, the result of the elementwise ops applied to it."""

    name: str
    kind: str              # elementwise | reduce | matmul | pad | concat | scatter | window | copy
    value: Value
    reads: tuple[Value, ...]
    target: tuple[str, int] | None = None
    ops: tuple[Op, ...] = ()       # the graph ops evaluated inside this kernel
    product: Value | None = None   # matmul with epilogue: the product, never stored
    regions: tuple["FusedGraph", ...] = ()   # region op (kind if/while/for): fused regions


@dataclass(eq=False)
class FusedGraph:
    graph: Graph
    kernels: list[FusedKernel]
    materialised: set[Value]
    homes: dict[Value, tuple[str, int]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = []
        for k in self.kernels:
            ops = ", ".join(op.name.split(".", 1)[1] for op in k.ops)
            dest = k.target or self.homes.get(k.value)
            lines.append(f"{k.name}: {k.kind} -> {dest} [{ops}]")
        return "\n".join(lines)


def _live_ops(graph: Graph) -> list[Op]:
    needed = {id(v) for v in graph.outputs} | {id(v) for _, v in graph.updates}
    live = []
    for op in reversed(graph.ops):
        if any(id(r) in needed for r in op.results) or has_effect(op):
            live.append(op)
            needed.update(id(v) for v in op.operands)
    return live[::-1]


def fuse(graph: Graph, epilogue_ok: Callable[[Value, "FusedKernel"], bool] | None = None
         ) -> FusedGraph:
    """Group `graph`'s ops into kernels (see the module docstring for the algorithm);
    `epilogue_ok(product, kernel)` allows `kernel` as the epilogue of that matmul result."""
    ops = _live_ops(graph)
    inputs = set(graph.inputs)
    uses: dict[Value, int] = {}
    for op in ops:
        for v in op.operands:
            uses[v] = uses.get(v, 0) + 1
    for v in list(graph.outputs) + [v for _, v in graph.updates]:
        uses[v] = uses.get(v, 0) + 1
    forced = set(graph.outputs) | {v for _, v in graph.updates}
    for op in ops:
        if op.name in ("gs.matmul", "gs.all_reduce", "gs.host_hook", "gs.print") \
                or op.regions or op.name in WINDOWS:
            # they read contiguous buffers (the window ops each element several times);
            # constants stay LLVM globals, already contiguous
            forced.update(v for v in op.operands if v.op is None or v.op.name != "gs.constant")
        if op.regions:                             # every result of a region op is stored
            forced.update(op.results)

    materialised: set[Value] = set()

    def leaf_or_stored(v: Value) -> bool:
        return v in inputs or v in materialised or v.op.name in SOURCES

    def cheap(v: Value) -> bool:
        """A source, or a chain of views down to a leaf or stored value (walked, not
        recursed: chains can be long)."""
        while True:
            if v.op.name in SOURCES:
                return True
            if v.op.name not in VIEWS:
                return False
            v = v.op.operands[0]
            if leaf_or_stored(v):
                return True

    depth: dict[Value, int] = {}         # inlined ops on the longest path ending at a value
    for op in ops:
        v = op.result
        if op.regions:
            materialised.update(op.results)
        elif op.name in KERNEL_ROOTS or v in forced:
            materialised.add(v)
        elif uses.get(v, 0) > 1 and not cheap(v):
            materialised.add(v)
        else:
            deepest = max((depth.get(x, 0) for x in op.operands if x not in materialised),
                          default=0)
            if deepest >= MAX_INLINE_DEPTH:
                materialised.add(v)
            else:
                depth[v] = deepest + 1
    materialised -= inputs

    homes: dict[Value, tuple[str, int]] = {v: ("in", i) for i, v in enumerate(graph.inputs)}
    late_copies: list[tuple[Value, tuple[str, int]]] = []
    for j, v in enumerate(graph.outputs):
        if v in homes:
            late_copies.append((v, ("out", j)))
        else:
            homes[v] = ("out", j)
    for op in ops:                       # op order, not set order: deterministic names
        for r in op.results:
            if r in materialised:
                homes.setdefault(r, ("ws", 0))

    kernels: list[FusedKernel] = []
    for op in ops:
        if op.regions:
            from .fuse_regions import region_kernel
            kernels.append(region_kernel(op, f"{op.name[3:]}_{len(kernels)}", materialised,
                                         inputs, lambda g: fuse(g, epilogue_ok)))
        elif op.result in materialised:
            inner, reads = _region(op, materialised, inputs)
            kind = kernel_kind(op.name)
            kernels.append(FusedKernel(f"{kind}_{len(kernels)}" if kind != "elementwise"
                                       else f"fused_{len(kernels)}", kind, op.result,
                                       reads, None, inner))
    if epilogue_ok is not None:
        kernels = _matmul_epilogues(kernels, uses, epilogue_ok, materialised, homes)
    for v, target in late_copies:
        kernels.append(FusedKernel(f"copy_{len(kernels)}", "copy", v, (v,), target))
    in_place = _in_place_updates(graph, kernels, homes)
    for weight, new in graph.updates:
        if new is not weight and new not in in_place:
            kernels.append(FusedKernel(f"update_{len(kernels)}", "copy", new, (new,),
                                       ("in", graph.inputs.index(weight))))
    return FusedGraph(graph, kernels, materialised, homes)


def _region(root: Op, materialised: set[Value], inputs: set[Value]):
    """The ops inlined into `root`'s kernel (root last) and the stored values they read."""
    seen: dict[int, Op] = {}
    reads: dict[int, Value] = {}
    stack = [(root, iter(root.operands))]   # depth-first post-order, without recursion
    while stack:
        op, operands = stack[-1]
        for v in operands:
            if v in inputs or v in materialised:
                reads.setdefault(id(v), v)
            elif id(v.op) not in seen:
                stack.append((v.op, iter(v.op.operands)))
                break
        else:
            stack.pop()
            seen[id(op)] = op
    return tuple(seen.values()), tuple(reads.values())


def _in_place_updates(graph: Graph, kernels: list[FusedKernel], homes: dict) -> set[Value]:
    """New values of updates that can be computed directly in their weight's buffer (step 6);
    re-homes them there. `kernels` holds every kernel except the update copies."""
    position = {k.value: i for i, k in enumerate(kernels) if k.kind != "copy"}
    last_read: dict[Value, int] = {}
    for i, k in enumerate(kernels):
        for v in k.reads:
            last_read[v] = i
    for _, new in graph.updates:            # the update copies, which run after everything
        last_read[new] = len(kernels)
    chosen: set[Value] = set()
    for weight, new in graph.updates:
        if new is weight or homes.get(new) != ("ws", 0) or new.type != weight.type:
            continue
        index = position.get(new)
        if index is None or last_read.get(weight, -1) > index:
            continue
        row_write = new.op.name == "gs.update_row" and new.op.operands[0] is weight
        if not row_write and (not _maps_elements(kernels[index])
                              or not _reads_at_own_index(kernels[index], weight)):
            continue
        homes[new] = ("in", graph.inputs.index(weight))
        chosen.add(new)
    return chosen


def _maps_elements(kernel: FusedKernel) -> bool:
    """Elementwise kernels and matmul epilogues write each element once, from values read at
    that element (apart from the product's operands); a summing epilogue does not."""
    return kernel.kind == "elementwise" or (kernel.product is not None and
                                            kernel.value.shape == kernel.product.shape)


def _matmul_epilogues(kernels: list[FusedKernel], uses: dict, epilogue_ok,
                      materialised: set[Value], homes: dict) -> list[FusedKernel]:
    """Merge each product read only by one elementwise kernel of its shape, at its own index,
    into that kernel's place as its epilogue; the product is then never stored."""
    producer = {k.value: i for i, k in enumerate(kernels) if k.kind == "matmul"}
    merged: list[FusedKernel | None] = list(kernels)
    for i, kernel in enumerate(kernels):
        if kernel.kind == "elementwise":
            shape = kernel.value.shape
        elif (summed := full_sum_operand(kernel)) is not None:
            shape = summed.shape
        else:
            continue
        for v in kernel.reads:
            j = producer.get(v)
            if (j is None or merged[j] is None or uses.get(v) != 1
                    or v.shape != shape or not epilogue_ok(v, kernel)
                    or not _reads_at_own_index(kernel, v, shape)):
                continue
            product = kernels[j]
            reads = product.reads + tuple(r for r in kernel.reads
                                          if r is not v and r not in product.reads)
            merged[i] = FusedKernel(product.name, "matmul", kernel.value, reads, None,
                                    product.ops + kernel.ops, product=v)
            merged[j] = None
            materialised.discard(v)
            homes.pop(v, None)
            break
    return [k for k in merged if k is not None]


def full_sum_operand(kernel: FusedKernel) -> Value | None:
    """The operand of a reduce kernel (or of a product with that kernel as its epilogue) that
    sums every element of it into one (reduce_sum over all axes, same dtype), else None."""
    if kernel.kind not in ("reduce", "matmul") or kernel.value is None:
        return None
    op = kernel.value.op
    if op is None or op.name != "gs.reduce_sum":
        return None
    x = op.operands[0]
    if kernel.value.type.size != 1 or x.dtype is not kernel.value.dtype or x.ndim == 0:
        return None
    axes = op.attrs["axes"]
    axes = {a % x.ndim for a in ((axes,) if isinstance(axes, int) else axes)}
    return x if axes == set(range(x.ndim)) else None


def _reads_at_own_index(kernel: FusedKernel, weight: Value, shape=None) -> bool:
    """True if every path from `weight` to the kernel's value goes through elementwise ops of
    the result's shape (or of `shape`, ending in the full sum of a reduce kernel), so element
    i of the result (of the summed operand) reads only element i of `weight`."""
    if shape is None:
        shape = kernel.value.shape
    ops = kernel.ops if shape == kernel.value.shape else kernel.ops[:-1]
    depends = {weight}
    for op in ops:
        if any(v in depends for v in op.operands):
            if (op.name in VIEWS or op.name in GATHERS or op.name in SOURCES
                    or op.name in KERNEL_ROOTS or op.result.shape != shape):
                return False
            depends.add(op.result)
    return True
