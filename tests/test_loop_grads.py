"""Gradients through tensor loops (issue 13.3; shared/notes/control_flow.md sections 3.3, 5):
the VJP of `gs.for` (the backward of every while loop), so 2nd and 3rd order compose, and
loops nested in loops and in tensor ifs. Expected values are closed forms or float64 central
differences; every compiled result is also checked against the reference interpreter."""
from __future__ import annotations

import numpy as np
import pytest

import graphspore as ms
from graphspore import Parameter, Tensor, nn, ops
from graphspore.compiler import compile_count, compile_program, stats_since
from graphspore import pipeline
from graphspore.ir import TensorType
from graphspore.ir import ops as ir_ops
from graphspore.ir.core import Builder, Graph, building
from graphspore.ir.interpreter import run as interpret
from graphspore.ir.passes.autodiff import vjp_graph
from graphspore.ir.types import DType
from graphspore.ir.verify import verify

from against_interpreter import marked_line, scalar, tape_overflow_text, value
from test_control_flow import halve_or_square, nested, powers


def grads(fn, order: int):
    """grad applied `order` times."""
    for _ in range(order):
        fn = ms.grad(fn)
    return fn


def derivatives(f, x: float, order: int, eps: float = 1e-3) -> float:
    """The order-th derivative of the float64 function f at x, by nested central
    differences (f itself exact in float64: the error is O(eps^2) per level)."""
    if order == 0:
        return f(x)
    return (derivatives(f, x + eps, order - 1, eps)
            - derivatives(f, x - eps, order - 1, eps)) / (2 * eps)


# ---------------------------------------------------------------- higher-order while loops

def cube(x):                                         # x**3 as a loop
    y = x * 0 + 1
    i = Tensor(np.float32(0))
    while i < 3:
        y = y * x
        i = i + 1
    return y


def doubling(x):                                     # W1: 64 x for x = 3
    while x < 100:
        x = x * 2
    return x


def sines(x):                                        # a body whose backward reads x
    i = Tensor(np.float32(0))
    while i < 3:
        x = ops.sin(x) * 1.5
        i = i + 1
    return x


def sines64(x: float, times: int = 3) -> float:
    for _ in range(times):
        x = 1.5 * np.sin(x)
    return x


@pytest.mark.parametrize("fn, x, want", [
    (cube, 2.0, [8.0, 12.0, 12.0, 6.0]),             # x^3, 3x^2, 6x, 6
    (cube, -1.5, [-3.375, 6.75, -9.0, 6.0]),
    (powers, 3.0, [243.0, 405.0, 540.0, 540.0]),     # W2: x^5, 5x^4 (MS), 20x^3, 60x^2
    (doubling, 3.0, [192.0, 64.0, 0.0, 0.0]),        # W1: 64 x
])
def test_while_derivatives_up_to_third_order(fn, x, want):
    for order, expected in enumerate(want):
        compiled = grads(fn, order) if order else ms.jit(fn)
        assert value(compiled, scalar(x)) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_higher_order_through_a_tensor_if_in_a_while():             # W6: x^8 / 4
    x, n = scalar(2.0), scalar(4.0)
    first = ms.grad(halve_or_square, grad_position=0)
    second = ms.grad(first, grad_position=0)
    third = ms.grad(second, grad_position=0)
    assert value(first, x, n) == pytest.approx(2 * 2.0 ** 7)            # 256 (MS)
    assert value(second, x, n) == pytest.approx(14 * 2.0 ** 6)          # 896
    assert value(third, x, n) == pytest.approx(84 * 2.0 ** 5)           # 2688


@pytest.mark.parametrize("x", [0.7, -1.2])
def test_higher_order_of_a_nonlinear_body_match_central_differences(x):
    for order in (1, 2, 3):
        want = derivatives(sines64, x, order)
        assert value(grads(sines, order), scalar(x)) == pytest.approx(want, rel=2e-3, abs=1e-4)


def test_a_body_the_backward_does_not_read_is_not_taped():
    """`x = x * 1.0001` needs no tape: the gradient graph has no gs.update_row at all (the
    benchmark's loop), while `x = sin(x) * 1.5` tapes x."""
    def writes(fn):
        graph, _ = ms.grad(fn)._build((TensorType((), DType.f32),), {})
        return _count_ops(graph, "gs.update_row")

    def linear(x):
        i = Tensor(np.float32(0))
        while i < 3:
            x = x * 1.0001
            i = i + 1
        return x
    assert writes(linear) == 0 and writes(sines) == 1


