"""Frontend tests (IR only, nothing is compiled): parsing, inlining, folding, locations, errors.

Graphs are evaluated with the reference interpreter and compared with numpy. Every bad input
asserts the error type, what the message says, and that it points at this file and at the
line marked `# <-` in the offending function.
"""
import inspect
import math

import numpy as np
import pytest

import graphspore
from graphspore import frontend
from graphspore.ir import DType, GraphsporeError, TensorType
from graphspore.ir import ops
from graphspore.ir.ops import OPS

F32 = dict(rtol=1e-5, atol=1e-6)


def T(*shape, dtype=DType.f32):
    return TensorType(tuple(shape), dtype)


# ------------------------------------------------------------- host objects (fakes)

class FakeTensor:
    __gs_tensor__ = True

    def __init__(self, data):
        self.data = np.asarray(data)

    @property
    def ir_type(self):
        return TensorType(self.data.shape, DType.from_numpy(self.data.dtype))

    def asnumpy(self):
        return self.data


class FakeParameter(FakeTensor):
    __gs_parameter__ = True

    def __init__(self, data, name):
        super().__init__(np.asarray(data, np.float32))
        self.name = name


class Cell:
    __gs_cell__ = True


class Dense(Cell):
    def __init__(self, w, b):
        self.w, self.b = w, b
        self.scale = 2.0

    def construct(self, x):
        z = x @ self.w + self.b
        return z * self.scale


class LogLoss(Cell):
    def construct(self, logits, labels):
        p = ops.sigmoid(logits)
        return -(labels * ops.log(p) + (1 - labels) * ops.log(1 - p)).mean()


class Net(Cell):
    def __init__(self, w, b):
        self.dense = Dense(w, b)
        self.loss = LogLoss()

    def construct(self, x, y):
        return self.loss(self.dense(x), y)


class ScaledDense(Dense):
    def construct(self, x):
        return super().construct(x) + Dense.construct(self, x)


class BadCell(Cell):
    def construct(self, x):
        x.cache = 1.0  # <-
        return x


# ------------------------------------------------------------------------ helpers

def run(parsed, *arrays):
    """Evaluate a parsed graph on `arrays` (weights from their Parameters); rebuild outputs."""
    graph = parsed.graph
    args = iter(arrays)
    inputs = [np.asarray(graph.bindings[v].data) if v in graph.bindings else next(args)
              for v in graph.inputs]
    try:
        from graphspore.ir.interpreter import run as interpret
    except ImportError:
        interpret = _interpret
    outs = interpret(graph, inputs)
    return _rebuild(parsed.out_tree, outs)


def _interpret(graph, inputs):
    env = dict(zip(graph.inputs, inputs))
    for op in graph.ops:
        env[op.result] = OPS[op.name].reference(*[env[v] for v in op.operands], **op.attrs)
    return [env[v] for v in graph.outputs]


def _rebuild(tree, outs):
    if type(tree) is int:
        return outs[tree]
    if tree is None:
        return None
    if type(tree) is tuple and len(tree) == 2 and tree[0] == "const":
        return tree[1]
    return type(tree)(_rebuild(t, outs) for t in tree)


def marked_line(fn) -> int:
    """The file line of `fn` carrying the `# <-` marker."""
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, text in enumerate(lines) if "# <-" in text]
    assert len(hits) == 1, hits
    return hits[0]


def expect_error(fn, args, *fragments, marker=None):
    """Parsing `fn` raises GraphsporeError at this file's marked line saying `fragments`."""
    with pytest.raises(GraphsporeError) as info:
        frontend.parse(fn, args)
    text = str(info.value)
    line = marked_line(marker or fn)
    assert f"test_frontend.py:{line}:" in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


# --------------------------------------------------------------- parsing and inlining

f_cubic = lambda x: x**3 - 2*x + 1  # noqa: E731
f_twice, f_plus = lambda x: x * 2.0, lambda x: x + 1.0  # noqa: E731


def keep(fn):
    return fn


f_inline = keep(lambda x: x * 3.0)


