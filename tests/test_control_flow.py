"""Tensor-dependent control flow (issue 13; shared/notes/control_flow.md section 5): `if` on a
one-element tensor compiles to a `gs.if` region op, differentiates through the taken branch
only, and composes to higher orders. Expected values are closed forms (MindSpore 2.10 agrees
where the note marks MS); every compiled result is also checked against the interpreter."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, Tensor, nn, ops
from graphspore.ir import GraphsporeError, TensorType
from graphspore.ir import ops as ir_ops
from graphspore.ir.core import Builder, Graph, building
from graphspore.ir.printer import print_graph
from graphspore.ir.types import DType
from graphspore.ir.verify import VerifyError, verify

from against_interpreter import both, marked_line as _marked, scalar, tape_overflow_text, value

MLIR_OPT = shutil.which("mlir-opt-22")


# ------------------------------------------------------------------------------------- if

def three_x_or_minus_x(x):
    if x > 0:
        y = 3 * x
    else:
        y = -x
    return y


@pytest.mark.parametrize("x, y, dy", [(2.0, 6.0, 3.0), (-5.0, 5.0, -1.0)])
def test_if_value_and_gradient_on_both_branches(x, y, dy):        # MS: 6/5, grads 3/-1
    assert value(ms.jit(three_x_or_minus_x), scalar(x)) == y
    assert value(ms.grad(three_x_or_minus_x), scalar(x)) == dy


def cube_or_square(x):
    return x ** 3 if x > 0 else x ** 2


def test_higher_order_gradients_differentiate_the_taken_branch():
    second = ms.grad(ms.grad(cube_or_square))
    third = ms.grad(second)
    assert value(second, scalar(2.0)) == pytest.approx(12.0)      # 6x
    assert value(second, scalar(-1.0)) == pytest.approx(2.0)
    assert value(third, scalar(2.0)) == pytest.approx(6.0)
    assert value(third, scalar(-1.0)) == pytest.approx(0.0)


def log_or_zero(x):
    if x > 0:
        y = ops.log(x)
    else:
        y = x * 0.0
    return y


def test_untaken_branch_gives_no_nan():
    # select(x > 0, log(x), 0) would give NaN * 0 = NaN at x = -1; the if does not.
    assert value(ms.grad(log_or_zero), scalar(-1.0)) == 0.0
    assert value(ms.grad(log_or_zero), scalar(4.0)) == pytest.approx(0.25)


def many_results(x, w):
    a, b, n = x, x * 2.0, 1
    pair = (x, w)
    kept = w * 1.0
    if x > 0:
        a = a + 1.0
        b = b * w
        n = 2.5
        pair = (w, x)
        if w > 1:                      # nested
            a = a * 10.0
    else:
        b = x                          # a graph input yielded
    return a + kept, b, n, pair[0] - pair[1]


@pytest.mark.parametrize("x, w", [(1.0, 2.0), (1.0, 0.5), (-3.0, 2.0)])
def test_statement_if_joins_rebound_variables_numbers_and_tuples(x, w):
    got = value(ms.jit(many_results), scalar(x), scalar(w))
    if x > 0:
        a = (x + 1) * (10 if w > 1 else 1)
        expected = [a + w, 2 * x * w, 2.5, w - x]
    else:
        expected = [x + w, x, 1.0, x - w]
    np.testing.assert_allclose([float(g) for g in got], expected, rtol=1e-6)


def test_gradients_through_joined_results():
    grad = ms.grad(lambda x, w: sum_of(many_results(x, w)), grad_position=(0, 1))
    # x > 0, w > 1: (10(x+1) + w) + 2xw + 2.5 + (w - x)
    dx, dw = both(grad, scalar(1.0), scalar(2.0))
    assert (dx, dw) == (pytest.approx(10 + 2 * 2 - 1), pytest.approx(1 + 2 * 1 + 1))
    dx, dw = both(grad, scalar(-3.0), scalar(2.0))      # (x + w) + x + 1 + (x - w)
    assert (dx, dw) == (pytest.approx(3.0), pytest.approx(0.0))


def sum_of(results):
    a, b, n, d = results
    return a + b + n + d


def conditions(x):
    y = x * 0.0
    if all(x > 0):
        y = y + 1.0
    if x > 0 and x < 5:
        y = y + 10.0
    if not x > -1 or x > 100:
        y = y + 100.0
    return y


@pytest.mark.parametrize("x, y", [(2.0, 11.0), (7.0, 1.0), (-3.0, 100.0), (-0.5, 0.0)])
def test_all_and_or_not_on_tensor_conditions(x, y):                 # MS: they work
    assert value(ms.jit(conditions), Tensor(np.array([x], np.float32))) == y


def early_return(x):
    if x > 0:
        return 2 * x
    return 3 * x


@pytest.mark.parametrize("x, dx", [(1.5, 2.0), (-1.5, 3.0)])
def test_early_return_in_one_branch(x, dx):
    assert value(ms.jit(early_return), scalar(x)) == pytest.approx(x * dx)
    assert value(ms.grad(early_return), scalar(x)) == pytest.approx(dx)


def test_capture_used_after_the_if_and_int_condition():
    def f(x, n):
        t = ops.exp(x)
        if n:                               # an int tensor: n != 0
            t = t + 1.0
        return t * x
    n1, n0 = Tensor(np.array(3, np.int32)), Tensor(np.array(0, np.int32))
    x = scalar(0.5)
    assert value(ms.jit(f), x, n1) == pytest.approx((np.exp(0.5) + 1) * 0.5, rel=1e-6)
    assert value(ms.jit(f), x, n0) == pytest.approx(np.exp(0.5) * 0.5, rel=1e-6)


class Clipped(nn.Cell):
    """`if loss > 1: assign(w, w - 0.1 * g)`: a Parameter updated in one branch only."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([1.0, 2.0], np.float32)), name="w")

    def construct(self, loss, g):
        if loss > 1:
            ops.assign(self.w, self.w - 0.1 * g)
        return self.w * 1.0


