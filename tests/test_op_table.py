"""The op table: one row per primitive (reference vs numpy, VJP vs float64 central finite
differences), infer errors, attribute normalisation, composites vs numpy, the interpreter.

A primitive registered in `ir.ops.OPS` without a row here fails `test_every_primitive_has_a_row`.
Expected values come from numpy expressions or from finite differences, never from a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from graphspore.ir import ops
from graphspore.ir.core import (Builder, Graph, GraphsporeError, building, eager_value,
                                inline_graph)
from graphspore.ir.interpreter import run, run_with_updates
from graphspore.ir.ops import OPS, composite as C
from graphspore.ir.ops.hooks import register_hook
from graphspore.ir.passes.autodiff import vjp_graph
from graphspore.ir.types import DType, TensorType

F32 = dict(rtol=2e-5, atol=2e-6)
F64 = np.float64


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


def uniform(*shape, low=-2.0, high=2.0):
    return lambda r: r.uniform(low, high, shape)


def positive(*shape):
    return uniform(*shape, low=0.5, high=2.0)


def boolean(*shape):
    return lambda r: r.uniform(size=shape) < 0.5


def small_ints(*shape):
    """Floats drawn from {0, 1, 2}: ties for compare and argmax rows."""
    return lambda r: r.integers(0, 3, shape).astype(F64)


@dataclass
class Row:
    """`name` is the op (without `gs.`); `inputs` make the operand arrays; `expected` is the
    numpy expression; `grad` says whether to check the VJP against finite differences."""

    name: str
    inputs: list[Callable]
    expected: Callable
    attrs: dict = field(default_factory=dict)
    grad: bool = True
    cast_to: DType | None = None        # input dtype override (float rows are f64 otherwise)
    tol: float = 1e-6
    emit: Callable | None = None        # how to emit it, for ops that are not op functions

    @property
    def id(self) -> str:
        return self.name + "".join(f"-{k}={v}" for k, v in self.attrs.items()
                                   if k != "value")[:40]


def _pad_expected(x, low, high, stride):
    shape = [lo + (n - 1) * s + 1 + hi for n, lo, hi, s in zip(x.shape, low, high, stride)]
    out = np.zeros(shape, x.dtype)
    for index in np.ndindex(*x.shape):
        out[tuple(lo + i * s for i, lo, s in zip(index, low, stride))] = x[index]
    return out


def _mm(a, b, ta, tb):
    return np.einsum("ij,jk->ik", a.T if ta else a, b.T if tb else b)


SIG = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
ROWS = [
    Row("constant", [], lambda: np.arange(6.0).reshape(2, 3),
        {"value": np.arange(6.0).reshape(2, 3)}, grad=False),
    Row("iota", [], lambda: np.tile(np.arange(3), (2, 1)),
        {"shape": (2, 3), "axis": 1, "dtype": DType.i64}, grad=False),
    Row("neg", [uniform(3, 4)], np.negative),
    Row("exp", [uniform(3, 4)], np.exp),
    Row("log", [positive(3, 4)], np.log),
    Row("sqrt", [positive(3, 4)], np.sqrt),
    Row("tanh", [uniform(3, 4)], np.tanh),
    Row("sigmoid", [uniform(3, 4, low=-8, high=8)], SIG),
    Row("sin", [uniform(3, 4, low=-7, high=7)], np.sin),
    Row("cos", [uniform(3, 4, low=-7, high=7)], np.cos),
    Row("atan", [uniform(3, 4, low=-5, high=5)], np.arctan),
    Row("abs", [uniform(3, 4)], np.abs),
    Row("relu", [uniform(3, 4)], lambda x: np.maximum(x, 0)),
    Row("sign", [lambda r: r.integers(-2, 3, (3, 4)).astype(F64)], np.sign, grad=False),
    Row("floor", [uniform(3, 4)], np.floor, grad=False),
    Row("logical_not", [boolean(3, 4)], np.logical_not, grad=False),
    Row("stop_gradient", [uniform(3, 4)], lambda x: x, grad=False),
    Row("cast", [uniform(3, 4)], lambda x: x.astype(F64), {"dtype": DType.f64},
        cast_to=DType.f32, tol=1e-4),
    Row("cast", [uniform(3, 4)], lambda x: x.astype(np.int32), {"dtype": DType.i32},
        grad=False),
    Row("add", [uniform(3, 4), uniform(4)], np.add),
    Row("sub", [uniform(2, 1, 3), uniform(4, 3)], np.subtract),
    Row("mul", [uniform(3, 4), uniform(3, 1)], np.multiply),
    Row("div", [uniform(3, 4), positive(4)], np.divide),
    Row("floor_div", [lambda r: r.integers(-9, 9, (3, 4)), lambda r: r.integers(-4, 4, 4)],
        lambda x, y: np.floor_divide(x, y, where=y != 0, out=np.zeros((3, 4), np.int64)),
        cast_to=DType.i64, grad=False),
    Row("floor_mod", [uniform(3, 4, low=-5, high=5), positive(4)], np.remainder),
    Row("pow", [positive(3, 4), uniform(4, low=-1.5, high=1.5)], np.power),
    Row("maximum", [uniform(3, 4), uniform(4)], np.maximum),
    Row("minimum", [uniform(2, 3), uniform(3, 2, 1)], np.minimum),
    Row("logical_and", [boolean(3, 4), boolean(4)], np.logical_and, grad=False),
    Row("logical_or", [boolean(3, 1), boolean(4)], np.logical_or, grad=False),
    Row("equal", [small_ints(3, 4), small_ints(4)], np.equal, grad=False),
    Row("not_equal", [small_ints(3, 4), small_ints(4)], np.not_equal, grad=False),
    Row("less", [small_ints(3, 4), small_ints(3, 1)], np.less, grad=False),
    Row("less_equal", [small_ints(3, 4), small_ints(4)], np.less_equal, grad=False),
    Row("greater", [small_ints(3, 4), small_ints(4)], np.greater, grad=False),
    Row("greater_equal", [small_ints(3, 4), small_ints(4)], np.greater_equal, grad=False),
    Row("select", [boolean(3, 1), uniform(3, 4), uniform(4)], np.where),
    Row("reduce_sum", [uniform(2, 3, 4)], lambda x: x.sum(axis=(0, 2)),
        {"axes": (0, 2), "keep_dims": False}),
    Row("reduce_sum", [uniform(2, 3, 4)], lambda x: x.sum(axis=1, keepdims=True),
        {"axes": (1,), "keep_dims": True}),
    Row("reduce_max", [uniform(2, 3, 4)], lambda x: x.max(axis=1),
        {"axes": (1,), "keep_dims": False}),
    Row("reduce_max", [uniform(2, 3, 4)], lambda x: x.max(axis=(0, 2), keepdims=True),
        {"axes": (0, 2), "keep_dims": True}),
    Row("argmax", [small_ints(3, 5)], lambda x: np.argmax(x, axis=1),
        {"axis": 1, "keep_dims": False}, grad=False),
    Row("argmax", [small_ints(3, 5)], lambda x: np.argmax(x, axis=0)[None],
        {"axis": 0, "keep_dims": True}, grad=False),
    Row("reshape", [uniform(2, 3, 4)], lambda x: x.reshape(4, 6), {"shape": (4, 6)}),
    Row("broadcast_to", [uniform(3, 1)], lambda x: np.broadcast_to(x, (2, 3, 4)),
        {"shape": (2, 3, 4)}),
    Row("transpose", [uniform(2, 3, 4)], lambda x: x.transpose(2, 0, 1), {"perm": (2, 0, 1)}),
    Row("reverse", [uniform(3, 4, 5)], lambda x: x[::-1, :, ::-1], {"axes": (0, 2)}),
    Row("slice", [uniform(5, 7)], lambda x: x[1:5:2, 0:7:3],
        {"begin": (1, 0), "end": (5, 7), "strides": (2, 3)}),
    Row("slice", [uniform(4, 3)], lambda x: x[2:2, 1:3],
        {"begin": (2, 1), "end": (2, 3), "strides": (1, 1)}),
    Row("pad", [uniform(3, 2)], lambda x: _pad_expected(x, (1, 0), (2, 1), (2, 1)),
        {"low": (1, 0), "high": (2, 1), "stride": (2, 1)}),
    Row("concat", [uniform(2, 3), uniform(2, 1), uniform(2, 2)],
        lambda *xs: np.concatenate(xs, axis=1), {"axis": 1}),
]
ROWS += [Row("matmul", [uniform(*((4, 3) if ta else (3, 4))), uniform(*((5, 4) if tb else (4, 5)))],
             lambda a, b, ta=ta, tb=tb: _mm(a, b, ta, tb),
             {"transpose_a": ta, "transpose_b": tb})
         for ta in (False, True) for tb in (False, True)]


def _doubling(x):
    while x.sum() < 50:
        x = x * 2
    return x


def _flag(value):
    return lambda r: np.array(value)


ROWS += [   # region ops (regions traced from Python functions); their VJPs and the compiled
    # code are tested in tests/test_control_flow.py
    Row("if", [_flag(True), uniform(3)], lambda p, x: np.exp(x) if p else x * 2, grad=False,
        emit=lambda p, x: ops.if_op(p, [x], ops.exp, lambda x: x * 2.0)[0]),
    Row("if", [_flag(False), uniform(3)], lambda p, x: np.exp(x) if p else x * 2, grad=False,
        emit=lambda p, x: ops.if_op(p, [x], ops.exp, lambda x: x * 2.0)[0]),
    Row("while", [positive(3)], _doubling, grad=False,
        emit=lambda x: ops.while_op([x], [], lambda x: ops.less(ops.reduce_sum(x), 50.0),
                                    lambda x: x * 2.0)[0]),
    Row("for", [_flag(4), uniform(3)], lambda n, x: x + 6.0, grad=False,
        emit=lambda n, x: ops.for_op(n, [x], [], lambda i, x: x + ops.cast(
            i, dtype=DType.f64))[0]),
    Row("update_row", [uniform(4, 3), uniform(3), _flag(2)],
        lambda x, row, i: np.concatenate([x[:2], row[None], x[3:]])),
]


def _scatter_add_expected(x, indices, updates, axis):
    out = x.copy()
    np.add.at(out, (slice(None),) * axis + (indices,), updates)
    return out


ROWS += [   # indices with negatives and duplicates; tests/test_gather.py has the rest
    Row("gather", [uniform(5, 3), lambda r: np.array([[0, -1, 2], [4, 0, 0]])],
        lambda x, i: np.take(x, i, axis=0), {"axis": 0}),
    Row("gather", [uniform(2, 4, 3), lambda r: np.array([3, -4, 1, 1], np.int32)],
        lambda x, i: np.take(x, i, axis=1), {"axis": 1}),
    Row("scatter_add", [uniform(5, 3), lambda r: np.array([1, -4, 1, 3]), uniform(4, 3)],
        lambda x, i, u: _scatter_add_expected(x, i, u, 0), {"axis": 0}),
    Row("gather_elements", [uniform(3, 4), lambda r: np.array([[0, 3], [-1, 1], [2, 2]])],
        lambda x, i: np.take_along_axis(x, i, axis=1), {"dim": 1}),
    Row("gather_elements", [uniform(4, 3), lambda r: np.array([[3, 0], [-4, 3]], np.int32)],
        lambda x, i: np.take_along_axis(x[:, :2], i, axis=0), {"dim": 0}),
]


ROWS += [   # prints its operands (captured by pytest) and returns an unused i32 token
    Row("print", [uniform(2, 3)], lambda x: np.zeros((), np.int32),
        {"strings": ("x:",), "layout": (-1, 0)}, grad=False),
]
ROWS += [   # one process: the sum over one rank; tests/test_distributed.py runs two ranks
    Row("all_reduce", [uniform(3, 4)], lambda x: x, {"op": "sum"}),
]
_HALVE = register_hook(lambda g: g * 0.5)          # gradient hooks: the cotangent halved,
_KEEP = register_hook(lambda g: None)              # and left as it is
ROWS += [   # the mark is the identity and its VJP the hook; the host call runs the hook
    Row("grad_hook", [uniform(3, 4)], lambda x: x, {"hook": _KEEP}),
    Row("host_hook", [uniform(3, 4)], lambda x: x * 0.5, {"hook": _HALVE}, grad=False),
]


def _windows(x, kernel, stride, dilation, pads, fill=0.0):
    """(N, C, kh, kw, Ho, Wo) taps of x by explicit loops, padded with `fill`."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), fill)
    xp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w] = x
    ho = (xp.shape[2] - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (xp.shape[3] - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    taps = np.empty((n, c, kernel[0], kernel[1], ho, wo))
    for i, j, a, b in np.ndindex(kernel[0], kernel[1], ho, wo):
        taps[:, :, i, j, a, b] = xp[:, :, a * stride[0] + i * dilation[0],
                                    b * stride[1] + j * dilation[1]]
    return taps


def _im2col_expected(x, kernel, stride, dilation, pads):
    taps = _windows(x, kernel, stride, dilation, pads)           # rows (c,i,j), cols (n,a,b)
    return taps.transpose(1, 2, 3, 0, 4, 5).reshape(-1, x.shape[0] * taps.shape[4] * taps.shape[5])


def _col2im_expected(cols, image, kernel, stride, dilation, pads):
    """The adjoint by definition: column (r, q) adds to the pixel im2col read it from."""
    n, c, h, w = image
    ho = (h + pads[0] + pads[1] - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (w + pads[2] + pads[3] - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    out = np.zeros(image)
    for ch, i, j, m, a, b in np.ndindex(c, kernel[0], kernel[1], n, ho, wo):
        y, x = a * stride[0] + i * dilation[0] - pads[0], b * stride[1] + j * dilation[1] - pads[2]
        if 0 <= y < h and 0 <= x < w:
            out[m, ch, y, x] += cols[(ch * kernel[0] + i) * kernel[1] + j, (m * ho + a) * wo + b]
    return out


def _max_pool_grad_expected(x, g, kernel, stride):
    out = np.zeros_like(x)
    taps = _windows(x, kernel, stride, (1, 1), (0, 0, 0, 0))
    for m, ch, a, b in np.ndindex(*g.shape):
        window = taps[m, ch, :, :, a, b].reshape(-1)
        first = int(np.argmax(window))                       # numpy: the first maximum
        i, j = divmod(first, kernel[1])
        out[m, ch, a * stride[0] + i, b * stride[1] + j] += g[m, ch, a, b]
    return out


WINDOW = dict(kernel=(2, 3), stride=(2, 1), dilation=(1, 2), pads=(1, 0, 2, 1))
ROWS += [
    Row("im2col", [uniform(2, 3, 5, 6)], lambda x: _im2col_expected(x, **WINDOW), WINDOW),
    Row("im2col", [uniform(1, 2, 4, 4)],
        lambda x: _im2col_expected(x, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
        {"kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1), "pads": (1, 1, 1, 1)}),
    Row("col2im", [uniform(18, 2 * 3 * 5)],
        lambda c: _col2im_expected(c, (2, 3, 5, 6), **WINDOW), dict(image=(2, 3, 5, 6), **WINDOW)),
    Row("max_pool2d", [uniform(2, 3, 6, 5)],
        lambda x: _windows(x, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0)).max(axis=(2, 3)),
        {"kernel": (2, 2), "stride": (2, 2), "dilation": (1, 1)}),
    Row("max_pool2d", [uniform(1, 2, 7, 6)],
        lambda x: _windows(x, (3, 2), (2, 1), (1, 2), (0, 0, 0, 0)).max(axis=(2, 3)),
        {"kernel": (3, 2), "stride": (2, 1), "dilation": (1, 2)}),
    Row("max_pool2d_grad", [small_ints(2, 2, 5, 6), uniform(2, 2, 2, 2)],   # ties
        lambda x, g: _max_pool_grad_expected(x, g, (3, 3), (2, 2)),
        {"kernel": (3, 3), "stride": (2, 2), "dilation": (1, 1)}, grad=False),
    Row("max_pool2d_grad", [uniform(2, 2, 5, 6), uniform(2, 2, 2, 2)],      # smooth in g
        lambda x, g: _max_pool_grad_expected(x, g, (3, 3), (2, 2)),
        {"kernel": (3, 3), "stride": (2, 2), "dilation": (1, 1)}),
]


def _conv_expected(x, w, stride, dilation, pads, groups):
    """y[n, o, a, b] = sum over the group's taps of w * x, by explicit loops over taps."""
    per, outputs = w.shape[1], w.shape[0] // groups
    taps = _windows(x, w.shape[2:], stride, dilation, pads)      # N, C, kh, kw, Ho, Wo
    y = np.zeros((x.shape[0], w.shape[0]) + taps.shape[4:])
    for o in range(w.shape[0]):
        g = o // outputs
        y[:, o] = np.einsum("ncijab,cij->nab", taps[:, g * per:(g + 1) * per], w[o])
    return y


def _conv_input_grad_expected(dy, w, image, **conv):
    """The adjoint by definition: every tap adds w * dy back to the pixel it read."""
    n, c, h, width = image
    (kh, kw), (sh, sw), (dh, dw), pads = w.shape[2:], conv["stride"], conv["dilation"], conv["pads"]
    per, outputs = w.shape[1], w.shape[0] // conv["groups"]
    dx = np.zeros(image)
    for m, o, a, b, ci, i, j in np.ndindex(n, w.shape[0], dy.shape[2], dy.shape[3], per, kh, kw):
        y, x = a * sh + i * dh - pads[0], b * sw + j * dw - pads[2]
        if 0 <= y < h and 0 <= x < width:
            dx[m, (o // outputs) * per + ci, y, x] += w[o, ci, i, j] * dy[m, o, a, b]
    return dx


def _conv_filter_grad_expected(x, dy, kernel, **conv):
    per, outputs = x.shape[1] // conv["groups"], dy.shape[1] // conv["groups"]
    taps = _windows(x, kernel, conv["stride"], conv["dilation"], conv["pads"])
    dw = np.zeros((dy.shape[1], per) + tuple(kernel))
    for o in range(dy.shape[1]):
        g = o // outputs
        dw[o] = np.einsum("ncijab,nab->cij", taps[:, g * per:(g + 1) * per], dy[:, o])
    return dw


CONV = dict(stride=(2, 1), dilation=(1, 2), pads=(1, 0, 2, 1), groups=2)
CONV_PLAIN = dict(stride=(1, 1), dilation=(1, 1), pads=(1, 1, 1, 1), groups=1)
ROWS += [   # (2, 4, 5, 6) images, (6, 2, 2, 3) filters in 2 groups -> (2, 6, 3, 5)
    Row("conv2d", [uniform(2, 4, 5, 6), uniform(6, 2, 2, 3)],
        lambda x, w: _conv_expected(x, w, **CONV), CONV),
    Row("conv2d", [uniform(2, 3, 4, 4), uniform(4, 3, 3, 3)],
        lambda x, w: _conv_expected(x, w, **CONV_PLAIN), CONV_PLAIN),
    Row("conv2d_input_grad", [uniform(2, 6, 3, 5), uniform(6, 2, 2, 3)],
        lambda g, w: _conv_input_grad_expected(g, w, (2, 4, 5, 6), **CONV),
        dict(image=(2, 4, 5, 6), **CONV)),
    Row("conv2d_filter_grad", [uniform(2, 4, 5, 6), uniform(2, 6, 3, 5)],
        lambda x, g: _conv_filter_grad_expected(x, g, (2, 3), **CONV),
        dict(kernel=(2, 3), **CONV)),
]


def test_every_primitive_has_a_row():
    assert {f"gs.{row.name}" for row in ROWS} == set(OPS)


def _arrays(row: Row, rng) -> list[np.ndarray]:
    arrays = [make(rng) for make in row.inputs]
    if row.cast_to is not None:
        arrays = [a.astype(row.cast_to.np) for a in arrays]
    return arrays


def _emit(row: Row, values):
    if row.emit is not None:
        return row.emit(*values)
    emit = getattr(ops, row.name, None) or OPS[f"gs.{row.name}"]   # gs.print is ops.print_
    return emit(*values, **row.attrs)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_reference_matches_numpy(row, rng):
    arrays = _arrays(row, rng)
    got = _emit(row, [eager_value(a) for a in arrays])             # eager: the reference
    expected = np.asarray(row.expected(*arrays))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.data.astype(F64), expected.astype(F64), rtol=1e-12)
    g = Graph("t")                                                 # graph: infer agrees
    with building(Builder(g)) as b:
        out = _emit(row, [b.input(TensorType(a.shape, DType.from_numpy(a.dtype)))
                          for a in arrays])
    g.outputs = [out]
    assert out.type == TensorType(expected.shape, got.dtype)
    np.testing.assert_array_equal(run(g, arrays)[0], got.data)


def _vjp_graph(row: Row, arrays, out_shape):
    """Graph (xs..., cotangent) -> (rule's cotangent for each differentiable x...)."""
    g = Graph("vjp")
    with building(Builder(g)) as b:
        xs = [b.input(TensorType(a.shape, DType.from_numpy(a.dtype))) for a in arrays]
        out = b.add_op(f"gs.{row.name}", xs, row.attrs)
        ct = b.input(TensorType(out_shape, out.dtype))
        grads = OPS[f"gs.{row.name}"].vjp(ct, out, *xs, **row.attrs)
        assert len(grads) == len(xs)
        g.outputs = [ops.unbroadcast(d, x.shape) if d is not None else None
                     for d, x in zip(grads, xs)]
    kept = [i for i, d in enumerate(g.outputs) if d is not None and xs[i].dtype.is_float]
    g.outputs = [g.outputs[i] for i in kept]
    return g, kept


@pytest.mark.parametrize("row", [r for r in ROWS if r.grad], ids=lambda r: r.id)
def test_vjp_matches_finite_differences(row, rng):
    arrays = _arrays(row, rng)
    reference = OPS[f"gs.{row.name}"].reference
    out = np.asarray(reference(*arrays, **row.attrs))
    ct = rng.standard_normal(out.shape).astype(out.dtype)
    g, kept = _vjp_graph(row, arrays, out.shape)
    assert kept, "a differentiable row must give some gradient"
    grads = run(g, arrays + [ct])
    directions = [rng.standard_normal(a.shape).astype(a.dtype) if i in kept
                  else np.zeros_like(a) for i, a in enumerate(arrays)]
    eps = 1e-6 if row.cast_to is None else 1e-2
    f = lambda s: np.sum(ct.astype(F64) * reference(  # noqa: E731
        *[(a + s * d).astype(a.dtype) if i in kept else a
          for i, (a, d) in enumerate(zip(arrays, directions))], **row.attrs).astype(F64))
    numeric = (f(eps) - f(-eps)) / (2 * eps)
    analytic = sum(np.sum(gr.astype(F64) * directions[i]) for gr, i in zip(grads, kept))
    assert abs(analytic - numeric) <= row.tol * (1 + abs(numeric)), (analytic, numeric)


# ------------------------------------------------------------------- infer errors

def _types(*specs):
    return [TensorType(shape, dtype) for shape, dtype in specs]


f32, f64_, i32, boolean_t = DType.f32, DType.f64, DType.i32, DType.bool
ERRORS = [
    ("add", _types(((3,), f32), ((3,), i32)), {}, "one dtype"),
    ("add", _types(((3,), f32), ((4,), f32)), {}, "broadcast"),
    ("sub", _types(((3,), boolean_t), ((3,), boolean_t)), {}, "numeric"),
    ("exp", _types(((3,), i32)), {}, "float"),
    ("sin", _types(((3,), i32)), {}, "float"),
    ("cos", _types(((3,), boolean_t)), {}, "float"),
    ("neg", _types(((3,), boolean_t)), {}, "numeric"),
    ("logical_and", _types(((3,), f32), ((3,), f32)), {}, "bool"),
    ("logical_not", _types(((3,), f32)), {}, "bool"),
    ("equal", _types(((2,), f32), ((3,), f32)), {}, "broadcast"),
    ("select", _types(((3,), f32), ((3,), f32), ((3,), f32)), {}, "bool"),
    ("cast", _types(((3,), f32)), {"dtype": "f64"}, "DType"),
    ("reduce_sum", _types(((2, 3), f32)), {"axes": (2,), "keep_dims": False}, "axes"),
    ("reduce_sum", _types(((2, 3), f32)), {"axes": (1, 0), "keep_dims": False}, "sorted"),
    ("reduce_sum", _types(((2, 3), boolean_t)), {"axes": (0,), "keep_dims": False}, "numeric"),
    ("reduce_max", _types(((2, 3), f32)), {"axes": (), "keep_dims": False}, "non-empty"),
    ("argmax", _types(((), f32)), {"axis": 0, "keep_dims": False}, "rank"),
    ("reshape", _types(((2, 3), f32)), {"shape": (4, 2)}, "cannot reshape"),
    ("broadcast_to", _types(((2, 3), f32)), {"shape": (3, 3)}, "cannot broadcast"),
    ("transpose", _types(((2, 3), f32)), {"perm": (0, 0)}, "permutation"),
    ("reverse", _types(((2, 3), f32)), {"axes": (1, 0)}, "sorted"),
    ("slice", _types(((4,), f32)), {"begin": (1,), "end": (5,), "strides": (1,)}, "end"),
    ("slice", _types(((4,), f32)), {"begin": (1,), "end": (3,), "strides": (0,)}, "stride"),
    ("pad", _types(((4,), f32)), {"low": (-1,), "high": (0,), "stride": (1,)}, "low"),
    ("concat", _types(((2, 3), f32), ((3, 3), f32)), {"axis": 1}, "axis 1"),
    ("matmul", _types(((2, 3), f32), ((4, 5), f32)),
     {"transpose_a": False, "transpose_b": False}, "3 vs 4"),
    ("matmul", _types(((2, 2, 3), f32), ((3, 5), f32)),
     {"transpose_a": False, "transpose_b": False}, "rank-2"),
    ("iota", [], {"shape": (2, 3), "axis": 2, "dtype": DType.i64}, "axis"),
]


@pytest.mark.parametrize("name, types, attrs, words", ERRORS,
                         ids=[f"{e[0]}-{e[3]}" for e in ERRORS])
def test_infer_errors_name_the_op(name, types, attrs, words):
    g = Graph("bad")
    with building(Builder(g)) as b:
        xs = [b.input(t) for t in types]
        with pytest.raises(GraphsporeError) as info:
            b.add_op(f"gs.{name}", xs, attrs)
    assert f"{name}:" in str(info.value) and words in str(info.value)


# --------------------------------------------------- op functions normalise inputs

def _graph_op(fn, *types):
    g = Graph("t")
    with building(Builder(g)) as b:
        result = fn(*[b.input(t) for t in types])
    return g, result


@pytest.mark.parametrize("fn, attrs", [
    (lambda x: ops.reduce_sum(x, axes=-1), {"axes": (2,), "keep_dims": False}),
    (lambda x: ops.reduce_max(x, axes=[-1, 0], keep_dims=1), {"axes": (0, 2), "keep_dims": True}),
    (lambda x: ops.argmax(x, axis=-2), {"axis": 1, "keep_dims": False}),
    (lambda x: ops.transpose(x, perm=(-1, 0, 1)), {"perm": (2, 0, 1)}),
    (lambda x: ops.reshape(x, shape=[-1, 4]), {"shape": (6, 4)}),
    (lambda x: ops.reverse(x, axes=[-1, 0]), {"axes": (0, 2)}),
    (lambda x: ops.broadcast_to(x, shape=(5, -1, 3, 4)), {"shape": (5, 2, 3, 4)}),
    (lambda x: ops.slice(x, begin=(None, -2), end=(-1, None), strides=(None, 1)),
     {"begin": (0, 1, 0), "end": (1, 3, 4), "strides": (1, 1, 1)}),
    (lambda x: ops.pad(x, low=(1, 0, 0), high=[0, 0, 2]),
     {"low": (1, 0, 0), "high": (0, 0, 2), "stride": (1, 1, 1)}),
    (lambda x: ops.concat(x, x, axis=-1), {"axis": 2}),
])
def test_attributes_are_canonical_in_the_ir(fn, attrs):
    g, _ = _graph_op(fn, TensorType((2, 3, 4), f32))
    assert g.ops[-1].attrs == attrs
    assert all(type(v) in (bool, int) for value in attrs.values()
               for v in (value if isinstance(value, tuple) else (value,)))


def test_op_functions_promote_python_numbers_and_dtypes():
    x32, xi = eager_value(np.ones(3, np.float32)), eager_value(np.arange(3, dtype=np.int32))
    assert ops.add(x32, 2).dtype is f32 and ops.mul(xi, 2).dtype is i32
    assert ops.add(xi, 1.5).dtype is f32 and ops.div(xi, 2).dtype is f32
    np.testing.assert_allclose(ops.div(xi, 2).data, np.arange(3) / 2)
    assert ops.exp(xi).dtype is f32 and ops.less(xi, 1.5).dtype is boolean_t
    assert ops.concat(x32, eager_value(np.ones(2)), axis=0).dtype is f64_
    counted = ops.reduce_sum(eager_value(np.array([True, False, True])))
    assert counted.dtype is DType.i64 and counted.data == 2
    scalar = eager_value(np.float32(3.0))
    assert ops.reduce_sum(scalar) is scalar                     # no axes: nothing emitted


# ------------------------------------------------------- VJP rules, special cases

def _rule(name, xs, attrs=None):
    """Emit op `name` on eager values and apply its rule with a cotangent of ones."""
    out = getattr(ops, name)(*xs, **(attrs or {}))
    return OPS[f"gs.{name}"].vjp(eager_value(np.ones(out.shape, out.dtype.np)), out, *xs,
                                 **(attrs or {}))


def test_pow_with_a_constant_exponent_has_no_log_and_no_exponent_gradient():
    g, out = _graph_op(lambda x: x ** 3, TensorType((3,), f64_))
    with building(Builder(g)):
        dx, dy = OPS["gs.pow"].vjp(out, out, *out.op.operands)
        g.outputs = [dx]
    assert dy is None and "gs.log" not in {op.name for op in g.ops}
    x = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(run(g, [x])[0], 3 * x ** 2 * x ** 3)


def test_reduce_max_shares_the_gradient_between_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    (dx,) = _rule("reduce_max", [eager_value(x)], {"axes": (1,), "keep_dims": False})
    np.testing.assert_allclose(dx.data, [[0, 0.5, 0.5], [1, 0, 0]])


def test_maximum_and_minimum_split_ties_evenly():
    x, y = eager_value(np.array([1.0, 2.0, 3.0])), eager_value(np.array([1.0, 5.0, 0.0]))
    dx, dy = _rule("maximum", [x, y])
    np.testing.assert_allclose(dx.data, [0.5, 0, 1])
    np.testing.assert_allclose(dy.data, [0.5, 1, 0])
    dx, dy = _rule("minimum", [x, y])
    np.testing.assert_allclose(dx.data, [0.5, 1, 0])
    np.testing.assert_allclose(dy.data, [0.5, 0, 1])


def test_non_differentiable_ops_have_no_rule_and_stop_gradient_cuts():
    for name in ("equal", "less", "logical_and", "logical_not", "sign", "floor", "floor_div",
                 "argmax", "iota"):
        assert OPS[f"gs.{name}"].vjp is None and ops.NONDIFF in OPS[f"gs.{name}"].groups
    assert OPS["gs.constant"].vjp is None
    x = eager_value(np.ones(2))
    assert _rule("stop_gradient", [x]) == (None,)
    assert _rule("cast", [x], {"dtype": DType.i32}) == (None,)


# ---------------------------------------------------------------- composites vs numpy

def _np_log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _np_bce(x, y, weight=None, pos_weight=None):
    """The textbook definition -w [pw y log s(x) + (1 - y) log(1 - s(x))]."""
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * y * np.log(SIG(x)) + (1 - y) * np.log(1 - SIG(x)))
    return loss if weight is None else loss * weight


COMPOSITES = [
    ("relu", lambda x: ops.relu(x), lambda x: np.maximum(x, 0)),
    ("relu6", lambda x: C.relu6(x * 4), lambda x: np.clip(x * 4, 0, 6)),
    ("leaky_relu", lambda x: C.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    ("softplus", lambda x: C.softplus(x * 30), lambda x: np.logaddexp(0, x * 30)),
    ("square", C.square, np.square),
    ("reciprocal", C.reciprocal, np.reciprocal),
    ("mean-all", lambda x: C.mean(x), np.mean),
    ("mean-axes", lambda x: C.mean(x, axes=(0, -1), keep_dims=True),
     lambda x: x.mean(axis=(0, 2), keepdims=True)),
    ("reduce_min", lambda x: C.reduce_min(x, axes=1), lambda x: x.min(axis=1)),
    ("softmax", lambda x: C.softmax(x * 50, axis=1),
     lambda x: np.exp(_np_log_softmax(x * 50, 1))),
    ("log_softmax", lambda x: C.log_softmax(x * 50), lambda x: _np_log_softmax(x * 50, -1)),
    ("logsumexp", lambda x: C.logsumexp(x * 300, axes=(0, 2)),
     lambda x: np.log(np.exp(x * 300 - (x * 300).max()).sum(axis=(0, 2))) + (x * 300).max()),
    ("expand_dims", lambda x: C.expand_dims(x, -1), lambda x: x[..., None]),
    ("squeeze", lambda x: C.squeeze(C.expand_dims(x, 1), 1), lambda x: x),
    ("swapaxes", lambda x: C.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, -1)),
    ("transpose_nd", C.transpose_nd, np.transpose),
    ("clip_by_value", lambda x: C.clip_by_value(x, -0.5, 0.25), lambda x: np.clip(x, -.5, .25)),
    ("where", lambda x: C.where(ops.greater(x, 0), x, -1.0), lambda x: np.where(x > 0, x, -1)),
    ("zeros_like", C.zeros_like, np.zeros_like),
    ("ones_like", C.ones_like, np.ones_like),
    ("full", lambda x: C.full((2, 3), 2.5, DType.f64), lambda x: np.full((2, 3), 2.5)),
    ("mse_loss", lambda x: C.mse_loss(x, 0.5), lambda x: np.mean((x - 0.5) ** 2)),
    ("l1_loss", lambda x: C.l1_loss(x, 0.5, "sum"), lambda x: np.sum(np.abs(x - 0.5))),
]
for key, index in [("int", (1, -1)), ("neg-step", (slice(None, None, -2), 1)),
                   ("ellipsis-none", (Ellipsis, None, slice(1, 3))), ("none-lead", None),
                   ("mixed", (-1, slice(-3, None), slice(4, 0, -1))), ("empty", slice(5, 2)),
                   ("one-int", 0), ("all", Ellipsis)]:
    COMPOSITES.append((f"getitem-{key}", lambda x, i=index: C.getitem(x, i),
                       lambda x, i=index: x[i]))


@pytest.mark.parametrize("name, fn, expected", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composite_matches_numpy(name, fn, expected, rng):
    x = rng.uniform(-2, 2, (2, 3, 5))
    got = fn(eager_value(x))
    want = np.asarray(expected(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)), ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)), ((5, 1, 2, 4), (3, 4, 3)), ((3, 4), (2, 1, 4, 2)), ((2, 3, 4), (4,))])
def test_matmul_nd_follows_numpy_matmul(a_shape, b_shape, rng):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    got = C.matmul_nd(eager_value(a), eager_value(b))
    np.testing.assert_allclose(got.data, np.matmul(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot_matches_numpy(axis):
    indices = np.array([[0, 2, 1], [3, 1, 4]])                  # 4 is out of range: all off
    table = np.where(np.arange(4) == indices[..., None], 5.0, -1.0).astype(np.float32)
    got = C.one_hot(eager_value(indices), 4, 5.0, -1.0, axis)
    assert got.dtype is f32
    np.testing.assert_array_equal(got.data, np.moveaxis(table, -1, axis))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits_matches_the_definition(reduction, weighted, pos_weighted, rng):
    x, y = rng.uniform(-4, 4, (3, 4)), rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 2, (4,)) if weighted else None
    pw = rng.uniform(0.5, 3, (4,)) if pos_weighted else None
    got = C.binary_cross_entropy_with_logits(
        eager_value(x), eager_value(y), None if w is None else eager_value(w),
        None if pw is None else eager_value(pw), reduction)
    loss = _np_bce(x, y, w, pw)
    want = {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    np.testing.assert_allclose(got.data, want, rtol=1e-10, atol=1e-12)


def test_bce_with_logits_is_stable_for_large_logits():
    x = eager_value(np.array([-200.0, 200.0], np.float32))
    got = C.binary_cross_entropy_with_logits(x, eager_value(np.array([1.0, 0.0], np.float32)),
                                             reduction="none")
    np.testing.assert_allclose(got.data, [200.0, 200.0], **F32)
    weighted = C.binary_cross_entropy_with_logits(  # host arrays and numbers as weights
        x, eager_value(np.array([1.0, 0.0], np.float32)), 0.5, np.array([3.0, 3.0]), "sum")
    np.testing.assert_allclose(weighted.data, 0.5 * (3 * 200.0 + 200.0), **F32)


def test_composite_errors_are_clear():
    x = eager_value(np.ones((2, 3)))
    with pytest.raises(ValueError, match="size 3"):
        C.squeeze(x, 1)
    with pytest.raises(IndexError, match="out of bounds"):
        C.getitem(x, (0, 3))
    with pytest.raises(TypeError, match="gather"):
        C.getitem(x, [0, 1])
    with pytest.raises(ValueError, match="reduction"):
        C.mse_loss(x, x, "avg")


def test_composites_build_graphs_of_primitives_only():
    g, out = _graph_op(lambda x: C.softmax(C.getitem(x, (Ellipsis, slice(None, None, -1)))),
                       TensorType((2, 3), f32))
    g.outputs = [out]
    assert {op.name for op in g.ops} <= set(OPS)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    e = np.exp(x[:, ::-1] - x[:, ::-1].max(axis=1, keepdims=True))
    np.testing.assert_allclose(run(g, [x])[0], e / e.sum(axis=1, keepdims=True), **F32)


# ----------------------------------------------------------------------- interpreter

class _Weight:
    def __init__(self, array, name="w"):
        self.array, self.name = array, name

    def asnumpy(self):
        return self.array


def test_interpreter_runs_args_and_weights_and_reports_updates():
    w = _Weight(np.array([1.0, 2.0], np.float32))
    g = Graph("step")
    with building(Builder(g)) as b:
        x = b.input(TensorType((2,), f32), "x")
        wv = b.bound_input(w, TensorType((2,), f32), "w")
        y = ops.mul(x, wv)
        b.assign(w, ops.sub(wv, y))
    g.outputs = [y]
    x = np.array([3.0, 4.0], np.float32)
    np.testing.assert_allclose(run(g, [x])[0], [3.0, 8.0])          # weight from the binding
    outs, updates = run_with_updates(g, [x, np.array([2.0, 0.5], np.float32)])
    np.testing.assert_allclose(outs[0], [6.0, 2.0])
    assert list(updates) == [1]
    np.testing.assert_allclose(updates[1], [2.0 - 6.0, 0.5 - 2.0])
    with pytest.raises(ValueError, match="expects"):
        run(g, [np.ones(3, np.float32)])


# ---------------------------------------------------- second order, through autodiff

def _sum_against(values, weights):
    """sum_i <values_i, weights_i> as one scalar value (weights are numpy constants)."""
    total = None
    for v, w in zip(values, weights):
        term = ops.reduce_sum(v * ops.constant(w))
        total = term if total is None else total + term
    return total


def _gradient_probe(row: Row, arrays, ct, ws, kept) -> Graph:
    """Graph xs -> <grad_xs <op(xs), ct>, ws>: its gradient is a Hessian-vector product."""
    f = Graph("f")
    with building(Builder(f)) as b:
        xs = [b.input(TensorType(a.shape, DType.from_numpy(a.dtype))) for a in arrays]
        f.outputs = [_sum_against([b.add_op(f"gs.{row.name}", xs, row.attrs)], [ct])]
    first = vjp_graph(f, kept)
    h = Graph("h")
    with building(Builder(h)) as b:
        xs = [b.input(x.type) for x in f.inputs]
        h.outputs = [_sum_against(inline_graph(first, xs)[1:], ws)]
    return h


@pytest.mark.parametrize("row", [r for r in ROWS if r.grad and r.cast_to is None],
                         ids=lambda r: r.id)
def test_second_order_matches_finite_differences(row, rng):
    arrays = _arrays(row, rng)
    out = np.asarray(OPS[f"gs.{row.name}"].reference(*arrays, **row.attrs))
    kept = [i for i, a in enumerate(arrays) if a.dtype == F64]
    ct = rng.standard_normal(out.shape)
    ws = [rng.standard_normal(arrays[i].shape) for i in kept]
    h = _gradient_probe(row, arrays, ct, ws, kept)
    second = run(vjp_graph(h, kept), arrays)[1:]
    directions = [rng.standard_normal(a.shape) for a in arrays]
    eps = 1e-5
    shifted = lambda s: run(h, [a + s * d if i in kept else a  # noqa: E731
                                for i, (a, d) in enumerate(zip(arrays, directions))])[0]
    numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
    analytic = sum(np.sum(d2 * directions[i]) for d2, i in zip(second, kept))
    assert abs(analytic - numeric) <= 1e-6 * (1 + abs(numeric)), (analytic, numeric)


@pytest.mark.parametrize("x", [[1.0, 1.0], [-1.5, 0.5], [-2.0, 3.0]])
def test_cube_differentiates_to_fourth_order(x):
    """d^k/dx^k sum(x**3) for k = 1..4 is 3x^2, 6x, 6, 0: finite everywhere, x < 0 too."""
    g = Graph("cube")
    with building(Builder(g)) as b:
        v = b.input(TensorType((2,), f64_))
        g.outputs = [ops.reduce_sum(v ** 3)]
    x = np.array(x)
    for expected in (3 * x ** 2, 6 * x, np.full(2, 6.0), np.zeros(2)):
        grad = vjp_graph(g, [0])
        np.testing.assert_allclose(run(grad, [x])[-1], expected, rtol=1e-12)
        g = Graph("next")
        with building(Builder(g)) as b:
            v = b.input(TensorType((2,), f64_))
            g.outputs = [ops.reduce_sum(inline_graph(grad, [v])[-1])]
