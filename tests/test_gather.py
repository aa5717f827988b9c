"""gather, gather_elements, scatter_add and tensor indexing: eager and compiled against numpy
(np.take, np.take_along_axis, np.add.at), gradients against float64 finite differences, the
fused loop nests, out-of-range indices (IndexError at the user's line, never a fault), the
frontend's x[idx] forms, and Embedding on the gather path."""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphspore
from graphspore import Parameter, Tensor, grad, jit, nn, ops, value_and_grad
from graphspore import codegen
from graphspore.codegen import loops as L, parallel
from graphspore.codegen.lower_to_loops import lower_to_loops
from graphspore.ir import core, ops as ir_ops
from graphspore.ir.interpreter import run as interpret
from graphspore.codegen.fuse import fuse
from graphspore.ir.passes.index_checks import add_index_checks
from graphspore.codegen.memory_plan import plan_memory
from graphspore.ir.types import DType, TensorType

F32 = dict(rtol=2e-5, atol=2e-6)


def line_of(marker: str) -> int:
    """The line of this file holding `# <- marker`."""
    with open(__file__) as f:
        for number, text in enumerate(f, 1):
            if text.rstrip().endswith(f"# <- {marker}"):
                return number
    raise LookupError(marker)


def build(fn, *specs):
    graph = core.Graph("g")
    with core.building(core.Builder(graph)) as b:
        inputs = [b.input(TensorType(s, d), f"x{i}") for i, (s, d) in enumerate(specs)]
        out = fn(*inputs)
        graph.outputs = list(out) if isinstance(out, tuple) else [out]
    return graph


# ------------------------------------------------------------------ forward: eager, compiled

GATHERS = [((5, 3), [[0, -1, 2], [4, 0, 0]], 0), ((2, 4, 3), [3, -4, 1, 1], 1),
           ((2, 4, 3), 2, -1), ((6,), [[[-6, 5]]], 0), ((3, 4), np.zeros((0,), int), 1)]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape, indices, axis", GATHERS)
def test_gather_matches_take_eager_and_compiled(shape, indices, axis, dtype, rng):
    x, i = rng.standard_normal(shape).astype(np.float32), np.array(indices, dtype)
    expected = np.take(x, i, axis=axis)
    eager = ops.gather(Tensor(x), Tensor(i), axis)
    compiled = jit(lambda x, i: ops.gather(x, i, axis))(Tensor(x), Tensor(i))
    method = jit(lambda x, i: x.gather(i, axis))(Tensor(x), Tensor(i))
    for got in (eager, compiled, method, ops.Gather()(Tensor(x), Tensor(i), axis)):
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.asnumpy(), expected)


@pytest.mark.parametrize("shape, index, dim", [
    ((3, 4), [[0, 3], [-1, 1], [2, 2]], 1), ((4, 3), [[3, 0], [-4, 2]], 0),
    ((2, 3, 4), [[[1, -1, 0]], [[3, 3, 2]]], 2), ((2, 3, 4), [[[1], [-2], [0]]], 1)])
