"""Compiled execution against the reference interpreter: one table row per primitive, then
reductions, movement, matmul, casts, NaN/inf, updates, fusion, random graphs, vectorisation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from graphspore import codegen, runtime
from graphspore.codegen import LoweringError, parallel
from graphspore.codegen import loops as L
from graphspore.ir import core, ops
from graphspore.ir.interpreter import run as interpret, run_with_updates
from graphspore.codegen.fuse import fuse
from graphspore.codegen.memory_plan import plan_memory
from graphspore.ir.types import DType, TensorType

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
_EXECUTABLES: dict[tuple, tuple] = {}  # (printed LLVM IR, specs) -> (Executable, result)


def build(fn, *specs, name="g"):
    """A graph with inputs of `specs` ((shape, dtype) pairs) and outputs `fn(*inputs)`."""
    graph = core.Graph(name)
    with core.building(core.Builder(graph)) as b:
        inputs = [b.input(TensorType(shape, dtype), f"x{i}") for i, (shape, dtype) in
                  enumerate(specs)]
        out = fn(*inputs)
        graph.outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    return graph


def compile_exec(graph):
    result = codegen.compile_graph(graph, entry="main")
    key = (result.llvm_ir, repr(result.input_specs), repr(result.output_specs))
    cached = _EXECUTABLES.get(key)
    if cached is None:
        module = runtime.compile_module(result.llvm_ir, ["main"])
        cached = (runtime.Executable(module, "main", result.input_specs, result.output_specs,
                                     result.workspace_bytes), result)
        _EXECUTABLES[key] = cached
    return cached


def sample(shape, dtype, rng, kind="normal"):
    if dtype is BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.is_int:
        return np.asarray(rng.integers(-5, 6, size=shape), dtype.np)
    data = rng.standard_normal(shape)
    if kind == "positive":
        data = np.abs(data) + 0.1
    return data.astype(dtype.np)


def check(graph, arrays, rtol=2e-6, atol=1e-6):
    executable, _ = compile_exec(graph)
    got = executable(*[a.copy() for a in arrays])
    want = interpret(graph, [a.copy() for a in arrays])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if w.dtype.kind == "f":
            tol = rtol if w.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, w, rtol=tol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)
    return got


def run_case(fn, specs, kind="normal", seed=0, **tol):
    rng = np.random.default_rng(seed)
    graph = build(fn, *specs)
    check(graph, [sample(s, d, rng, kind) for s, d in specs], **tol)


M, V = ((4, 3), F32), ((3,), F32)
POS = "positive"
IN = lambda i, n: ops.minimum(ops.maximum(i, -n), n - 1)  # noqa: E731  (sampled ints in range)

import graphspore.gradient_hooks  # noqa: E402,F401  (installs the hook runner)
from graphspore.ir.ops.hooks import register_hook  # noqa: E402
from graphspore.runtime import hook_callback  # noqa: E402

_DOUBLE_M = register_hook(lambda a: a * 2.0)          # a gradient hook returning 2 * g
hook_callback.set_signature(_DOUBLE_M, M[0], np.float32)
_NONE_7 = register_hook(lambda a: None)               # one returning None: g unchanged
hook_callback.set_signature(_NONE_7, (7,), np.float64)

# op name -> list of (fn, input specs, data kind); every primitive needs a row.
CASES = {
    "gs.constant": [(lambda x: (x + ops.constant(np.arange(3, dtype=np.float32)),
                                ops.constant(np.float32(2.5)),
                                ops.constant(np.array([[1, 2]], np.int32))), [M], "normal")],
    "gs.iota": [(lambda x: (ops.iota(shape=(3, 4), axis=1, dtype=I64),
                            x * ops.iota(shape=(4, 3), axis=0, dtype=F32)), [M], "normal")],
    "gs.cast": [(lambda x: ops.cast(x, dtype=I32), [M], "normal")],
    "gs.neg": [(ops.neg, [M], "normal"), (ops.neg, [((5,), I32)], "normal")],
    "gs.exp": [(ops.exp, [M], "normal"), (ops.exp, [((7,), F64)], "normal")],
    "gs.log": [(ops.log, [M], POS), (ops.log, [((7,), F64)], POS)],
    "gs.sqrt": [(ops.sqrt, [M], POS), (ops.sqrt, [((7,), F64)], POS)],
    "gs.tanh": [(ops.tanh, [M], "normal"), (ops.tanh, [((7,), F64)], "normal")],
    "gs.sigmoid": [(ops.sigmoid, [M], "normal"), (ops.sigmoid, [((7,), F64)], "normal")],
    "gs.sin": [(lambda x: ops.sin(x * 5.0), [M], "normal"), (ops.sin, [((7,), F64)], "normal")],
    "gs.cos": [(lambda x: ops.cos(x * 5.0), [M], "normal"), (ops.cos, [((7,), F64)], "normal")],
    "gs.atan": [(lambda x: ops.atan(x * 5.0), [M], "normal"), (ops.atan, [((7,), F64)], "n")],
    "gs.abs": [(ops.abs, [M], "normal"), (ops.abs, [((9,), I64)], "normal")],
    "gs.relu": [(ops.relu, [M], "normal"), (ops.relu, [((9,), I32)], "normal")],
    "gs.sign": [(ops.sign, [M], "normal"), (ops.sign, [((9,), I32)], "normal")],
    "gs.floor": [(lambda x: ops.floor(x * 3.0), [M], "normal")],
    "gs.logical_not": [(ops.logical_not, [((6,), BOOL)], "normal")],
    "gs.stop_gradient": [(ops.stop_gradient, [M], "normal")],
    "gs.add": [(ops.add, [M, V], "normal"), (ops.add, [((2, 3), I64), ((2, 1), I64)], "n")],
    "gs.sub": [(ops.sub, [V, M], "normal"), (ops.sub, [((4,), I32), ((4,), I32)], "n")],
    "gs.mul": [(ops.mul, [M, ((4, 1), F32)], "normal"), (ops.mul, [((3,), I64)] * 2, "n")],
    "gs.div": [(ops.div, [M, V], POS), (ops.div, [((5,), F64)] * 2, POS)],
    "gs.floor_div": [(ops.floor_div, [((4, 3), I32), ((3,), I32)], "n"),
                     (ops.floor_div, [M, V], "normal"), (ops.floor_div, [((5,), I64)] * 2, "n")],
    "gs.floor_mod": [(ops.floor_mod, [((4, 3), I64), ((3,), I64)], "n"),
                     (ops.floor_mod, [M, ((4, 1), F32)], "normal"),
                     (ops.floor_mod, [((7,), F64)] * 2, "normal")],
    "gs.pow": [(ops.pow, [M, V], POS), (lambda x: ops.pow(x, 3), [((6,), I64)], "n"),
               (lambda x: x ** 2.0, [M], "normal")],
    "gs.maximum": [(ops.maximum, [M, V], "normal"), (ops.maximum, [((5,), I32)] * 2, "n")],
    "gs.minimum": [(ops.minimum, [M, V], "normal"), (ops.minimum, [((5,), I64)] * 2, "n")],
    "gs.logical_and": [(ops.logical_and, [((2, 3), BOOL), ((3,), BOOL)], "n")],
    "gs.logical_or": [(ops.logical_or, [((2, 3), BOOL), ((3,), BOOL)], "n")],
    "gs.equal": [(ops.equal, [((8,), I32)] * 2, "n"), (ops.equal, [((2, 3), BOOL)] * 2, "n")],
    "gs.not_equal": [(ops.not_equal, [((8,), I32)] * 2, "n")],
    "gs.less": [(ops.less, [M, V], "normal"), (ops.less, [((3,), BOOL)] * 2, "n")],
    "gs.less_equal": [(ops.less_equal, [((8,), I64)] * 2, "n")],
    "gs.greater": [(ops.greater, [M, V], "normal")],
    "gs.greater_equal": [(ops.greater_equal, [((8,), I32)] * 2, "n")],
    "gs.select": [(lambda c, x, y: ops.select(c, x, y), [((4, 1), BOOL), M, V], "normal"),
                  (lambda c, x, y: ops.select(c, x, y), [((5,), BOOL), ((5,), I32),
                                                        ((5,), I32)], "normal")],
    "gs.reduce_sum": [(lambda x: ops.reduce_sum(x, axes=(1,)), [M], "normal")],
    "gs.reduce_max": [(lambda x: ops.reduce_max(x, axes=(0,)), [M], "normal")],
    "gs.argmax": [(lambda x: ops.argmax(x, axis=1), [M], "normal")],
    "gs.reshape": [(lambda x: ops.reshape(x, shape=(2, 6)), [M], "normal")],
    "gs.broadcast_to": [(lambda x: ops.broadcast_to(x, shape=(2, 4, 3)), [V], "normal")],
    "gs.transpose": [(lambda x: ops.transpose(x, perm=(1, 0)), [M], "normal")],
    "gs.reverse": [(lambda x: ops.reverse(x, axes=1), [M], "n"),
                   (lambda x: ops.reverse(ops.exp(x), axes=(0, 1)) + x, [M], "n")],
    "gs.slice": [(lambda x: ops.slice(x, begin=(1, 0), end=(4, 3), strides=(2, 2)), [M], "n")],
    "gs.pad": [(lambda x: ops.pad(x, low=(1, 0), high=(0, 2), stride=(2, 1)), [M], "n")],
    "gs.concat": [(lambda x, y: ops.concat(x, y, axis=0), [M, ((2, 3), F32)], "n")],
    "gs.matmul": [(ops.matmul, [M, ((3, 5), F32)], "normal")],
    "gs.im2col": [(lambda x: ops.im2col(x, kernel=3, pads=1), [((2, 3, 6, 5), F32)], "n"),
                  (lambda x: ops.im2col(x, kernel=(2, 3), stride=(2, 1), dilation=(1, 2),
                                        pads=(1, 0, 2, 1)), [((2, 3, 7, 8), F64)], "n")],
    "gs.col2im": [(lambda c: ops.col2im(c, image=(2, 3, 6, 5), kernel=3, pads=1),
                   [((27, 60), F32)], "n"),
                  (lambda c: ops.col2im(c, image=(2, 3, 7, 8), kernel=(2, 3), stride=(2, 1),
                                        dilation=(1, 2), pads=(1, 0, 2, 1)),
                   [((18, 56), F64)], "n")],
    "gs.conv2d": [(lambda x, w: ops.conv2d(x, w, pads=1), [((2, 3, 6, 5), F32),
                                                         ((4, 3, 3, 3), F32)], "n"),
                  (lambda x, w: ops.relu(ops.conv2d(x, w, stride=(2, 1), dilation=(1, 2),
                                                    pads=(1, 0, 2, 1), groups=2) + 1.0),
                   [((3, 4, 7, 8), F64), ((6, 2, 2, 3), F64)], "n")],
    "gs.conv2d_input_grad": [
        (lambda g, w: ops.conv2d_input_grad(g, w, image=(2, 3, 6, 5), pads=1),
         [((2, 4, 6, 5), F32), ((4, 3, 3, 3), F32)], "n"),
        (lambda g, w: ops.conv2d_input_grad(g, w, image=(3, 4, 7, 8), stride=(2, 1),
                                            dilation=(1, 2), pads=(1, 0, 2, 1), groups=2),
         [((3, 6, 4, 7), F64), ((6, 2, 2, 3), F64)], "n")],
    "gs.conv2d_filter_grad": [
        (lambda x, g: ops.conv2d_filter_grad(x, g, kernel=3, pads=1),
         [((2, 3, 6, 5), F32), ((2, 4, 6, 5), F32)], "n"),
        (lambda x, g: ops.conv2d_filter_grad(x, g, kernel=(2, 3), stride=(2, 1),
                                             dilation=(1, 2), pads=(1, 0, 2, 1), groups=2),
         [((3, 4, 7, 8), F64), ((3, 6, 4, 7), F64)], "n")],
    "gs.max_pool2d": [(lambda x: ops.max_pool2d(x, kernel=2), [((2, 3, 8, 6), F32)], "n"),
                      (lambda x: ops.max_pool2d(x, kernel=3, stride=2), [((2, 3, 9, 7), F64)],
                       "n")],
    "gs.max_pool2d_grad": [
        (lambda x, g: ops.max_pool2d_grad(x, g, kernel=2), [((2, 3, 8, 6), F32),
                                                            ((2, 3, 4, 3), F32)], "n"),
        (lambda x, g: ops.max_pool2d_grad(ops.floor(x * 2.0), g, kernel=3, stride=2),  # ties
         [((2, 3, 9, 7), F64), ((2, 3, 4, 3), F64)], "n")],
    "gs.gather": [(lambda x, i: ops.gather(x, IN(i, 4), axis=0), [M, ((2, 3), I32)], "n"),
                  (lambda x, i: ops.exp(ops.gather(x, IN(i, 3), axis=1)), [M, ((5,), I64)], "n")],
    "gs.scatter_add": [(lambda x, i, u: ops.scatter_add(x, IN(i, 4), u, axis=0),
                        [M, ((6,), I64), ((6, 3), F32)], "n")],
    "gs.if": [(lambda p, x: ops.if_op(p, [x], lambda x: (ops.exp(x), x),
                                      lambda x: (x * 2.0, ops.neg(x))), [((), BOOL), M], "n")],
    "gs.while": [(lambda x: ops.while_op([x, ops.constant(np.int64(0))], [],
                                         lambda x, n: ops.less(n, 5),
                                         lambda x, n: (x * 1.5 + 1.0, n + 1)), [M], "n")],
    "gs.for": [(lambda n, x: ops.for_op(ops.abs(n), [x], [x], lambda i, x, c: x * c + ops.cast(
        i, dtype=F32), reverse=True), [((), I64), M], "n")],
    "gs.update_row": [(lambda x, r, i: ops.update_row(x, r, IN(i, 4)),
                       [M, ((3,), F32), ((), I64)], "n")],
    "gs.gather_elements": [(lambda x, i: ops.gather_elements(x, IN(i, 3), dim=1),
                            [M, ((3, 5), I32)], "n")],
    # one process: the reduction over one rank (tests/test_distributed.py runs two)
    "gs.all_reduce": [(lambda x: ops.all_reduce(ops.exp(x), op="sum"), [M], "n"),
                      (lambda x: ops.all_reduce(x, op="max"), [((7,), F64)], "n")],
    # gradient hooks: the mark is the identity; the host call runs Python on the buffer
    "gs.grad_hook": [(lambda x: ops.grad_hook(ops.exp(x), hook=_DOUBLE_M), [M], "n")],
    # a print is a kernel calling back into Python (text checked in tests/test_print.py);
    # its token is 0
    "gs.print": [(lambda x: (ops.exp(x), ops.print_(ops.exp(x), x, strings=("e:",),
                                                    layout=(-1, 0, 1))), [M], "n")],
    "gs.host_hook": [(lambda x: ops.host_hook(ops.exp(x), hook=_DOUBLE_M) + 1.0, [M], "n"),
                     (lambda x: ops.host_hook(x, hook=_NONE_7), [((7,), F64)], "n")],
}


def test_every_primitive_has_a_row():
    assert set(CASES) == set(ops.OPS), set(ops.OPS) ^ set(CASES)


@pytest.mark.parametrize("name,row", [(n, i) for n, rows in CASES.items()
                                      for i in range(len(rows))])
def test_primitive(name, row):
    fn, specs, kind = CASES[name][row]
    run_case(fn, specs, kind)


def test_every_elementwise_primitive_has_a_scalar_lowering():
    for name, opdef in ops.OPS.items():
        if "elementwise" in opdef.groups:
            assert name.split(".", 1)[1] in codegen.SCALAR_OPS, name


@pytest.mark.parametrize("source,target", list(itertools.product([F32, F64, I32, I64, BOOL],
                                                                   repeat=2)))
def test_cast(source, target):
    rng = np.random.default_rng(1)
    data = sample((11,), source, rng)
    data = data * 3 if source.is_float else data
    if source.is_float:
        data[:3] = [0.0, -0.0, 2.75]
    check(build(lambda x: ops.cast(x, dtype=target), ((11,), source)), [data])


AXIS_SUBSETS = [a for r in range(1, 4) for a in itertools.combinations(range(3), r)]


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_max"])
@pytest.mark.parametrize("axes", AXIS_SUBSETS)
@pytest.mark.parametrize("keep", [False, True])
def test_reductions(op, axes, keep):
    fn = getattr(ops, op)
    run_case(lambda x: fn(ops.exp(x), axes=axes, keep_dims=keep), [((3, 4, 5), F32)],
             rtol=1e-5)


@pytest.mark.parametrize("axis,keep", [(0, False), (1, True), (2, False)])
def test_argmax(axis, keep):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 3, size=(3, 4, 5)).astype(np.float32)     # many ties
    data[1, 2, :] = np.nan
    data[0, 1, 3] = np.inf
    data[2, 0, :] = -np.inf
    check(build(lambda x: ops.argmax(x, axis=axis, keep_dims=keep), ((3, 4, 5), F32)), [data])
    ints = rng.integers(-3, 3, size=(3, 4, 5)).astype(np.int32)
    check(build(lambda x: ops.argmax(x, axis=axis, keep_dims=keep), ((3, 4, 5), I32)), [ints])


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_transpose(perm):
    run_case(lambda x: ops.transpose(x, perm=perm) * 2.0, [((2, 3, 4), F32)])


@pytest.mark.parametrize("shape,perm", [((64, 96), (1, 0)), ((2, 64, 32), (0, 2, 1)),
                                        ((32, 3, 64), (2, 1, 0))])
def test_tiled_transpose(shape, perm):
    graph = build(lambda x: ops.transpose(x, perm=perm) + 1.0, (shape, F32))
    assert "for t" in codegen.compile_graph(graph).loops_text
    run_case(lambda x: ops.transpose(x, perm=perm) + 1.0, [(shape, F32)])


@pytest.mark.parametrize("begin,end,strides", [((0, 1, 0), (2, 5, 4), (1, 2, 3)),
                                               ((1, 0, 2), (2, 5, 4), (1, 1, 1)),
                                               ((0, 4, 0), (2, 5, 4), (2, 3, 2))])
def test_slice(begin, end, strides):
    run_case(lambda x: ops.exp(ops.slice(x, begin=begin, end=end, strides=strides)),
             [((2, 5, 4), F32)])


def test_pad_concat_reshape_chains():
    run_case(lambda x: ops.pad(ops.exp(x), low=(0, 2), high=(1, 0), stride=(3, 2)), [M])
    run_case(lambda x, y: ops.concat(ops.neg(x), y, ops.transpose(y, perm=(0, 1)), axis=1),
             [((2, 3), F32), ((2, 4), F32)])
    run_case(lambda x: ops.reshape(ops.transpose(x, perm=(1, 0)), shape=(2, 6)) + 1.0, [M])
    run_case(lambda x: ops.reduce_sum(ops.reshape(ops.transpose(x, perm=(2, 0, 1)),
                                                  shape=(4, 6)), axes=(1,)), [((2, 3, 4), F32)])


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (4, 5, 3), (17, 9, 33), (40, 24, 32)])
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_matmul(m, n, k, ta, tb):
    a_shape = (k, m) if ta else (m, k)
    b_shape = (n, k) if tb else (k, n)
    run_case(lambda a, b: ops.matmul(a, b, transpose_a=ta, transpose_b=tb),
             [(a_shape, F32), (b_shape, F32)], rtol=1e-4, atol=1e-4)


def test_matmul_int_and_f64_and_fused_operands():
    run_case(lambda a, b: ops.matmul(a, b), [((3, 4), I64), ((4, 2), I64)])
    run_case(lambda a, b: ops.matmul(a, b, transpose_b=True), [((5, 6), F64), ((3, 6), F64)])
    run_case(lambda a, b: ops.tanh(ops.matmul(ops.exp(a), ops.transpose(b, perm=(1, 0))) + 1.0),
             [((3, 4), F32), ((2, 4), F32)], rtol=1e-5)


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 1e30], np.float32)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos", "atan",
                                  "relu", "abs", "sign", "floor", "neg"])
def test_nan_inf_unary(name):
    data = SPECIAL
    if name in ("sin", "cos"):   # their range is |x| < 2^22 in float32 (codegen/vector_math.py)
        data = np.where(SPECIAL == np.float32(1e30), np.float32(4e6), SPECIAL)
    with np.errstate(all="ignore"):
        check(build(getattr(ops, name), ((8,), F32)), [data])


@pytest.mark.parametrize("name", ["add", "mul", "sub", "div", "pow", "maximum", "minimum",
                                  "equal", "not_equal", "less", "less_equal", "greater",
                                  "greater_equal"])
def test_nan_inf_binary(name):
    x = np.repeat(SPECIAL, 8)
    y = np.tile(SPECIAL, 8)
    with np.errstate(all="ignore"):
        check(build(getattr(ops, name), ((64,), F32), ((64,), F32)), [x, y])


def test_nan_reductions():
    data = np.array([[1.0, np.nan, 3.0], [np.inf, 2.0, -np.inf]], np.float32)
    for fn in (ops.reduce_sum, ops.reduce_max):
        for axes in [(0,), (1,), (0, 1)]:
            check(build(lambda x: fn(x, axes=axes), ((2, 3), F32)), [data])


def test_multiple_outputs_aliases_and_updates():
    graph = core.Graph("upd")

    class Weight:
        name = "w"
    with core.building(core.Builder(graph)) as b:
        x = b.input(TensorType((4,), F32), "x")
        w = b.input(TensorType((4,), F32), "w", binding=Weight())
        y = ops.exp(x) * w
        graph.outputs = [y, x, y, ops.constant(np.float32(1.0))]
        graph.updates = [(w, w - 0.5 * y)]
    xs = np.arange(4, dtype=np.float32)
    ws = np.ones(4, np.float32)
    want = interpret(graph, [xs.copy(), ws.copy()])
    executable, _ = compile_exec(graph)
    got = executable(xs, ws)
    for g, v in zip(got, want):
        np.testing.assert_allclose(g, v, rtol=1e-6)
    np.testing.assert_allclose(ws, 1.0 - 0.5 * np.exp(np.arange(4)), rtol=1e-6)


def _updates_graph(name, shapes, make):
    """A graph with weight inputs (name, shape) and `make(weights) -> (outputs, updates)`."""
    graph = core.Graph(name)

    class Weight:
        pass
    with core.building(core.Builder(graph)) as b:
        weights = [b.input(TensorType(shape, F32), n, binding=Weight()) for n, shape in shapes]
        graph.outputs, graph.updates = make(weights)
    return graph


def _run_updates(graph, arrays, atol=0.0):
    """Compiled run on copies; checks outputs and updated weights against the interpreter's."""
    executable, _ = compile_exec(graph)
    mine = [a.copy() for a in arrays]
    got = executable(*mine)
    want, updates = run_with_updates(graph, [a.copy() for a in arrays])
    want_weights = [updates.get(i, a) for i, a in enumerate(arrays)]
    for g, w in zip(list(got) + mine, list(want) + want_weights):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=atol)


