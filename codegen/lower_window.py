"""Loop nests of the window primitives (`ir/ops/conv.py`): im2col, col2im, max_pool2d and
max_pool2d_grad.

Each kernel is one loop over the batch (so `parallel.outer_split` hands images to the pool's
threads) around loops over the window taps. For a tap the output positions that read inside
the image form a static range (`valid_range`); taps sharing one range share a loop nest (all
of them without padding, 9 nests for a padded 3x3), so the innermost loop is a plain
unit-stride copy or accumulation along a row (for stride 1) with no bounds test and no index
division: it vectorises. Padding costs one zero fill of the image's part of the output, only
when there is padding.
"""
from __future__ import annotations

from ..ir.core import Op
from ..ir.ops.conv import valid_range, window_geometry
from ..ir.types import DType
from . import loops as L

_ZERO = dict.fromkeys((DType.f16, DType.bf16, DType.f32, DType.f64), 0.0)   # float kinds only


def _loop(var: str, extent: int, body_of) -> list:
    """``for var in range(extent)`` (no loop for extent 1, nothing for 0)."""
    if extent <= 0:
        return []
    if extent == 1:
        return body_of(L.index_const(0))
    return [L.Loop(var, extent, body_of(L.Var(var)))]


def _at(*terms) -> L.Expr:
    """sum of (index, factor) terms and plain ints: an affine index expression."""
    total: L.Expr = L.index_const(0)
    for term in terms:
        if isinstance(term, int):
            total = L.iadd(total, L.index_const(term))
        else:
            index, factor = term
            total = L.iadd(total, L.imul(index, L.index_const(factor)))
    return total


def _geometry(attrs: dict, image):
    """(kernel, stride, dilation, pads, Ho, Wo) of a window op's attributes over `image`."""
    pads = attrs.get("pads", (0, 0, 0, 0))
    ho, wo = window_geometry(image, attrs["kernel"], attrs["stride"], attrs["dilation"], pads)
    return attrs["kernel"], attrs["stride"], attrs["dilation"], pads, ho, wo


def _runs(taps, out, size, dilation, stride, low):
    """Consecutive taps with the same valid output range: (first tap, count, first, last)."""
    runs = []
    for tap in range(taps):
        first, last = valid_range(out, size, tap * dilation, stride, low)
        if runs and runs[-1][2:] == (first, last):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, first, last)
        else:
            runs.append((tap, 1, first, last))
    return runs


def _tap_nests(image, attrs: dict, emit) -> list:
    """Loops over the taps (i, j) and their valid output rows and columns: one nest per run
    of taps sharing a valid range (a single nest without padding); ``emit(i, j, ho, wo, h,
    w)`` builds the body from index expressions, (h, w) being the image position read."""
    _, _, height, width = image
    (kh, kw), (sh, sw), (dh, dw), pads, ho_count, wo_count = _geometry(attrs, image)
    body = []
    for i0, i_count, first_h, last_h in _runs(kh, ho_count, height, dh, sh, pads[0]):
        for j0, j_count, first_w, last_w in _runs(kw, wo_count, width, dw, sw, pads[2]):
            key = f"{i0}_{j0}"

            def taps_i(ti, i0=i0, j0=j0, first_h=first_h, last_h=last_h, first_w=first_w,
                       last_w=last_w, j_count=j_count, key=key):
                i = L.iadd(ti, L.index_const(i0))

                def taps_j(tj):
                    j = L.iadd(tj, L.index_const(j0))

                    def rows(a):
                        ho = L.iadd(a, L.index_const(first_h))
                        h = _at((a, sh), (ti, dh), first_h * sh + i0 * dh - pads[0])

                        def columns(b):
                            wo = L.iadd(b, L.index_const(first_w))
                            w = _at((b, sw), (tj, dw), first_w * sw + j0 * dw - pads[2])
                            return emit(i, j, ho, wo, h, w)
                        return _loop(f"w{key}", last_w - first_w + 1, columns)
                    return _loop(f"h{key}", last_h - first_h + 1, rows)
                return _loop(f"tj{key}", j_count, taps_j)
            body += _loop(f"ti{key}", i_count, taps_i)
    return body


def lower_im2col(lw, op: Op, out: L.Buffer) -> list:
    x = op.operands[0]
    return im2col_body(x.shape, op.attrs, out, lambda ix: lw.value_at(x, ix))


def im2col_body(image, attrs: dict, out: L.Buffer, read) -> list:
    """cols[(c*kh + i)*kw + j, (n*Ho + ho)*Wo + wo] = x[n, c, h, w] (0 in the padding), x
    being ``read([n, c, h, w])`` of an `image`-shaped operand."""
    n_count, channels = image[:2]
    (kh, kw), _, _, pads, ho_count, wo_count = _geometry(attrs, image)
    plane, width = ho_count * wo_count, out.shape[1]
    zero = L.Const(_ZERO[out.dtype], out.dtype)

    def one_image(n):
        fill = []
        if any(pads):
            fill = _loop("r", out.shape[0], lambda r: _loop("q", plane, lambda q: [
                L.Store(out, _at((r, width), (n, plane), (q, 1)), zero)]))

        def channel(c):
            def emit(i, j, ho, wo, h, w):
                row = _at((c, kh * kw), (i, kw), (j, 1))
                return [L.Store(out, _at((row, width), (n, plane), (ho, wo_count), (wo, 1)),
                                read([n, c, h, w]))]
            return _tap_nests(image, attrs, emit)
        return fill + _loop("c", channels, channel)
    return _loop("n", n_count, one_image)