def test_gather_elements_matches_take_along_axis(shape, index, dim, rng):
    x, index = rng.standard_normal(shape).astype(np.float32), np.array(index, np.int32)
    window = tuple(slice(None) if a == dim else slice(0, n) for a, n in enumerate(index.shape))
    expected = np.take_along_axis(x[window], index, axis=dim)
    compiled = jit(lambda x, i: ops.GatherD()(x, dim, i) * 1.0)(Tensor(x), Tensor(index))
    for got in (ops.gather_elements(Tensor(x), dim, Tensor(index)), compiled,
                Tensor(x).gather_elements(dim, Tensor(index))):
        np.testing.assert_array_equal(got.asnumpy(), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_scatter_add_accumulates_duplicates(dtype, rng):
    x = rng.standard_normal((5, 3))
    i = np.array([[1, -4], [1, 4], [0, 1]], dtype)              # row 1 four times
    u = rng.standard_normal((3, 2, 3))
    expected = x.copy()
    np.add.at(expected, i, u)
    eager = ir_ops.scatter_add(core.eager_value(x), core.eager_value(i), core.eager_value(u))
    np.testing.assert_allclose(eager.data, expected, rtol=1e-12)
    graph = build(lambda x, i, u: ir_ops.scatter_add(x, i, u, axis=0) * 2.0,
                  ((5, 3), DType.f64), ((3, 2), DType.from_numpy(dtype)), ((3, 2, 3), DType.f64))
    compiled = _compile(graph)(x, i, u)[0]
    np.testing.assert_allclose(compiled, 2 * expected, rtol=1e-12)
    rows = jit(lambda x, i, u: ops.tensor_scatter_add(x, i, u))(
        Tensor(x), Tensor(i.reshape(6, 1)), Tensor(u.reshape(6, 3)))
    np.testing.assert_allclose(rows.asnumpy(), expected, rtol=1e-12)


def test_scatter_add_along_an_inner_axis_compiled(rng):
    x, u = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))
    i = np.array([3, 3, -1, 0, 2])
    expected = x.copy()
    np.add.at(expected, (slice(None), i), u)
    graph = build(lambda x, i, u: ir_ops.scatter_add(x, i, u, axis=1),
                  ((2, 4, 3), DType.f64), ((5,), DType.i64), ((2, 5, 3), DType.f64))
    np.testing.assert_allclose(_compile(graph)(x, i, u)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(interpret(graph, [x, i, u])[0], expected, rtol=1e-12)


def _compile(graph):
    from graphspore import runtime
    result = codegen.compile_graph(graph)
    module = runtime.compile_module(result.llvm_ir, ["main"])
    return runtime.Executable(module, "main", result.input_specs, result.output_specs,
                              result.workspace_bytes)


# ------------------------------------------------------------------------------- gradients

def _fd_check(f, df, x, rng, eps=1e-6):
    """<df(x), d> against the central difference of f along a random direction d."""
    d = rng.standard_normal(x.shape)
    numeric = (f(x + eps * d) - f(x - eps * d)) / (2 * eps)
    analytic = float(np.sum(df(x) * d))
    assert abs(analytic - numeric) <= 1e-6 * (1 + abs(numeric)), (analytic, numeric)


@pytest.mark.parametrize("kind", ["gather", "gather_elements", "scatter_add"])
def test_grad_and_grad_of_grad_match_finite_differences(kind, rng):
    i = Tensor(np.array([[2, -1], [0, 2], [2, 2]], np.int64))
    shape = {"gather": (3, 2, 4), "gather_elements": (3, 2), "scatter_add": (3, 4)}[kind]
    w, u = Tensor(rng.standard_normal(shape)), Tensor(rng.standard_normal((3, 4)))
    v = rng.standard_normal((3, 4))
    vt = Tensor(v)

    def f(x):
        if kind == "gather":
            picked = ops.gather(x, i, 0)
        elif kind == "gather_elements":
            picked = ops.gather_elements(x, 1, i)
        else:
            picked = ops.tensor_scatter_add(x * x, ops.reshape(i[:, 0], (3, 1)), u * x)
        return ops.sum(ops.exp(picked * 0.5) * w)

    df = grad(f)
    hv = grad(lambda x: ops.sum(df(x) * vt))           # Hessian-vector product
    value = lambda a: float(jit(f)(Tensor(a)).asnumpy())        # noqa: E731
    first = lambda a: df(Tensor(a)).asnumpy()                   # noqa: E731
    x = rng.standard_normal((3, 4))
    _fd_check(value, first, x, rng)
    _fd_check(lambda a: float(np.sum(first(a) * v)), lambda a: hv(Tensor(a)).asnumpy(), x, rng)


def test_gather_vjp_is_a_scatter_add_of_the_cotangent():
    x = core.eager_value(np.zeros((4, 2)))
    i = core.eager_value(np.array([1, 1, -1]))
    out = ir_ops.gather(x, i, axis=0)
    g = core.eager_value(np.ones((3, 2)))
    dx, di = ir_ops.OPS["gs.gather"].vjp(g, out, x, i, axis=0)
    assert di is None
    np.testing.assert_array_equal(dx.data, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_gather_elements_vjp_alone_still_rejects_an_index_out_of_range_on_dim():
    """Its flat scatter must not turn index 3 of a row of 3 into row 1's first element."""
    graph = core.Graph("vjp")
    with core.building(core.Builder(graph)) as b:
        x, index = b.input(TensorType((2, 3), DType.f64)), b.input(TensorType((2, 1), DType.i64))
        g = b.input(TensorType((2, 1), DType.f64))
        out = core.Value(TensorType((2, 1), DType.f64))
        graph.outputs = [ir_ops.OPS["gs.gather_elements"].vjp(g, out, x, index, dim=1)[0]]
    args = [np.zeros((2, 3)), np.array([[1], [-3]]), np.ones((2, 1))]
    np.testing.assert_array_equal(interpret(graph, args)[0], [[0, 1, 0], [1, 0, 0]])
    with pytest.raises(IndexError, match="scatter_add: index 6 is out of bounds"):
        interpret(graph, [np.zeros((2, 3)), np.array([[3], [0]]), np.ones((2, 1))])


# ----------------------------------------------------------------------------------- fusion

def test_gather_fuses_into_its_elementwise_consumer():
    graph = build(lambda x, i: ir_ops.exp(ir_ops.gather(x, i, axis=0)) * 2.0,
                  ((5, 3), DType.f32), ((4,), DType.i32))
    result = codegen.compile_graph(graph)
    assert result.kernels == 1
    store = [line for line in result.loops_text.splitlines() if " = mul(exp(load x0[" in line]
    assert len(store) == 1 and "load x1[" in store[0].split("load x0[", 1)[1], \
        result.loops_text                     # the table's index holds a load of the indices
    assert "minimum(maximum(select(less(" in store[0]              # wrapped, then clamped


def test_scatter_add_is_a_serial_kernel_the_thread_pool_does_not_split():
    n = 1 << 17
    graph = build(lambda x, i, u: ir_ops.scatter_add(x, i, u, axis=0),
                  ((n,), DType.f32), ((n,), DType.i64), ((n,), DType.f32))
    fused = fuse(graph)
    assert [k.kind for k in fused.kernels] == ["scatter"]
    (kernel,) = lower_to_loops(fused, plan_memory(fused)).kernels
    copy, accumulate = kernel.body
    assert parallel.outer_split(L.Kernel("copy", kernel.buffers, [copy])) is not None
    assert parallel.outer_split(L.Kernel("scatter", kernel.buffers, [accumulate])) is None
    assert parallel.outer_split(kernel) is None


def test_outer_split_refuses_a_store_at_a_data_dependent_index():
    out = L.Buffer("out", (1 << 17,), DType.f32, "out")
    where = L.Buffer("where", (1 << 17,), DType.i64, "in")
    affine = L.Loop("i0", 1 << 17, [L.Store(out, L.Var("i0"), L.Const(1.0, DType.f32))])
    loaded = L.Loop("i0", 1 << 17, [L.Store(out, L.iadd(L.imul(L.Var("i0"), L.index_const(0)),
                                                        L.Load(where, L.Var("i0"))),
                                            L.Const(1.0, DType.f32))])
    assert parallel.outer_split(L.Kernel("k", [out], [affine])) is not None
    assert parallel.outer_split(L.Kernel("k", [out, where], [loaded])) is None


# ----------------------------------------------------------------------- out-of-range indices

def test_out_of_range_raises_index_error_eagerly_at_the_users_line():
    x, i = Tensor(np.ones((5, 3), np.float32)), Tensor(np.array([1, 7, 9]))
    with pytest.raises(IndexError) as info:
        ops.gather(x, i, 0)  # <- eager gather
    message = str(info.value)
    assert "index 7 is out of bounds for axis 0 with size 5" in message
    assert f"{__file__}:{line_of('eager gather')}:" in message
    with pytest.raises(IndexError, match=r"index -4 is out of bounds for axis 1 with size 3"):
        ops.gather_elements(x, 1, Tensor(np.array([[0, -4]])))
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 5"):
        x[Tensor(np.array([0, 5]))]


@jit
def pick_rows(x, i):
    return x[i] + 1.0  # <- compiled gather


def test_out_of_range_raises_index_error_after_a_compiled_call():
    x = Tensor(np.arange(15, dtype=np.float32).reshape(5, 3))
    good = pick_rows(x, Tensor(np.array([4, -5], np.int32)))
    np.testing.assert_array_equal(good.asnumpy(), x.asnumpy()[[4, -5]] + 1)
    for bad, named in [([0, 5, 6], 5), ([-6, 1, 9], -6)]:
        with pytest.raises(IndexError) as info:
            pick_rows(x, Tensor(np.array(bad, np.int32)))     # the hot path checks too
        message = str(info.value)
        assert f"gather: index {named} is out of bounds for axis 0 with size 5" in message
        assert f"{__file__}:{line_of('compiled gather')}:" in message
    np.testing.assert_array_equal(pick_rows(x, Tensor(np.array([1], np.int32))).asnumpy(),
                                  x.asnumpy()[[1]] + 1)     # the program stays usable


def test_huge_indices_never_fault_and_are_reported():
    x = Tensor(np.ones((4, 3), np.float32))
    cases = [(lambda x, i: ops.gather(x, i, 0), np.array([2 ** 62, 0])),
             (lambda x, i: ops.gather(x, i, 1), np.array([-2 ** 63])),
             (lambda x, i: ops.gather(x, i, 0), np.array([2 ** 31 - 1, -2 ** 31], np.int32)),
             (lambda x, i: ops.gather_elements(x, 0, i), np.array([[2 ** 40, 0, 1]])),
             (lambda x, i: ops.tensor_scatter_add(x, i, x[:2] * 2.0),
              np.array([[1], [-2 ** 62]]))]
    for fn, i in cases:
        with pytest.raises(IndexError, match=f"index {i.max() if i.max() > 3 else i.min()} "):
            jit(fn)(x, Tensor(i))


def test_gradient_graphs_check_their_scatters_and_name_the_forward_op():
    x = Tensor(np.ones((2, 3), np.float32))
    with pytest.raises(IndexError, match="gather_elements: index 3 is out of bounds for axis "
                                         "1 with size 3"):
        grad(lambda x, i: ops.sum(ops.gather_elements(x, 1, i)))(
            x, Tensor(np.array([[0], [3]])))


def test_a_train_step_with_a_bad_id_raises_and_writes_no_parameter():
    emb = nn.Embedding(4, 2)
    opt = nn.SGD(emb.trainable_params(), learning_rate=0.1)
    grad_fn = value_and_grad(lambda ids: ops.sum(emb(ids)), None, opt.parameters)

    @jit
    def step(ids):
        loss, grads = grad_fn(ids)
        opt(grads)
        return loss

    step(Tensor(np.array([0, 3])))
    table = emb.embedding_table.asnumpy().copy()
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 0 with size 4"):
        step(Tensor(np.array([0, 4])))
    np.testing.assert_array_equal(emb.embedding_table.asnumpy(), table)


ROWS_2_0 = Tensor(np.array([2, 0]))


def test_graphs_without_gathers_or_with_constant_indices_check_nothing():
    graph = build(lambda x: ir_ops.exp(x), ((3,), DType.f32))
    assert add_index_checks(graph) == (graph, ())
    table = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    program = jit(lambda x: x * 2.0).program_for(table)
    assert program.checks == () and len(program.graph.outputs) == 1
    fixed = jit(lambda x: x[ROWS_2_0])
    program = fixed.program_for(table)
    assert program.checks == () and len(program.graph.outputs) == 1   # folded: in range
    np.testing.assert_array_equal(fixed(table).asnumpy(), table.asnumpy()[[2, 0]])
    program = pick_rows.program_for(table, Tensor(np.array([0])))
    assert len(program.checks) == 1 and len(program.graph.outputs) == 2


# ------------------------------------------------------------------------------ x[idx] forms

T = "tensor"
INDEX_FORMS = [T, (0, T), (T, 0), (slice(None), T), (Ellipsis, T), (T, None, 1),
               (0, slice(None), T), (T, Ellipsis, -1), (slice(None, None, -1), T, slice(1, 3))]


@pytest.mark.parametrize("form", INDEX_FORMS, ids=lambda f: re.sub(r"[^\w,.-]", "", str(f)))
def test_tensor_index_forms_follow_numpy(form, rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    i = np.array([[2, -1], [0, 2]])
    items = form if isinstance(form, tuple) else (form,)
    np_index = tuple(i if item is T else item for item in items)

    def index_with(x, i):
        return x[tuple(i if item is T else item for item in items)]

    expected = x[np_index]
    for got in (Tensor(x)[tuple(Tensor(i) if item is T else item for item in items)],
                jit(index_with)(Tensor(x), Tensor(i))):
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.asnumpy(), expected)


def test_mask_and_multi_tensor_indexing_are_clear_errors():
    x = Tensor(np.ones((3, 4), np.float32))
    with pytest.raises(IndexError, match="boolean mask indexing is not supported"):
        x[x > 0]
    with pytest.raises(graphspore.GraphsporeError, match="only one tensor index"):
        jit(lambda x, i: x[i, i])(x, Tensor(np.array([0, 1])))
    with pytest.raises(graphspore.GraphsporeError, match="Python sequence cannot be indexed"):
        jit(lambda x, i: (x, x)[i])(x, Tensor(np.array(0)))


@pytest.mark.parametrize("name, types, attrs, words", [
    ("gather", [((3,), DType.f32), ((2,), DType.f32)], {"axis": 0}, "int32 or int64"),
    ("gather", [((0, 2), DType.f32), ((1,), DType.i64)], {"axis": 0}, "is empty"),
    ("scatter_add", [((3,), DType.f32), ((2,), DType.i64), ((3,), DType.f32)], {"axis": 0},
     "updates must have shape (2,)"),
    ("gather_elements", [((3, 2), DType.f32), ((3,), DType.i64)], {"dim": 0}, "x's rank"),
    ("gather_elements", [((3, 2), DType.f32), ((1, 3), DType.i64)], {"dim": 0}, "no larger")])
def test_infer_errors(name, types, attrs, words):
    graph = core.Graph("bad")
    with core.building(core.Builder(graph)) as b:
        inputs = [b.input(TensorType(shape, dtype)) for shape, dtype in types]
        with pytest.raises(core.GraphsporeError, match=re.escape(words)):
            b.add_op(f"gs.{name}", inputs, attrs)


# -------------------------------------------------------------------------------- Embedding

def _embeddings(seed):
    tables = []
    for one_hot in (False, True):
        graphspore.set_seed(seed)
        tables.append(nn.Embedding(7, 3, use_one_hot=one_hot))
    np.testing.assert_array_equal(*(e.embedding_table.asnumpy() for e in tables))
    return tables


def test_embedding_gather_path_matches_the_one_hot_path():
    by_gather, by_one_hot = _embeddings(3)
    ids = Tensor(np.array([[1, 6, 0], [2, 2, -1]], np.int32))
    expected = by_gather.embedding_table.asnumpy()[ids.asnumpy()]
    np.testing.assert_allclose(by_gather(ids).asnumpy(), expected, **F32)
    np.testing.assert_allclose(jit(by_one_hot)(Tensor(ids.asnumpy() % 7)).asnumpy(), expected,
                               **F32)
    grads = []
    for emb in (by_gather, by_one_hot):
        grad_fn = value_and_grad(lambda i: ops.sum(emb(i) * emb(i)), None,
                                 emb.trainable_params())
        grads.append(grad_fn(Tensor(ids.asnumpy() % 7))[1][0].asnumpy())
    np.testing.assert_allclose(grads[0], grads[1], **F32)
    names = [{op.name for op in jit(e).program_for(ids).graph.ops} for e in _embeddings(3)]
    assert "gs.gather" in names[0] and "gs.matmul" not in names[0]
    assert "gs.matmul" in names[1] and "gs.gather" not in names[1]
    with pytest.raises(IndexError, match="index 7 is out of bounds for axis 0 with size 7"):
        jit(by_gather)(Tensor(np.array([7])))


def test_compiled_embedding_train_step_matches_eager():
    ids = Tensor(np.array([[1, 4, 4], [0, 6, 1]], np.int64))
    target = Tensor(np.random.default_rng(5).standard_normal((2, 3, 2)).astype(np.float32))
    results = []
    for compiled in (False, True):
        graphspore.set_seed(11)
        emb, dense = nn.Embedding(7, 3), nn.Dense(3, 2)
        params = emb.trainable_params() + dense.trainable_params()
        opt = nn.Momentum(params, learning_rate=0.1, momentum=0.9)
        grad_fn = value_and_grad(lambda i, t: ops.mean((dense(emb(i)) - t) ** 2), None,
                                 opt.parameters)

        def train_step(i, t):
            loss, grads = grad_fn(i, t)
            opt(grads)
            return loss

        step = jit(train_step) if compiled else train_step
        losses = [float(step(ids, target).asnumpy()) for _ in range(5)]
        results.append((losses, emb.embedding_table.asnumpy()))
    (eager_losses, eager_table), (jit_losses, jit_table) = results
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-5, atol=1e-6)
    assert jit_losses[-1] < jit_losses[0]
    np.testing.assert_allclose(jit_table, eager_table, rtol=1e-5, atol=1e-6)
    untouched = [2, 3, 5]
    graphspore.set_seed(11)
    np.testing.assert_array_equal(jit_table[untouched],
                                  nn.Embedding(7, 3).embedding_table.asnumpy()[untouched])


def test_compiled_cell_with_gather_primitives():
    class Picker(nn.Cell):
        def __init__(self):
            super().__init__()
            self.gather, self.gather_d = ops.Gather(), ops.GatherD()

        def construct(self, x, rows, cols):
            return self.gather_d(self.gather(x, rows, 0), 1, cols)

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows, cols = np.array([3, 0, 3]), np.array([[2], [0], [-1]])
    got = jit(Picker())(Tensor(x), Tensor(rows), Tensor(cols))
    np.testing.assert_array_equal(got.asnumpy(), np.take_along_axis(x[rows], cols, axis=1))


def test_exported_library_documents_its_index_check(tmp_path):
    from graphspore.aot import export
    result = export(lambda x, i: x[i], (TensorType((5, 3), DType.f32),
                                        TensorType((2,), DType.i64)), tmp_path / "pick.o")
    assert [b.name for b in result.buffers] == ["x", "i", "out0", "index_check", "workspace"]
    assert "index_check  i64  [3]" in result.header.read_text()