def test_lambda_on_a_line_with_other_code():
    parsed = frontend.parse(f_cubic, [T()])
    assert parsed.arg_names == ["x"] and parsed.out_tree == 0
    assert float(run(parsed, np.float32(1.0))) == pytest.approx(0.0)
    assert float(run(parsed, np.float32(2.0))) == pytest.approx(5.0)
    lines = inspect.getsource(inspect.getmodule(f_cubic)).splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if text.startswith("f_cubic ="))
    assert {(op.loc.line, op.loc.col) for op in parsed.graph.ops} >= {(line, 20), (line, 27)}
    assert {op.loc.line for op in parsed.graph.ops} == {line}


def test_two_lambdas_on_one_line_and_lambda_inside_a_call():
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(run(frontend.parse(f_twice, [T(3)]), x), x * 2)
    np.testing.assert_allclose(run(frontend.parse(f_plus, [T(3)]), x), x + 1)
    np.testing.assert_allclose(run(frontend.parse(f_inline, [T(3)]), x), x * 3)


def loss(inputs, targets, W, b):
    preds = ops.sigmoid(inputs @ W + b)
    logit_loss = preds * targets + (1 - preds) * (1 - targets)
    return -ops.log(logit_loss).sum()


def multi_loss(inputs, targets, W, b):
    loss1 = loss(inputs, targets, W, b)
    loss2 = (W ** 2).sum()
    return loss1, loss2


def _loss_np(x, t, w, b):
    p = 1 / (1 + np.exp(-(x @ w + b)))
    return -np.log(p * t + (1 - p) * (1 - t)).sum()


def test_tutorial_logistic_loss_with_bool_targets(rng):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3,), (1,)])
    t = np.array([True, True, False, True])
    sig = [T(4, 3), T(4, dtype=DType.bool), T(3), T(1)]
    parsed = frontend.parse(multi_loss, sig)
    assert parsed.arg_names == ["inputs", "targets", "W", "b"]
    assert parsed.out_tree == (0, 1)
    l1, l2 = run(parsed, x, t, w, b)
    np.testing.assert_allclose(l1, _loss_np(x, t, w, b), **F32)
    np.testing.assert_allclose(l2, (w ** 2).sum(), **F32)


def test_cell_with_parameters_and_sub_cells(rng):
    w = FakeParameter(rng.standard_normal((5, 3)), "w")
    b = FakeParameter(rng.standard_normal(3), "b")
    net = Net(w, b)
    x = np.ones((2, 5), np.float32)
    y = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    parsed = frontend.parse(net, [T(2, 5), T(2, 3)])
    graph = parsed.graph
    assert [v.name for v in graph.inputs] == ["x", "y", "w", "b"]
    assert graph.weights == graph.inputs[2:] and graph.bindings[graph.inputs[2]] is w
    z = (x @ w.data.astype(np.float64) + b.data) * 2.0
    p = 1 / (1 + np.exp(-z))
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    # log(1 - p) cancels in float32 when p is near 1: compare against float64 loosely
    np.testing.assert_allclose(run(parsed, x, y), expected, rtol=2e-3)
    assert "z" in [op.result.name for op in graph.ops]


def test_super_in_construct():
    w, b = FakeParameter(np.eye(2), "w"), FakeParameter(np.ones(2), "b")
    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_allclose(run(frontend.parse(ScaledDense(w, b), [T(1, 2)]), x),
                               (x + 1) * 4)


model = Dense(FakeParameter(np.ones((5, 3)), "w"), FakeParameter(np.zeros(3), "b"))
loss_fn = LogLoss()


def forward_fn(x, y):
    z = model(x)
    loss = loss_fn(z, y)
    return loss


def test_forward_fn_calls_global_cells():
    parsed = frontend.parse(forward_fn, [T(1, 5), T(1, 3)])
    assert [v.name for v in parsed.graph.inputs] == ["x", "y", "w", "b"]
    value = run(parsed, np.ones((1, 5), np.float32), np.zeros((1, 3), np.float32))
    np.testing.assert_allclose(value, np.log1p(np.exp(10.0)), rtol=1e-3)


def control_flow(x, n, mode):
    for i in range(n):
        if i == 1:
            continue
        x = x + i
    k = 0
    while k < 3:
        k += 1
        if k == 2:
            break
    else:
        x = x * 100.0
    for j in (1, 2, 3):
        if j > 5:
            break
    else:
        x = x * 2.0
    y = x * 10.0 if mode == "ten" else x
    if mode is None:
        return x
    elif mode == "ten":
        return y, k
    return -x


