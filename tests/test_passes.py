"""Passes: each simplify rule, folding, CSE and DCE as input graph -> CHECK lines on the printed
output, with the reference interpreter's results unchanged; the verifier. More pass tests are
.mlir files (tests/mlir/, run by test_mlir_files.py); the pipeline and the dump switch are in
test_pipeline.py."""

import numpy as np
import pytest

from graphspore.ir import Builder, DType, Graph, Loc, TensorType, Value, at_loc, building
from graphspore.ir import ops
from graphspore.ir.ops import OPS
from graphspore.ir.passes.simplify import RULES, simplify
from graphspore.ir.printer import print_graph

from filecheck import check_lines
from graphspore.ir.verify import VerifyError, verify

F32, F64, I32, BOOL = DType.f32, DType.f64, DType.i32, DType.bool


class Param:
    def __init__(self, name):
        self.name = name


def build(inputs, body, name="f", weights=()):
    """A verified graph from `body(builder, *values) -> outputs`; inputs are (name, shape,
    dtype) and weights (Param, shape, dtype)."""
    graph = Graph(name, loc=Loc("model.py", 1, 0))
    builder = Builder(graph)
    with building(builder), at_loc(Loc("model.py", 2, 4)):
        values = [builder.input(TensorType(s, d), n) for n, s, d in inputs]
        values += [builder.bound_input(p, TensorType(s, d), p.name) for p, s, d in weights]
        graph.outputs = list(body(builder, *values))
    verify(graph)
    return graph



def evaluate(graph, arrays):
    """The reference interpreter: outputs, then updated weights (a loop over the references)."""
    env = dict(zip(graph.inputs, arrays))
    for op in graph.ops:
        with np.errstate(all="ignore"):
            data = OPS[op.name].reference(*[env[v] for v in op.operands], **op.attrs)
        env[op.result] = np.asarray(data, dtype=op.result.dtype.np)
    return [env[v] for v in graph.outputs] + [env[v] for _, v in graph.updates]


def random_inputs(graph, rng):
    out = []
    for v in graph.inputs:
        if v.dtype.is_float:
            data = rng.uniform(0.1, 3.0, v.shape) * rng.choice([-1, 1], v.shape)
        elif v.dtype.is_bool:
            data = rng.integers(0, 2, v.shape).astype(bool)
        else:
            data = rng.integers(-5, 6, v.shape)
        out.append(np.asarray(data, dtype=v.dtype.np))
    return out


def simplified(graph, rng):
    """simplify(graph), checked: verified, input untouched, same interpreter results."""
    before = print_graph(graph)
    result = simplify(graph)
    assert result is not graph
    assert print_graph(graph) == before, "simplify modified its input"
    verify(result)
    assert [v.type for v in result.outputs] == [v.type for v in graph.outputs]
    for _ in range(3):
        arrays = random_inputs(graph, rng)
        for want, got in zip(evaluate(graph, arrays), evaluate(result, arrays)):
            assert want.dtype == got.dtype and want.shape == got.shape
            # Exact: rules are identities on the reference (pow(x, 0.5) vs sqrt agree here).
            np.testing.assert_array_equal(got, want)
    return result, print_graph(result)


X = ("x", (2, 3), F32)
B = ("c", (2, 3), BOOL)


def _xx(b, x):
    return [x]


