"""print / ops.print_ / ops.Print inside compiled code: printed by the native program each
time it runs (through the runtime's callback), in MindSpore's format (the example of
mindspore.ops.Print's documentation), in order with the Python prints around the call."""
import subprocess
import sys
import textwrap

import numpy as np

import graphspore as ms
from graphspore import Tensor, jit, nn, ops

DOC_EXAMPLE = """\
Print Tensor x and Tensor y:
Tensor(shape=[2, 1], dtype=Int32, value=
[[1],
 [1]])
Tensor(shape=[2, 2], dtype=Int32, value=
[[1, 1],
 [1, 1]])
"""


def _xy():
    return Tensor(np.ones([2, 1]).astype(np.int32)), Tensor(np.ones([2, 2]).astype(np.int32))


def test_ops_print_matches_mindsporess_documented_output_eagerly(capsys):
    x, y = _xy()
    assert ops.print_('Print Tensor x and Tensor y:', x, y) is None
    assert capsys.readouterr().out == DOC_EXAMPLE


def test_print_primitive_in_a_graph_mode_cell_prints_on_every_run(capsys):
    class PrintDemo(nn.Cell):
        def __init__(self):
            super().__init__()
            self.print = ops.Print()

        def construct(self, x, y):
            self.print('Print Tensor x and Tensor y:', x, y)
            return x

    x, y = _xy()
    net = PrintDemo()
    ms.set_context(mode=ms.GRAPH_MODE)
    net(x, y)
    net(x, y)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert capsys.readouterr().out == DOC_EXAMPLE * 2


def test_prints_run_in_program_order_between_python_prints(capsys):
    @jit
    def step(x):
        print("first", x * 2)
        y = x + 1
        ops.print_("second", 7, y.sum())
        return y

    print("before")
    out = step(Tensor(np.array([1.0, 2.0], np.float32)))
    print("after")
    step(Tensor(np.array([0.5], np.float32)))          # a new signature prints its values
    assert capsys.readouterr().out == (
        "before\n"
        "first\nTensor(shape=[2], dtype=Float32, value= [ 2.00000000e+00,  4.00000000e+00])\n"
        "second\n7\nTensor(shape=[], dtype=Float32, value= 5)\n"
        "after\n"
        "first\nTensor(shape=[1], dtype=Float32, value= [ 1.00000000e+00])\n"
        "second\n7\nTensor(shape=[], dtype=Float32, value= 1.5)\n")
    np.testing.assert_array_equal(out.asnumpy(), [2.0, 3.0])


def test_print_inside_a_gradient_prints_the_forward_values_and_keeps_the_gradient(capsys):
    def loss(w):
        print("w:", w)
        return (w * w).sum()

    g = ms.grad(loss)(Tensor(np.array([1.0, -3.0], np.float32)))
    np.testing.assert_array_equal(g.asnumpy(), [2.0, -6.0])
    assert capsys.readouterr().out == (
        "w:\nTensor(shape=[2], dtype=Float32, value= [ 1.00000000e+00, -3.00000000e+00])\n")


def test_print_from_native_code_reaches_a_pipe_in_order(tmp_path):
    """Run as a script (stdout a pipe, not a terminal): nothing is lost or reordered."""
    script = tmp_path / "prints.py"
    script.write_text(textwrap.dedent("""\
        import numpy as np
        import graphspore as ms
        @ms.jit
        def f(x):
            print("x is", x)
            return x * 3
        for i in range(3):
            print("call", i)
            f(ms.Tensor(np.array([i], np.int32)))
        """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True).stdout
    expected = "".join(f"call {i}\nx is\nTensor(shape=[1], dtype=Int32, value= [{i}])\n"
                       for i in range(3))
    assert out == expected


def test_printing_a_parameter_before_and_after_its_update(capsys):
    w = ms.Parameter(Tensor(np.ones(2, np.float32)), name="w")

    @jit
    def step(x):
        print("before", w)
        ops.assign(w, w * 2 + x)
        print("after", w)
        return x

    step(Tensor(np.array([1.0, 2.0], np.float32)))
    assert capsys.readouterr().out == (
        "before\nTensor(shape=[2], dtype=Float32, value= [ 1.00000000e+00,  1.00000000e+00])\n"
        "after\nTensor(shape=[2], dtype=Float32, value= [ 3.00000000e+00,  4.00000000e+00])\n")
    np.testing.assert_array_equal(w.asnumpy(), [3.0, 4.0])
