"""Tensor loops beyond `while` (issue 13.2): `for i in range(t)` with a tensor bound, and
`return` inside tensor loops (note case W10). Expected values are closed forms or the same
function run as plain Python on floats; each compiled result is also checked against the
interpreter."""
from __future__ import annotations

import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Parameter, Tensor, nn, ops

from against_interpreter import both, marked_line, scalar, value


def integer(v, dtype=np.int64) -> Tensor:
    return Tensor(np.array(v, dtype))


# ------------------------------------------------------------------------ range(tensor)

def doubling_n_times(x, n):
    for _ in range(n):
        x = x * 2
    return x


@pytest.mark.parametrize("n", [5, 0, 1])
def test_range_of_a_tensor_runs_n_times(n):
    assert value(ms.jit(doubling_n_times), scalar(2.0), integer(n)) == 2.0 * 2 ** n
    assert value(ms.grad(doubling_n_times), scalar(2.0), integer(n)) == 2.0 ** n


def odd_sum(x, n):
    s = x * 0
    for i in range(1, n, 2):
        s = s + x * i
    return s


@pytest.mark.parametrize("n", [6, 7, 8, 1, -3])
def test_range_start_stop_step_and_the_counter_in_the_body(n):
    k = sum(range(1, n, 2))                          # x * (1 + 3 + ...)
    n32 = integer(n, np.int32)
    assert value(ms.jit(odd_sum), scalar(2.0), n32) == 2.0 * k
    assert value(ms.grad(odd_sum), scalar(2.0), n32) == k


def descending(x, a, b, step):
    s = x * 0
    i = a * 0
    for i in range(a, b, step):
        s = s + x * i
        if i < 2:
            break
    return s, i


@pytest.mark.parametrize("a, b, step", [(10, 0, -3), (10, 0, -2), (0, 10, 3), (3, 3, 1)])
def test_range_with_a_tensor_step_of_either_sign_and_a_break(a, b, step):
    s, last = 0.0, 0
    for last in range(a, b, step):                   # the same loop in Python
        s += last
        if last < 2:
            break
    args = (scalar(1.5), integer(a), integer(b), integer(step))
    got_s, got_i = both(ms.jit(descending), *args)
    assert (float(got_s), int(got_i)) == (1.5 * s, last)
    assert value(ms.grad(descending), *args) == pytest.approx(s)


def zero_step(x, step):
    for i in range(0, 4, step):  # <-
        x = x + i
    return x


def float_bound(x, n):
    for i in range(n):  # <-
        x = x + i
    return x


def for_else(x, n):
    for i in range(n):  # <-
        x = x + 1
    else:
        x = x - 1
    return x


def counter_read_after(x, n):
    for i in range(n):
        x = x + 1
    return x * i  # <-


@pytest.mark.parametrize("fn, second, kind, words", [
    (zero_step, integer(0), ValueError, ["range() arg 3 must not be zero"]),
    (float_bound, scalar(3.0), TypeError, ["one-element integer tensors", "tensor<f32>"]),
    (float_bound, integer([2, 3]), TypeError, ["one-element integer tensors", "tensor<2xi64>"]),
    (for_else, integer(3), GraphsporeError, ["for...else"]),
    (counter_read_after, integer(3), UnboundLocalError, ["'i'", "only inside the body of the "
                                                          "for loop", "range has a tensor"]),
])
def test_range_errors_at_the_users_line(fn, second, kind, words):
    with pytest.raises(kind) as info:
        ms.jit(fn)(scalar(1.0), second)
    text = str(info.value)
    assert isinstance(info.value, GraphsporeError)
    assert f"test_control_flow_loops.py:{marked_line(fn)}:" in text and "^" in text, text
    for word in words:
        assert word in text, text


def test_a_nonzero_tensor_step_passes_the_zero_check():
    assert value(ms.jit(zero_step), scalar(1.0), integer(2)) == 1.0 + 0 + 2


def test_range_bound_of_shape_one_and_the_counter_after_the_loop():
    def f(x, n):
        i = n[0] * 0                 # the counter is 0-d
        for i in range(n):
            x = x + 1
        return x, i
    x, i = both(ms.jit(f), scalar(1.0), integer([4], np.int32))
    assert (float(x), int(i), i.dtype) == (5.0, 3, np.int32)


def test_nested_range_loops():
    def f(x, n):
        s = x * 0
        for i in range(n):
            for j in range(i):
                s = s + x
        return s
    for n in (0, 1, 5):
        assert value(ms.jit(f), scalar(3.0), integer(n)) == 3.0 * n * (n - 1) / 2


def test_fori_loop_with_tensor_bounds():                  # MS (constant bounds): 64, 32
    fori = lambda x, lo, hi: ops.ForiLoop()(lo, hi, lambda i, v: v * 2 + i, x)
    want = lambda x, lo, hi: (x * 2 ** max(hi - lo, 0)
                              + sum(i * 2 ** (hi - 1 - i) for i in range(lo, hi)))
    for lo, hi in ((0, 5), (2, 5), (3, 1)):
        args = (scalar(2.0), integer(lo), integer(hi))
        assert value(ms.jit(fori), *args) == want(2.0, lo, hi)
        assert value(ms.grad(fori), *args) == 2.0 ** max(hi - lo, 0)


# ------------------------------------------------------------------- return inside loops

def return_in_while(x):                              # W10
    while x < 100:
        if x > 20:
            return 10 * x
        x = 2 * x
    return x


