"""Gathers with tensor indices inside tensor ifs and loops (issue 13.4): the index checks
recurse into regions, so an out-of-range index raises IndexError at the user's line after
the call (compiled gathers clamp: nothing is read out of bounds), an untaken branch's
indices are not checked, and a while loop stops at the first bad index instead of running
on clamped values (which could never end). Expected values are numpy's; each compiled
result is also checked against the interpreter."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Tensor, ops
from graphspore.ir import TensorType
from graphspore.ir.passes.index_checks import add_index_checks
from graphspore.ir.printer import print_graph
from graphspore.ir.types import DType

from against_interpreter import both, marked_line, value

X = np.array([1.0, 2.0, 3.0], np.float32)


def index(i) -> Tensor:
    return Tensor(np.array(i, np.int32))


def raises_at(fn, *args, line: int, words=("index",)) -> str:
    with pytest.raises(IndexError) as info:
        fn(*args)
    text = str(info.value)
    assert isinstance(info.value, GraphsporeError)
    assert f"test_control_flow_indexing.py:{line}:" in text and "^" in text, text
    for word in words:
        assert word in text, text
    return text


def pick_in_branch(x, i):
    if x.sum() > 0:
        y = x[i]  # <-
    else:
        y = x[0] - x[i + 1]
    return y


@pytest.mark.parametrize("i", [0, 1, -2, -3])
def test_gather_in_either_branch(i):
    assert value(ms.jit(pick_in_branch), Tensor(X), index(i)) == X[i]
    assert value(ms.jit(pick_in_branch), Tensor(-X), index(i)) == -X[0] + X[i + 1]


def test_out_of_range_index_in_the_taken_branch_raises_at_its_line():
    text = raises_at(ms.jit(pick_in_branch), Tensor(X), index(5),
                     line=marked_line(pick_in_branch))
    assert "index 5 is out of bounds for axis 0 with size 3" in text
    raises_at(ms.jit(pick_in_branch), Tensor(X), index(-4), line=marked_line(pick_in_branch))


def test_the_untaken_branchs_indices_are_not_checked():
    # x.sum() > 0: the else branch (x[i + 1] with i + 1 = 3) does not run
    assert value(ms.jit(pick_in_branch), Tensor(X), index(2)) == 3.0


def scan_to_zero(x):
    i = Tensor(np.int64(0))
    while x[i] != 0:  # <-
        i = i + 1
    return i


def test_gather_in_a_while_condition():
    assert int(value(ms.jit(scan_to_zero), Tensor(np.array([3, 2, 0, 1], np.float32)))) == 2
    # no zero: Python raises at x[3]; clamped, x[3] would read x[2] forever
    raises_at(ms.jit(scan_to_zero), Tensor(X), line=marked_line(scan_to_zero),
              words=["index 3 is out of bounds"])


def sum_until(x, limit):
    s = x[0] * 0
    i = Tensor(np.int64(0))
    while s < limit:
        s = s + x[i]  # <-
        i = i + 1
    return s, i


def test_gather_in_a_while_body_and_its_gradient():
    s, i = both(ms.jit(sum_until), Tensor(X), Tensor(np.float32(2.5)))
    assert (float(s), int(i)) == (3.0, 2)
    grad = ms.grad(lambda x, limit: sum_until(x, limit)[0])
    np.testing.assert_array_equal(value(grad, Tensor(X), Tensor(np.float32(2.5))), [1, 1, 0])


def test_a_while_stops_at_the_first_bad_index_in_its_body():
    # zeros never reach the limit: clamped reads would loop forever; Python raises at x[3]
    raises_at(ms.jit(sum_until), Tensor(np.zeros(3, np.float32)), Tensor(np.float32(1.0)),
              line=marked_line(sum_until), words=["index 3 is out of bounds"])


def squares_in_range(x, n):
    s = x[0] * 0
    for i in range(n):
        s = s + x[i] * x[i]  # <-
    return s


@pytest.mark.parametrize("n", [0, 2, 3])
def test_gather_in_a_range_loop_and_the_scatter_of_its_gradient(n):
    assert value(ms.jit(squares_in_range), Tensor(X), index(n)) == float((X[:n] ** 2).sum())
    want = np.where(np.arange(3) < n, 2 * X, 0)
    np.testing.assert_array_equal(value(ms.grad(squares_in_range), Tensor(X), index(n)), want)


def test_a_bad_index_in_a_range_loop_raises_forward_and_backward():
    line = marked_line(squares_in_range)
    raises_at(ms.jit(squares_in_range), Tensor(X), index(4), line=line)
    raises_at(ms.grad(squares_in_range), Tensor(X), index(4), line=line)


def nested(x, js):
    s = x[0] * 0
    k = Tensor(np.int64(0))
    while k < 3:
        if s < 100:
            s = s + x[js[k]]  # <-
        k = k + 1
    return s


def test_gather_in_an_if_in_a_while_and_the_first_bad_index_is_reported():
    js = np.array([2, 0, 2], np.int32)
    assert value(ms.jit(nested), Tensor(X), Tensor(js)) == 7.0
    text = raises_at(ms.jit(nested), Tensor(X), Tensor(np.array([1, 7, 9], np.int32)),
                     line=marked_line(nested))
    assert "index 7 is out of bounds" in text, text       # the first iteration that failed


@pytest.mark.skipif(shutil.which("mlir-opt-22") is None, reason="mlir-opt-22 is not on PATH")
def test_checked_region_dumps_parse_in_mlir_opt(tmp_path):
    graph, _ = ms.grad(squares_in_range)._build((TensorType((3,), DType.f32),
                                                 TensorType((), DType.i32)), {})
    checked, sites = add_index_checks(graph)
    assert len(sites) >= 2                      # the forward gather, the backward scatter
    path = tmp_path / "checked.mlir"
    path.write_text(print_graph(checked))
    done = subprocess.run(["mlir-opt-22", "--allow-unregistered-dialect", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def rnn(x, w, n):
    h = x[0] * 0
    for t in range(n):
        h = ops.tanh(ops.matmul(h, w) + x[t])  # <-
    return (h * h).sum()


def rnn_float64(x, w, n):
    h = np.zeros_like(x[0])
    for t in range(n):
        h = np.tanh(h @ w + x[t])
    return (h * h).sum()


def test_a_recurrent_loop_over_gathered_steps_against_central_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 4)).astype(np.float32)
    w = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    n = Tensor(np.int32(5))
    assert value(ms.jit(rnn), Tensor(x), Tensor(w), n) == pytest.approx(
        rnn_float64(x64, w64, 5), rel=1e-5)
    got = value(ms.grad(rnn, grad_position=1), Tensor(x), Tensor(w), n)
    want = np.zeros_like(w64)
    for k in np.ndindex(w.shape):
        step = np.zeros_like(w64)
        step[k] = 1e-6
        want[k] = (rnn_float64(x64, w64 + step, 5) - rnn_float64(x64, w64 - step, 5)) / 2e-6
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    raises_at(ms.grad(rnn, grad_position=1), Tensor(x), Tensor(w), Tensor(np.int32(7)),
              line=marked_line(rnn), words=["index 6 is out of bounds for axis 0 with size 6"])