def test_parameter_assigned_in_a_branch():
    cell = Clipped()
    step = ms.jit(cell)
    g = Tensor(np.array([1.0, 10.0], np.float32))
    np.testing.assert_allclose(step(scalar(0.5), g).asnumpy(), [1.0, 2.0])   # skipped
    np.testing.assert_allclose(cell.w.asnumpy(), [1.0, 2.0])
    np.testing.assert_allclose(step(scalar(2.0), g).asnumpy(), [0.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(cell.w.asnumpy(), [0.9, 1.0], rtol=1e-6)


def test_kernels_inside_branches_match_numpy():
    def f(x, w):
        if x.sum() > 0:
            y = ops.relu(ops.matmul(x, w))          # tiled matmul + relu epilogue
        else:
            y = ops.sigmoid(x) * 2.0
        return y
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 64)).astype(np.float32)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    for sign in (1, -1):
        xs = sign * np.abs(x)
        got = value(ms.jit(f), Tensor(xs), Tensor(w))
        want = np.maximum(xs @ w, 0) if sign > 0 else 2 / (1 + np.exp(-xs))
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-4)


# --------------------------------------------------------------------------------- while

def doubling(x):                                     # W1
    while x < 100:
        x = x * 2
    return x


def powers(x):                                       # W2
    y = x
    while y < 100:
        y = y * x
    return y


def halve_or_square(x, n):                           # W6
    i = Tensor(np.float32(0))
    while i < n:
        if x > 10:
            x = x * .5
        else:
            x = x * x
        i = i + 1
    return x


def nested(x):                                       # W7
    while x < 5:
        while x < 3:
            x = x + 1
        x = x + 1
    return x + 6


def python_counter(x):                               # W11
    i = 0
    while x < 10:
        x = x + 1
        i = i + 1
    return x, i


class Growth(nn.Cell):                               # W3
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.float32(1.5)), name="w")

    def construct(self, x):
        while x < 10:
            x = x * self.w
        return x


def python_loop(fn, *args):
    """The same function run as plain Python on floats: the closed-form oracle."""
    return fn(*args)


