"""The rows of the note's test table (shared/notes/control_flow.md, sections 1.1 and 5) that
the other control-flow test files do not cover: closed-form values on both branch outcomes,
gradients, MindSpore's functional loops, reads of Cell attributes in branches, and IR dumps
with loop regions that round-trip through the IR parser and parse in xdsl (and mlir-opt-22
when it is on PATH). Each compiled result is also
checked against the interpreter."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Parameter, Tensor, nn, ops
from graphspore import pipeline
from graphspore.ir import TensorType
from graphspore.ir.printer import print_graph
from graphspore.ir.types import DType

from against_interpreter import both, marked_line, scalar, value
from test_parser import round_trip

import test_control_flow as control
import test_control_flow_indexing as indexing
import test_control_flow_loops as loops


MLIR_OPT = shutil.which("mlir-opt-22")


def vector(*v) -> Tensor:
    return Tensor(np.array(v, np.float32))


# ------------------------------------------------------------------------------------ if

def all_positive(x):
    y = x[0] * 0
    if (x > 0).all():                                # MS: works
        y = y + 1
    if (x > 2).any():
        y = y + 10
    return y


@pytest.mark.parametrize("x, y", [((1.0, 2.0), 1.0), ((1.0, -2.0), 0.0), ((3.0, 1.0), 11.0),
                                  ((-3.0, 5.0), 10.0)])
def test_tensor_all_and_any_methods_as_conditions(x, y):
    assert value(ms.jit(all_positive), vector(*x)) == y


def test_tensor_all_and_any_methods_eagerly_and_on_axes():
    x = Tensor(np.array([[1.0, 0.0], [2.0, 3.0]], np.float32))
    assert bool(x.all()) is False and bool(x.any()) is True
    np.testing.assert_array_equal(x.all(axis=1).asnumpy(), [False, True])
    np.testing.assert_array_equal(ms.jit(lambda v: v.any(axis=0, keep_dims=True))(x).asnumpy(),
                                  [[True, True]])
    empty = Tensor(np.zeros((0,), np.float32))
    assert bool(empty.all()) is True and bool(empty.any()) is False        # numpy's


def times_two_or_three(x):
    return x * 2 if x > 0 else x * 3                 # MS: works


@pytest.mark.parametrize("x, y, dy", [(2.0, 4.0, 2.0), (-2.0, -6.0, 3.0)])
def test_conditional_expression_on_both_outcomes(x, y, dy):
    assert value(ms.jit(times_two_or_three), scalar(x)) == y
    assert value(ms.grad(times_two_or_three), scalar(x)) == dy


class ScaledDense(nn.Cell):
    """Reads a Python attribute and calls a sub-Cell inside a tensor branch."""

    def __init__(self):
        super().__init__()
        self.k = 3.0
        self.dense = nn.Dense(2, 2)

    def construct(self, x):
        if x.sum() > 0:
            y = self.dense(x) * self.k
        else:
            y = x - self.k
        return y


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cell_attributes_read_inside_a_tensor_branch(sign):
    net = ScaledDense()
    x = np.array([[1.0, 2.0]], np.float32) * sign
    w, b = net.dense.weight.asnumpy(), net.dense.bias.asnumpy()
    want = (x @ w.T + b) * 3.0 if sign > 0 else x - 3.0
    np.testing.assert_allclose(value(ms.jit(net), Tensor(x)), want, rtol=1e-5, atol=1e-6)


class WrongAssign(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.zeros(2, np.float32)), name="w")

    def construct(self, x):
        if x.sum() > 0:
            ops.assign(self.w, x)  # <-
        return x


def test_assigning_a_parameter_a_value_of_another_shape_in_a_branch_is_an_error():
    with pytest.raises(GraphsporeError) as info:
        ms.jit(WrongAssign())(Tensor(np.ones(3, np.float32)))
    text = str(info.value)
    assert f"test_control_flow_table.py:{marked_line(WrongAssign.construct)}:" in text, text
    assert "tensor<3xf32>" in text or "(3,)" in text, text


def test_constant_range_loop_with_a_tensor_if_unrolls():
    def f(x):
        for _ in range(4):                           # four gs.if ops, one per iteration
            if x > 3:
                x = x - 1
            else:
                x = x * 2
        return x
    # x = 1.5: 3, 6, 5, 4, so f = 4x - 2 there; x = 4: 3, 6, 5, 4, f = 2x - 4 there
    for x, dy in ((1.5, 4.0), (4.0, 2.0)):
        assert value(ms.jit(f), scalar(x)) == 4.0
        assert value(ms.grad(f), scalar(x)) == dy
    graph, _ = ms.jit(f)._build((TensorType((), DType.f32),), {})
    assert [op.name for op in graph.ops].count("gs.if") == 4


# --------------------------------------------------------------------------------- loops

def test_paddle_replaced_gradient_case_value():                     # W4: x = 2 * 2
    assert value(ms.jit(control.paddle_replaced), scalar(4.0)) == 4.0


def test_for_over_a_tensor_unrolls():                               # MS: 14, [2, -4, 6]
    def f(x):
        total = x[0] * 0
        for e in x:
            total = total + e * e
        return total
    assert value(ms.jit(f), vector(1, -2, 3)) == 14.0
    np.testing.assert_array_equal(value(ms.grad(f), vector(1, -2, 3)), [2, -4, 6])


def test_while_loop_gradient():                                      # MS: 128, grad 64
    f = lambda x: ops.WhileLoop()(lambda v: v < 100, lambda v: v * 2, x)
    assert value(ms.jit(f), scalar(2.0)) == 128.0
    assert value(ms.grad(f), scalar(2.0)) == 64.0


def test_scan_over_a_tensor_iterates_its_rows():   # MS refuses a tensor xs; here it unrolls
    f = lambda c, xs: ops.Scan()(lambda c, e: (c * e, c + e), c, xs)
    carry, *ys = both(ms.jit(f), scalar(1.0), vector(2, 3, 4))
    assert carry == 24.0 and [float(y) for y in ys] == [3.0, 5.0, 10.0]
    assert value(ms.grad(lambda c, xs: f(c, xs)[0]), scalar(1.0), vector(2, 3, 4)) == 24.0


# ------------------------------------------------------------------------------- dumps

F32, I32, I64 = (TensorType((), d) for d in (DType.f32, DType.i32, DType.i64))
V3, J3 = TensorType((3,), DType.f32), TensorType((3,), DType.i32)
LOOP_GRAPHS = [
    (control.doubling, (F32,), ms.grad), (control.breaking, (F32,), ms.grad),
    (control.continuing, (F32,), ms.grad), (control.python_counter, (F32,), ms.jit),
    (loops.return_in_while, (F32,), ms.grad), (loops.return_a_tuple, (F32,), ms.jit),
    (loops.return_from_the_inner_loop, (F32,), ms.jit), (loops.odd_sum, (F32, I32), ms.grad),
    (loops.descending, (F32, I64, I64, I64), ms.jit), (indexing.nested, (V3, J3), ms.jit),
    (indexing.squares_in_range, (V3, I32), ms.grad),
]


def _xdsl_parse(text: str) -> None:
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func
    from xdsl.parser import Parser
    context = Context(allow_unregistered=True)
    context.load_dialect(Builtin)
    context.load_dialect(Func)
    Parser(context, text).parse_module().verify()


@pytest.mark.parametrize("fn, types, how", LOOP_GRAPHS,
                         ids=lambda p: getattr(p, "__name__", None))
def test_loop_dumps_round_trip_through_the_parser_and_parse_in_xdsl(fn, types, how):
    c = pipeline.Compilation(how(fn)._source(), types, {})
    for stage in ("parse", "autodiff", "index_checks", "simplify"):
        pipeline.run(c, (stage,))
        round_trip(c.graph)
        _xdsl_parse(print_graph(c.graph))
        if MLIR_OPT is not None:
            done = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "-"],
                                  input=print_graph(c.graph), capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    assert any(op.name in ("gs.while", "gs.for") for op in c.graph.ops)