def _count_ops(graph: Graph, name: str) -> int:
    return sum((op.name == name) + sum(_count_ops(r, name) for r in op.regions)
               for op in graph.ops)


def sines_in_range(x, n):                            # range(tensor): a while on a counter
    for _ in range(n):
        x = ops.sin(x) * 1.5
    return x


def fori_squares(x, lo, hi):                         # x^(2^(hi - lo)) * 0.5^(2^(hi-lo) - 1)
    return ops.ForiLoop()(lo, hi, lambda i, v: v * v * 0.5, x)


def returns_a_square(x):                             # W10 with a nonlinear return
    while x < 100:
        if x > 20:
            return x * x
        x = 2 * x
    return x


def squares_until(x):                                # W8 with a nonlinear body
    i = Tensor(np.float32(0))
    while i < 10:
        x = x * x
        if x > 50:
            break
        i = i + 1
    return x


@pytest.mark.parametrize("x", [0.7, 2.0])
def test_range_of_a_tensor_up_to_third_order(x):
    n = Tensor(np.array(4, np.int64))
    for order in (1, 2, 3):
        compiled = ms.grad(sines_in_range, grad_position=0)
        for _ in range(order - 1):
            compiled = ms.grad(compiled, grad_position=0)
        assert value(compiled, scalar(x), n) == pytest.approx(
            derivatives(lambda t: sines64(t, 4), x, order), rel=2e-3, abs=1e-4)


def test_fori_loop_with_tensor_bounds_second_order():
    lo, hi = Tensor(np.array(1, np.int64)), Tensor(np.array(4, np.int64))   # 3 squarings
    first = ms.grad(fori_squares, grad_position=0)
    second = ms.grad(first, grad_position=0)
    x = 1.5                                          # f = x^8 / 2^7
    assert value(ms.jit(fori_squares), scalar(x), lo, hi) == pytest.approx(x ** 8 / 128)
    assert value(first, scalar(x), lo, hi) == pytest.approx(8 * x ** 7 / 128)
    assert value(second, scalar(x), lo, hi) == pytest.approx(56 * x ** 6 / 128)


@pytest.mark.parametrize("x, want", [
    (2.0, [1024.0, 512.0]),                          # returns (16 x)^2: 512 x, 512
    (200.0, [1.0, 0.0]),                             # zero trips: x
])
def test_second_order_through_a_return_inside_a_while(x, want):
    first = ms.grad(returns_a_square)
    assert [value(first, scalar(x)), value(ms.grad(first), scalar(x))] == want


def test_second_order_through_a_break():
    # x = 3: 9, 81 > 50 -> break after two squarings: x^4, 4x^3 = 108, 12x^2 = 108
    first = ms.grad(squares_until)
    assert value(first, scalar(3.0)) == pytest.approx(108.0)
    assert value(ms.grad(first), scalar(3.0)) == pytest.approx(108.0)


# -------------------------------------------------------------------------- gs.for itself

def _for_graph(count: int | None, reverse: bool) -> Graph:
    """f(x[, n]) = the loop `for i in range(n): x = x * x * 0.5 + 0.1 * i` (reverse: i from
    n - 1 down to 0), built in the IR: nothing in the frontend emits a forward gs.for yet."""
    g = Graph("for_loop")
    with building(Builder(g)) as b:
        x = b.input(TensorType((2,), DType.f32), "x")
        n = ir_ops.constant(np.int64(count)) if count is not None else \
            b.input(TensorType((), DType.i64), "n")

        def body(i, x):
            return x * x * 0.5 + ir_ops.cast(i, dtype=DType.f32) * 0.1
        (y,) = ir_ops.for_op(n, [x], [], body, reverse=reverse)
        g.outputs = [ir_ops.reduce_sum(y, axes=(0,))]
    verify(g)
    return g


def _for64(x: np.ndarray, n: int, reverse: bool) -> float:
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        x = x * x * 0.5 + 0.1 * i
    return float(np.sum(x))


def _gradient_only(graph: Graph) -> Graph:
    """vjp_graph(graph, [0]) without its forward outputs: x -> d sum(f) / dx."""
    full = vjp_graph(graph, [0])
    return Graph(f"{graph.name}_d", full.inputs, full.ops, full.outputs[len(graph.outputs):],
                 loc=graph.loc)


def _compiled_and_interpreted(graph: Graph, arrays) -> list:
    verify(graph)
    tree = list(range(len(graph.outputs)))
    program = compile_program(pipeline.Source("", lambda _a, _k: (graph, tree)), (), {},
                              lambda a: a)
    got = [np.asarray(o) for o in program.run(list(arrays))]
    want = interpret(graph, list(arrays))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return got


