"""Python syntax inside compiled functions, as MindSpore's static-graph syntax page lists it:
Tensor constants, functional item assignment (with gradients), iteration over tensors,
builtins over tensors, attribute assignment, dict results, and non-Tensor jit arguments.
Expected values come from numpy and closed form; gradients from float64 central differences."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Parameter, Tensor, jit, nn, ops
from tests.numeric import central_difference

F32 = dict(rtol=1e-5, atol=1e-6)


def run(fn, *args):
    return jit(fn)(*args)


# ------------------------------------------------------------------ constants in graphs

def test_tensor_constructor_builds_constants_inside_a_graph(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    table = np.arange(6, dtype=np.float32).reshape(2, 3)

    def f(x):
        return (x + Tensor(2.0) + Tensor(table) + Tensor([1, 2, 3], ms.float32)
                + ms.Tensor(np.float32(0.5)) + ms.tensor([[1.0], [2.0]], ms.float32))

    np.testing.assert_allclose(run(f, Tensor(x)).asnumpy(),
                               x + 2 + table + np.array([1, 2, 3]) + 0.5 + [[1.0], [2.0]],
                               **F32)


def test_tensor_constructor_of_a_running_value_casts_it(rng):
    x = rng.standard_normal((3,)).astype(np.float32) * 4
    out = run(lambda x: Tensor(x, ms.int32), Tensor(x)).asnumpy()
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x.astype(np.int32))


def test_item_and_asnumpy_of_values_known_while_parsing():
    def f(x):
        scale = Tensor(np.array([3.0], np.float32)).item()
        offset = (Tensor([1.0, 2.0]) * 2).asnumpy()[1]         # folded: 4.0
        return x * scale + offset + int(Tensor(7)) + float(Tensor(0.25))

    np.testing.assert_allclose(run(f, Tensor(np.ones(2, np.float32))).asnumpy(),
                               np.full(2, 3.0 + 4.0 + 7 + 0.25), **F32)


def test_item_of_a_running_tensor_is_a_clear_error():
    with pytest.raises(GraphsporeError, match=r"item\(\) needs the tensor's value"):
        run(lambda x: x.item(), Tensor(np.ones(1, np.float32)))


# ------------------------------------------------------------------- item assignment

def _setitem_cases():
    """(index, value shape): basic, negative steps, lists, constant masks."""
    return [
        ((slice(1, 3),), (2, 3)),
        ((1,), (3,)),
        ((slice(None), 1), (4,)),
        ((slice(None, None, -2),), (2, 3)),
        ((0, slice(0, 3, 2)), ()),
        (([0, 3],), (2, 3)),
        ((Ellipsis, -1), (1,)),
    ]


@pytest.mark.parametrize("index, vshape", _setitem_cases())
def test_setitem_matches_numpy_and_its_gradient_matches_finite_differences(index, vshape, rng):
    x = rng.standard_normal((4, 3))
    v = rng.standard_normal(vshape)
    w = rng.standard_normal((4, 3))

    def reference(x, v):
        y = x.copy()
        y[index] = v
        return y

    def f(x, v):
        y = x * 1.0
        y[index] = v
        return y

    np.testing.assert_allclose(run(f, Tensor(x), Tensor(v)).asnumpy(), reference(x, v))

    def loss(x, v):
        y = x * 1.0
        y[index] = v * v
        return (y * Tensor(w)).sum()

    gx, gv = ms.grad(loss, (0, 1))(Tensor(x), Tensor(v))
    np.testing.assert_allclose(gx.asnumpy(), central_difference(
        lambda a: (reference(a, v * v) * w).sum(), x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gv.asnumpy(), central_difference(
        lambda b: (reference(x, b * b) * w).sum(), v), rtol=1e-6, atol=1e-7)


def test_masked_assignment_with_a_running_mask_and_its_gradient(rng):
    x = rng.standard_normal((3, 4))

    def f(x):
        y = x * 2
        y[y > 0] = 0.5
        return y

    np.testing.assert_allclose(run(f, Tensor(x)).asnumpy(), np.where(2 * x > 0, 0.5, 2 * x))
    g = ms.grad(lambda x: f(x).sum())(Tensor(x)).asnumpy()
    np.testing.assert_allclose(g, central_difference(
        lambda a: np.where(2 * a > 0, 0.5, 2 * a), x), atol=1e-7)


def test_rows_assigned_through_an_integer_tensor_last_write_wins(rng):
    x = rng.standard_normal((4, 2))
    v = rng.standard_normal((3, 2))
    index = np.array([2, -1, 2], np.int64)

    def f(x, i, v):
        y = x + 0.0
        y[i] = v
        return y

    expected = x.copy()
    expected[index] = v                      # numpy: the last write to row 2 wins
    np.testing.assert_allclose(run(f, Tensor(x), Tensor(index), Tensor(v)).asnumpy(),
                               expected)
    gv = ms.grad(lambda x, i, v: (f(x, i, v) ** 2).sum(), 2)(Tensor(x), Tensor(index),
                                                              Tensor(v)).asnumpy()
    np.testing.assert_allclose(gv, central_difference(
        lambda b: _rows(x, index, b) ** 2, v), rtol=1e-6, atol=1e-7)


def _rows(x, index, v):
    y = x.copy()
    y[index] = v
    return y


def test_augmented_item_assignment_and_parameter_item_updates():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.ones(3, np.float32)), name="w")

        def construct(self, x):
            x[1:] += 10.0
            self.w[0] = x[0]
            return x

    net = Net()
    out = jit(net)(Tensor(np.array([4.0, 2.0, 3.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [4.0, 12.0, 13.0])
    np.testing.assert_array_equal(net.w.asnumpy(), [4.0, 1.0, 1.0])


def test_setitem_shape_mismatch_is_a_value_error_at_the_users_line():
    def f(x):
        x[0:2] = Tensor(np.ones(5, np.float32))
        return x

    with pytest.raises(GraphsporeError, match=r"test_graph_syntax.py:\d+.*cannot assign a "
                                              r"value of shape \[5\]"):
        run(f, Tensor(np.zeros((3, 3), np.float32)))


# ---------------------------------------------------------------- iteration over tensors

def test_for_comprehensions_zip_and_enumerate_unroll_over_the_first_axis(rng):
    x = rng.standard_normal((3, 2)).astype(np.float32)
    v = rng.standard_normal(3).astype(np.float32)

    def f(x, v):
        total = x[0] * 0
        for row in x:
            total = total + row
        scaled = [row * s for row, s in zip(x, v)]
        weighted = tuple(i * e for i, e in enumerate(v))
        return total, scaled[2], weighted[1], sum(x), max(v), min(v)

    total, scaled, weighted, summed, top, bottom = run(f, Tensor(x), Tensor(v))
    np.testing.assert_allclose(total.asnumpy(), x.sum(0), **F32)
    np.testing.assert_allclose(scaled.asnumpy(), x[2] * v[2], **F32)
    np.testing.assert_allclose(weighted.asnumpy(), v[1], **F32)
    np.testing.assert_allclose(summed.asnumpy(), x.sum(0), **F32)
    assert top.asnumpy() == v.max() and bottom.asnumpy() == v.min()


def test_iterating_a_rank_0_tensor_is_a_type_error():
    def f(x):
        return [e for e in x]

    with pytest.raises(GraphsporeError, match="iteration over a 0-d tensor"):
        run(f, Tensor(np.float32(1.0)))


def test_any_all_map_filter_type_and_tuple_of_numpy(rng):
    v = np.array([0.0, -1.0, 2.0], np.float32)

    def f(v):
        doubled = tuple(map(lambda e: e * 2, v))
        kept = tuple(filter(lambda k: k % 2, (1, 2, 3, 4)))
        consts = tuple(np.array([1.0, 2.0, 3.0]))
        is_tensor = type(v) is Tensor
        return any(v > 1), all(v > -2), all(v > 0), doubled[2], kept, consts[1], is_tensor

    any_, all_, none_, doubled, kept, const, is_tensor = run(f, Tensor(v))
    assert bool(any_.asnumpy()) and bool(all_.asnumpy()) and not bool(none_.asnumpy())
    assert doubled.asnumpy() == 4.0 and kept == (1, 3) and const == 2.0 and is_tensor is True


# --------------------------------------------------------------- attributes and results

def test_attribute_assignment_in_construct():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.count = 0
            self.w = Parameter(Tensor(np.ones(2, np.float32)), name="w")

        def construct(self, x):
            self.count = self.count + 1          # a Python attribute: set while parsing
            self.w = self.w * 3                  # a Parameter: updated in place
            self.scaled = x * 2                  # a tensor: seen by later reads
            return self.scaled + self.count

    net = Net()
    out = jit(net)(Tensor(np.array([1.0, 2.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [3.0, 5.0])
    np.testing.assert_array_equal(net.w.asnumpy(), [3.0, 3.0])
    assert net.count == 1


def test_a_compiled_function_returns_a_dict(rng):
    x = rng.standard_normal(3).astype(np.float32)

    def f(x):
        return {"double": x * 2, "pair": (x + 1, "tag")}

    out = run(f, Tensor(x))
    assert list(out) == ["double", "pair"]
    np.testing.assert_allclose(out["double"].asnumpy(), 2 * x, **F32)
    np.testing.assert_allclose(out["pair"][0].asnumpy(), x + 1, **F32)
    assert out["pair"][1] == "tag"


def test_functions_cells_primitives_and_dicts_as_jit_arguments(rng):
    x = rng.standard_normal(4).astype(np.float32)

    @jit
    def apply(fn, x, table):
        return fn(x) * table["scale"] + table["shift"]

    table = {"scale": Tensor(np.float32(2.0)), "shift": 1.0}
    np.testing.assert_allclose(apply(ops.exp, Tensor(x), table).asnumpy(),
                               np.exp(x) * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(apply(nn.ReLU(), Tensor(x), table).asnumpy(),
                               np.maximum(x, 0) * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(apply(ops.Abs(), Tensor(x), table).asnumpy(),
                               np.abs(x) * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(apply(ops.exp, Tensor(x), {"scale": 3.0, "shift": 0.0})
                               .asnumpy(), np.exp(x) * 3, rtol=1e-6)
    np.testing.assert_allclose(apply(ops.Abs(), Tensor(x), table).asnumpy(),
                               np.abs(x) * 2 + 1, rtol=1e-6)
    assert len(apply._programs) == 4         # per function object, per Primitive class and
    #                                          attributes (a second ops.Abs() is the same), per
    #                                          dict signature


def test_non_tensor_arguments_key_the_cache_by_value_and_type():
    @jit
    def f(x, n, flag):
        return x * n if flag else x

    x = Tensor(np.ones(2, np.float32))
    assert f(x, 2, True).asnumpy().tolist() == [2.0, 2.0]
    assert f(x, 3, True).asnumpy().tolist() == [3.0, 3.0]
    assert f(x, 3, False).asnumpy().tolist() == [1.0, 1.0]
    assert f(x, 3.0, True).asnumpy().tolist() == [3.0, 3.0]
    assert len(f._programs) == 4


def test_a_graph_mode_cell_takes_functions_cells_primitives_and_dicts():
    class Apply(nn.Cell):
        def construct(self, x, fn, table):
            return fn(x) * table["k"]

    x = np.array([-1.0, 2.0], np.float32)
    net = Apply()
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        relu = net(Tensor(x), ops.relu, {"k": 3.0}).asnumpy()
        tanh = net(Tensor(x), nn.Tanh(), {"k": 1.0}).asnumpy()
        absolute = net(Tensor(x), ops.Abs(), {"k": Tensor(np.float32(2.0))}).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(relu, np.maximum(x, 0) * 3, **F32)
    np.testing.assert_allclose(tanh, np.tanh(x), **F32)
    np.testing.assert_allclose(absolute, np.abs(x) * 2, **F32)
