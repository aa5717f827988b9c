"""Convolution kernels: conv2d, its input gradient and its weight gradient (`ir/ops/conv.py`)
as per-image packing plus register-tiled matrix products, parallel over images.

For image n and group g (C/g input channels, O/g outputs, K = C/g*kh*kw taps, P = Ho*Wo
output pixels), with cols = im2col of that image's channels, a (K, P) matrix:

    forward       y[n, g]  (O/g, P) = W_g (O/g, K) @ cols
    input grad    dx[n, g]          = col2im(W_g.T @ dy[n, g])        (K, P) then summed back
    weight grad   dW_g    (O/g, K) += dy[n, g] (O/g, P) @ cols.T

Every operand is a contiguous block of an NCHW buffer, so nothing is transposed; cols (or
W_g.T @ dy) lives in a scratch buffer of one image's size, which stays in cache between the
packing loop (`lower_window`'s tap nests, unit-stride rows) and the product (`gemm_tiles`, or
BLAS for large images). A 1x1 stride-1 convolution reads x itself as cols. With padding,
the image group is first copied into the interior of a zero-bordered scratch copy (the
input gradient is summed into one and its interior copied out), so every tap packs whole
rows: no zero fill of the columns, no rows one element short. Images are split
into tasks on the thread pool (the products then run on their task's core); the weight
gradient sums one partial per task at the end. A forward convolution takes its consumer's
elementwise ops (bias, ReLU) as the tiles' epilogue, as a matrix product does (`fuse`). The
input and weight gradients of one convolution, when their kernels are adjacent, run as one
`conv2d_backward` kernel (`backward_pairs`): each image's dy is read from memory once, while
it is in cache, by both products. When the kernel before them is the forward convolution of
the same x and w (a training step's `sum(conv(x) * G)`), it joins that image loop too: each
image is packed once for the forward product and the weight gradient.
"""
from __future__ import annotations

from llvmlite import ir

from ..ir.core import Op, Value
from ..ir.ops.conv import window_geometry
from . import loops as L
from .fuse import GATHERS, FusedKernel, full_sum_operand
from .gemm_tiles import DOT_TILE, MAX_TASKS, MIN_TASK_FMAS, Epilogue
from .lower_window import col2im_body, im2col_body
from .matmul import choose_strategy, emit_matmul
from .parallel import call_parallel_for, load_context, pointer_context, task_function
from .scalar_ops import FLOAT_FLAGS
from .simplify_index import simplify_body

_I64 = ir.IntType(64)
_I8 = ir.IntType(8)
_PTR = ir.PointerType()
_ELEMENTS = {"f32": ir.FloatType(), "f64": ir.DoubleType()}
_WINDOW_ATTRS = ("stride", "dilation", "pads", "groups")
BACKWARD = "conv2d_backward"    # input and weight gradient in one pass over dy (`backward_pairs`)
MAX_PARTIAL_BYTES = 4 << 20     # the weight gradient's per-task partials, all tasks together
SUM_LANES = 16                  # partial sums per output row of a summing epilogue (>= lanes)


# ----------------------------------------------------------------------- graph -> loops

def _shapes(op: Op) -> tuple[tuple, tuple, tuple]:
    """(image, filter, output) shapes of a convolution op: x's, w's and y's."""
    a, b = op.operands
    if op.name == "gs.conv2d":
        return a.shape, b.shape, op.result.shape
    if op.name == "gs.conv2d_input_grad":
        return tuple(op.attrs["image"]), b.shape, a.shape
    return a.shape, op.result.shape, b.shape


def _statement(lw, op: Op, out: L.Buffer | None, epilogue=None) -> L.Conv:
    image, filter_, out_shape = _shapes(op)
    a, b = op.operands
    return L.Conv(op.name[3:], lw.buffer_of(a), lw.buffer_of(b), out, image, filter_,
                  out_shape, {k: op.attrs[k] for k in _WINDOW_ATTRS}, epilogue)


def lower_conv(lw, op: Op, out: L.Buffer) -> list:
    return [_statement(lw, op, out)]


def lower_conv_epilogue(lw, k: FusedKernel, out: L.Buffer) -> list:
    """A forward convolution whose elements go through the kernel's elementwise ops: the
    store is written over image `n`, channel `i0` and pixel `i1` (row-major Ho x Wo). When
    the kernel is a full sum, the store is `out[0] = add(out[0], summand)` (`Conv.sums`)."""
    op = k.product.op
    width = op.result.shape[3]
    pixel = L.Var("i1")
    index = [L.Var("n"), L.Var("i0"), L.idiv(pixel, width), L.imod(pixel, width)]
    summed = full_sum_operand(k)
    lw.in_registers[k.product] = L.Var("acc")
    try:
        if summed is None:
            store = L.Store(out, L.linear(index, out.shape), lw.op_at(k.value.op, index))
        else:
            first = L.index_const(0)
            store = L.Store(out, first, L.Call("add", (L.Load(out, first), lw.value_at(
                summed, index)), out.dtype))
    finally:
        del lw.in_registers[k.product]
    _fold_pixels(store, width)
    statement = _statement(lw, op, None, store)
    statement.sums = summed is not None
    return [statement]