def test_static_if_for_while():
    x = np.ones(2, np.float32)
    base = (x + 0 + 2 + 3) * 2
    out, k = run(frontend.parse(control_flow, [T(2), 4, "ten"]), x)
    np.testing.assert_allclose(out, base * 10)
    assert k == 2
    np.testing.assert_allclose(run(frontend.parse(control_flow, [T(2), 4, None]), x), base)
    np.testing.assert_allclose(run(frontend.parse(control_flow, [T(2), 4, "neg"]), x), -base)


def affine(x, scale=2.0, *, shift=1.0, **extra):
    return x * scale + shift + extra.get("bias", 0.0)


def varargs(*xs):
    total = xs[0]
    for v in xs[1:]:
        total += v
    return total


def uses_helpers(x, y):
    a = affine(x)
    b = affine(x, 3.0, shift=0.0, bias=5.0)
    c = varargs(a, b, y)
    return a, b, c


def test_inlining_with_keyword_default_and_star_arguments():
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    a, b, c = run(frontend.parse(uses_helpers, [T(3), T(3)]), x, y)
    np.testing.assert_allclose(a, x * 2 + 1)
    np.testing.assert_allclose(b, x * 3 + 5)
    np.testing.assert_allclose(c, a + b + y)


def make_scaler(factor):
    offset = factor / 2

    def scaled(x):
        return x * factor + offset
    return scaled


SCALE = 3.0
SHIFT = FakeTensor(np.array([1.0, 2.0, 3.0], np.float32))
TABLE = np.array([10.0, 20.0, 30.0], np.float32)
times_four = make_scaler(4.0)


def closures_and_globals(x):
    def inner(v, k=SCALE):
        return v * k + SHIFT - TABLE

    square = lambda v: v * v  # noqa: E731
    return times_four(x) + inner(x) + square(x) + SHIFT + TABLE + math.sqrt(16.0)


def test_closures_nested_defs_and_module_globals():
    x = np.arange(3, dtype=np.float32)
    expected = x * 4 + 2 + x * 3 + x * x + 2 * SHIFT.data + 4.0
    np.testing.assert_allclose(run(frontend.parse(closures_and_globals, [T(3)]), x), expected)


def tuples_in_out(pair, n):
    a, b = pair
    return (a + b, (a * b, n, None)), [a]


def test_tuple_arguments_and_structured_results():
    parsed = frontend.parse(tuples_in_out, [(T(2), T(2)), 7])
    assert [v.name for v in parsed.graph.inputs] == ["pair_0", "pair_1"]
    assert parsed.out_tree == ((0, (1, ("const", 7), None)), [2])
    a, b = np.array([1, 2], np.float32), np.array([3, 4], np.float32)
    (s, (p, n, none)), (first,) = run(parsed, a, b)
    np.testing.assert_allclose(s, a + b)
    np.testing.assert_allclose(p, a * b)
    assert n == 7 and none is None
    np.testing.assert_allclose(first, a)


class Scaler:
    def __init__(self, k):
        self.k = k

    def apply(self, x):
        return self.helper(x) + self.k

    def helper(self, x):
        return x * self.k


def test_bound_method_of_a_plain_class():
    parsed = frontend.parse(Scaler(3.0).apply, [T(2)])
    assert parsed.arg_names == ["x"]
    np.testing.assert_allclose(run(parsed, np.ones(2, np.float32)), [6.0, 6.0])


def tensor_methods(x):
    total = x.sum()
    rows = x.sum(axis=1, keepdims=True)
    flat = x.reshape(-1)
    return total, rows, flat, x.T, x.mean(0), x.max(axis=0), x.shape, x.ndim, x.astype(
        DType.f64), x.exp(), x.abs(), x.argmax(axis=1), x.transpose(1, 0), x.size, \
        x.expand_dims(0).squeeze(0), x.view(3, 2), x.min(), getattr(x, "dtype")