@pytest.mark.parametrize("fn, args, expected", [
    (doubling, (3.0,), 192.0), (doubling, (200.0,), 200.0),       # MS: 192; zero trips
    (powers, (3.0,), 243.0),                                      # MS
    (halve_or_square, (2.0, 4.0), 64.0),                          # MS
    (nested, (0.0,), 11.0), (nested, (4.0,), 11.0), (nested, (8.0,), 14.0),
])
def test_while_values(fn, args, expected):
    assert value(ms.jit(fn), *[scalar(a) for a in args]) == pytest.approx(expected)


def test_python_number_carried_comes_back_as_a_0d_tensor():           # MS: (10, 8)
    x, i = value(ms.jit(python_counter), scalar(2.0))
    assert (float(x), int(i)) == (10.0, 8) and i.dtype == np.int64
    assert int(value(ms.jit(python_counter), scalar(-20.0))[1]) == 30


def test_cell_parameter_read_in_a_while():                              # MS: 10.125
    assert value(ms.jit(Growth()), scalar(2.0)) == pytest.approx(10.125)


def test_functional_loops():                                           # MS: 128, 64
    f = ms.jit(lambda x: ops.WhileLoop()(lambda v: v < 100, lambda v: v * 2, x))
    g = ms.jit(lambda x: ops.ForiLoop()(0, 5, lambda i, v: v * 2, x))
    s = ms.jit(lambda x: ops.Scan()(lambda c, e: (c + e, c * e), x,
                                    [scalar(1), scalar(2), scalar(3)])[0])
    assert value(f, scalar(2.0)) == 128.0 and value(g, scalar(2.0)) == 64.0
    assert value(s, scalar(1.0)) == 7.0
    assert float(ops.WhileLoop()(lambda v: v < 100, lambda v: v * 2, scalar(2.0))) == 128.0
    assert value(ms.grad(lambda x: ops.ForiLoop()(0, 5, lambda i, v: v * 2, x)),
                 scalar(2.0)) == 32.0                                  # unrolled: MS 32


def test_while_with_a_tensor_state_and_kernels_in_the_body():
    def f(x, w):
        n = Tensor(np.int64(0))
        while n < 3:
            x = ops.tanh(ops.matmul(x, w)) + x
            n = n + 1
        return x
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    w = (rng.standard_normal((16, 16)) * 0.1).astype(np.float32)
    want = x
    for _ in range(3):
        want = np.tanh(want @ w) + want
    np.testing.assert_allclose(value(ms.jit(f), Tensor(x), Tensor(w)), want, rtol=1e-4,
                               atol=1e-5)


def type_change(x):
    while x.sum() < 10:  # <-
        x = ops.concat((x, x))
    return x


def while_else(x):
    while x < 10:  # <-
        x = x + 1
    else:
        x = x - 1
    return x


def test_while_errors_name_the_variable_and_both_types():              # W13
    with pytest.raises(TypeError) as info:
        ms.jit(type_change)(Tensor(np.ones(2, np.float32)))
    text = str(info.value)
    for word in ("'x'", "tensor<2xf32> before the loop", "tensor<4xf32> after its body",
                 f"test_control_flow.py:{_marked(type_change)}:"):
        assert word in text, text
    with pytest.raises(GraphsporeError, match="while...else") as info:
        ms.jit(while_else)(scalar(1.0))
    assert f"test_control_flow.py:{_marked(while_else)}:" in str(info.value)


# ------------------------------------------------------------------------------ errors

def vector_condition(x):
    if x > 0:  # <-
        x = x + 1
    return x


def dtype_mismatch(x):
    if x > 0:  # <-
        y = x.astype(ms.int32)
    else:
        y = x
    return y


def shape_mismatch(x):
    if x.sum() > 0:  # <-
        y = x
    else:
        y = x[:2]
    return y


def one_branch_only(x):
    if x > 0:
        z = x * 2
    return z  # <-