def _fold_pixels(store: L.Store, width: int) -> None:
    """Rewrite ``(i1 // width) * width + i1 % width`` back to ``i1`` in every index of the
    epilogue (in place), so its loads and store step with i1 and vectorise."""
    def index(e):
        if not isinstance(e, L.Call) or e.op not in L.INDEX_OPS:
            return e
        if e.op != "+":
            return L.Call(e.op, tuple(index(a) for a in e.args), e.dtype, e.attrs)
        terms = _terms(e)
        rows = [t for t in terms if _is_row(t, width)]
        columns = [t for t in terms if _is_pixel_op(t, "%", width)]
        if rows and columns:
            terms.remove(rows[0])
            terms.remove(columns[0])
            terms.append(L.Var("i1"))
        total = L.index_const(0)
        for t in terms:
            total = L.iadd(total, index(t))
        return total

    def value(e):
        if isinstance(e, L.Load):
            e.index = index(e.index)
        elif isinstance(e, L.Call) and e.op not in L.INDEX_OPS:
            e.args = tuple(value(a) for a in e.args)
        return e
    store.index = index(store.index)
    store.value = value(store.value)


def _terms(e) -> list:
    if isinstance(e, L.Call) and e.op == "+":
        return _terms(e.args[0]) + _terms(e.args[1])
    return [e]


def _is_pixel_op(e, op: str, width: int) -> bool:
    return (isinstance(e, L.Call) and e.op == op and isinstance(e.args[0], L.Var)
            and e.args[0].name == "i1" and isinstance(e.args[1], L.Const)
            and e.args[1].value == width)


def _is_row(e, width: int) -> bool:
    return (isinstance(e, L.Call) and e.op == "*" and _is_pixel_op(e.args[0], "//", width)
            and isinstance(e.args[1], L.Const) and e.args[1].value == width)


class _Geometry:
    """Sizes of one convolution: images, channels, groups, taps K and pixels P."""

    def __init__(self, image, filter_, out_shape, attrs, dtype: str):
        self.n, self.c, self.h, self.w = image
        self.o, self.cg, self.kh, self.kw = filter_
        self.ho, self.wo = out_shape[2:]
        self.groups = attrs["groups"]
        self.og = self.o // self.groups
        self.k = self.cg * self.kh * self.kw
        self.p = self.ho * self.wo
        self.dtype = dtype
        self.window = {"kernel": (self.kh, self.kw), **{a: attrs[a] for a in
                                                          ("stride", "dilation", "pads")}}
        self.identity = ((self.kh, self.kw) == (1, 1) and attrs["stride"] == (1, 1)
                         and not any(attrs["pads"]))
        top, bottom, left, right = attrs["pads"]
        self.padded = (1, self.cg, self.h + top + bottom, self.w + left + right)
        self.padded_size = (self.cg * self.padded[2] * self.padded[3]
                            if any(attrs["pads"]) else 0)

    def scratch(self, op: str) -> dict[str, int]:
        """Element offsets of one task's scratch regions, and its "size": the packed taps
        ("cols", and "cols2" for the combined backward's input gradient), then the zero-padded
        image group for the packing ("x") and for the input gradient's unpacking ("dx")."""
        if self.identity:
            return {"size": 0}
        columns = self.k * self.p
        regions = {"cols": 0, "cols2": columns} if op == BACKWARD else {"cols": 0}
        end = len(regions) * columns
        if self.padded_size:
            for region in (("x",) if op == "conv2d" else ("dx",) if op == "conv2d_input_grad"
                           else ("x", "dx") if op == BACKWARD else ("x",)):
                regions[region], end = end, end + self.padded_size
        return {**regions, "size": end}

    def products(self, op: str) -> tuple[int, int, int, bool, bool]:
        """(m, n, k, transpose_a, transpose_b) of the per-image, per-group product."""
        if op == "conv2d":
            return self.og, self.p, self.k, False, False
        if op == "conv2d_input_grad":
            return self.k, self.p, self.og, True, False
        return self.og, self.k, self.p, False, True


def _per_image_strategy(op: str, geometry: _Geometry) -> str:
    """'tiles' when every per-image product of `op` uses register tiles."""
    strategies = {choose_strategy(*geometry.products(one)[:3], geometry.dtype,
                                  *geometry.products(one)[3:])
                  for one in ((op,) if op != BACKWARD else
                              ("conv2d_input_grad", "conv2d_filter_grad"))}
    return strategies.pop() if len(strategies) == 1 else "mixed"


def epilogue_ok(product: Value, kernel: FusedKernel) -> bool:
    """A forward convolution takes `kernel` (elementwise, or a full sum of elementwise ops) as
    its epilogue when its per-image products are register tiles and the kernel gathers
    nothing."""
    op = product.op
    if op.name != "gs.conv2d" or product.dtype.mlir not in _ELEMENTS:
        return False
    if any(o.name in GATHERS for o in kernel.ops):
        return False
    if kernel.kind != "elementwise" and full_sum_operand(kernel) is None:
        return False
    geometry = _Geometry(*_shapes(op), op.attrs, product.dtype.mlir)
    return _per_image_strategy("conv2d", geometry) == "tiles"