X2 = np.array([0.8, -1.1], np.float32)


@pytest.mark.parametrize("count", [None, 5])
@pytest.mark.parametrize("reverse", [False, True])
def test_for_loop_gradients_first_and_second_order(count, reverse):
    n = 5
    f = _for_graph(count, reverse)
    args = [X2] if count is not None else [X2, np.array(n, np.int64)]
    d1 = _gradient_only(f)
    d2 = _gradient_only(d1)            # seeds of ones: the Hessian's diagonal (separable f)
    x64 = X2.astype(np.float64)
    want1 = [derivatives(lambda t: _for64(np.array([t, x64[1]]), n, reverse), x64[0], 1),
             derivatives(lambda t: _for64(np.array([x64[0], t]), n, reverse), x64[1], 1)]
    want2 = [derivatives(lambda t: _for64(np.array([t, x64[1]]), n, reverse), x64[0], 2),
             derivatives(lambda t: _for64(np.array([x64[0], t]), n, reverse), x64[1], 2)]
    (got1,) = _compiled_and_interpreted(d1, args)
    (got2,) = _compiled_and_interpreted(d2, args)
    np.testing.assert_allclose(got1, want1, rtol=1e-4)
    np.testing.assert_allclose(got2, want2, rtol=1e-3)


def test_a_static_trip_count_sizes_the_tape_exactly():
    d1 = _gradient_only(_for_graph(5, False))
    tapes = [op.results[1].shape for op in d1.ops if op.name == "gs.for"
             and len(op.results) == 2]
    assert tapes == [(5, 2)], tapes


def test_a_zero_trip_for_passes_the_cotangent_through():
    d1 = _gradient_only(_for_graph(0, False))
    (got,) = _compiled_and_interpreted(d1, [X2])
    np.testing.assert_array_equal(got, np.ones(2, np.float32))
    (got,) = _compiled_and_interpreted(_gradient_only(_for_graph(None, True)),
                                       [X2, np.array(-3, np.int64)])
    np.testing.assert_array_equal(got, np.ones(2, np.float32))


def test_a_for_loop_longer_than_its_tape_raises():
    ms.set_context(max_loop_iterations=16)
    try:
        d1 = _gradient_only(_for_graph(None, False))
        tree = [0]
        program = compile_program(pipeline.Source("", lambda _a, _k: (d1, tree)), (), {},
                                  lambda a: a)
        ok = program.run([X2 * 0.1, np.array(16, np.int64)])
        assert np.all(np.isfinite(ok[0]))
        with pytest.raises(IndexError, match="more than 16 iterations"):
            program.run([X2 * 0.1, np.array(17, np.int64)])
    finally:
        ms.set_context(max_loop_iterations=1 << 17)


# ---------------------------------------------------------------- loops in loops and ifs

def nested_sines(x):                                 # 2 x 3 applications of 1.5 sin
    i = Tensor(np.float32(0))
    while i < 2:
        j = Tensor(np.float32(0))
        while j < 3:
            x = ops.sin(x) * 1.5
            j = j + 1
        i = i + 1
    return x


def nested_powers(x):                                # x^4 from 2 x 2 multiplications
    y = x * 0 + 1
    i = Tensor(np.float32(0))
    while i < 2:
        j = Tensor(np.float32(0))
        while j < 2:
            y = y * x
            j = j + 1
        i = i + 1
    return y


def loop_in_if(x):
    if x > 0:
        while x < 10:
            x = x * x
    else:
        x = -x * x
    return x


@pytest.mark.parametrize("x, y", [(0.0, 11.0), (8.0, 14.0)])         # W7: x + 6 after
def test_nested_while_gradient(x, y):                               # the loops; MS: dx 1
    assert value(ms.jit(nested), scalar(x)) == y
    assert value(ms.grad(nested), scalar(x)) == 1.0


@pytest.mark.parametrize("x", [0.7, 2.0])
def test_nested_loops_with_a_taped_inner_body_match_central_differences(x):
    for order in (1, 2):
        want = derivatives(lambda t: sines64(t, 6), x, order)
        assert value(grads(nested_sines, order), scalar(x)) == pytest.approx(
            want, rel=2e-3, abs=1e-4)