@pytest.mark.parametrize("case", ["sgd", "transposed", "returned", "swapped"])
def test_updates_in_place_only_when_safe(case):
    """An elementwise update is computed in the weight's own buffer (no copy kernel), but not
    when it reads the weight at another element, or when the old value is read later."""
    rng = np.random.default_rng(0)
    if case == "sgd":
        graph = _updates_graph("sgd", [("w", (3, 4)), ("g", (3, 4))],
                               lambda ws: ([ops.reduce_sum(ws[0] * ws[1], axes=(0, 1))],
                                           [(ws[0], ws[0] - 0.1 * ws[1])]))
        copies = 0
    elif case == "transposed":
        graph = _updates_graph("tr", [("w", (3, 3))],
                               lambda ws: ([ops.reduce_sum(ws[0], axes=(0,))],
                                           [(ws[0], ops.transpose(ws[0], perm=(1, 0)) + 1.0)]))
        copies = 1
    elif case == "returned":
        graph = _updates_graph("ret", [("w", (4,))],
                               lambda ws: ([ws[0]], [(ws[0], ws[0] * 2.0)]))
        copies = 2                                  # the output copy and the update copy
    else:
        graph = _updates_graph("swap", [("a", (5,)), ("b", (5,))],
                               lambda ws: ([ops.reduce_sum(ws[0], axes=(0,))],
                                           [(ws[0], ws[1] + 0.0), (ws[1], ws[0] + 0.0)]))
        copies = 1                                  # a's new value is read before b changes
    kinds = [k.kind for k in fuse(graph).kernels]
    assert kinds.count("copy") == copies, kinds
    _run_updates(graph, [sample(v.shape, F32, rng) for v in graph.inputs])