def backward_pairs(fused) -> dict[int, tuple | None]:
    """Adjacent input- and weight-gradient kernels of one convolution (the same dy, window
    and filter), to run as one kernel at the later one's place, each image's dy read once
    for both products: {later index: (input_grad op, filter_grad op, forward kernel or None),
    earlier index (and the forward's): None}.
    Skipped when the earlier kernel is the last reader of an arena value the later one does
    not read (the later kernel's result may have been placed over it)."""
    kernels = fused.kernels
    last_read: dict = {}
    for index, kernel in enumerate(kernels):
        for v in kernel.reads:
            last_read[v] = index
    pairs: dict[int, tuple | None] = {}
    for i in range(len(kernels) - 1):
        first, second = kernels[i], kernels[i + 1]
        if (i in pairs or first.kind != "matmul" or second.kind != "matmul"
                or first.product is not None or second.product is not None):
            continue
        ops = {k.value.op.name if k.value.op is not None else None: k.value.op
               for k in (first, second)}
        dgrad, wgrad = ops.get("gs.conv2d_input_grad"), ops.get("gs.conv2d_filter_grad")
        if dgrad is None or wgrad is None or dgrad.operands[0] is not wgrad.operands[1]:
            continue
        if (any(dgrad.attrs[a] != wgrad.attrs[a] for a in _WINDOW_ATTRS)
                or tuple(dgrad.attrs["image"]) != wgrad.operands[0].shape
                or dgrad.operands[1].shape != wgrad.result.shape):
            continue
        if any(v not in second.reads and fused.homes.get(v, ("",))[0] == "ws"
               and last_read.get(v, -1) <= i for v in first.reads):
            continue
        geometry = _Geometry(*_shapes(wgrad), wgrad.attrs, wgrad.result.dtype.mlir)
        if wgrad.result.dtype.mlir not in _ELEMENTS or _per_image_strategy(
                BACKWARD, geometry) != "tiles":
            continue
        forward = _forward_before(fused, i, dgrad, wgrad, last_read, pairs)
        if forward is not None:
            pairs[i - 1] = None
        pairs[i], pairs[i + 1] = None, (dgrad, wgrad, forward)
    return pairs


def _forward_before(fused, i: int, dgrad: Op, wgrad: Op, last_read: dict, pairs: dict):
    """The kernel before the gradient pair at (i, i + 1) when it is the forward convolution
    of the same x, w and window (stored, or with its epilogue) and can run in the pair's
    image loop: each image's columns are then packed once for the forward product and the
    weight gradient, and dy (the forward epilogue's G in `sum(conv(x) * G)`) read from
    memory once. Not when the pair reads its result (dy = y), or when it last reads an
    arena value the later kernel does not read (the gradients may be placed over it)."""
    if i == 0 or i - 1 in pairs:
        return None
    kernel = fused.kernels[i - 1]
    if kernel.kind != "matmul" or kernel.value is None:
        return None
    op = kernel.product.op if kernel.product is not None else kernel.value.op
    if op is None or op.name != "gs.conv2d" or kernel.regions:
        return None
    x, w = op.operands
    if (x is not wgrad.operands[0] or w is not dgrad.operands[1]
            or any(op.attrs[a] != wgrad.attrs[a] for a in _WINDOW_ATTRS)
            or op.result.dtype is not wgrad.result.dtype):
        return None
    if any(kernel.value in fused.kernels[j].reads for j in (i, i + 1)):
        return None
    if any(fused.homes.get(v, ("",))[0] == "ws" and last_read.get(v, -1) <= i
           for v in kernel.reads):
        return None
    geometry = _Geometry(*_shapes(op), op.attrs, op.result.dtype.mlir)
    if _per_image_strategy("conv2d", geometry) != "tiles":
        return None
    return kernel


def lower_conv_backward(lw, dgrad: Op, wgrad: Op, forward: FusedKernel | None = None) -> list:
    """One `L.Conv` computing both gradients: a = x, b = dy, c = dW, w and dx; with the
    `forward` kernel (`_forward_before`) also y (`Conv.y`) or its epilogue."""
    image, filter_, out_shape = _shapes(wgrad)
    x, dy = wgrad.operands
    statement = L.Conv(BACKWARD, lw.buffer_of(x), lw.buffer_of(dy),
                       lw.buffer_of(wgrad.result), image, filter_, out_shape,
                       {k: wgrad.attrs[k] for k in _WINDOW_ATTRS}, None,
                       lw.buffer_of(dgrad.operands[1]), lw.buffer_of(dgrad.result))
    if forward is not None:
        out = lw.buffer_of(forward.value)
        if forward.product is not None:
            alone = lower_conv_epilogue(lw, forward, out)[0]
        else:
            alone = lower_conv(lw, forward.value.op, out)[0]
        statement.forward, statement.y = True, alone.c
        statement.epilogue, statement.sums = alone.epilogue, alone.sums
    return [statement]


CONV_LOWERINGS = {name: lower_conv for name in
                  ("gs.conv2d", "gs.conv2d_input_grad", "gs.conv2d_filter_grad")}