def _zero_image(out: L.Buffer, n) -> list:
    size = out.shape[1] * out.shape[2] * out.shape[3]
    zero = L.Const(_ZERO[out.dtype], out.dtype)
    return _loop("z", size, lambda z: [L.Store(out, _at((n, size), (z, 1)), zero)])


def _accumulate(out: L.Buffer, index: L.Expr, value: L.Expr) -> L.Store:
    """out[index] += value (the load reads exactly the stored index: splits stay safe)."""
    return L.Store(out, index, L.Call("add", (L.Load(out, index), value), out.dtype))


def lower_col2im(lw, op: Op, out: L.Buffer) -> list:
    cols = op.operands[0]
    return col2im_body(op.attrs, out, lambda ix: lw.value_at(cols, ix))


def col2im_body(attrs: dict, out: L.Buffer, read) -> list:
    """dx = 0, then dx[n, c, h, w] += cols[row, column] (``read([row, column])``) for every
    tap reading (h, w)."""
    n_count, channels, height, width = out.shape
    (kh, kw), _, _, _, ho_count, wo_count = _geometry(attrs, out.shape)
    plane = ho_count * wo_count

    def one_image(n):
        def channel(c):
            def emit(i, j, ho, wo, h, w):
                row = _at((c, kh * kw), (i, kw), (j, 1))
                value = read([row, _at((n, plane), (ho, wo_count), (wo, 1))])
                target = _at((n, channels * height * width), (c, height * width),
                             (h, width), (w, 1))
                return [_accumulate(out, target, value)]
            return _tap_nests(out.shape, attrs, emit)
        return _zero_image(out, n) + _loop("c", channels, channel)
    return _loop("n", n_count, one_image)


def lower_max_pool(lw, op: Op, out: L.Buffer) -> list:
    """y[n, c, ho, wo] = max over the taps of x[n, c, ho*sh + i*dh, wo*sw + j*dw]."""
    x = op.operands[0]
    (kh, kw), (sh, sw), (dh, dw), _, _, _ = _geometry(op.attrs, x.shape)

    def element(ix):
        n, c, ho, wo = ix
        best = None
        for i in range(kh):
            for j in range(kw):
                value = lw.value_at(x, [n, c, _at((ho, sh), i * dh), _at((wo, sw), j * dw)])
                best = value if best is None else L.Call("maximum", (best, value), out.dtype)
        return [L.Store(out, L.linear(ix, out.shape), best)]
    return L.nest(out.shape, "i", element)


def lower_max_pool_grad(lw, op: Op, out: L.Buffer) -> list:
    """dx = 0, then each window adds g to its first maximum (taps in row-major order)."""
    x, g = op.operands
    n_count, channels, height, width = x.shape
    (kh, kw), (sh, sw), (dh, dw), _, ho_count, wo_count = _geometry(op.attrs, x.shape)
    best, found = L.Local("best", x.dtype), L.Local("found", DType.bool)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    values = [L.Local(f"tap{t}", x.dtype) for t in range(len(taps))]

    def image(n):
        def window(c, ho, wo):
            body = []
            positions = []
            for (i, j), local in zip(taps, values):
                h, w = _at((ho, sh), i * dh), _at((wo, sw), j * dw)
                positions.append(_at((n, channels * height * width), (c, height * width),
                                     (h, width), (w, 1)))
                body.append(L.Assign(local, lw.value_at(x, [n, c, h, w])))
            body.append(L.Assign(best, L.LocalRef(values[0])))
            for local in values[1:]:
                body.append(L.Assign(best, L.Call("maximum", (L.LocalRef(best),
                                                              L.LocalRef(local)), x.dtype)))
            body.append(L.Assign(found, L.Const(False, DType.bool)))
            grad = lw.value_at(g, [n, c, ho, wo])
            zero = L.Const(_ZERO[x.dtype], x.dtype)
            for local, position in zip(values, positions):
                hit = L.Call("equal", (L.LocalRef(local), L.LocalRef(best)), DType.bool)
                take = L.Call("logical_and", (hit, L.Call("logical_not", (
                    L.LocalRef(found),), DType.bool)), DType.bool)
                body.append(_accumulate(out, position, L.Call("select", (take, grad, zero),
                                                              x.dtype)))
                body.append(L.Assign(found, L.Call("logical_or", (L.LocalRef(found), hit),
                                                   DType.bool)))
            return body
        return _zero_image(out, n) + _loop("c", channels, lambda c: _loop(
            "ho", ho_count, lambda ho: _loop("wo", wo_count, lambda wo: window(c, ho, wo))))
    return _loop("n", n_count, image)


WINDOW_LOWERINGS = {
    "gs.im2col": lower_im2col,
    "gs.col2im": lower_col2im,
    "gs.max_pool2d": lower_max_pool,
    "gs.max_pool2d_grad": lower_max_pool_grad,
}