def test_nested_loops_up_to_third_order():                          # x^4
    for order, want in enumerate([16.0, 32.0, 48.0, 48.0]):         # at x = 2
        compiled = grads(nested_powers, order) if order else ms.jit(nested_powers)
        assert value(compiled, scalar(2.0)) == pytest.approx(want)


@pytest.mark.parametrize("x, want", [
    (1.5, [1.5 ** 8, 8 * 1.5 ** 7, 56 * 1.5 ** 6]),                 # 3 squarings: x^8
    (-2.0, [-4.0, 4.0, -2.0]),                                      # the else branch: -x^2
])
def test_a_while_inside_a_tensor_if(x, want):
    for order, expected in enumerate(want):
        compiled = grads(loop_in_if, order) if order else ms.jit(loop_in_if)
        assert value(compiled, scalar(x)) == pytest.approx(expected, rel=1e-5)


def replaced_in_nested(x):                           # Paddle #27814 inside an outer loop
    k = Tensor(np.float32(0))
    while k < 2:
        i = Tensor(np.float32(0))
        while i < 3:
            x = i * i
            i = i + 1
        k = k + 1
    return x


def accumulated_in_nested(x, w):                     # loop-invariant: 3 x 4 additions
    s = 0 * x
    k = Tensor(np.int64(0))
    while k < 3:
        i = Tensor(np.int64(0))
        while i < 4:
            s = s + w * x
            i = i + 1
        k = k + 1
    return s


def per_iteration_values(x):                         # Paddle #60328: each iteration's y
    y = x
    k = Tensor(np.float32(0))
    while k < 2:
        i = Tensor(np.float32(0))
        while i < 2:
            y = y * y + x                            # reads the y of its own iteration
            i = i + 1
        k = k + 1
    return y


def per_iteration64(x: float) -> float:
    y = x
    for _ in range(4):
        y = y * y + x
    return y


def test_the_two_paddle_loop_gradient_bugs_in_nested_loops():
    assert value(ms.jit(replaced_in_nested), scalar(4.0)) == 4.0
    assert value(ms.grad(replaced_in_nested), scalar(4.0)) == 0.0   # replaced, not summed
    dx, dw = value(ms.grad(accumulated_in_nested, grad_position=(0, 1)),
                   scalar(3.0), scalar(0.5))
    assert (dx, dw) == (pytest.approx(12 * 0.5), pytest.approx(12 * 3.0))
    x = 0.3
    assert value(ms.grad(per_iteration_values), scalar(x)) == pytest.approx(
        derivatives(per_iteration64, x, 1, 1e-5), rel=1e-4)


def test_nested_range_loops_with_a_taped_body():
    def f(x, n, m):
        for _ in range(n):
            for _ in range(m):
                x = ops.sin(x) * 1.5
        return x
    n, m = Tensor(np.array(2, np.int64)), Tensor(np.array(3, np.int64))
    first = ms.grad(f, grad_position=0)
    for order, compiled in ((1, first), (2, ms.grad(first, grad_position=0))):
        assert value(compiled, scalar(0.7), n, m) == pytest.approx(
            derivatives(lambda t: sines64(t, 6), 0.7, order), rel=2e-3, abs=1e-4)


class NestedGrowth(nn.Cell):                         # y = x w^4 through 2 x 2 multiplications
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.float32(0.9)), name="w")

    def construct(self, x):
        y = x
        i = Tensor(np.float32(0))
        while i < 2:
            j = Tensor(np.float32(0))
            while j < 2:
                y = y * self.w
                j = j + 1
            i = i + 1
        return y


def test_a_training_step_with_nested_tensor_loops_is_one_program():
    net = NestedGrowth()
    opt = nn.SGD(net.trainable_params(), learning_rate=0.01)
    grad_fn = ms.value_and_grad(net, None, opt.parameters)

    @ms.jit
    def step(x):
        loss, grads = grad_fn(x)
        opt(grads)
        return loss

    mark = compile_count()
    assert float(step(scalar(2.0))) == pytest.approx(2.0 * 0.9 ** 4)
    assert float(net.w.asnumpy()) == pytest.approx(0.9 - 0.01 * 4 * 2.0 * 0.9 ** 3)
    assert [s.name for s in stats_since(mark)] == ["step"]      # one native program


def if_and_break_in_nested_whiles(x):
    i = Tensor(np.float32(0))
    while i < 3:
        j = Tensor(np.float32(0))
        while j < 4:
            if x > 1.2:
                x = ops.sin(x) * 0.9
            else:
                x = x * 1.3 + 0.1 * x * x
            j = j + 1
            if j > 2:
                break
        i = i + 1
    return x