# ------------------------------------------------------------------------ loops -> LLVM

def emit_conv(emitter, stmt: L.Conv) -> None:
    """Emit `stmt` at `emitter` (a KernelEmitter): per-image step, image loop, tasks."""
    from .emit_llvm import _epilogue_buffers
    dtype = stmt.a.dtype.mlir
    if dtype not in _ELEMENTS:
        from .scalar_ops import LoweringError
        raise LoweringError(f"no lowering for gs.{stmt.op} on {dtype} operands")
    geometry = _Geometry(stmt.image, stmt.filter, stmt.out_shape, stmt.attrs, dtype)
    b = emitter.builder
    element = _ELEMENTS[dtype]
    itemsize = stmt.a.dtype.itemsize
    weights = stmt.op in ("conv2d_filter_grad", BACKWARD)      # c is a weight gradient
    sizes = {"c": geometry.o * geometry.k if weights else geometry.n * (
        geometry.c * geometry.h * geometry.w if stmt.op == "conv2d_input_grad"
        else geometry.o * geometry.p), "dx": geometry.n * geometry.c * geometry.h * geometry.w}
    if sizes["c"] == 0 or (stmt.op == BACKWARD and sizes["dx"] == 0):
        return
    if geometry.k == 0 or geometry.og == 0:          # no taps or no outputs: zeros
        _memset(b, emitter.params[id(stmt.c)], sizes["c"] * itemsize)
        if stmt.op == BACKWARD:
            _memset(b, emitter.params[id(stmt.dx)], sizes["dx"] * itemsize)
        return
    epilogue_buffers = _epilogue_buffers(stmt.epilogue) if stmt.epilogue is not None else []
    pointers = [emitter.params[id(stmt.a)], emitter.params[id(stmt.b)],
                ir.Constant(_PTR, None) if stmt.c is None else emitter.params[id(stmt.c)]]
    if stmt.op == BACKWARD:
        pointers += [emitter.params[id(stmt.w)], emitter.params[id(stmt.dx)]]
    if stmt.forward:                # the forward's y (or its partial sums, or nothing)
        pointers.append(ir.Constant(_PTR, None) if stmt.y is None else emitter.params[id(stmt.y)])
    first_epilogue = len(pointers)
    pointers += [emitter.params[id(x)] for x in epilogue_buffers]
    name = f"{emitter.function.name}.conv{_count(b.module, emitter.function.name + '.conv')}"

    products = (2 if stmt.op == BACKWARD else 1) + stmt.forward
    fmas = geometry.n * geometry.o * geometry.p * geometry.k * products
    tasks = 1
    if emitter.parallel and _per_image_strategy(stmt.op, geometry) == "tiles":
        tasks = max(1, min(geometry.n, MAX_TASKS, fmas // MIN_TASK_FMAS))
        if weights:                             # each task holds a partial weight gradient
            partial_bytes = geometry.o * geometry.k * stmt.a.dtype.itemsize
            tasks = min(tasks, max(2, MAX_PARTIAL_BYTES // partial_bytes))
    chunk = -(-geometry.n // tasks)
    tasks = -(-geometry.n // chunk)
    inner_parallel = emitter.parallel and tasks == 1
    step = _step_function(b.module, name, stmt, geometry, element, epilogue_buffers,
                          inner_parallel)
    output_sized = [(first_epilogue + i, geometry.o * geometry.p * x.dtype.itemsize)
                    for i, x in enumerate(epilogue_buffers)
                    if x.shape == tuple(stmt.out_shape) and x is not stmt.epilogue.buffer
                    and (stmt.op != BACKWARD or x is not stmt.b)]
    images = _images_function(b.module, name, stmt, geometry, element, step, len(pointers),
                              output_sized)
    partial_elements = geometry.o * geometry.k
    sums_at = first_epilogue - 1 if stmt.forward else 2
    if stmt.sums:                    # SUM_LANES partial sums per (image, channel) row
        sum_rows = geometry.n * geometry.o
        pointers[sums_at] = _malloc(b, sum_rows * SUM_LANES * itemsize)
        _memset(b, pointers[sums_at], sum_rows * SUM_LANES * itemsize)
        sums = pointers[sums_at]

    def finish_sums():
        if stmt.sums:
            _sum_rows(b, sums, emitter.params[id(stmt.epilogue.buffer)], sum_rows, element)
            _free(b, sums)
    if tasks == 1:
        b.call(images, pointers + [ir.Constant(_I64, 0), ir.Constant(_I64, geometry.n)])
        finish_sums()
        return
    if weights:                                      # one partial weight gradient per task
        partials = _malloc(b, tasks * partial_elements * itemsize)
        pointers[2] = partials
    task = task_function(b.module, f"{name}.task")
    t = ir.IRBuilder(task.append_basic_block("entry"))
    ctx, index = task.args
    inside = load_context(t, ctx, len(pointers))
    start = t.mul(index, ir.Constant(_I64, chunk))
    end = t.add(start, ir.Constant(_I64, chunk))
    count = ir.Constant(_I64, geometry.n)
    end = t.select(t.icmp_unsigned("<", end, count), end, count)
    if weights:
        inside[2] = t.gep(inside[2], [t.mul(index, ir.Constant(_I64, partial_elements))],
                          inbounds=True, source_etype=element)
    t.call(images, inside + [start, end])
    t.ret_void()
    call_parallel_for(b, task, pointer_context(b, pointers), tasks)
    finish_sums()
    if weights:
        _sum_partials(b, partials, emitter.params[id(stmt.c)], tasks, partial_elements,
                      element)
        _free(b, partials)


def _count(module: ir.Module, prefix: str) -> int:
    return sum(1 for g in module.globals if g.startswith(prefix) and g[len(prefix):].isdigit())


def _function(module, name, count, extra=()):
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR] * count + list(extra)),
                           name)
    function.linkage = "internal"
    function.attributes.add("nounwind")
    return function


def _images_function(module, name, stmt, geometry, element, step, count, output_sized=()):
    """`images(a, b, c, [w, dx, [y,]] epilogue..., start, end)`: images [start, end) of
    every group, with one scratch block (`_Geometry.scratch`) for the packed taps (two for
    the combined backward) and zero-padded image groups; a weight gradient first zeroes its
    c. The next image's part of the streamed operand, and of the epilogue's inputs of the
    output's shape (`output_sized`: (position, bytes per image)), is prefetched while this
    one computes."""
    function = _function(module, f"{name}.images", count, (_I64, _I64))
    b = ir.IRBuilder(function.append_basic_block("entry"))
    *pointers, start, end = function.args
    regions = geometry.scratch(stmt.op)
    itemsize = stmt.a.dtype.itemsize
    scratch_bytes = regions["size"] * itemsize
    scratch = _malloc(b, scratch_bytes) if scratch_bytes else ir.Constant(_PTR, None)
    if "x" in regions:              # the padded image's border: zero once, never written
        _memset(b, b.gep(scratch, [ir.Constant(_I64, regions["x"] * itemsize)],
                         inbounds=True, source_etype=_I8), geometry.padded_size * itemsize)
    if stmt.op in ("conv2d_filter_grad", BACKWARD):
        _memset(b, pointers[2], geometry.o * geometry.k * stmt.a.dtype.itemsize)

    operand, elements = _streamed_operand(stmt.op, geometry, pointers)
    streamed = [(operand, elements * stmt.a.dtype.itemsize)]
    streamed += [(pointers[i], nbytes) for i, nbytes in output_sized]

    def image(n):
        following = b.add(n, ir.Constant(_I64, 1))
        with b.if_then(b.icmp_unsigned("<", following, end)):
            for operand, nbytes in streamed:
                block = b.gep(operand, [b.mul(following, ir.Constant(_I64, nbytes))],
                              inbounds=True, source_etype=_I8)
                _prefetch(b, block, nbytes)
        _loop(b, ir.Constant(_I64, 0), ir.Constant(_I64, geometry.groups),
              lambda g: b.call(step, list(pointers) + [scratch, n, g]))
    with b.if_then(b.icmp_unsigned("<", start, end)):
        _loop(b, start, end, image)
    if scratch_bytes:
        _free(b, scratch)
    b.ret_void()
    return function


def _streamed_operand(op: str, geometry, pointers):
    """The operand read per image that is large (dy for the gradients, x forward) and its
    elements per image."""
    if op == "conv2d":
        return pointers[0], geometry.c * geometry.h * geometry.w
    if op == "conv2d_input_grad":
        return pointers[0], geometry.o * geometry.p
    return pointers[1], geometry.o * geometry.p          # filter grad, backward: dy


def _prefetch(b, pointer, nbytes: int, line: int = 64) -> None:
    """Software prefetches of `nbytes` from `pointer` into L2, one per cache line, in
    address order: the next image streams in while this one computes (the products read
    it a column panel at a time, an order the hardware prefetchers do not follow)."""
    i32 = ir.IntType(32)
    prefetch = _declare(b.module, "llvm.prefetch.p0", ir.VoidType(), [_PTR, i32, i32, i32])
    lines = -(-nbytes // line)

    def one(i):
        at = b.gep(pointer, [b.mul(i, ir.Constant(_I64, line))], inbounds=True, source_etype=_I8)
        b.call(prefetch, [at, ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)])
    _loop(b, ir.Constant(_I64, 0), ir.Constant(_I64, lines), one)


def _step_function(module, name, stmt, geometry, element, epilogue_buffers, parallel):
    """`step(a, b, c, [w, dx, [y,]] epilogue..., scratch, n, g)`: one image's group (its own
    function, so the product's context array is freed on return)."""
    count = 3 + len(epilogue_buffers) + (2 if stmt.op == BACKWARD else 0) + stmt.forward
    function = _function(module, f"{name}.step", count + 1, (_I64, _I64))
    for arg in function.args[:count + 1]:
        arg.add_attribute("noalias")
    b = ir.IRBuilder(function.append_basic_block("entry"))
    a, w, c, *extra = function.args[:count]         # extra: [w, dx] of the backward, epilogue
    scratch, n, g = function.args[count:]
    gm = geometry

    def at(base, *terms):
        offset = ir.Constant(_I64, 0)
        for value, factor in terms:
            offset = b.add(offset, b.mul(value, ir.Constant(_I64, factor)))
        return b.gep(base, [offset], inbounds=True, source_etype=element)

    image_plane = gm.h * gm.w
    m, n_cols, k, ta, tb = gm.products(stmt.op)
    regions = gm.scratch(stmt.op)

    def region(key):
        if key not in regions:
            return None
        return b.gep(scratch, [ir.Constant(_I64, regions[key])], inbounds=True,
                     source_etype=element)
    def forward(cols, weights, y, epilogue_pointers):
        """y (or its epilogue, or its partial sums at y) of this image's group."""
        first_channel = b.mul(g, ir.Constant(_I64, gm.og))
        epilogue, target = None, None
        if stmt.sums:
            epilogue = _summing_epilogue(b, stmt.epilogue, epilogue_buffers, epilogue_pointers,
                                         y, n, first_channel, gm.o)
        elif stmt.epilogue is not None:
            epilogue = _forward_epilogue(b, stmt.epilogue, epilogue_buffers, epilogue_pointers,
                                         n, first_channel)
        else:
            target = at(y, (n, gm.o * gm.p), (g, gm.og * gm.p))
        m1, n1, k1, ta1, tb1 = gm.products("conv2d")
        emit_matmul(b, at(weights, (g, gm.og * gm.k)), cols, target, m1, n1, k1, gm.dtype,
                    ta1, tb1, parallel, epilogue)

    if stmt.op == "conv2d":
        x = at(a, (n, gm.c * image_plane), (g, gm.cg * image_plane))
        cols = x if gm.identity else _pack(module, name, b, gm, x, scratch, region("x"))
        forward(cols, w, c, extra)
    elif stmt.op == "conv2d_input_grad":
        dy = at(a, (n, gm.o * gm.p), (g, gm.og * gm.p))
        weights = at(w, (g, gm.og * gm.k))
        dx = at(c, (n, gm.c * image_plane), (g, gm.cg * image_plane))
        emit_matmul(b, weights, dy, dx if gm.identity else scratch, m, n_cols, k, gm.dtype,
                    ta, tb, parallel)
        if not gm.identity:
            _unpack(module, name, b, gm, scratch, dx, region("dx"))
    else:                                   # weight gradient (and, combined, input gradient)
        x = at(a, (n, gm.c * image_plane), (g, gm.cg * image_plane))
        dy = at(w, (n, gm.o * gm.p), (g, gm.og * gm.p))
        cols = x if gm.identity else _pack(module, name, b, gm, x, scratch, region("x"))
        if stmt.forward:                    # the columns are packed: the forward from them
            forward(cols, extra[0], extra[2], extra[3:])
        dw = at(c, (g, gm.og * gm.k))
        if choose_strategy(m, n_cols, k, gm.dtype, ta, tb) == "tiles":
            if _transposed_fits_better(m, n_cols) and choose_strategy(
                    n_cols, m, k, gm.dtype, ta, tb) == "tiles":     # dW.T = cols @ dy.T
                emit_matmul(b, cols, dy, None, n_cols, m, k, gm.dtype, ta, tb, parallel,
                            _accumulating(dw, gm.k, element, stmt.a.dtype.itemsize, True))
            else:
                emit_matmul(b, dy, cols, None, m, n_cols, k, gm.dtype, ta, tb, parallel,
                            _accumulating(dw, gm.k, element, stmt.a.dtype.itemsize))
        else:
            emit_matmul(b, dy, cols, dw, m, n_cols, k, gm.dtype, ta, tb, parallel,
                        alpha=ir.Constant(element, 1.0), accumulate=True)
        if stmt.op == BACKWARD:             # dy of this image is in cache: dx from it now
            weights, dx_image = extra[0], extra[1]
            dx = at(dx_image, (n, gm.c * image_plane), (g, gm.cg * image_plane))
            columns = region("cols2")
            m2, n2, k2, ta2, tb2 = gm.products("conv2d_input_grad")
            emit_matmul(b, at(weights, (g, gm.og * gm.k)), dy, dx if gm.identity else columns,
                        m2, n2, k2, gm.dtype, ta2, tb2, parallel)
            if not gm.identity:
                _unpack(module, name, b, gm, columns, dx, region("dx"))
    b.ret_void()
    return function


def _forward_epilogue(b, store, buffers, pointers, n, first_channel) -> Epilogue:
    """The fused elementwise store on each output element; the image index and the group's
    first channel ride in the product's context array as two pointer-sized integers."""
    from .emit_llvm import emit_epilogue
    carried = list(pointers) + [b.inttoptr(n, _PTR), b.inttoptr(first_channel, _PTR)]

    def emit(builder, inside, i, j, acc):
        image = builder.ptrtoint(inside[-2], _I64)
        channel = builder.add(i, builder.ptrtoint(inside[-1], _I64))
        params = {id(x): p for x, p in zip(buffers, inside[:-2])}
        emit_epilogue(builder, params, store, channel, j, acc, {"n": image})
    return Epilogue(carried, emit)


def _summing_epilogue(b, store, buffers, pointers, sums, n, first_channel,
                      channels: int) -> Epilogue:
    """Each output element's summand (`store.value` is `add(out[0], summand)`) added into
    its (image, channel) row's SUM_LANES partial sums at `sums`: consecutive columns lane by
    lane, a scalar into lane 0. A row belongs to one task however the work is split, and
    `_sum_rows` adds the rows up in a fixed order: the result does not depend on threads."""
    from .emit_llvm import ExprEmitter, LanesEmitter
    summand = store.value.args[1]
    carried = list(pointers) + [sums, b.inttoptr(n, _PTR), b.inttoptr(first_channel, _PTR)]

    def emit(builder, inside, i, j, acc):
        image = builder.ptrtoint(inside[-2], _I64)
        channel = builder.add(i, builder.ptrtoint(inside[-1], _I64))
        params = {id(x): p for x, p in zip(buffers, inside[:-3])}
        if isinstance(acc.type, ir.VectorType):
            value = LanesEmitter(builder, params, channel, j, acc, {"n": image}).expr(summand)
        else:
            value = ExprEmitter(builder, params, {"i0": channel, "i1": j, "acc": acc,
                                                  "n": image}).expr(summand)
        row = builder.add(builder.mul(image, ir.Constant(_I64, channels)), channel)
        slot = builder.gep(inside[-3], [builder.mul(row, ir.Constant(_I64, SUM_LANES))],
                           inbounds=True, source_etype=acc.type.element
                           if isinstance(acc.type, ir.VectorType) else acc.type)
        old = builder.load(slot, typ=value.type, align=4)
        # contractible with the summand's multiply: one FMA per vector, one rounding
        builder.store(builder.fadd(old, value, flags=FLOAT_FLAGS), slot, align=4)
    return Epilogue(carried, emit)


def _sum_rows(b, sums, out, rows: int, element) -> None:
    """out[0] = the sum of `rows` x SUM_LANES partial sums, added in double precision."""
    wide = ir.VectorType(ir.DoubleType(), SUM_LANES)
    narrow = ir.VectorType(element, SUM_LANES)
    total = b.alloca(wide)
    b.store(ir.Constant(wide, [0.0] * SUM_LANES), total)

    def row(r):
        at = b.gep(sums, [b.mul(r, ir.Constant(_I64, SUM_LANES))], inbounds=True,
                   source_etype=element)
        part = b.load(at, typ=narrow, align=4)
        if element != ir.DoubleType():
            part = b.fpext(part, wide)
        b.store(b.fadd(b.load(total, typ=wide), part), total)
    _loop(b, ir.Constant(_I64, 0), ir.Constant(_I64, rows), row)
    vector = b.load(total, typ=wide)
    result = b.extract_element(vector, ir.Constant(ir.IntType(32), 0))
    for lane in range(1, SUM_LANES):
        result = b.fadd(result, b.extract_element(vector, ir.Constant(ir.IntType(32), lane)))
    if element != ir.DoubleType():
        result = b.fptrunc(result, element)
    b.store(result, out)


def _transposed_fits_better(m: int, n: int) -> bool:
    """True when the weight gradient's dot tiles (DOT_TILE rows x columns) waste fewer
    products on the short edge tiles as the (n, m) product than as (m, n): 3->64 filters
    give 64 x 27 (a 1-row tile, 3-column tiles) but 27 x 64 (none)."""
    rows, cols = DOT_TILE

    def covered(a, b):
        return -(-a // rows) * rows * -(-b // cols) * cols
    return covered(n, m) < covered(m, n)


def _accumulating(target, width: int, element, align: int, transposed=False) -> Epilogue:
    """target[i, j] += acc (a scalar or consecutive columns): the weight gradient summed over
    images in its task's partial. `transposed`: the product is dW.T, so element (i, j) goes
    to target[j, i] (a vector lane by lane)."""
    def emit(builder, inside, i, j, acc):
        if transposed:
            lanes = acc.type.count if isinstance(acc.type, ir.VectorType) else 1
            for lane in range(lanes):
                value = acc if lanes == 1 else builder.extract_element(
                    acc, ir.Constant(ir.IntType(32), lane))
                row = builder.add(j, ir.Constant(_I64, lane))
                offset = builder.add(builder.mul(row, ir.Constant(_I64, width)), i)
                address = builder.gep(inside[0], [offset], inbounds=True, source_etype=element)
                old = builder.load(address, typ=value.type, align=align)
                builder.store(builder.fadd(old, value), address, align=align)
            return
        offset = builder.add(builder.mul(i, ir.Constant(_I64, width)), j)
        address = builder.gep(inside[0], [offset], inbounds=True, source_etype=element)
        old = builder.load(address, typ=acc.type, align=align)
        builder.store(builder.fadd(old, acc), address, align=align)
    return Epilogue([target], emit)


def _window_kernel(module, name, body, buffers):
    """An internal function over `buffers` (noalias) running the loop-IR `body`."""
    from .emit_llvm import KernelEmitter, _name_buffers
    kernel = L.Kernel(name, buffers, simplify_body(body))
    function = _function(module, name, len(buffers))
    _name_buffers(function, kernel)
    emitter = KernelEmitter(function, kernel, parallel=False)
    emitter.stmts(kernel.body)
    emitter.builder.ret_void()
    return function


def _group_buffers(gm):
    """Loop-IR buffers of one image's group (1, C/g, H, W), its columns (K, P) and the group
    with its zero border (1, C/g, H + pads, W + pads)."""
    from ..ir.types import DType
    dt = DType.f32 if gm.dtype == "f32" else DType.f64
    image = L.Buffer("image", (1, gm.cg, gm.h, gm.w), dt, "in")
    cols = L.Buffer("cols", (gm.k, gm.p), dt, "out", 1)
    padded = L.Buffer("padded", gm.padded, dt, "out", 2)
    return image, cols, padded


def _interior(gm, padded, image, into_padded: bool) -> list:
    """Copy between one image group and the interior of its padded copy, row by row."""
    top, left = gm.window["pads"][0], gm.window["pads"][2]

    def element(ix):
        _, c, h, w = ix
        inside = L.linear([L.index_const(0), c, L.iadd(h, L.index_const(top)),
                           L.iadd(w, L.index_const(left))], padded.shape)
        plain = L.linear(ix, image.shape)
        if into_padded:
            return [L.Store(padded, inside, L.Load(image, plain))]
        return [L.Store(image, plain, L.Load(padded, inside))]
    return L.nest(image.shape, "p", element)


def _unpadded(gm) -> dict:
    return {**gm.window, "pads": (0, 0, 0, 0)}


def _pack(module, name, b, gm, x, scratch, padded_scratch=None):
    """scratch = im2col of one image's group (K x P); returns scratch. With padding the
    group is first copied into the interior of `padded_scratch` (whose border is zero), so
    that every tap reads whole rows: no zero fill of the columns, no short rows."""
    function = module.globals.get(f"{name}.pack")
    if function is None:
        image, cols, padded = _group_buffers(gm)
        if padded_scratch is None:
            body = im2col_body(image.shape, gm.window, cols,
                               lambda ix: L.Load(image, L.linear(ix, image.shape)))
            buffers = [image, cols]
        else:
            body = _interior(gm, padded, image, True) + im2col_body(
                padded.shape, _unpadded(gm), cols,
                lambda ix: L.Load(padded, L.linear(ix, padded.shape)))
            buffers = [image, cols, padded]
        function = _window_kernel(module, f"{name}.pack", body, buffers)
    b.call(function, [x, scratch] + ([] if padded_scratch is None else [padded_scratch]))
    return scratch


def _unpack(module, name, b, gm, scratch, dx, padded_scratch=None):
    """dx (one image's group) = col2im of the scratch columns; with padding, summed into
    the padded copy in whole rows, whose interior is then copied to dx."""
    image, cols, padded = _group_buffers(gm)

    def read(ix):
        return L.Load(cols, L.linear(ix, cols.shape))
    if padded_scratch is None:
        body, buffers, args = col2im_body(gm.window, image, read), [cols, image], [scratch, dx]
    else:
        body = col2im_body(_unpadded(gm), padded, read) + _interior(gm, padded, image, False)
        buffers, args = [cols, image, padded], [scratch, dx, padded_scratch]
    function = _window_kernel(module, f"{name}.unpack", body, buffers)
    b.call(function, args)


def _sum_partials(b, partials, out, tasks, size, element):
    """out[i] = sum over tasks of partials[t * size + i]."""
    def element_at(i):
        total = None
        for t in range(tasks):
            at = b.gep(partials, [b.add(i, ir.Constant(_I64, t * size))], inbounds=True,
                       source_etype=element)
            value = b.load(at, typ=element)
            total = value if total is None else b.fadd(total, value)
        b.store(total, b.gep(out, [i], inbounds=True, source_etype=element))
    _loop(b, ir.Constant(_I64, 0), ir.Constant(_I64, size), element_at)


def _loop(b, start, end, body) -> None:
    """``for i in range(start, end)`` (i64 values, start < end); ``body(i)`` emits code."""
    function = b.function
    before = b.block
    loop = function.append_basic_block("conv.loop")
    after = function.append_basic_block("conv.after")
    b.branch(loop)
    b.position_at_end(loop)
    index = b.phi(_I64)
    index.add_incoming(start, before)
    body(index)
    following = b.add(index, ir.Constant(_I64, 1), flags=("nuw", "nsw"))
    index.add_incoming(following, b.block)
    b.cbranch(b.icmp_unsigned("<", following, end), loop, after)
    b.position_at_end(after)


def _declare(module, name, returns, args):
    return module.globals.get(name) or ir.Function(module, ir.FunctionType(returns, args), name)


def _malloc(b, nbytes: int):
    return b.call(_declare(b.module, "malloc", _PTR, [_I64]), [ir.Constant(_I64, nbytes)])


def _free(b, pointer) -> None:
    b.call(_declare(b.module, "free", ir.VoidType(), [_PTR]), [pointer])


def _memset(b, pointer, nbytes: int) -> None:
    memset = b.module.declare_intrinsic("llvm.memset", [_PTR, _I64])
    b.call(memset, [pointer, ir.Constant(_I8, 0), ir.Constant(_I64, nbytes),
                    ir.Constant(ir.IntType(1), 0)])
