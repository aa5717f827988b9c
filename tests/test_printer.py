"""The MLIR printer: golden CHECK lines, exact float spelling, and acceptance by real parsers
(mlir-opt-22 when it is on PATH, and xdsl)."""
import shutil
import struct
import subprocess

import numpy as np
import pytest

from graphspore.ir import Builder, DType, Graph, Loc, Op, TensorType, Value, building, at_loc
from graphspore.ir import ops
from graphspore.ir.printer import print_attr, print_dense, print_graph

from filecheck import check_lines
from graphspore.ir.verify import verify

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
MLIR_OPT = shutil.which("mlir-opt-22")


class Param:
    """A stand-in for a host Parameter: the printer only reads `.name`."""

    def __init__(self, name):
        self.name = name


def build(name, inputs, body, loc=None, weights=()):
    """A graph from `body(*input values) -> outputs`; `inputs` are (name, shape, dtype),
    `weights` are (Param, shape, dtype) bound inputs."""
    graph = Graph(name, loc=loc)
    builder = Builder(graph)
    with building(builder):
        args = [builder.input(TensorType(shape, dtype), hint) for hint, shape, dtype in inputs]
        bound = [builder.bound_input(p, TensorType(s, d), p.name) for p, s, d in weights]
        outs = body(builder, *args, *bound)
    graph.outputs = list(outs)
    verify(graph)
    return graph


def named(value, name):
    value.name = name
    return value


# ------------------------------------------------------------------------ example graphs

def graph_elementwise():
    def body(b, x, w):
        with at_loc(Loc("train.py", 12, 7)):
            z = named(ops.mul(x, w), "z")
        with at_loc(Loc("train.py", 13, 4)):
            return [named(ops.exp(ops.add(z, 1.0)), "preds")]
    return build("loss", [("inputs", (4, 3), F32), ("W", (3,), F32)], body,
                 loc=Loc("train.py", 10, 0))


def graph_constants():
    def body(b):
        values = [np.array([1.5, -0.0, 0.1, 1e-30], np.float32),
                  np.array([[np.inf, -np.inf], [np.nan, 2.0]], np.float64),
                  np.array([3, -4], np.int32), np.array(7, np.int64),
                  np.array([True, False, True]), np.full((2, 2), 1.0, np.float32),
                  np.full((3,), np.nan, np.float32), np.zeros((0, 2), np.float32)]
        return [ops.constant(v) for v in values]
    return build("constants", [], body)


def graph_weights_and_updates():
    w, m = Param("dense.weight"), Param("moment")

    def body(b, x, weight, moment):
        new_moment = named(ops.add(ops.mul(moment, 0.9), x), "m")
        b.assign(m, new_moment)
        b.assign(w, named(ops.add(weight, new_moment), "w"))
        return [named(ops.mul(weight, x), "y")]
    return build("step", [("x", (5, 3), F32)], body, weights=[(w, (5, 3), F32),
                                                             (m, (5, 3), F32)])


def graph_odd_names_and_locs():
    def body(b, a, c, d):
        with at_loc(Loc('dir/we"ird\\name.py', 3, 0)):
            s = named(ops.add(a, c), "x y")
        t = named(ops.mul(s, d), "0")            # no location: loc(unknown)
        u = named(ops.exp(ops.cast(t, dtype=F64)), "1abc")
        v = named(ops.add(u, u), "a")
        return [v, named(ops.iota(shape=(2, 3), axis=1, dtype=I64), "x y")]
    return build("odd-name", [("a", (), F32), ("a", (), F32), (None, (), F32)], body)


def graph_attributes():
    """A constant op carrying one attribute of every kind (printer-only: not verified)."""
    graph = graph_constants()
    op = graph.ops[0]
    op.attrs.update(flag=True, off=False, count=3, neg=-2, ratio=1.5, tiny=1e-5, big=1e300,
                    inf=float("inf"), nan=float("nan"), zero=-0.0, axes=(0, 1), none_axes=(),
                    dtype=BOOL, label='say "hi"\n\\', empty="", unit=None,
                    extra=np.array([1, 2], np.int64))
    return graph


