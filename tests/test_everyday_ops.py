"""MindSpore's everyday Primitives and functional helpers that had no home: Inv, Invert,
Reciprocal, Softsign, Mod, FloorDiv, FloorMod, TruncateMod, Rint, Round, Identity, CumSum,
Split, Unique, topk(sorted=False), ops.partial, tuple_div and friends, jit_class. Expected
values from numpy and the examples of MindSpore's API pages; each runs eagerly and compiled."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Tensor, jit, nn, ops
from graphspore.ops import operations as P

X = np.array([-4.0, 5.0, 6.0, -2.5, 0.5], np.float32)
Y = np.array([3.0, 2.0, 3.0, 2.0, -2.0], np.float32)


def both(fn, *arrays):
    """fn's results eagerly and compiled (as numpy arrays); they must agree."""
    eager = fn(*[Tensor(a) for a in arrays])
    compiled = jit(fn)(*[Tensor(a) for a in arrays])
    eager, compiled = np.asarray(eager.asnumpy()), np.asarray(compiled.asnumpy())
    np.testing.assert_allclose(eager, compiled, rtol=1e-6)
    return eager


@pytest.mark.parametrize("primitive, expected", [
    (P.Mod, np.fmod(X, Y)),                  # MindSpore's example: [-4, 5, 6] % [3, 2, 3]
    (P.TruncateMod, np.fmod(X, Y)),
    (P.FloorMod, np.remainder(X, Y)),
    (P.FloorDiv, np.floor_divide(X, Y)),
])
def test_binary_primitives_follow_their_rounding_rule(primitive, expected):
    np.testing.assert_allclose(both(lambda x, y: primitive()(x, y), X, Y), expected, rtol=1e-6)


def test_mod_of_the_documented_example():
    out = ops.Mod()(Tensor(np.array([-4.0, 5.0, 6.0], np.float32)),
                    Tensor(np.array([3.0, 2.0, 3.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [-1.0, 1.0, 0.0])


def test_integer_mod_keeps_the_sign_of_the_dividend():
    a = np.array([-7, 7, -7, 7, 0], np.int32)
    b = np.array([3, 3, -3, -3, 5], np.int32)
    np.testing.assert_array_equal(both(lambda x, y: ops.Mod()(x, y), a, b), np.fmod(a, b))
    np.testing.assert_array_equal(both(lambda x, y: ops.FloorMod()(x, y), a, b),
                                  np.remainder(a, b))


@pytest.mark.parametrize("primitive, expected", [
    (P.Inv, 1 / X), (P.Reciprocal, 1 / X), (P.Softsign, X / (1 + np.abs(X))),
    (P.Rint, np.rint(X)), (P.Round, np.round(X)), (P.Identity, X),
])
def test_unary_primitives(primitive, expected):
    np.testing.assert_allclose(both(lambda x: primitive()(x), X), expected, rtol=1e-6)


def test_invert_is_bitwise_not():
    a = np.array([0, 5, -3, 2 ** 30], np.int32)
    np.testing.assert_array_equal(both(lambda x: ops.Invert()(x), a), np.invert(a))
    flags = np.array([True, False])
    np.testing.assert_array_equal(both(lambda x: ops.Invert()(x), flags), ~flags)


def test_cumsum_primitive_exclusive_and_reverse():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(both(lambda t: ops.CumSum()(t, 1), x), np.cumsum(x, 1))
    exclusive_reverse = np.cumsum(x[:, ::-1], 1)[:, ::-1] - x
    np.testing.assert_array_equal(both(lambda t: ops.CumSum(True, True)(t, 1), x),
                                  exclusive_reverse)


def test_split_primitive_gives_equal_pieces_and_refuses_uneven_ones():
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    pieces = jit(lambda t: ops.Split(1, 3)(t))(Tensor(x))
    for got, want in zip(pieces, np.split(x, 3, axis=1)):
        np.testing.assert_array_equal(got.asnumpy(), want)
    with pytest.raises(GraphsporeError, match="not divisible by output_num=4"):
        ops.Split(1, 4)(Tensor(x))


def test_unique_eagerly_matches_the_documented_example_and_in_a_graph_needs_known_values():
    y, idx = ops.Unique()(Tensor(np.array([1, 2, 5, 2]), ms.int32))
    assert y.asnumpy().tolist() == [1, 2, 5] and idx.asnumpy().tolist() == [0, 1, 2, 1]
    assert y.dtype == ms.int32 and idx.dtype == ms.int32

    def known(x):
        values, index = ops.Unique()(Tensor(np.array([3, 1, 3, 2], np.int32)))
        return x + values.sum(), index

    total, index = jit(known)(Tensor(np.int32(1)))
    assert int(total.asnumpy()) == 7 and index.asnumpy().tolist() == [2, 0, 2, 1]
    with pytest.raises(GraphsporeError, match="number of distinct values"):
        jit(lambda x: ops.Unique()(x))(Tensor(np.array([1, 2], np.int32)))


def test_topk_unsorted_keeps_input_order():
    x = np.array([[1, 5, 3, 9, 2], [7, 0, 7, 1, 8]], np.float32)
    for fn in (lambda t: ops.topk(t, 3, sorted=False), jit(lambda t: ops.topk(t, 3,
                                                                              sorted=False))):
        values, indices = fn(Tensor(x))
        top = np.sort(np.argsort(-x, axis=1, kind="stable")[:, :3], axis=1)
        np.testing.assert_array_equal(indices.asnumpy(), top)
        np.testing.assert_array_equal(values.asnumpy(), np.take_along_axis(x, top, 1))


def test_partial_binds_tensors_and_constants_inside_a_compiled_function():
    def scaled_add(a, b, scale):
        return (a + b) * scale

    @jit
    def f(x, y):
        add_x = ops.partial(scaled_add, x)
        return add_x(y, 2.0)

    x, y = np.ones(3, np.float32), np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(f(Tensor(x), Tensor(y)).asnumpy(), (x + y) * 2)
    np.testing.assert_array_equal(ops.partial(scaled_add, Tensor(x))(Tensor(y), 3.0)
                                  .asnumpy(), (x + y) * 3)


def test_tuple_and_scalar_helpers_of_ops_functional():
    @jit
    def f(x):
        half = ops.tuple_div(x.shape, (2, 1))
        n = ops.shape_mul(half)
        return x.reshape(ops.tuple_setitem(x.shape, 0, ops.scalar_mul(2, 2))) * n

    out = f(Tensor(np.ones((4, 3), np.float32)))
    assert out.shape == (4, 3) and float(out.asnumpy()[0, 0]) == 6.0
    assert ops.tuple_len((1, 2, 3)) == 3 and ops.tuple_reversed((1, 2)) == (2, 1)
    assert ops.scalar_floordiv(-7, 2) == -4 and ops.scalar_lt(1, 2) is True
    with pytest.raises(ValueError, match="5 is not divisible by 2"):
        ops.tuple_div((5, 4), (2, 2))


def test_jit_class_instances_built_from_tensors_inside_construct():
    @ms.jit_class
    class Affine:
        def __init__(self, weight, bias):
            self.weight, self.bias = weight, bias

        def apply(self, x):
            return x * self.weight + self.bias

    class Net(nn.Cell):
        def construct(self, x, w):
            return Affine(w, 1.0).apply(x)

    x, w = np.array([1.0, 2.0], np.float32), np.array([3.0, -1.0], np.float32)
    np.testing.assert_array_equal(jit(Net())(Tensor(x), Tensor(w)).asnumpy(), x * w + 1)
    with pytest.raises(TypeError, match="decorate a class"):
        ms.jit_class(lambda: None)
