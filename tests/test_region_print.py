"""print / ops.print_ / ops.Print() inside a tensor-dependent `if`, `while` or `for` in
compiled code: each print is a native call back into Python at its place, so only the taken
branch prints, a loop body prints once per iteration, in program order with the prints
before and after the region (and Python's around the call), in MindSpore's Print format (the
layout of mindspore.ops.Print's documented example: `Tensor(shape=[], dtype=Int32, value= 1)`).
The callback writes to Python's sys.stdout, so capsys sees it. Expected values are closed
forms; the same graph run by the reference interpreter prints the same text."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, jit, nn, ops
from graphspore.ir import TensorType
from graphspore.ir.interpreter import run as interpret
from graphspore.ir.types import DType


def f32(*values):
    return Tensor(np.array(values, np.float32))


def i32(value):
    return Tensor(np.int32(value))


def scalar_f32(v):
    """MindSpore's text of a 0-d float32 tensor: integral values without decimals."""
    return f"Tensor(shape=[], dtype=Float32, value= {v:g})"


def scalar_i32(v):
    return f"Tensor(shape=[], dtype=Int32, value= {v})"


def vector_f32(*vs):
    return ("Tensor(shape=[%d], dtype=Float32, value= [%s])"
            % (len(vs), ", ".join(f"{v: .8e}" for v in vs)))


def interpreted_text(compiled, args, capsys) -> str:
    """What the reference interpreter prints running `compiled`'s graph on `args`."""
    capsys.readouterr()
    graph, _ = compiled._build(tuple(TensorType(a.shape, DType.from_numpy(a.asnumpy().dtype))
                                     for a in args), {})
    interpret(graph, [a.asnumpy() for a in args])
    return capsys.readouterr().out


def sign_report(x):
    print("before", x)
    if x.sum() > 0:
        print("positive", x)
        y = x * 2
    else:
        ops.print_("not positive", x.sum())
        y = -x
    print("after")
    return y


@pytest.mark.parametrize("values, taken, y", [
    ((1.0, 2.0), ["positive", vector_f32(1.0, 2.0)], [2.0, 4.0]),
    ((-1.0, 0.5), ["not positive", scalar_f32(-0.5)], [1.0, -0.5])])
def test_only_the_taken_branch_prints_between_the_prints_around_it(values, taken, y,
                                                                     capsys):
    compiled = jit(sign_report)
    print("call")
    out = compiled(f32(*values))
    print("returned")
    want = "\n".join(["call", "before", vector_f32(*values)] + taken
                     + ["after", "returned"]) + "\n"
    assert capsys.readouterr().out == want
    np.testing.assert_array_equal(out.asnumpy(), y)
    assert "\n".join(want.splitlines()[1:-1]) + "\n" == interpreted_text(
        compiled, (f32(*values),), capsys)


def doubling_loop(x, n):
    i = i32(0)
    print("start")
    while i < n:
        ops.print_("step", i, x)
        x = x * 2
        i = i + 1
    print("end", x)
    return x


def test_a_three_iteration_while_prints_once_per_iteration_in_order(capsys):
    compiled = jit(doubling_loop)
    out = compiled(f32(1.0, -0.25), i32(3))
    steps = [line for k in range(3)
             for line in ("step", scalar_i32(k), vector_f32(2.0 ** k, -0.25 * 2.0 ** k))]
    want = "\n".join(["start"] + steps + ["end", vector_f32(8.0, -2.0)]) + "\n"
    assert capsys.readouterr().out == want
    np.testing.assert_array_equal(out.asnumpy(), [8.0, -2.0])
    assert interpreted_text(compiled, (f32(1.0, -0.25), i32(3)), capsys) == want
    compiled(f32(1.0, -0.25), i32(0))                   # zero trips: the body never prints
    assert capsys.readouterr().out == "start\nend\n" + vector_f32(1.0, -0.25) + "\n"