def _epilogue_kernels(graph):
    return [k for k in fuse(graph, epilogue_ok=codegen.epilogue_ok).kernels if k.product is not None]


EPILOGUES = {
    # name: (fn, specs); every product here is small enough for register tiles
    "bias_relu_nt": (lambda x, w, b: ops.relu(ops.matmul(x, w, transpose_b=True) + b),
                     [((13, 37), F32), ((11, 37), F32), ((11,), F32)]),
    "bias_relu_nt_f64": (lambda x, w, b: ops.relu(ops.matmul(x, w, transpose_b=True) + b),
                         [((9, 20), F64), ((6, 20), F64), ((6,), F64)]),
    "relu_mask_nn": (lambda g, w, h: ops.select(ops.greater(h, 0.0), ops.matmul(g, w), 0.0),
                     [((20, 10), F32), ((10, 37), F32), ((20, 37), F32)]),
    "tn_times_column": (lambda a, b, c: ops.matmul(a, b, transpose_a=True) * c,
                        [((7, 19), F32), ((7, 26), F32), ((19, 1), F32)]),
    "bool_output": (lambda a, b: ops.greater(ops.matmul(a, b), 0.0), [((8, 5), F32), ((5, 21), F32)]),
    "column_ramp": (lambda a, b: ops.matmul(a, b) + ops.iota(shape=(6, 18), axis=1,
                                                             dtype=F32),
                    [((6, 3), F32), ((3, 18), F32)]),
    "exp_f64": (lambda a, b: ops.exp(ops.matmul(a, b) * 0.1), [((5, 9), F64), ((9, 3), F64)]),
    "bool_mask_input": (lambda a, b, m: ops.select(m, ops.matmul(a, b), 0.0),
                        [((7, 4), F32), ((4, 19), F32), ((7, 19), BOOL)]),
    "cast_to_int": (lambda a, b: ops.cast(ops.matmul(a, b) * 10.0, dtype=I32),
                    [((6, 5), F32), ((5, 12), F32)]),
    "one_column": (lambda a, b, c: ops.matmul(a, b) + c, [((7, 3), F32), ((3, 1), F32),
                                                         ((7, 1), F32)]),
    "transposed_operand": (lambda a, b, c: ops.matmul(a, b) + ops.transpose(c, perm=(1, 0)),
                           [((9, 4), F32), ((4, 21), F32), ((21, 9), F32)]),
    "sqrt_scale": (lambda x, w, v: ops.matmul(x, w) / ops.sqrt(v),
                   [((6, 5), F32), ((5, 8), F32), ((1, 8), F32)]),
}


