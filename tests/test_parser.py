"""The IR parser: every graph the printer emits parses back to an equal graph (the op table's
graphs and VJP graphs, the printer's example graphs, the graph stages of the tutorials and of
a train step), and bad text raises ParseError at its line and column."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphspore import pipeline
from graphspore.ir import Builder, DType, Graph, TensorType, building
from graphspore.ir.parser import ParseError, parse_attributes, parse_file, parse_graph
from graphspore.ir.printer import print_attrs, print_graph
from graphspore.ir.verify import verify

import test_op_table as table
import test_printer as printed

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds"
GRAPH_STAGES = ("parse", "autodiff", "index_checks", "simplify")


def same_attr(a, b) -> bool:
    """Attribute equality that tells -0.0 from 0.0, nan from nan by bits, and arrays by
    dtype, shape and bytes."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b and math.copysign(1, a) == math.copysign(1, b)
                                       or math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same_attr, a, b))
    return type(a) is type(b) and a == b


def assert_equal_graphs(original: Graph, parsed: Graph) -> None:
    """Same name, location, input types and bindings, ops (name, attributes, operands, result
    types, location), outputs and updates; names, and regions' contents, as printed (the
    printer sanitises names; the text equality covers every region)."""
    assert print_graph(parsed) == print_graph(original)
    assert (parsed.name, parsed.loc) == (original.name, original.loc)
    env = {}
    assert len(parsed.inputs) == len(original.inputs)
    for old, new in zip(original.inputs, parsed.inputs):
        assert old.type == new.type
        env[old] = new
        assert (old in original.bindings) == (new in parsed.bindings)
    assert len(parsed.ops) == len(original.ops)
    for old, new in zip(original.ops, parsed.ops):
        assert (old.name, old.loc, len(old.regions)) == (new.name, new.loc, len(new.regions))
        assert [v.type for v in old.results] == [v.type for v in new.results]
        assert [env[v] for v in old.operands] == list(new.operands), old
        assert old.attrs.keys() == new.attrs.keys(), old
        assert all(same_attr(old.attrs[k], new.attrs[k]) for k in old.attrs), (old, new.attrs)
        env.update(zip(old.results, new.results))
    assert [env[v] for v in original.outputs] == parsed.outputs
    assert [(env[w], env[v]) for w, v in original.updates] == parsed.updates
    verify(parsed)


def round_trip(graph: Graph) -> None:
    assert_equal_graphs(graph, parse_graph(print_graph(graph)))


# ------------------------------------------------------------------------- graph sources

@pytest.mark.parametrize("row", table.ROWS, ids=lambda r: r.id)
def test_op_table_graphs_round_trip(row, rng):
    arrays = table._arrays(row, rng)
    graph = Graph("row")
    with building(Builder(graph)) as b:
        graph.outputs = [table._emit(row, [b.input(TensorType(a.shape, DType.from_numpy(
            a.dtype))) for a in arrays])]
    round_trip(graph)
    if row.grad:
        out_shape = graph.outputs[0].shape
        round_trip(table._vjp_graph(row, arrays, out_shape)[0])


@pytest.mark.parametrize("make", [f for n, f in printed.GRAPHS.items()
                                  if n != "graph_attributes"], ids=lambda f: f.__name__)
def test_printer_example_graphs_round_trip(make):
    round_trip(make())


def test_every_attribute_kind_round_trips():
    attrs = printed.graph_attributes().ops[0].attrs      # one of every kind the printer has
    parsed = parse_attributes(print_attrs(attrs).strip())
    assert parsed.keys() == attrs.keys()
    assert all(same_attr(attrs[k], parsed[k]) for k in attrs), parsed


def test_train_step_stages_round_trip():
    """The digits MLP step (value_and_grad over the optimizer's parameters in one @jit):
    parse through simplify, without compiling."""
    from graphspore import jit, nn, value_and_grad
    model = nn.SequentialCell(nn.Dense(64, 32), nn.ReLU(), nn.Dense(32, 10))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = nn.SGD(model.trainable_params(), learning_rate=0.1)

    def forward(x, y):
        return loss_fn(model(x), y)
    grad_fn = value_and_grad(forward, None, optimizer.parameters)

    @jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss
    args = (TensorType((16, 64), DType.f32), TensorType((16,), DType.i32))
    c = pipeline.Compilation(step._source(), args, {})
    for name in ("parse", "index_checks", "simplify"):
        pipeline.run(c, (name,))
        round_trip(c.graph)
    assert c.graph.updates and c.graph.bindings