@pytest.mark.parametrize("fn, shape, kind, words", [
    (vector_condition, (3,), ValueError, ["shape () or (1,)", "tensor<3xi1>"]),
    (dtype_mismatch, (), TypeError, ["'y'", "tensor<i32>", "tensor<f32>", "line"]),
    (shape_mismatch, (3,), TypeError, ["'y'", "tensor<3xf32>", "tensor<2xf32>"]),
    (one_branch_only, (), UnboundLocalError, ["'z'", "not defined in the false branch",
                                              "defined in the true branch"]),
])
def test_errors_name_the_problem_at_the_users_line(fn, shape, kind, words):
    with pytest.raises(kind) as info:
        ms.jit(fn)(Tensor(np.ones(shape, np.float32)))
    text = str(info.value)
    assert isinstance(info.value, GraphsporeError)
    assert f"test_control_flow.py:{_marked(fn)}:" in text and "^" in text, text
    for word in words:
        assert word in text, text


def test_region_op_without_a_rule_raises_when_differentiated(monkeypatch):
    ruleless = dataclasses.replace(ir_ops.OPS["gs.for"], vjp=None)   # as a new region op
    monkeypatch.setitem(ir_ops.OPS, "gs.for", ruleless)
    g = Graph("w")
    with building(Builder(g)) as b:
        x = b.input(TensorType((), DType.f32), "x")
        (y,) = ir_ops.for_op(ir_ops.constant(np.int64(3)), [x], [], lambda i, x: x * 2.0)
        g.outputs = [y]
    from graphspore.ir.passes.autodiff import vjp_graph
    with pytest.raises(GraphsporeError, match="gs.for has no gradient rule"):
        vjp_graph(g, [0])


def test_verifier_rejects_branches_yielding_other_types():
    g = Graph("bad")
    with building(Builder(g)) as b:
        x = b.input(TensorType((2,), DType.f32), "x")
        p = ir_ops.greater(ir_ops.reduce_sum(x, axes=(0,)), 0.0)
        (y,) = ir_ops.if_op(p, [x], ir_ops.exp, ir_ops.neg)
        g.outputs = [y]
    verify(g)
    orelse = g.ops[-1].regions[1]
    with building(Builder(orelse)):
        orelse.outputs = [ir_ops.reshape(orelse.inputs[0], shape=(2, 1))]
    with pytest.raises(VerifyError, match="different types"):
        verify(g)


# ----------------------------------------------------------------------------- printer

@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-22 is not on PATH (apt mlir-22-tools)")
def test_dumps_with_regions_parse_in_mlir_opt(tmp_path):
    grad2 = ms.grad(ms.grad(cube_or_square))
    graph, _ = grad2._build((TensorType((), DType.f32),), {})
    forward, _ = ms.jit(many_results)._build((TensorType((), DType.f32),) * 2, {})
    for k, g in enumerate((graph, forward)):
        text = print_graph(g)
        assert '"gs.if"' in text and '"gs.yield"' in text
        path = tmp_path / f"g{k}.mlir"
        path.write_text(text)
        done = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", str(path)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------ loop gradients

def paddle_replaced(x):                              # W4: carried gradients are replaced
    i = Tensor(np.float32(0))
    while i < 3:
        x = i * i
        i = i + 1
    return x


def accumulated(x, w):                               # W5: loop-invariant ones accumulate
    s = 0 * x
    i = Tensor(np.int64(0))
    while i < 5:
        s = s + w * x
        i = i + 1
    return s


@pytest.mark.parametrize("fn, x, dx", [
    (doubling, 3.0, 64.0), (doubling, 200.0, 1.0),   # MS 64; zero trips pass g through
    (powers, 3.0, 405.0),                            # MS: 5x^4
    (paddle_replaced, 4.0, 0.0),
])
def test_while_gradients(fn, x, dx):
    assert value(ms.grad(fn), scalar(x)) == pytest.approx(dx)


def test_while_gradient_with_a_tensor_if_inside():                       # W6, MS: 256
    assert value(ms.grad(halve_or_square), scalar(2.0), scalar(4.0)) == pytest.approx(256.0)


def test_loop_invariant_gradients_accumulate():
    grads = both(ms.grad(accumulated, grad_position=(0, 1)), scalar(3.0), scalar(0.5))
    assert grads == [pytest.approx(5 * 0.5), pytest.approx(5 * 3.0)]


