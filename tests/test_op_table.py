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
from graphspore.ir.core import Builder, Graph, GraphsporeError, building, eager_value
from graphspore.ir.interpreter import run, run_with_updates
from graphspore.ir.ops import OPS, composite as C
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
    Row("abs", [uniform(3, 4)], np.abs),
    Row("sign", [small_ints(3, 4)], lambda x: np.sign(x - 1), grad=False),
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


def test_every_primitive_has_a_row():
    assert {f"gs.{row.name}" for row in ROWS} == set(OPS)


def _arrays(row: Row, rng) -> list[np.ndarray]:
    arrays = [make(rng) for make in row.inputs]
    if row.cast_to is not None:
        arrays = [a.astype(row.cast_to.np) for a in arrays]
    return arrays


def _emit(row: Row, values):
    return getattr(ops, row.name)(*values, **row.attrs)


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