@pytest.mark.parametrize("seed", ["000_autodiff.txt", "002_function_grad.txt"])
def test_tutorial_dumps_parse_back(seed, tmp_path):
    """The seed tutorials run unchanged (`graphspore run`), their graph stages dumped."""
    env = dict(os.environ, GRAPHSPORE_DUMP=",".join(GRAPH_STAGES),
               GRAPHSPORE_DUMP_DIR=str(tmp_path / "dumps"),
               GRAPHSPORE_CACHE_DIR=os.environ.get("GRAPHSPORE_CACHE_DIR", str(tmp_path)))
    done = subprocess.run([sys.executable, "-m", "graphspore", "run", str(SEEDS / seed)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    # Seed 002 ends on the error its page shows (test_seed_tutorials checks the same line).
    ends_as_documented = "002_function_grad.txt:93: TypeError: loss() missing 2 required"
    assert done.returncode == 0 or ends_as_documented in done.stderr, done.stderr
    files = sorted((tmp_path / "dumps").glob("*.mlir"))
    assert len(files) >= 3, files
    for path in files:
        text = path.read_text()
        graph = parse_file(path)
        assert print_graph(graph) == text, path.name
        verify(graph)


# -------------------------------------------------------------------------------- errors

GOOD = """func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>) {
  %y = "gs.exp"(%x) : (tensor<3xf32>) -> tensor<3xf32> loc("m.py":2:5)
  return %y : tensor<3xf32>
} loc("m.py":1:1)
"""


@pytest.mark.parametrize("old, new, words", [
    ('"gs.exp"(%x)', '"gs.exp"(%z)', "bad.mlir:2:17: error: %z is not defined"),
    ('"gs.exp"', '"gs.expo"', "unknown op 'gs.expo'"),
    ("-> tensor<3xf32> loc", "-> tensor<4xf32> loc", "gs.exp gives tensor<3xf32>, but the "
                                                      "text says tensor<4xf32>"),
    ("(%x) :", "(%x, %x) :", "operand types of gs.exp do not match"),
    ("%y = ", "%x = ", "%x is defined twice"),
    ("return %y", "return", "expected the returned values"),
    ("tensor<3xf32>) {", "tensor<3xf8E4M3>) {", "unknown element type 'f8E4M3'"),
    ("@f(", "@f{", "expected '('"),
    ("m.py\":2:5)", "m.py\":2:5) ?", "unexpected character '?'"),
])
def test_bad_text_names_the_problem_and_its_place(old, new, words):
    assert old in GOOD
    with pytest.raises(ParseError) as info:
        parse_graph(GOOD.replace(old, new, 1), "bad.mlir")
    assert words in str(info.value) and "bad.mlir:" in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["three_x_or_minus_x", "cube_or_square", "many_results",
                                  "early_return"])
def test_region_ops_round_trip(name):
    """Tensor `if`s (region ops with several results, `%r#k` uses) and their gradients
    (grad of grad, so regions inside regions), parse through simplify."""
    import test_control_flow as control
    from graphspore import grad, jit
    fn = getattr(control, name)
    arity = fn.__code__.co_argcount
    args = tuple(TensorType((), DType.f32) for _ in range(arity))
    for compiled in (jit(fn), grad(grad(fn))):
        c = pipeline.Compilation(compiled._source(), args, {})
        for stage in ("parse", "autodiff", "index_checks", "simplify"):
            pipeline.run(c, (stage,))
            assert any(op.regions for op in c.graph.ops) or stage == "simplify"
            round_trip(c.graph)


def test_region_op_types_are_checked():
    text = GOOD.replace('%y = "gs.exp"(%x)', '%y = "gs.if"(%x) ({\n  ^bb0(%a: tensor<3xf32>):\n'
                        '    %b = "gs.exp"(%a) : (tensor<3xf32>) -> tensor<3xf32>\n'
                        '    "gs.yield"(%b) : (tensor<3xf32>) -> ()\n  }, {\n'
                        '    "gs.yield"(%x) : (tensor<3xf32>) -> ()\n  })')
    with pytest.raises(ParseError, match=r"<text>:2:8: error: if: the condition must be a "
                                         r"one-element bool tensor"):
        parse_graph(text)