def graph_no_outputs():
    p = Param("p")

    def body(b, w):
        b.assign(p, ops.add(w, 1.0))
        return []
    return build("update_only", [], body, weights=[(p, (2,), F32)])


GRAPHS = {f.__name__: f for f in (graph_elementwise, graph_constants, graph_weights_and_updates,
                                  graph_odd_names_and_locs, graph_attributes, graph_no_outputs)}


# ------------------------------------------------------------------------------ golden text

def test_elementwise_golden():
    text = print_graph(graph_elementwise())
    check_lines(
        text,
        'func.func @loss(%inputs: tensor<4x3xf32>, %W: tensor<3xf32>) -> (tensor<4x3xf32>) {',
        '%z = "gs.mul"(%inputs, %W) : (tensor<4x3xf32>, tensor<3xf32>) -> tensor<4x3xf32> '
        'loc("train.py":12:8)',
        '%0 = "gs.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32> '
        'loc("train.py":13:5)',
        '%1 = "gs.add"(%z, %0) : (tensor<4x3xf32>, tensor<f32>) -> tensor<4x3xf32>',
        '%preds = "gs.exp"(%1) : (tensor<4x3xf32>) -> tensor<4x3xf32> loc("train.py":13:5)',
        "return %preds : tensor<4x3xf32>",
        '} loc("train.py":10:1)')
    assert text.count("\n") == 7       # one line per op, no blank lines


def test_constants_of_every_dtype():
    text = print_graph(graph_constants())
    check_lines(
        text,
        "dense<[1.5, -0.0, 0.1, 1.0e-30]> : tensor<4xf32>",
        "dense<[[0x7FF0000000000000, 0xFFF0000000000000], [0x7FF8000000000000, 2.0]]> "
        ": tensor<2x2xf64>",
        "dense<[3, -4]> : tensor<2xi32>",
        "dense<7> : tensor<i64>",
        "dense<[true, false, true]> : tensor<3xi1>",
        "dense<1.0> : tensor<2x2xf32>",
        "dense<0x7FC00000> : tensor<3xf32>",
        "dense<> : tensor<0x2xf32>",
        "return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<4xf32>, tensor<2x2xf64>")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_floats_round_trip_exactly(dtype, rng):
    values = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-40, 40, 200),
                             [0.1, 1 / 3, 1e-45, 5e-324, -0.0, np.inf, -np.inf, np.nan]])
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
    text = print_dense(values)
    body = text[len("dense<["):text.index("]>")]
    for original, element in zip(values, body.split(", ")):
        if element.startswith("0x"):
            bits = int(element, 16)
            pack = "<I" if dtype is np.float32 else "<Q"
            back = np.frombuffer(struct.pack(pack, bits), dtype)[0]
        else:
            assert "." in element.split("e")[0], element      # MLIR needs a decimal point
            back = dtype(element)
        assert np.array_equal(np.array([back]).view(np.uint8),
                              np.array([original]).view(np.uint8)), (original, element)


def test_attribute_spelling():
    assert print_attr(True) == "true" and print_attr(False) == "false"
    assert print_attr(3) == "3 : i64"
    assert print_attr(1.5) == "1.5 : f64"
    assert print_attr(1e-05) == "1.0e-05 : f64"
    assert print_attr(float("inf")) == "0x7FF0000000000000 : f64"
    assert print_attr(float("-inf")) == "0xFFF0000000000000 : f64"
    assert print_attr((0, 1)) == "array<i64: 0, 1>"
    assert print_attr(()) == "array<i64>"
    assert print_attr(F32) == "f32" and print_attr(BOOL) == "i1"
    assert print_attr('a"b\\c\n') == '"a\\"b\\\\c\\0A"'
    assert print_attr(np.array([True, False])) == "dense<[true, false]> : tensor<2xi1>"
    check_lines(print_graph(graph_attributes()),
                "flag = true, off = false, count = 3 : i64, neg = -2 : i64, ratio = 1.5 : f64"
                ", tiny = 1.0e-05 : f64, big = 1.0e+300 : f64, inf = 0x7FF0000000000000 : f64"
                ", nan = 0x7FF8000000000000 : f64, zero = -0.0 : f64, axes = array<i64: 0, 1>"
                ', none_axes = array<i64>, dtype = i1, label = "say \\"hi\\"\\0A\\\\", '
                'empty = "", unit = unit, extra = dense<[1, 2]> : tensor<2xi64>}')