@pytest.mark.parametrize("name", sorted(EPILOGUES))
def test_matmul_epilogues(name):
    """Elementwise ops on a product run on its registers (no stored product), in every tile
    shape and tail: vector and scalar columns, broadcast and contiguous loads, bool stores."""
    fn, specs = EPILOGUES[name]
    graph = build(fn, *specs)
    assert len(_epilogue_kernels(graph)) == 1
    executable, result = compile_exec(graph)
    assert result.kernels == 1, result.loops_text
    assert "acc in matmul(" in result.loops_text
    rng = np.random.default_rng(3)
    kinds = {"sqrt_scale": [None, None, "positive"]}.get(name, [None] * len(specs))
    check(graph, [sample(shape, dtype, rng, kind or "normal")
                  for (shape, dtype), kind in zip(specs, kinds)], rtol=1e-5, atol=1e-5)


def test_epilogue_sgd_step_in_place_and_not_when_the_product_reads_the_weight():
    """`w - lr * (g.T @ x)` updates w in its own buffer from the product's registers; when the
    product reads w itself (`g @ w`), later row tiles would read rows already overwritten,
    so the new value goes through the workspace and a copy."""
    rng = np.random.default_rng(5)
    sgd = _updates_graph("sgd_mm", [("w", (24, 16)), ("g", (40, 24)), ("x", (40, 16))],
                         lambda ws: ([ops.reduce_sum(ws[1], axes=(0, 1))],
                                     [(ws[0], ws[0] - 0.1 * ops.matmul(ws[1], ws[2],
                                                                      transpose_a=True))]))
    reads_w = _updates_graph("mm_reads_w", [("w", (16, 32)), ("g", (16, 16))],
                             lambda ws: ([ops.reduce_sum(ws[1], axes=(0, 1))],
                                         [(ws[0], ws[0] - 0.1 * ops.matmul(ws[1], ws[0]))]))
    for graph, copies in ((sgd, 0), (reads_w, 1)):
        fused = fuse(graph, epilogue_ok=codegen.epilogue_ok)
        assert sum(k.product is not None for k in fused.kernels) == 1
        assert [k.kind for k in fused.kernels].count("copy") == copies
        _run_updates(graph, [sample(v.shape, F32, rng) for v in graph.inputs], atol=1e-5)