def test_a_for_over_a_tensor_range_prints_each_index(capsys):
    @jit
    def count(x, n):
        for k in range(n):
            print("k", k)
            x = x + 1.0
        return x

    out = count(f32(0.0), i32(3))
    want = "".join(f"k\n{scalar_i32(k)}\n" for k in range(3))
    assert capsys.readouterr().out == want
    np.testing.assert_array_equal(out.asnumpy(), [3.0])


def thresholds(x, n):
    i = i32(0)
    while i < n:
        if x > 2.5:
            print("over", i, x)
        x = x + 1.0
        i = i + 1
    return x * x


def test_an_if_nested_in_a_while_prints_on_the_iterations_that_take_it(capsys):
    compiled = jit(thresholds)
    out = compiled(Tensor(np.float32(1.0)), i32(4))         # x = 1, 2, 3, 4 at the test
    want = "".join(f"over\n{scalar_i32(k)}\n{scalar_f32(x)}\n" for k, x in ((2, 3.0), (3, 4.0)))
    assert capsys.readouterr().out == want
    assert out.asnumpy() == 25.0
    assert interpreted_text(compiled, (Tensor(np.float32(1.0)), i32(4)), capsys) == want


def test_gradients_through_region_prints_print_the_forward_once(capsys):
    # d/dx of (x + n)^2 is 2 (x + n); the backward reruns the loop body from its tape but
    # must not print again
    g = ms.grad(thresholds)(Tensor(np.float32(1.0)), i32(4))
    want = "".join(f"over\n{scalar_i32(k)}\n{scalar_f32(x)}\n" for k, x in ((2, 3.0), (3, 4.0)))
    assert capsys.readouterr().out == want
    assert g.asnumpy() == pytest.approx(10.0)

    def branchy(x):
        if x > 0:
            print("cube", x)
            y = x * x * x
        else:
            print("square", x)
            y = x * x
        return y

    assert ms.grad(branchy)(Tensor(np.float32(2.0))).asnumpy() == pytest.approx(12.0)  # 3x^2
    assert capsys.readouterr().out == f"cube\n{scalar_f32(2.0)}\n"
    second = ms.grad(ms.grad(branchy))
    assert second(Tensor(np.float32(-3.0))).asnumpy() == pytest.approx(2.0)
    assert capsys.readouterr().out == f"square\n{scalar_f32(-3.0)}\n"


def test_gradient_of_a_printing_loop_to_second_order(capsys):
    def power(x, n):
        for k in range(n):
            ops.print_("x", x)
            x = x * x
        return x            # x^(2^n)

    second = ms.grad(ms.grad(power))
    assert second(Tensor(np.float32(1.5)), i32(2)).asnumpy() == pytest.approx(12 * 1.5 ** 2)
    assert capsys.readouterr().out == f"x\n{scalar_f32(1.5)}\nx\n{scalar_f32(2.25)}\n"


def test_print_primitive_in_a_graph_mode_cell_branch(capsys):
    class Gate(nn.Cell):
        def __init__(self):
            super().__init__()
            self.print = ops.Print()

        def construct(self, x):
            if x.sum() > 0:
                self.print("open", x)
            return x + 1

    net = Gate()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        net(f32(1.0))
        net(f32(-1.0))
        net(f32(3.0))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert capsys.readouterr().out == (f"open\n{vector_f32(1.0)}\n"
                                       f"open\n{vector_f32(3.0)}\n")


def test_an_ahead_of_time_library_refuses_a_print_inside_a_branch(tmp_path):
    from graphspore.aot import export

    def f(x):
        if x.sum() > 0:
            print("x", x)         # <- the refused line
            x = x * 2
        return x

    line = f.__code__.co_firstlineno + 2
    with pytest.raises(ms.GraphsporeError, match=rf"test_region_print.py:{line}.*print is not "
                                                 r"supported in an ahead-of-time library"):
        export(f, (TensorType((2,), DType.f32),), tmp_path / "f.o")