def test_weights_and_updates():
    text = print_graph(graph_weights_and_updates())
    check_lines(
        text,
        "func.func @step(%x: tensor<5x3xf32>, %dense.weight: tensor<5x3xf32> "
        '{gs.param = "dense.weight"}, %moment: tensor<5x3xf32> {gs.param = "moment"})',
        '%m = "gs.add"', '%w = "gs.add"(%dense.weight, %m)', '%y = "gs.mul"(%dense.weight, %x)',
        '"gs.assign"(%moment, %m) : (tensor<5x3xf32>, tensor<5x3xf32>) -> ()',
        '"gs.assign"(%dense.weight, %w) : (tensor<5x3xf32>, tensor<5x3xf32>) -> ()',
        "return %y : tensor<5x3xf32>")


def test_names_are_sanitised_and_unique_and_locs_escaped():
    text = print_graph(graph_odd_names_and_locs())
    check_lines(
        text,
        'func.func @"odd-name"(%a: tensor<f32>, %a_1: tensor<f32>, %0: tensor<f32>)',
        '%x_y = "gs.add"(%a, %a_1) : (tensor<f32>, tensor<f32>) -> tensor<f32> '
        'loc("dir/we\\"ird\\\\name.py":3:1)',
        '%_0 = "gs.mul"(%x_y, %0) : (tensor<f32>, tensor<f32>) -> tensor<f32> loc(unknown)',
        '%1 = "gs.cast"(%_0) {dtype = f64}',
        '%_1abc = "gs.exp"(%1)',
        '%a_2 = "gs.add"(%_1abc, %_1abc)',
        '%x_y_1 = "gs.iota"() {shape = array<i64: 2, 3>, axis = 1 : i64, dtype = i64} : '
        '() -> tensor<2x3xi64>',
        "return %a_2, %x_y_1 : tensor<f64>, tensor<2x3xi64>",
        "} loc(unknown)")


def test_graph_without_outputs_and_name_override():
    text = print_graph(graph_no_outputs(), name="renamed")
    check_lines(text, 'func.func @renamed(%p: tensor<2xf32> {gs.param = "p"}) -> () {',
                '"gs.assign"(%p, %1)', "  return", "}")


def test_undefined_value_is_printed_visibly():
    graph = graph_elementwise()
    stray = Value(TensorType((2,), F32), None, "stray")
    graph.ops.append(Op("gs.exp", (stray,), {}, None, None))
    graph.ops[-1].result = Value(stray.type, graph.ops[-1])
    assert '"gs.exp"(%undefined_stray)' in print_graph(graph)


# --------------------------------------------------------------------- real MLIR parsers

@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-22 is not on PATH (apt mlir-22-tools)")
@pytest.mark.parametrize("make", list(GRAPHS.values()), ids=list(GRAPHS))
def test_mlir_opt_accepts(make, tmp_path):
    path = tmp_path / "graph.mlir"
    graph = make()
    path.write_text(print_graph(graph))
    done = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "--mlir-print-debuginfo",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + "\n" + path.read_text()
    assert done.stdout.count('"gs.') == len(graph.ops) + len(graph.updates)


@pytest.mark.parametrize("make", list(GRAPHS.values()), ids=list(GRAPHS))
def test_xdsl_accepts(make):
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func
    from xdsl.parser import Parser
    context = Context(allow_unregistered=True)
    context.load_dialect(Builtin)
    context.load_dialect(Func)
    graph = make()
    module = Parser(context, print_graph(graph)).parse_module()
    func = module.body.block.first_op
    assert func.sym_name.data == (graph.name)
    assert len(list(func.body.block.ops)) == len(graph.ops) + len(graph.updates) + 1