@pytest.mark.parametrize("x, y, dy", [(2.0, 320.0, 160.0),     # MS: 320, grad 160
                                      (200.0, 200.0, 1.0),     # zero trips
                                      (30.0, 300.0, 10.0),     # returns in the 1st trip
                                      (13.0, 260.0, 20.0)])
def test_return_inside_a_tensor_while(x, y, dy):
    assert value(ms.jit(return_in_while), scalar(x)) == y
    assert value(ms.grad(return_in_while), scalar(x)) == dy


def return_a_tuple(x):
    i = Tensor(np.int64(0))
    while i < 10:
        i = i + 1
        if x * i > 20:
            return x * i, i
    y = x + 1
    return y, i


@pytest.mark.parametrize("x", [3.0, 1.0, 25.0])
def test_return_of_a_tuple_and_code_after_the_loop(x):
    got = both(ms.jit(return_a_tuple), scalar(x))
    i, y = 0, None
    while i < 10:                                    # the same loop in Python
        i += 1
        if x * i > 20:
            y = (x * i, i)
            break
    y = y or (x + 1, i)
    assert (float(got[0]), int(got[1])) == y
    grad = ms.grad(lambda x: return_a_tuple(x)[0])
    assert value(grad, scalar(x)) == (y[1] if x * y[1] > 20 else 1.0)


def unconditional_return(x):
    while x < 100:
        x = x * 3
        return x + 1
    return x


def return_in_nested_ifs(x, n):
    i = n * 0
    while i < n:
        i = i + 1
        if x > 0:
            if x * i > 10:
                return x * i
            x = x + 1
        else:
            x = x - 1
    return -x


def return_in_range(x, n):
    for i in range(n):
        if x * i > 20:
            return x * i
    return x


def python_number_returned(x):
    while x < 10:
        if x > 5:
            return 1.0
        x = x + 1
    return x


@pytest.mark.parametrize("fn, args", [
    (unconditional_return, (2.0,)), (unconditional_return, (200.0,)),
    (return_in_nested_ifs, (2.0, 10.0)), (return_in_nested_ifs, (2.0, 2.0)),
    (return_in_nested_ifs, (-2.0, 3.0)),
    (python_number_returned, (1.0,)), (python_number_returned, (12.0,)),
])
def test_return_variants_match_python(fn, args):
    want = fn(*args)                                  # plain Python on floats
    assert value(ms.jit(fn), *[scalar(a) for a in args]) == pytest.approx(want)


@pytest.mark.parametrize("x, n", [(3.0, 10), (3.0, 4), (30.0, 0)])
def test_return_inside_a_range_loop(x, n):
    want = next((x * i for i in range(n) if x * i > 20), x)
    assert value(ms.jit(return_in_range), scalar(x), integer(n)) == want
    assert value(ms.grad(return_in_range), scalar(x), integer(n)) == (
        next((i for i in range(n) if x * i > 20), 1))


def return_from_the_inner_loop(x):
    while x < 1000:
        while x < 50:
            if x > 30:
                return x * 3
            x = x + 7
        x = x * 2
    return -x


def break_both_loops(x):
    while x < 1000:
        while x < 50:
            x = x + 7
            if x > 30:
                break
        x = x * 2
        if x > 300:
            break
    return x


@pytest.mark.parametrize("fn", [return_from_the_inner_loop, break_both_loops])
@pytest.mark.parametrize("x", [2.0, 0.0, 60.0])
def test_return_and_break_in_nested_tensor_whiles(fn, x):
    assert value(ms.jit(fn), scalar(x)) == fn(x)


class Counting(nn.Cell):
    """Counts the trips of a tensor while in a Parameter (assigned in the body), and
    returns from inside the loop."""

    def __init__(self, returns: bool):
        super().__init__()
        self.returns = returns
        self.w = Parameter(Tensor(np.float32(1.5)), name="w")
        self.trips = Parameter(Tensor(np.float32(0)), name="trips")

    def construct(self, x):
        while x < 100:
            ops.assign(self.trips, self.trips + 1)
            if self.returns and x > 20:
                return x * self.w
            x = x * self.w
        return x


@pytest.mark.parametrize("returns", [False, True])
def test_parameter_assigned_in_a_tensor_while_body(returns):
    x, w, trips = 2.0, 1.5, 0
    while x < 100:                                   # the same loop in Python
        trips += 1
        if returns and x > 20:
            x = x * w
            break
        x = x * w
    net = Counting(returns)
    assert float(ms.jit(net)(scalar(2.0))) == pytest.approx(x)
    assert float(net.trips.asnumpy()) == trips
    dx, (dw, _) = ms.grad(net, grad_position=0, weights=net.trainable_params())(scalar(2.0))
    assert float(dx) == pytest.approx(w ** trips)                # x = 2 w^trips
    assert float(dw) == pytest.approx(trips * 2.0 * w ** (trips - 1))


def return_in_an_unrolled_loop(x):
    for _ in range(2):
        while x < 100:  # <-
            if x > 20:
                return x * 10
            x = x * 2
    return x


def test_return_in_a_tensor_while_inside_an_unrolled_loop_is_refused_at_its_line():
    with pytest.raises(GraphsporeError) as info:
        ms.jit(return_in_an_unrolled_loop)(scalar(2.0))
    text = str(info.value)
    assert f"test_control_flow_loops.py:{marked_line(return_in_an_unrolled_loop)}:" in text
    assert "not supported inside a loop unrolled while parsing" in text, text