def test_tensor_methods_table():
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    parsed = frontend.parse(tensor_methods, [T(2, 3)])
    (total, rows, flat, xt, mean, mx, shape, ndim, x64, ex, ab, am, tr, size, same, view,
     low, dtype) = run(parsed, x)
    np.testing.assert_allclose(total, x.sum())
    np.testing.assert_allclose(rows, x.sum(1, keepdims=True))
    np.testing.assert_allclose(flat, x.reshape(-1))
    np.testing.assert_allclose(xt, x.T)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(mx, x.max(0))
    assert shape == (2, 3) and ndim == 2 and size == 6
    assert x64.dtype == np.float64
    np.testing.assert_allclose(ex, np.exp(x), **F32)
    np.testing.assert_allclose(ab, np.abs(x))
    np.testing.assert_array_equal(am, x.argmax(1))
    np.testing.assert_allclose(tr, x.T)
    np.testing.assert_allclose(same, x)
    np.testing.assert_allclose(view, x.reshape(3, 2))
    assert low == x.min() and dtype is DType.f32


def subscripts(x, pair):
    n = x.shape[0] * 2
    return x[0], x[:, 1:3], x[..., None], pair[1], n


def test_subscripts_fold_on_constants_and_index_tensors():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    a, b, c, p, n = run(frontend.parse(subscripts, [T(3, 4), (5, 6)]), x)
    np.testing.assert_allclose(a, x[0])
    np.testing.assert_allclose(b, x[:, 1:3])
    np.testing.assert_allclose(c, x[..., None])
    assert p == 6 and n == 6


def operators(x, y, mask):
    lt = x < y
    both = lt & mask
    either = ~lt | mask
    inside = 0.0 < x <= 2.0
    return x // 2.0, x % 2.0, both, either, inside, x @ y, x - y, x / y