BLAS_ACCUMULATIONS = {
    "plus": lambda c, a, b, s: c + ops.matmul(a, b),
    "scaled_plus_first": lambda c, a, b, s: ops.matmul(a, b) * s + c,
    "minus_scaled": lambda c, a, b, s: ops.exp(c) - s * ops.matmul(a, b, transpose_b=True),
}


@pytest.mark.parametrize("name", sorted(BLAS_ACCUMULATIONS))
def test_blas_products_accumulate_x_plus_scaled_product(name):
    """Products too large for tiles take `x +- s * (A @ B)` as one BLAS call with alpha = +-s
    and beta = 1 into a copy of x."""
    # 384 x 640 x 600: above the register tiles' largest size (LARGE_TILES_MAX_FMAS)
    specs = [((384, 640), F32), ((384, 600), F32), ((600, 640) if name != "minus_scaled"
                                                    else (640, 600), F32), ((), F32)]
    graph = build(BLAS_ACCUMULATIONS[name], *specs)
    assert len(_epilogue_kernels(graph)) == 1
    _, result = compile_exec(graph)
    assert result.kernels == 1 and ") + out\n" in result.loops_text, result.loops_text
    rng = np.random.default_rng(7)
    check(graph, [sample(shape, dtype, rng) for shape, dtype in specs], rtol=1e-4, atol=1e-4)