def if_and_break64(x: float) -> float:
    for _ in range(3 * 3):
        x = np.sin(x) * 0.9 if x > 1.2 else x * 1.3 + 0.1 * x * x
    return x


def while_in_if_in_while(x):
    i = Tensor(np.float32(0))
    while i < 2:
        if x < 3:
            while x < 3:
                x = x * x + 0.5
        else:
            x = ops.sqrt(x)
        i = i + 1
    return x


def while_in_if64(x: float) -> float:
    for _ in range(2):
        if x < 3:
            while x < 3:
                x = x * x + 0.5
        else:
            x = np.sqrt(x)
    return x


@pytest.mark.parametrize("fn, fn64, x", [
    (if_and_break_in_nested_whiles, if_and_break64, 0.9),
    (if_and_break_in_nested_whiles, if_and_break64, 1.5),
    (while_in_if_in_while, while_in_if64, 1.1),
])
def test_nested_control_flow_to_second_order_matches_central_differences(fn, fn64, x):
    for order in (1, 2):                 # 3rd order works too, but compiles ~1000 kernels
        assert value(grads(fn, order), scalar(x)) == pytest.approx(
            derivatives(fn64, x, order), rel=2e-3, abs=1e-4)


def tanh_sums(x, w):                                 # an inner loop reading a capture w
    s = x * 0
    i = Tensor(np.float32(0))
    while i < 3:
        y = x
        j = Tensor(np.float32(0))
        while j < 2:
            y = ops.tanh(y * w)
            j = j + 1
        s = s + y * y
        x = x + 0.1
        i = i + 1
    return s


def tanh_sums64(x: float, w: float) -> float:
    s = 0.0
    for _ in range(3):
        y = x
        for _ in range(2):
            y = np.tanh(y * w)
        s, x = s + y * y, x + 0.1
    return s


def test_mixed_second_derivative_through_nested_loops():
    d_w = ms.grad(tanh_sums, grad_position=1)
    d_xw = ms.grad(d_w, grad_position=0)
    x, w = 0.4, 1.2
    assert value(d_w, scalar(x), scalar(w)) == pytest.approx(
        derivatives(lambda v: tanh_sums64(x, v), w, 1), rel=1e-4)
    assert value(d_xw, scalar(x), scalar(w)) == pytest.approx(
        derivatives(lambda u: derivatives(lambda v: tanh_sums64(u, v), w, 1, 1e-4), x, 1),
        rel=1e-3)


def test_an_inner_loop_longer_than_its_tape_raises_naming_it():
    def f(x):
        k = Tensor(np.float32(0))
        while k < 2:
            while x < 1e6:  # <-
                x = x * x
            k = k + 1
        return x

    text = tape_overflow_text(f, 2.0, 2.0 ** 36, 1.0001)   # 5 trips fit (32 x^31), 18 do not
    assert "more than 16 iterations" in text and "max_loop_iterations" in text, text
    assert f"test_loop_grads.py:{marked_line(f)}:" in text, text


def test_a_loop_in_an_if_longer_than_its_tape_raises_naming_it():
    def f(x):
        if x > 0:
            while x < 1e6:  # <-
                x = x * x
        return x

    text = tape_overflow_text(f, -3.0, 1.0, 1.0001)
    assert f"test_loop_grads.py:{marked_line(f)}:" in text, text


def sines_n(w, n):
    i = Tensor(np.float32(0))
    while i < n:  # <-
        w = ops.sin(w) * 1.5
        i = i + 1
    return w


d_sines_n = ms.grad(sines_n, grad_position=0)


def descend(w, n):                                   # a loop gradient inside a tensor loop
    k = Tensor(np.float32(0))
    while k < 4:
        w = w - 0.1 * d_sines_n(w, n)
        k = k + 1
    return w


def test_gradient_descent_on_a_loop_inside_a_tensor_loop():
    w = 0.7
    for _ in range(4):
        w -= 0.1 * derivatives(lambda t: sines64(t, 3), w, 1, 1e-6)
    assert value(ms.jit(descend), scalar(0.7), scalar(3.0)) == pytest.approx(w, rel=1e-5)
    ms.set_context(max_loop_iterations=16)
    try:
        with pytest.raises(IndexError) as info:
            ms.jit(descend)(scalar(0.7), scalar(20.0))
    finally:
        ms.set_context(max_loop_iterations=1 << 17)
    assert f"test_loop_grads.py:{marked_line(sines_n)}:" in str(info.value), str(info.value)
