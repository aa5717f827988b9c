"""Lowering of matrix products: the plain `Matmul` statement, and the two ways a product
takes an elementwise epilogue (see `fuse`): register tiles apply any elementwise ops to each
finished element (`Matmul.epilogue`, written over `acc`, `i0`, `i1`); a BLAS product takes only
`x +- s * product`, as sgemm's own `alpha` and `beta = 1` into x's buffer. `epilogue_ok` is the
question the fusion pass asks codegen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir.core import Op, Value
from .fuse import GATHERS, FusedKernel
from . import loops as L
from .matmul import choose_strategy

if TYPE_CHECKING:
    from .lower_to_loops import Lowerer


def product_sizes(op: Op) -> tuple[int, int, int, bool, bool]:
    """(m, n, k, transpose_a, transpose_b) of a gs.matmul op."""
    a, b = op.operands
    ta, tb = bool(op.attrs.get("transpose_a")), bool(op.attrs.get("transpose_b"))
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    n = b.shape[0] if tb else b.shape[1]
    return m, n, k, ta, tb


def lower_matmul(lw: "Lowerer", op: Op, out: L.Buffer) -> list:
    a, b = op.operands
    return [L.Matmul(lw.buffer_of(a), lw.buffer_of(b), out, *product_sizes(op))]


def _strategy(product: Value) -> str:
    m, n, k, ta, tb = product_sizes(product.op)
    return choose_strategy(m, n, k, product.dtype.mlir, ta, tb, large_tiles=True)


def uses_tiles(product: Value) -> bool:
    """True when `product` is emitted as register tiles (else BLAS or loops)."""
    return _strategy(product) == "tiles"


def epilogue_ok(product: Value, kernel: FusedKernel) -> bool:
    """The fusion pass's question: can `kernel` (elementwise, reading `product` once at its
    own index) be emitted as `product`'s epilogue? Tiles take any without a gather (an
    epilogue's loads must be contiguous in the column); BLAS takes `x +- s * p`."""
    if product.op.name != "gs.matmul":
        from .lower_conv import epilogue_ok as conv_epilogue_ok   # (imported for convolutions)
        return conv_epilogue_ok(product, kernel)
    if kernel.kind != "elementwise":        # a summing epilogue: convolutions only
        return False
    if any(op.name in GATHERS for op in kernel.ops):
        return False
    strategy = _strategy(product)
    return strategy == "tiles" or (strategy == "blas"
                                   and blas_accumulation(kernel.value, product) is not None)


def blas_accumulation(value: Value, product: Value):
    """`(x, scale, negate)` when `value` is `x + scale * product` or `x - scale * product`
    (scale one element, or None for 1) with `x` of the result's shape, so BLAS computes it as
    `C = x; C = alpha * A @ B + C`, with alpha = +-scale. Otherwise None."""
    op = value.op
    if op.name not in ("gs.add", "gs.sub"):
        return None
    x, term = op.operands
    if op.name == "gs.add" and _scale_of(term, product) is None:
        x, term = term, x
    scale = _scale_of(term, product)
    if scale is None or x.shape != value.shape:
        return None
    return x, scale[0], op.name == "gs.sub"


def _scale_of(v: Value, product: Value):
    """`(s,)` if `v` is `product` (s None) or `s * product` with `s` of one element."""
    if v is product:
        return (None,)
    if v.op is not None and v.op.name == "gs.mul":
        a, b = v.op.operands
        for s, p in ((a, b), (b, a)):
            if p is product and s.type.size == 1 and s.dtype is product.dtype:
                return (s,)
    return None


def lower_matmul_accumulate(lw: "Lowerer", k: FusedKernel, out: L.Buffer) -> list:
    """A BLAS product with epilogue `x +- s * acc`: out = x (skipped when x already lives in
    out, as an in-place SGD step's weight does), then out = +-s * A @ B + out in one call."""
    x, scale, negate = blas_accumulation(k.value, k.product)
    dtype = k.product.dtype
    body = []
    if lw.stored.get(x) is not out:
        body += L.nest(out.shape, "i", lambda ix: [
            L.Store(out, L.linear(ix, out.shape), lw.value_at(x, ix))])
    alpha = None if scale is None else lw.value_at(scale, [L.index_const(0)] * scale.ndim)
    if negate:
        alpha = L.Call("neg", (L.Const(1.0, dtype) if alpha is None else alpha,), dtype)
    a, b = k.product.op.operands
    return body + [L.Matmul(lw.buffer_of(a), lw.buffer_of(b), out, *product_sizes(k.product.op),
                            alpha=alpha, accumulate=True)]


def lower_matmul_epilogue(lw: "Lowerer", k: FusedKernel, out: L.Buffer) -> list:
    """The product of `k` kept in registers; each element `acc` at (i0, i1) goes through the
    kernel's elementwise ops and is stored to `out`."""
    op = k.product.op
    a, b = op.operands
    index = [L.Var("i0"), L.Var("i1")]
    lw.in_registers[k.product] = L.Var("acc")
    try:
        store = L.Store(out, L.linear(index, out.shape), lw.op_at(k.value.op, index))
    finally:
        del lw.in_registers[k.product]
    return [L.Matmul(lw.buffer_of(a), lw.buffer_of(b), None, *product_sizes(op),
                     epilogue=store)]