def test_blas_sgd_step_updates_the_weight_in_place():
    """`w - lr * (g.T @ x)` on a BLAS-sized product is one sgemm with alpha = -lr, beta = 1
    and C = w: no gradient buffer, no update pass."""
    rng = np.random.default_rng(8)
    graph = _updates_graph("sgd_blas", [("w", (512, 512)), ("g", (600, 512)), ("x", (600, 512)),
                                        ("lr", ())],
                           lambda ws: ([ws[3] * 2.0],
                                       [(ws[0], ws[0] - ws[3] * ops.matmul(ws[1], ws[2],
                                                                          transpose_a=True))]))
    fused = fuse(graph, epilogue_ok=codegen.epilogue_ok)
    assert [k.kind for k in fused.kernels] == ["elementwise", "matmul"]
    _, result = compile_exec(graph)
    assert "w = neg(load lr[0]) * matmul(g, x" in result.loops_text, result.loops_text
    _run_updates(graph, [sample(v.shape, F32, rng) for v in graph.inputs], atol=1e-4)


@pytest.mark.parametrize("case", ["two_uses", "transposed", "broadcast", "blas"])
def test_no_epilogue_when_it_would_change_the_product(case):
    """The product stays stored when something else reads it, when the epilogue reads it at
    another element or writes a different shape, or when it is too big for tiles."""
    if case == "two_uses":
        def fn(a, b):
            product = ops.matmul(a, b)
            return product + 1.0, product * 2.0
        specs = [((4, 4), F32), ((4, 4), F32)]
    elif case == "transposed":
        fn = lambda a, b: ops.transpose(ops.matmul(a, b), perm=(1, 0)) + 1.0
        specs = [((8, 3), F32), ((3, 8), F32)]
    elif case == "broadcast":
        fn = lambda a, b, c: ops.matmul(a, b) + c
        specs = [((4, 3), F32), ((3, 5), F32), ((2, 4, 5), F32)]
    else:   # BLAS takes only x +- s * product
        fn = lambda a, b: ops.relu(ops.matmul(a, b))
        specs = [((512, 600), F32), ((600, 512), F32)]
    graph = build(fn, *specs)
    assert _epilogue_kernels(graph) == []
    run_case(fn, specs, rtol=1e-4, atol=1e-4)