# (id, inputs, body, CHECK lines in order, strings that must not appear)
RULE_CASES = [
    ("add_zero", [X], lambda b, x: [ops.add(x, 0.0)], ["return %x :"], ["gs.add"]),
    ("zero_add", [X], lambda b, x: [ops.add(0.0, x)], ["return %x :"], ["gs.add"]),
    ("add_zero_broadcasts", [("x", (3,), F32)],
     lambda b, x: [ops.add(x, ops.constant(np.zeros((2, 3), np.float32)))],
     ['"gs.broadcast_to"(%x) {shape = array<i64: 2, 3>} : (tensor<3xf32>) -> tensor<2x3xf32>'],
     ["gs.add"]),
    ("sub_zero", [X], lambda b, x: [ops.sub(x, 0.0)], ["return %x :"], ["gs.sub"]),
    ("mul_one", [X], lambda b, x: [ops.mul(x, 1.0)], ["return %x :"], ["gs.mul"]),
    ("one_mul", [X], lambda b, x: [ops.mul(1.0, x)], ["return %x :"], ["gs.mul"]),
    ("int_mul_zero", [("i", (4,), I32)], lambda b, i: [ops.mul(i, 0)],
     ['"gs.constant"() {value = dense<0> : tensor<4xi32>}'], ["gs.mul"]),
    ("int_mul_zero_large", [("i", (40, 40), I32)], lambda b, i: [ops.mul(0, i)],
     ["dense<0> : tensor<i32>", '"gs.broadcast_to"(%0) {shape = array<i64: 40, 40>}'],
     ["gs.mul"]),
    ("float_mul_zero_kept", [X], lambda b, x: [ops.mul(x, 0.0)], ['"gs.mul"(%x, %0)'], []),
    ("div_one", [X], lambda b, x: [ops.div(x, 1.0)], ["return %x :"], ["gs.div"]),
    ("neg_neg", [X], lambda b, x: [ops.neg(ops.neg(x))], ["return %x :"], ["gs.neg"]),
    ("not_not", [B], lambda b, c: [ops.logical_not(ops.logical_not(c))], ["return %c :"],
     ["gs.logical_not"]),
    ("pow_one", [X], lambda b, x: [ops.pow(x, 1.0)], ["return %x :"], ["gs.pow"]),
    ("pow_two", [X], lambda b, x: [ops.pow(x, 2.0)], ['"gs.mul"(%x, %x)'], ["gs.pow"]),
    ("pow_half", [("x", (2, 3), F64)], lambda b, x: [ops.pow(ops.abs(x), 0.5)],
     ['"gs.sqrt"(%0)'], ["gs.pow"]),
    ("pow_zero", [X], lambda b, x: [ops.pow(x, 0.0)],
     ["dense<1.0> : tensor<2x3xf32>"], ["gs.pow", "gs.broadcast_to"]),
    ("max_same", [X], lambda b, x: [ops.maximum(x, x), ops.minimum(x, x)],
     ["return %x, %x :"], ["gs.maximum", "gs.minimum"]),
    ("cast_same", [X], lambda b, x: [ops.cast(x, dtype=F32)], ["return %x :"], ["gs.cast"]),
    ("reshape_same", [X], lambda b, x: [ops.reshape(x, shape=(2, 3))], ["return %x :"],
     ["gs.reshape"]),
    ("reshape_reshape", [X], lambda b, x: [ops.reshape(ops.reshape(x, shape=(6,)),
                                                       shape=(3, 2))],
     ['"gs.reshape"(%x) {shape = array<i64: 3, 2>}'], ["array<i64: 6>"]),
    ("transpose_identity", [X], lambda b, x: [ops.transpose(x, perm=(0, 1))],
     ["return %x :"], ["gs.transpose"]),
    ("broadcast_same", [X], lambda b, x: [ops.broadcast_to(x, shape=(2, 3))],
     ["return %x :"], ["gs.broadcast_to"]),
    ("broadcast_broadcast", [("x", (3,), F32)],
     lambda b, x: [ops.broadcast_to(ops.broadcast_to(x, shape=(2, 3)), shape=(4, 2, 3))],
     ['"gs.broadcast_to"(%x) {shape = array<i64: 4, 2, 3>}'], ["array<i64: 2, 3>"]),
    ("broadcast_scalar_constant", [],
     lambda b: [ops.broadcast_to(ops.constant(2.5), shape=(4, 4))],
     ['"gs.constant"() {value = dense<2.5> : tensor<4x4xf32>}'], ["gs.broadcast_to"]),
    ("select_true", [X, ("y", (2, 3), F32)],
     lambda b, x, y: [ops.select(ops.constant(True), x, y)], ["return %x :"], ["gs.select"]),
    ("select_false", [X, ("y", (3,), F32)],
     lambda b, x, y: [ops.select(ops.constant(False), x, y)],
     ['"gs.broadcast_to"(%y)'], ["gs.select"]),
    ("select_same", [B, X], lambda b, c, x: [ops.select(c, x, x)], ["return %x :"],
     ["gs.select"]),
    ("sum_no_axes", [X], lambda b, x: [ops.reduce_sum(x, axes=(), keep_dims=False)],
     ["return %x :"], ["gs.reduce_sum"]),
    ("max_no_axes", [X], lambda b, x: [ops.reduce_max(x, axes=(), keep_dims=True)],
     ["return %x :"], ["gs.reduce_max"]),
    ("stop_gradient", [X], lambda b, x: [ops.exp(ops.stop_gradient(x))], ['"gs.exp"(%x)'],
     ["gs.stop_gradient"]),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule(case, rng):
    _, inputs, body, checks, absent = case
    _, text = simplified(build(inputs, body), rng)
    check_lines(text, *checks)
    for word in absent:
        assert word not in text, f"{word!r} left in\n{text}"


def test_every_rule_names_a_registered_op():
    assert set(RULES) <= set(OPS)


def test_constant_folding(rng):
    def body(b, x):
        k = ops.exp(ops.add(ops.constant(np.arange(6, dtype=np.float32).reshape(2, 3)), 1.0))
        big = ops.add(ops.constant(np.ones(2000, np.float32)), 1.0)       # > 1024: kept
        return [ops.mul(x, k), ops.reduce_sum(big, axes=(0,), keep_dims=False)]
    result, text = simplified(build([X], body), rng)
    check_lines(text, '%1 = "gs.constant"() {value = dense<[[2.718282, 7.3890557, 20.085537], '
                '[54.59815, 148.41316, 403.42877]]> : tensor<2x3xf32>}',
                '%2 = "gs.constant"() {value = dense<1.0> : tensor<2000xf32>}',
                '%3 = "gs.add"(%2, %0)', '"gs.mul"(%x, %1)', '"gs.reduce_sum"(%3)')
    assert text.count('"gs.exp"') == 0 and text.count('"gs.add"') == 1


def test_cse_compares_attributes_exactly(rng):
    def body(b, x):
        return [ops.reduce_sum(x, axes=(0,), keep_dims=False),
                ops.reduce_sum(x, axes=(0,), keep_dims=True),
                ops.reduce_sum(x, axes=(0,), keep_dims=False),
                ops.mul(x, ops.constant(np.float32(-0.0))),
                ops.mul(x, ops.constant(np.float32(0.0)))]
    result, text = simplified(build([X], body), rng)
    assert text.count('"gs.reduce_sum"') == 2
    assert "dense<-0.0>" in text and "dense<0.0>" in text      # -0.0 != 0.0 bitwise
    outs = result.outputs
    assert outs[0] is outs[2] and outs[0] is not outs[1] and outs[3] is not outs[4]


def test_dead_code_and_updates_kept(rng):
    w = Param("w")

    def body(b, x, weight):
        ops.exp(ops.log(x))                                  # dead
        b.assign(w, ops.sub(weight, ops.mul(x, 0.5)))       # reaches only the update
        return [ops.tanh(x)]
    graph = build([X], body, weights=[(w, (2, 3), F32)])
    result, text = simplified(graph, rng)
    assert "gs.exp" not in text and "gs.log" not in text
    check_lines(text, '{gs.param = "w"}', '"gs.mul"(%x,', '"gs.sub"(%w,', '"gs.tanh"(%x)',
                '"gs.assign"(%w, %', "return")
    assert result.bindings[result.inputs[1]] is w and result.weights == [result.inputs[1]]
    assert result.updates[0][0] is result.inputs[1]


def test_locations_and_names_are_kept(rng):
    def body(b, x):
        with at_loc(Loc("net.py", 7, 2)):
            h = ops.tanh(x)
            h.name = "hidden"
        with at_loc(Loc("net.py", 8, 2)):
            y = ops.pow(h, 2.0)
            y.name = "squared"
        return [ops.mul(y, 1.0)]
    result, text = simplified(build([X], body), rng)
    check_lines(text, '%hidden = "gs.tanh"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> '
                'loc("net.py":7:3)', '%squared = "gs.mul"(%hidden, %hidden) : '
                '(tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32> loc("net.py":8:3)',
                "return %squared", '} loc("model.py":1:1)')


def test_unchanged_graph_is_still_a_new_graph(rng):
    graph = build([X], lambda b, x: [ops.tanh(x)])
    result, text = simplified(graph, rng)
    assert result.ops[0] is not graph.ops[0] and text == print_graph(graph)


# ------------------------------------------------------------------------------ verifier

def test_verifier_catches_use_before_def():
    graph = build([X], lambda b, x: [ops.tanh(ops.exp(x))])
    graph.ops.reverse()
    with pytest.raises(VerifyError, match=r"gs\.tanh \(op #0\): operand #0 .* used before"):
        verify(graph)
    assert "model.py:2:5" in _message(graph)


def test_verifier_catches_wrong_result_type():
    graph = build([X], lambda b, x: [ops.exp(x)])
    graph.ops[0].result.type = TensorType((3, 2), F32)
    with pytest.raises(VerifyError, match=r"gs\.exp .*result type is tensor<3x2xf32>, but .* "
                                          r"give tensor<2x3xf32>"):
        verify(graph)


@pytest.mark.parametrize("breakage, message", [
    (lambda g: setattr(g.ops[0], "name", "gs.nonsense"), "unknown op name 'gs.nonsense'"),
    (lambda g: g.outputs.append(Value(TensorType((1,), F32))), "output #2"),
    (lambda g: g.inputs.append(g.inputs[0]), "appears twice"),
    (lambda g: g.ops.append(g.ops[0]), "defined twice"),
    (lambda g: g.updates.append((g.inputs[1], g.ops[0].result)), "%w: tensor<2x3xf32> is "
                                                                 "updated twice"),
    (lambda g: g.updates.__setitem__(0, (g.inputs[1], g.ops[2].result)),
     "update of %w: tensor<2x3xf32>: weight is tensor<2x3xf32>, new value is tensor<3xf32>"),
    (lambda g: g.updates.__setitem__(0, (g.inputs[0], g.ops[0].result)), "not a bound weight"),
    (lambda g: g.ops[0].attrs.update(bogus=1), "type inference failed"),
])
def test_verifier_catches(breakage, message):
    w = Param("w")

    def body(b, x, weight):
        b.assign(w, ops.add(weight, x))
        return [ops.exp(x), ops.reduce_sum(x, axes=(0,), keep_dims=False)]
    graph = build([X], body, weights=[(w, (2, 3), F32)])
    breakage(graph)
    assert message in _message(graph)


def _message(graph):
    with pytest.raises(VerifyError) as info:
        verify(graph)
    return str(info.value)