def test_gradient_with_respect_to_a_parameter_read_in_the_loop():        # W3, MS: 27
    net = Growth()
    dx, dw = ms.grad(net, grad_position=0, weights=net.trainable_params())(scalar(2.0))
    assert float(dx) == pytest.approx(1.5 ** 4)
    assert float(dw[0]) == pytest.approx(27.0)


def test_long_loop_matches_a_float32_loop():                             # W12
    def f(x):
        i = Tensor(np.float32(0))
        while i < 10000:
            x = x * 1.0001
            i = i + 1
        return x
    x, step = np.float32(2.0), np.float32(1.0001)
    for _ in range(10000):
        x = x * step
    assert value(ms.jit(f), scalar(2.0)) == pytest.approx(float(x), rel=1e-6)
    assert value(ms.grad(f), scalar(2.0)) == pytest.approx(float(x) / 2, rel=1e-4)


def test_a_run_longer_than_the_tape_raises_naming_the_loop():
    def f(x):
        while x < 1e6:  # <-
            x = x * x                                  # the backward reads x: it is taped
        return x
    text = tape_overflow_text(f, 2.0, 2.0 ** 36, 1.0001)   # 5 trips fit (32 x^31), 18 do not
    assert "more than 16 iterations" in text and "max_loop_iterations" in text, text
    assert f"test_control_flow.py:{_marked(f)}:" in text, text


def test_a_training_step_with_a_tensor_while_and_if_is_one_program():
    class Model(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.float32(0.5)), name="w")

        def construct(self, x):
            y = x * self.w
            while y < 4:
                y = y * 2
            if y > 6:
                y = y - 1
            return y

    net = Model()
    opt = nn.SGD(net.trainable_params(), learning_rate=0.01)
    grad_fn = ms.value_and_grad(net, None, opt.parameters)

    @ms.jit
    def step(x):
        loss, grads = grad_fn(x)
        opt(grads)
        return loss

    # w = 0.5, x = 3: y = 1.5 -> 3 -> 6 (2 doublings), not > 6: loss 6 = 4 x w, dl/dw = 12
    assert float(step(scalar(3.0))) == pytest.approx(6.0)
    assert float(net.w.asnumpy()) == pytest.approx(0.5 - 0.01 * 12.0)


def test_aot_compile_takes_max_loop_iterations(tmp_path):
    source = tmp_path / "loop.py"
    source.write_text("def f(x):\n    while x < 100:\n        x = x * 2\n    return x\n")
    from graphspore import cli
    from graphspore.ir.passes.loop_vjp import LOOP_TAPE
    try:
        code = cli.main(["compile", f"{source}:f", "--arg", "x=f32", "--grad", "0",
                         "--max-loop-iterations", "32", "-o", str(tmp_path / "loop.so")])
        assert code == 0 and LOOP_TAPE["rows"] == 32
    finally:
        ms.set_context(max_loop_iterations=1 << 17)
    assert (tmp_path / "loop.so").exists()


def breaking(x):                                     # W8
    i = Tensor(np.float32(0))
    while i < 10:
        x = x * 2
        if x > 50:
            break
        i = i + 1
    return x


def continuing(x):                                   # W9
    s = 0 * x
    i = Tensor(np.int64(0))
    while i < 6:
        i = i + 1
        if i % 2 == 0:
            continue
        s = s + x
    return s


def test_break_in_a_tensor_while():                                      # MS: 64, 32
    assert value(ms.jit(breaking), scalar(2.0)) == 64.0
    assert value(ms.grad(breaking), scalar(2.0)) == pytest.approx(32.0)
    assert value(ms.jit(breaking), scalar(1e-3)) == pytest.approx(1e-3 * 2 ** 10)


def test_continue_in_a_tensor_while():                                   # MS: 6; grad 3
    assert value(ms.jit(continuing), scalar(2.0)) == 6.0
    assert value(ms.grad(continuing), scalar(2.0)) == pytest.approx(3.0)