def test_fusion_and_memory_plan():
    def f(x, b):
        h = ops.tanh(x * 2.0 + b)          # one fused kernel
        s = ops.reduce_sum(h, axes=(1,))   # reduction reads h (materialised: two users)
        return h * ops.broadcast_to(ops.reshape(s, shape=(4, 1)), shape=(4, 3)), s
    graph = build(f, M, V)
    fused = fuse(graph)
    assert [k.kind for k in fused.kernels] == ["elementwise", "reduce", "elementwise"]
    plan = plan_memory(fused)
    assert plan.arena_size == 64 and all(o % 64 == 0 for o in plan.offsets.values())
    result = codegen.compile_graph(graph)
    assert result.kernels == 3 and "tanh(" in result.loops_text
    check(graph, [sample((4, 3), F32, np.random.default_rng(0)),
                  sample((3,), F32, np.random.default_rng(1))], rtol=1e-5)


def test_arena_reuse():
    def chain(x):
        for _ in range(4):
            x = ops.reduce_sum(ops.exp(x), axes=(0,), keep_dims=True) * x
        return x
    graph = build(chain, ((64, 16), F32))
    plan = plan_memory(fuse(graph))
    assert plan.arena_size < sum(v.type.nbytes for v in plan.offsets)
    run_case(chain, [((64, 16), F32)], rtol=1e-4)


def test_missing_lowering_names_the_op(monkeypatch):
    monkeypatch.delitem(codegen.SCALAR_OPS, "tanh")
    with pytest.raises(LoweringError, match="gs.tanh"):
        codegen.compile_graph(build(ops.tanh, M))


SPLIT_KERNELS = {
    # name: (fn, specs); each kernel has >= 2 tasks of MIN_TASK_ITERATIONS
    "uneven_rows": (lambda x, b: ops.tanh(x * 2.0 + b), [((1001, 37), F32), ((37,), F32)]),
    "flat_bool": (lambda x, y: ops.greater(x, y), [((100003,), F32), ((100003,), F32)]),
    "tiled_transpose": (lambda x: ops.transpose(x, perm=(1, 0)) * 3.0, [((512, 96), F32)]),
    "row_sums_f64": (lambda x: ops.reduce_sum(ops.exp(x), axes=(1,)), [((5000, 33), F64)]),
}


@pytest.mark.parametrize("name", sorted(SPLIT_KERNELS))
def test_large_kernels_split_their_outer_loop_across_the_pool(name):
    """Big elementwise, transpose and row-reduction kernels run as chunks of their outer loop
    on gs_parallel_for (the last chunk shorter) and give the interpreter's results."""
    fn, specs = SPLIT_KERNELS[name]
    graph = build(fn, *specs)
    _, result = compile_exec(graph)
    assert "gs_parallel_for" in result.llvm_ir and ".chunk" in result.llvm_ir
    rng = np.random.default_rng(11)
    check(graph, [sample(shape, dtype, rng) for shape, dtype in specs], rtol=1e-5, atol=1e-6)