def test_operators_on_tensors():
    x = np.array([0.5, 1.5, 3.0], np.float32)
    y = np.array([1.0, 1.0, 4.0], np.float32)
    mask = np.array([True, False, True])
    fd, md, both, either, inside, dot, diff, quot = run(
        frontend.parse(operators, [T(3), T(3), T(3, dtype=DType.bool)]), x, y, mask)
    np.testing.assert_allclose(fd, x // 2)
    np.testing.assert_allclose(md, x % 2)
    np.testing.assert_array_equal(both, (x < y) & mask)
    np.testing.assert_array_equal(either, ~(x < y) | mask)
    np.testing.assert_array_equal(inside, (0 < x) & (x <= 2))
    np.testing.assert_allclose(dot, x @ y, **F32)
    np.testing.assert_allclose(diff, x - y)
    np.testing.assert_allclose(quot, x / y, **F32)


def comprehensions(x):
    powers = [x * float(k) for k in range(1, 4) if k != 2]
    table = {name: i for i, name in enumerate(("a", "b"))}
    total = sum(powers[1:], powers[0])
    return total, table["b"], tuple(k * 2 for k in range(3)), len(powers)


def test_comprehensions_and_builtins_over_constants():
    x = np.ones(2, np.float32)
    total, b, doubled, count = run(frontend.parse(comprehensions, [T(2)]), x)
    np.testing.assert_allclose(total, x * 4)
    assert b == 1 and doubled == (0, 2, 4) and count == 2


class Inliner:
    """A stand-in for grad/jit objects: emits its own ops when called in a graph."""

    def __gs_inline__(self, x):
        return ops.exp(x), 2


calls_inliner = Inliner()


def uses_inliner(x):
    y, k = calls_inliner(x)
    y += k
    return y


def test_gs_inline_objects_and_augmented_assignment():
    x = np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(run(frontend.parse(uses_inliner, [T(2)]), x), np.exp(x) + 2,
                               **F32)


def gs_op(x, k):
    return x * k


gs_op.__gs_op__ = True


def uses_gs_op(x):
    return gs_op(x, 4.0)


def test_gs_op_functions_are_called_directly():
    parsed = frontend.parse(uses_gs_op, [T(2)])
    assert [op.loc.line for op in parsed.graph.ops if op.name == "gs.mul"] == [
        inspect.getsourcelines(uses_gs_op)[1] + 1]


def names_and_locations(x):
    z = x * 2.0
    w = z + 1.0
    return w


def test_value_names_and_locations_come_from_the_source():
    parsed = frontend.parse(names_and_locations, [T(2)])
    first = inspect.getsourcelines(names_and_locations)[1]
    named = {op.result.name: op.loc for op in parsed.graph.ops if op.result.name}
    assert named["z"].line == first + 1 and named["z"].col == 8
    assert named["w"].line == first + 2
    assert named["z"].file.endswith("test_frontend.py")
    assert parsed.graph.name == "names_and_locations"


def test_parse_reuses_the_cached_source(monkeypatch):
    """A second parse of the same function neither locates nor parses its source again."""
    from graphspore.frontend import source

    def no_second_read(*args):
        raise AssertionError("the source was located again")
    sig = [T(4, 3), T(4, dtype=DType.bool), T(3), T(1)]
    first = frontend.parse(loss, sig)
    monkeypatch.setattr(source, "_locate", no_second_read)
    monkeypatch.setattr(source.ast, "parse", no_second_read)
    again = frontend.parse(loss, sig)
    assert str(again.graph) == str(first.graph)


# ------------------------------------------------------------------------ bad inputs
# Each function has its error on the line marked `# <-`; the table gives the arguments
# and what the message must say.

def bad_try(x):
    try:  # <-
        return x
    except ValueError:
        return x


def bad_with(x):
    with open("f"):  # <-
        return x


def bad_yield(x):
    yield x  # <-


def bad_global(x):
    global SCALE  # <-
    return x


def bad_nonlocal(x):
    k = 1

    def inner():
        nonlocal k  # <-
    inner()
    return x


def bad_starred(x):
    a, *rest = (x, x, x)  # <-
    return a


def bad_del(x):
    y = x
    del y  # <-
    return x


def bad_math_exp(x):
    return math.exp(x)  # <-


def bad_np_sum(x):
    return np.sum(x)  # <-


def bad_if(x):
    if x > 0:  # <-
        return x
    return -x


def bad_while(x):
    while x > 0:  # <-
        x = x - 1.0
    return x


def bad_shapes(x, y):
    return x + y  # <-


def bad_matmul(x, y):
    return x @ y  # <-


def bad_undefined(x):
    return x + undefined_name  # noqa: F821  # <-


def bad_arity(x):
    return affine(x, 1.0, 2.0)  # <-


def bad_missing(x):
    return tuples_in_out((x, x))  # <-


def bad_keyword(x):
    return varargs(x, shfit=2.0)  # <-


def bad_operator(x):
    return x << 2  # <-


def bad_loop_over_tensor(x):
    for row in x.sum():  # <-
        break
    return x


def bad_print(x):
    print(x, file=None or open)  # <-
    return x


def bad_open(x):
    open("weights.bin")  # <-
    return x


def bad_class(x):
    class Local:  # <-
        pass
    return x


def bad_import(x):
    import os  # <-
    return x


def bad_and(x):
    return x and 1.0  # <-


def bad_ifexp(x):
    return x if x > 0 else -x  # <-


def bad_unpack(x):
    a, b = x  # <-
    return a


def bad_setitem(x):
    x[0] = x  # <-
    return x


def bad_mask_index(x):
    return x[x > 0]  # <-


def bad_method(x):
    return x.frobnicate()  # <-


def bad_comprehension(x):
    return [v * 2 for v in x[0]]  # <-


def bad_float(x):
    return float(x)  # <-


def bad_before_assignment(x):
    y = z + x  # <-
    z = x
    return y


def bad_raise(x, n):
    if n < 0:
        raise ValueError(f"n must be positive, got {n}")  # <-
    return x


def bad_assert(x):
    assert x.ndim == 2, "expected a matrix"  # <-
    return x


def bad_recursion(x):
    return bad_recursion(x * 2.0)  # <-


def callee_with_error(x):
    return x + ops.exp  # <-


def bad_in_callee(x):
    return callee_with_error(x)


def bad_invert(x):
    return ~x  # <-


def bad_fstring(x):
    name = f"{x}"  # <-
    return name


def bad_return_function(x):
    return x  # <-


exec(compile("def sourceless(x):\n    return x * 2 + x.sum()\n"
             "def sourceless_branchy(x):\n    return x if x.shape[0] > 1 else -x\n",
             "<string>", "exec"))


def bad_no_source(x):
    return sourceless_branchy(x)  # noqa: F821  # <-


BAD = [
    (bad_try, "try/except", "not supported"), (bad_with, "with statement"),
    (bad_yield, "yield"), (bad_global, "global statement"), (bad_nonlocal, "nonlocal"),
    (bad_starred, "starred assignment"), (bad_del, "del"),
    (bad_math_exp, "math.exp cannot be applied to a tensor", "ops.exp"),
    (bad_np_sum, "numpy.sum cannot be applied to a tensor", "ops.sum"),
    (bad_if, "only a tensor of shape () or (1,) can be converted to bool", "all(x > 0)"),
    (bad_while, "condition is a tensor", "shape () or (1,)"),
    (bad_undefined, "name 'undefined_name' is not defined"),
    (bad_arity, "affine() takes 2 positional arguments but 3 were given"),
    (bad_missing, "tuples_in_out() missing 1 required argument: 'n'"),
    (bad_keyword, "unexpected keyword argument 'shfit'"),
    (bad_operator, "'<<' is not supported on tensors"),
    (bad_loop_over_tensor, "iteration over a 0-d tensor (tensor<f32>)"),
    (bad_print, "print(file=...) is not supported"),
    (bad_open, "builtin 'open' is not supported"),
    (bad_class, "class definition"), (bad_import, "import inside"),
    (bad_and, "only a tensor of shape () or (1,) can be converted to bool"),
    (bad_ifexp, "only a tensor of shape () or (1,)"), (bad_unpack, "cannot unpack a tensor"),
    (bad_setitem, "cannot assign a value of shape [3] to a selection of shape []"), (bad_mask_index, "boolean mask indexing"),
    (bad_method, "no attribute or method 'frobnicate'", "sum"),
    (bad_comprehension, "iteration over a 0-d tensor"),
    (bad_float, "float(): only one-element tensors can be converted to Python scalars"),
    (bad_before_assignment, "local variable 'z' is used before it is assigned"),
    (bad_assert, "assertion failed while parsing: expected a matrix"),
    (bad_recursion, "nested more than 64 deep"),
    (bad_in_callee, "unsupported operand types for '+': tensor (tensor<3xf32>) and OpDef"),
    (bad_invert, "'~' needs a bool tensor"),
    (bad_fstring, "cannot be formatted while parsing"),
    (bad_no_source, "source of 'sourceless_branchy' is not available", "<string>",
     "control flow"),
]


@pytest.mark.parametrize("case", BAD, ids=lambda case: case[0].__name__)
def test_bad_input_is_reported_at_its_line(case):
    fn, *fragments = case
    marker = callee_with_error if fn is bad_in_callee else fn
    expect_error(fn, [T(3)], *fragments, marker=marker)


def test_raise_in_a_static_branch_reports_the_message():
    expect_error(bad_raise, [T(3), -1], "ValueError raised while parsing: n must be positive")
    frontend.parse(bad_raise, [T(3), 1])


def test_shape_errors_from_ops_name_both_shapes():
    expect_error(bad_shapes, [T(3), T(4)], "(3,)", "(4,)")
    expect_error(bad_matmul, [T(2, 3), T(2, 3)], "matmul", "tensor<2x3xf32> @ tensor<2x3xf32>")


def test_attribute_assignment_on_a_tensor_is_an_error():
    expect_error(BadCell(), [T(3)], "tensors have no settable attribute 'cache'",
                 marker=BadCell.construct)


def test_returning_a_function_is_an_error():
    with pytest.raises(GraphsporeError, match="cannot return a OpDef"):
        frontend.parse(lambda x: ops.exp, [T(3)])


def test_function_without_source_at_top_level():
    with pytest.raises(GraphsporeError, match="not available"):
        frontend.parse(sourceless_branchy, [T(3)])  # noqa: F821


def test_straight_line_function_without_source_is_traced():
    """exec/`python -c`/REPL functions without branches run once on the graph's values."""
    x = np.array([1.0, 2.0, 3.0], np.float32)
    out = graphspore.jit(sourceless)(graphspore.Tensor(x))  # noqa: F821
    np.testing.assert_allclose(out.asnumpy(), x * 2 + x.sum())
    g = graphspore.grad(lambda v: sourceless(v).sum())(graphspore.Tensor(x))  # noqa: F821
    np.testing.assert_allclose(g.asnumpy(), np.full(3, 2.0 + 3.0))   # d/dx_i: 2 + 3 (sum)
