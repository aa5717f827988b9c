"""vjp_graph(sens=True): explicit output cotangents (MindSpore's sens_param) instead of ones.

Expected values are closed-form derivatives in float64.
"""
import numpy as np

from graphspore.ir import ops
from graphspore.ir.core import Builder, Graph, building, inline_graph
from graphspore.ir.interpreter import run
from graphspore.ir.passes.autodiff import vjp_graph
from graphspore.ir.types import DType, TensorType
from graphspore.ir.verify import verify

F64 = DType.f64


class Param:
    """A host object standing for a Parameter (what a bound input is bound to)."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def asnumpy(self):
        return self.value


def _graph(shapes, body, weights=()):
    g = Graph("f")
    with building(Builder(g)) as b:
        xs = [b.input(TensorType(s, F64), f"x{i}") for i, s in enumerate(shapes)]
        ws = [b.bound_input(p, TensorType(p.value.shape, F64), p.name) for p in weights]
        g.outputs = list(body(*xs, *ws))
    verify(g)
    return g


def test_each_output_gets_its_own_cotangent():
    g = _graph([(3,), (3,)], lambda x, y: (x * y, ops.sin(x)))
    grad = vjp_graph(g, [0, 1], sens=True)
    verify(grad)
    assert [v.type for v in grad.args] == [TensorType((3,), F64)] * 4
    rng = np.random.default_rng(0)
    x, y, s1, s2 = (rng.standard_normal(3) for _ in range(4))
    out = run(grad, [x, y, s1, s2])
    np.testing.assert_allclose(out[0], x * y, rtol=1e-14)
    np.testing.assert_allclose(out[2], s1 * y + s2 * np.cos(x), rtol=1e-13)
    np.testing.assert_allclose(out[3], s1 * x, rtol=1e-13)


def test_without_sens_the_seed_is_ones():
    g = _graph([(3,), (3,)], lambda x, y: (x * y, ops.sin(x)))
    x, y = np.array([0.5, -1.0, 2.0]), np.array([3.0, 0.25, -2.0])
    out = run(vjp_graph(g, [0]), [x, y])
    np.testing.assert_allclose(out[2], y + np.cos(x), rtol=1e-13)


def test_has_aux_takes_one_sens_for_the_first_output():
    g = _graph([(2, 2)], lambda x: (ops.reduce_sum(x * x), x + 1.0))
    grad = vjp_graph(g, [0], has_aux=True, sens=True)
    assert [v.type for v in grad.args] == [TensorType((2, 2), F64), TensorType((), F64)]
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    out = run(grad, [x, np.array(-3.0)])
    np.testing.assert_allclose(out[2], -3.0 * 2 * x, rtol=1e-14)


def test_an_output_that_is_an_input_passes_its_sens_through():
    g = _graph([(2,)], lambda x: (x, x * 2.0))
    s1, s2 = np.array([1.5, -2.0]), np.array([0.25, 4.0])
    out = run(vjp_graph(g, [0], sens=True), [np.array([7.0, 8.0]), s1, s2])
    np.testing.assert_allclose(out[2], s1 + 2 * s2, rtol=1e-14)


def test_non_float_output_takes_a_sens_that_is_ignored():
    g = _graph([(3,)], lambda x: (x * x, ops.greater(x, ops.constant(np.array(0.0)))))
    grad = vjp_graph(g, [0], sens=True)
    assert grad.args[2].type == TensorType((3,), DType.bool)
    x, s = np.array([1.0, -2.0, 3.0]), np.array([2.0, 0.5, -1.0])
    out = run(grad, [x, s, np.array([True, False, True])])
    np.testing.assert_allclose(out[2], 2 * x * s, rtol=1e-14)


def test_sens_inputs_follow_the_weights():
    w = Param("w", np.array([2.0, -1.0]))
    g = _graph([(2,)], lambda x, w: (x * w,), weights=[w])
    grad = vjp_graph(g, [0, 1], sens=True)
    assert grad.inputs[1] in grad.bindings and grad.inputs[2] not in grad.bindings
    x, s = np.array([3.0, 5.0]), np.array([0.5, -4.0])
    out = run(grad, [x, s])                    # args only: the weight comes from its binding
    np.testing.assert_allclose(out[1], s * w.value, rtol=1e-14)
    np.testing.assert_allclose(out[2], s * x, rtol=1e-14)


def test_sens_graph_differentiates_again():
    """h(x, s) = sum(vjp_x(x**3; s) * w) = sum(3 x^2 s w): dh/dx = 6 x s w, dh/ds = 3 x^2 w."""
    g = _graph([(3,)], lambda x: (x ** 3,))
    first = vjp_graph(g, [0], sens=True)
    w = np.array([1.0, -2.0, 0.5])
    h = Graph("h")
    with building(Builder(h)) as b:
        x, s = b.input(TensorType((3,), F64)), b.input(TensorType((3,), F64))
        h.outputs = [ops.reduce_sum(inline_graph(first, [x, s])[1] * ops.constant(w))]
    x, s = np.array([0.5, -1.5, 2.0]), np.array([2.0, 3.0, -1.0])
    out = run(vjp_graph(h, [0, 1]), [x, s])
    np.testing.assert_allclose(out[1], 6 * x * s * w, rtol=1e-13)
    np.testing.assert_allclose(out[2], 3 * x ** 2 * w, rtol=1e-13)