def test_big_in_place_update_splits_and_small_kernels_do_not():
    rng = np.random.default_rng(12)
    graph = _updates_graph("big_sgd", [("w", (300, 400)), ("g", (300, 400))],
                           lambda ws: ([ops.reduce_sum(ws[1], axes=(1,))],
                                       [(ws[0], ws[0] - 0.5 * ws[1])]))
    assert "gs_parallel_for" in codegen.compile_graph(graph).llvm_ir
    assert [k.kind for k in fuse(graph).kernels].count("copy") == 0
    _run_updates(graph, [sample(v.shape, F32, rng) for v in graph.inputs], atol=1e-5)
    small = build(lambda x: ops.exp(x) + 1.0, ((64, 10), F32))
    assert "gs_parallel_for" not in codegen.compile_graph(small).llvm_ir
    big = build(lambda x: ops.exp(x) + 1.0, ((1000, 100), F32))
    assert "gs_parallel_for" not in codegen.compile_graph(big, parallel=False).llvm_ir


def _loop_kernel(body):
    return L.Kernel("k", [], body)


def test_outer_split_refuses_dependent_iterations():
    """Only a single outer loop whose iterations write disjoint elements, and read a buffer
    they write only at the element they write, is split."""
    out = L.Buffer("out", (1000, 100), F32, "ws")
    x = L.Buffer("x", (1000, 100), F32, "in")
    i, j = L.Var("i0"), L.Var("i1")
    own = L.linear([i, j], out.shape)

    def nest(store):
        return [L.Loop("i0", 1000, [L.Loop("i1", 100, [store])])]
    assert parallel.outer_split(_loop_kernel(nest(L.Store(out, own, L.Load(x, own))))) \
        == (6, 167)
    in_place = L.Store(out, own, L.Call("add", (L.Load(out, own), L.Const(1.0, F32)), F32))
    assert parallel.outer_split(_loop_kernel(nest(in_place))) is not None
    shifted = L.Store(out, own, L.Load(out, L.linear([j, i], (100, 1000))))
    assert parallel.outer_split(_loop_kernel(nest(shifted))) is None
    same_row = L.Store(out, j, L.Load(x, own))          # every i0 writes row 0
    assert parallel.outer_split(_loop_kernel(nest(same_row))) is None
    two_loops = nest(L.Store(out, own, L.Load(x, own))) * 2
    assert parallel.outer_split(_loop_kernel(two_loops)) is None


@pytest.mark.parametrize("name", ["exp", "sin", "cos"])
def test_vectorised_and_no_libm_call(name):
    graph = build(lambda x, y: getattr(ops, name)(x * y + 1.0), ((4096,), F32), ((4096,), F32))
    executable, result = compile_exec(graph)
    asm = executable.module.asm
    assert "ymm" in asm or "zmm" in asm
    calls = "".join(line for line in asm.splitlines() if "call" in line)
    assert name not in calls and "fma" not in calls


def test_reduction_inner_axis_vectorised():
    executable, _ = compile_exec(build(lambda x: ops.reduce_sum(x, axes=(1,)),
                                       ((8, 4096), F32)))
    assert "ymm" in executable.module.asm or "zmm" in executable.module.asm


# ------------------------------------------------------------------- random graphs (hypothesis)

@st.composite
def random_graph(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    steps = draw(st.lists(st.integers(0, 6), min_size=1, max_size=6))
    perms = draw(st.permutations(range(3)))
    return shape, steps, list(perms), draw(st.integers(0, 2 ** 16))


def _apply(steps, perm, rng):
    def fn(x):
        values = [x]
        for step in steps:
            v = values[-1]
            if step == 0:
                v = ops.tanh(v) + ops.sigmoid(values[0] if values[0].shape == v.shape else v)
            elif step == 1:       # broadcast against a constant row
                row = rng.standard_normal(v.shape[-1:]).astype(np.float32)
                v = v * ops.constant(row) - ops.constant(np.float32(0.5))
            elif step == 2 and v.ndim:
                v = ops.reduce_sum(v, axes=(v.ndim - 1,), keep_dims=bool(len(values) % 2))
            elif step == 3 and v.ndim:
                v = ops.reduce_max(v, axes=(0,), keep_dims=True) - v
            elif step == 4:
                order = [p for p in perm if p < v.ndim] + list(range(3, v.ndim))
                v = ops.transpose(v, perm=tuple(order[::-1] if v.ndim > 3 else order))
            elif step == 5 and v.ndim == 2:
                v = ops.matmul(v, v, transpose_b=True)
            else:
                v = ops.broadcast_to(ops.exp(ops.neg(ops.abs(v))), shape=(2,) + v.shape)
            values.append(v)
        return values[-1], values[len(values) // 2]
    return fn


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graph())
def test_random_graphs(case):
    shape, steps, perm, seed = case
    rng = np.random.default_rng(seed)
    graph = build(_apply(steps, perm, rng), (shape, F32))
    check(graph, [sample(shape, F32, rng)], rtol=1e-4, atol=1e-5)
