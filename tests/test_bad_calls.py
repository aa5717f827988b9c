"""Bad calls at the public API level: wrong shapes, dtypes, arity, odd argument kinds,
non-contiguous or read-only arrays, NaN/inf and zero-size inputs. Each case either computes
exactly what numpy computes or raises a clear error that names the problem; none crashes.

Covers `graphspore.jit` functions, `grad`/`value_and_grad` objects and Cells in GRAPH_MODE.
Expected values always come from numpy.
"""
import inspect
import threading

import numpy as np
import pytest

from graphspore import (GRAPH_MODE, PYNATIVE_MODE, GraphsporeError, Parameter, Tensor, grad,
                        jit, nn, ops, set_context, value_and_grad)
from graphspore.runtime import ArgumentError

F32 = dict(rtol=2e-5, atol=2e-6)
THIS_FILE = "test_bad_calls.py"


def t(array, dtype=np.float32):
    return Tensor(np.asarray(array, dtype=dtype))


def body_line(fn):
    """Line number of the first `return` statement in `fn` (a function or jit object)."""
    lines, first = inspect.getsourcelines(getattr(fn, "fn", fn))
    return first + next(i for i, line in enumerate(lines) if line.strip().startswith("return"))


@pytest.fixture
def graph_mode():
    set_context(mode=GRAPH_MODE)
    try:
        yield
    finally:
        set_context(mode=PYNATIVE_MODE)


# ------------------------------------------------------------------ shared jit functions

@jit
def axpy(x, y):
    return x * 2.0 + y


@jit
def add_xy(x, y):
    return x + y


@jit
def unary_all(x):
    return ops.exp(x), ops.log(x), ops.sigmoid(x), ops.tanh(x), ops.sqrt(x)


@jit
def relu_of(x):
    return ops.relu(x)


@jit
def max_min(x, y):
    return ops.maximum(x, y), ops.minimum(x, y)


@jit
def reductions(x):
    return ops.sum(x), ops.amax(x), ops.sum(x, 1), ops.amax(x, 1)


@jit
def mm(a, b):
    return ops.matmul(a, b)


@jit
def divide(a, b):
    return a / b


@jit
def log_of(x):
    return ops.log(x)


@jit
def exp_of(x):
    return ops.exp(x)


def sum_xy(x, y):
    return ops.sum(x * y)


# ------------------------------------------------------------------ signatures and dtypes

def test_new_shape_after_old_shape_recompiles(rng):
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(
        np.float32)
    np.testing.assert_allclose(axpy(Tensor(a), Tensor(a)).asnumpy(), a * 2 + a, **F32)
    out = axpy(Tensor(b), Tensor(b))
    assert out.shape == (3,)
    np.testing.assert_allclose(out.asnumpy(), b * 2 + b, **F32)
    np.testing.assert_allclose(axpy(Tensor(a), Tensor(a)).asnumpy(), a * 2 + a, **F32)


def test_float64_inputs_get_their_own_signature(rng):
    a = rng.standard_normal((2, 3))
    axpy(t(a), t(a))                                   # float32 signature first
    out = axpy(Tensor(a), Tensor(a))
    assert out.asnumpy().dtype == np.float64
    np.testing.assert_allclose(out.asnumpy(), a * 2 + a, rtol=1e-12)


def test_mixed_float32_float64_promotes_to_float64(rng):
    a = rng.standard_normal((2, 3))
    out = add_xy(t(a), Tensor(a)).asnumpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, a.astype(np.float32).astype(np.float64) + a, rtol=1e-12)


def test_int_inputs_to_float_op_give_float32():
    x = np.array([1, -1, 0, 7], np.int32)
    out = exp_of(Tensor(x)).asnumpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.exp(x.astype(np.float32)), **F32)


def test_int_division_is_true_division_with_inf_for_zero():
    x = np.array([1, -1, 0, 7], np.int32)
    y = np.array([2, 0, 0, 4], np.int32)
    out = divide(Tensor(x), Tensor(y)).asnumpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = x.astype(np.float32) / y.astype(np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)       # 0.5, -inf, nan, 1.75


def test_bool_inputs_in_arithmetic():
    x, y = np.array([True, False, True]), np.array([True, True, False])
    out = axpy(Tensor(x), Tensor(y)).asnumpy()
    np.testing.assert_array_equal(out, x * 2.0 + y)


def test_bool_logic_ops_and_float_operand_rejected():
    @jit
    def both(x, y):
        return ops.logical_and(x, y), ops.logical_or(x, y)

    x, y = np.array([True, False, False]), np.array([True, True, False])
    conj, disj = both(Tensor(x), Tensor(y))
    np.testing.assert_array_equal(conj.asnumpy(), x & y)
    np.testing.assert_array_equal(disj.asnumpy(), x | y)
    with pytest.raises(GraphsporeError, match=r"logical_and: expected bool.*f32"):
        both(t([1.0, 0.0, 1.0]), Tensor(y))


def test_log_of_int_and_bool_inputs():
    x = np.array([1, -1, 0, 7], np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_allclose(log_of(Tensor(x)).asnumpy(), np.log(x.astype(np.float32)),
                                   equal_nan=True, **F32)
        b = np.array([True, False])
        np.testing.assert_array_equal(log_of(Tensor(b)).asnumpy(),
                                      np.log(b.astype(np.float32)))


# ------------------------------------------------------------------ arity and keywords

def test_too_few_arguments_names_the_missing_one():
    with pytest.raises(GraphsporeError, match=r"axpy\(\) missing 1 required argument: 'y'"):
        axpy(t([1.0]))


def test_too_many_arguments():
    with pytest.raises(GraphsporeError, match=r"axpy\(\) takes 2 positional arguments but 3"):
        axpy(t([1.0]), t([1.0]), t([1.0]))


def test_unexpected_keyword():
    with pytest.raises(GraphsporeError, match=r"unexpected keyword argument 'z'"):
        axpy(t([1.0]), t([1.0]), z=t([1.0]))


def test_calls_after_a_cached_one_are_still_checked():
    """Once a jit function has run on Tensors, later calls take its hot path; a call with
    another arity, a numpy array, another shape or a non-contiguous view must still be
    checked or recompiled, never run on the old program's assumptions."""
    fn = jit(sum_xy)
    x, y = t([1.0, 2.0]), t([3.0, 4.0])
    assert float(fn(x, y).asnumpy()) == 11.0
    with pytest.raises(TypeError, match=r"takes 2 positional arguments but 3"):
        fn(x, y, y)
    with pytest.raises(TypeError, match=r"missing 1"):
        fn(x)
    assert float(fn(np.array([1.0, 1.0], np.float32), y).asnumpy()) == 7.0
    assert float(fn(t([1.0, 2.0, 3.0]), t([1.0, 1.0, 1.0])).asnumpy()) == 6.0
    strided = Tensor(np.arange(8, dtype=np.float32))[::2]
    assert float(fn(strided, t([1.0, 1.0, 1.0, 1.0])).asnumpy()) == 12.0
    assert float(fn(x, y).asnumpy()) == 11.0


@pytest.mark.parametrize("wrap", ["jit", "grad"])
@pytest.mark.parametrize("count", [1, 3])
def test_arity_errors_are_type_errors_as_in_python(wrap, count):
    """Too few or too many arguments raise a TypeError, as calling the Python function would,
    whether the function is jitted or differentiated."""
    fn = jit(sum_xy) if wrap == "jit" else grad(sum_xy)
    with pytest.raises(TypeError, match=r"sum_xy\(\) (missing 1|takes 2)"):
        fn(*[t([1.0, 2.0])] * count)


def test_keyword_argument_binds_by_name():
    x, y = np.array([1.0, 2.0], np.float32), np.array([10.0, 20.0], np.float32)
    np.testing.assert_array_equal(axpy(Tensor(x), y=Tensor(y)).asnumpy(), x * 2 + y)
    np.testing.assert_array_equal(axpy(y=Tensor(y), x=Tensor(x)).asnumpy(), x * 2 + y)


# ------------------------------------------------------------------ non-tensor arguments

def test_python_list_is_a_constant_tensor():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = axpy(Tensor(a), [1.0, 2.0, 3.0]).asnumpy()
    np.testing.assert_array_equal(out, a * 2 + np.array([1.0, 2.0, 3.0], np.float32))


@pytest.mark.parametrize("bad, name", [("abc", "str"), (None, "NoneType")])
def test_string_or_none_in_math_is_a_clear_error(bad, name):
    with pytest.raises(GraphsporeError) as info:
        axpy(t([1.0, 2.0]), bad)
    message = str(info.value)
    assert "unsupported operand types for '+'" in message and name in message
    assert f"{THIS_FILE}:{body_line(axpy)}:" in message


def test_arbitrary_object_argument_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"argument 1: unsupported argument type object"):
        axpy(t([1.0]), object())


def test_set_argument_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"argument 1: unsupported argument type set"):
        axpy(t([1.0]), {"a", "b"})


def test_dict_argument_used_as_a_number_names_the_operands():
    with pytest.raises(GraphsporeError, match=r"unsupported operand types for '\+': tensor "
                                              r"\(tensor<1xf32>\) and dict"):
        axpy(t([1.0]), {"a": 1})


def test_python_nan_scalar_constant():
    x = np.array([1.0, 2.0], np.float32)
    for _ in range(2):
        out = axpy(Tensor(x), float("nan")).asnumpy()
        np.testing.assert_array_equal(out, x * 2 + np.float32("nan"))


# ------------------------------------------------------------------ numpy, layout, read-only

def test_numpy_arrays_passed_directly(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(axpy(a, b).asnumpy(), a * 2 + b, **F32)
    np.testing.assert_allclose(axpy(Tensor(a), b).asnumpy(), a * 2 + b, **F32)


@pytest.mark.parametrize("view", ["strided", "transposed"])
def test_non_contiguous_tensor(view):
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = b[:, ::2] if view == "strided" else b.T
    assert not v.flags.c_contiguous
    np.testing.assert_array_equal(axpy(Tensor(v), Tensor(v)).asnumpy(), v * 2 + v)


def test_non_contiguous_numpy_passed_directly():
    b = np.arange(24, dtype=np.float32).reshape(4, 6)
    v, w = b[::2, 1::2], b[1::2, ::2]
    np.testing.assert_array_equal(axpy(v, w).asnumpy(), v * 2 + w)
    m = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(mm(m.T, m).asnumpy(), m.T @ m, **F32)


def test_read_only_arrays():
    ro = np.arange(6, dtype=np.float32).reshape(2, 3)
    ro.flags.writeable = False
    np.testing.assert_array_equal(axpy(Tensor(ro), Tensor(ro)).asnumpy(), ro * 3)
    np.testing.assert_array_equal(axpy(ro, ro).asnumpy(), ro * 3)
    assert not ro.flags.writeable


# ------------------------------------------------------------------ NaN and inf

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1.0, 100.0, -100.0, 1e-3],
                   np.float32)


def test_nan_inf_through_unary_ops():
    got = [r.asnumpy() for r in unary_all(Tensor(SPECIAL))]
    x = SPECIAL.astype(np.float64)
    with np.errstate(all="ignore"):
        expected = [e.astype(np.float32) for e in (np.exp(x), np.log(x), 1 / (1 + np.exp(-x)),
                                                   np.tanh(x), np.sqrt(x))]
    for name, g, e in zip(["exp", "log", "sigmoid", "tanh", "sqrt"], got, expected):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(e), err_msg=name)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)


def test_log_of_negative_is_nan_and_of_zero_is_minus_inf():
    x = np.array([-1.0, -np.inf, 0.0, -0.0, 1.0], np.float32)
    with np.errstate(all="ignore"):
        expected = np.log(x)
    np.testing.assert_array_equal(log_of(Tensor(x)).asnumpy(), expected)


def test_division_by_zero_gives_signed_inf_and_nan():
    x = np.array([1.0, -1.0, 0.0, 2.0, np.inf], np.float32)
    y = np.array([0.0, 0.0, 0.0, -0.0, np.inf], np.float32)
    with np.errstate(all="ignore"):
        expected = x / y
    np.testing.assert_array_equal(divide(Tensor(x), Tensor(y)).asnumpy(), expected)


def test_maximum_minimum_propagate_nan():
    x = np.array([np.nan, 1.0, -np.inf, 2.0], np.float32)
    y = np.array([0.0, np.nan, np.inf, -np.inf], np.float32)
    hi, lo = max_min(Tensor(x), Tensor(y))
    np.testing.assert_array_equal(hi.asnumpy(), np.maximum(x, y))
    np.testing.assert_array_equal(lo.asnumpy(), np.minimum(x, y))


def test_relu_propagates_nan():
    x = np.array([np.nan, -1.0, 2.0, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(relu_of(Tensor(x)).asnumpy(), np.maximum(x, 0))


def test_nan_inf_through_reductions():
    m = np.array([[1, np.nan, 2], [np.inf, 1, 2], [-np.inf, 5, 1], [np.inf, -np.inf, 0]],
                 np.float32)
    with np.errstate(all="ignore"):
        expected = [m.sum(), m.max(), m.sum(1), m.max(1)]
    for g, e in zip(reductions(Tensor(m)), expected):
        np.testing.assert_array_equal(g.asnumpy(), e)


def test_nan_inf_through_matmul():
    a = np.array([[1, np.nan], [np.inf, 1], [0, 1], [-np.inf, 0]], np.float32)
    b = np.array([[1, 2, 0], [3, 4, 0]], np.float32)
    with np.errstate(all="ignore"):
        expected = a @ b
    np.testing.assert_array_equal(mm(Tensor(a), Tensor(b)).asnumpy(), expected)


def test_nan_inf_through_value_and_grad():
    vg = value_and_grad(sum_xy, (0, 1))
    x = np.array([np.nan, 2.0, 1.0], np.float32)
    y = np.array([1.0, np.inf, 3.0], np.float32)
    value, (gx, gy) = vg(Tensor(x), Tensor(y))
    np.testing.assert_array_equal(value.asnumpy(), np.sum(x * y))
    np.testing.assert_array_equal(gx.asnumpy(), y)
    np.testing.assert_array_equal(gy.asnumpy(), x)


# ------------------------------------------------------------------ shape errors in the body

def test_broadcast_mismatch_in_body_names_both_shapes_and_this_line():
    with pytest.raises(GraphsporeError) as info:
        add_xy(t(np.ones((2, 3))), t(np.ones(4)))
    message = str(info.value)
    assert "add" in message and "(2, 3)" in message and "(4,)" in message
    assert f"{THIS_FILE}:{body_line(add_xy)}:" in message


def test_matmul_mismatch_names_both_shapes_and_this_line():
    with pytest.raises(GraphsporeError) as info:
        mm(t(np.ones((2, 3))), t(np.ones((4, 5))))
    message = str(info.value)
    assert "matmul" in message and "2x3" in message and "4x5" in message
    assert f"{THIS_FILE}:{body_line(mm)}:" in message


def test_bad_reshape_names_shapes():
    @jit
    def to5(a):
        return ops.reshape(a, (5,))

    with pytest.raises(GraphsporeError) as info:
        to5(t(np.ones((2, 3))))
    message = str(info.value)
    assert "reshape" in message and "2x3" in message and "(5,)" in message
    assert f"{THIS_FILE}:{body_line(to5)}:" in message


# ------------------------------------------------------------------ gradients

# (the gradient with respect to a bool or int tensor is float32 zeros, not an error:
# test_mindspore_api.test_gradient_wrt_bool_or_int_tensor_is_float32_zeros)


def test_grad_position_out_of_range():
    with pytest.raises(ValueError, match=r"grad_position 5 is out of range.*2 arguments"):
        grad(sum_xy, grad_position=5)(t([1.0, 2.0]), t([1.0, 2.0]))


def test_grad_position_negative_or_not_int():
    with pytest.raises(ValueError, match=r"grad_position must be non-negative, got -1"):
        grad(sum_xy, grad_position=-1)
    with pytest.raises(TypeError, match=r"grad_position must be an int.*'a'"):
        grad(sum_xy, grad_position="a")


def test_has_aux_with_single_output_is_value_error():
    with pytest.raises(ValueError, match=r"has_aux=True requires .* at least two outputs"):
        grad(sum_xy, has_aux=True)(t([1.0, 2.0]), t([1.0, 2.0]))


def test_grad_too_few_arguments_names_missing():
    with pytest.raises(TypeError, match=r"sum_xy\(\) missing 1 .*'y'"):
        grad(sum_xy)(t([1.0, 2.0]))


def test_grad_with_numpy_inputs_and_new_shape():
    g = grad(sum_xy)
    x, y = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    np.testing.assert_array_equal(g(x, y).asnumpy(), y)
    y3 = np.array([5.0, 6.0, 7.0], np.float32)
    np.testing.assert_array_equal(g(Tensor(np.ones(3, np.float32)), Tensor(y3)).asnumpy(), y3)
    np.testing.assert_array_equal(g(Tensor(x), Tensor(y)).asnumpy(), y)


# ------------------------------------------------------------------ Parameters and set_data

def test_parameter_set_data_same_shape_uses_new_value():
    w = Parameter(t(np.ones(3)), name="w_same")

    @jit
    def scale(x):
        return x * w

    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(scale(Tensor(x)).asnumpy(), x)
    w.set_data(t(np.full(3, 2.0)))
    np.testing.assert_array_equal(scale(Tensor(x)).asnumpy(), x * 2)


def test_parameter_set_data_new_shape_raises_clearly_never_stale():
    w = Parameter(t(np.ones((2, 2))), name="w_resized")

    @jit
    def total(x):
        return ops.sum(w) + x

    np.testing.assert_array_equal(total(t(1.0)).asnumpy(), np.float32(5.0))
    w.set_data(t(np.ones((3, 3))))
    with pytest.raises(ArgumentError, match=r"'w_resized'.*\(2, 2\).*\(3, 3\)"):
        total(t(1.0))


def test_grad_weights_after_set_data_new_shape_recompiles():
    w = Parameter(t(np.ones((3, 3))), name="w_grad")
    gw = grad(lambda x: ops.sum(x * w), None, weights=w)
    x3 = np.arange(9, dtype=np.float32).reshape(3, 3)
    np.testing.assert_array_equal(gw(Tensor(x3)).asnumpy(), x3)
    w.set_data(t(np.ones((2, 2))))
    x2 = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_array_equal(gw(Tensor(x2)).asnumpy(), x2)


def test_parameter_function_too_few_arguments_after_warm_call():
    w = Parameter(t(np.ones(3)), name="w_few")

    @jit
    def scale_add(x, y):
        return x * w + y

    scale_add(t(np.ones(3)), t(np.ones(3)))
    with pytest.raises(GraphsporeError, match=r"missing 1 required argument: 'y'"):
        scale_add(t(np.ones(3)))


def test_parameter_function_too_many_arguments_after_warm_call():
    w = Parameter(t(np.ones(3)), name="w_many")

    @jit
    def scale_add(x, y):
        return x * w + y

    scale_add(t(np.ones(3)), t(np.ones(3)))
    with pytest.raises(GraphsporeError, match=r"takes 2 positional arguments but 3"):
        scale_add(t(np.ones(3)), t(np.ones(3)), t(np.ones(3)))


# ------------------------------------------------------------------ zero-size and rank-0

@pytest.mark.parametrize("shape", [(0,), (0, 3)])
def test_zero_size_elementwise(shape):
    z = np.zeros(shape, np.float32)
    out = axpy(Tensor(z), Tensor(z))
    assert out.shape == shape
    assert out.asnumpy().dtype == np.float32
    got = [r.asnumpy() for r in unary_all(Tensor(z))]
    assert all(g.shape == shape for g in got)


def test_zero_size_reductions_and_matmul():
    @jit
    def sums(a):
        return ops.sum(a), ops.sum(a, 0), ops.sum(a, 1)

    z = np.zeros((0, 3), np.float32)
    for g, e in zip(sums(Tensor(z)), [z.sum(), z.sum(0), z.sum(1)]):
        assert g.shape == e.shape
        np.testing.assert_array_equal(g.asnumpy(), e)
    a, b = np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)
    np.testing.assert_array_equal(mm(Tensor(a), Tensor(b)).asnumpy(), a @ b)


def test_zero_size_mean_is_nan_like_numpy():
    @jit
    def mean0(a):
        return ops.mean(a, 0)

    z = np.zeros((0, 3), np.float32)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = z.mean(0)
    np.testing.assert_array_equal(mean0(Tensor(z)).asnumpy(), expected)


def test_zero_size_amax_raises_like_eager_and_numpy():
    @jit
    def amax0(a):
        return ops.amax(a, 0)

    with pytest.raises(GraphsporeError, match=r"zero-size array") as info:
        amax0(t(np.zeros((0, 3))))
    assert "test_bad_calls.py" in str(info.value)


def test_rank0_tensors():
    @jit
    def poly(a, b):
        return a * a + b, ops.sum(a), ops.exp(a)

    a, b = np.float32(3.0), np.float32(-0.5)
    sq, s, e = poly(Tensor(a), Tensor(b))
    assert sq.shape == () and s.shape == () and e.shape == ()
    np.testing.assert_array_equal(sq.asnumpy(), a * a + b)
    np.testing.assert_array_equal(s.asnumpy(), a)
    np.testing.assert_allclose(e.asnumpy(), np.exp(a), **F32)
    np.testing.assert_array_equal(grad(lambda x: x * x)(Tensor(a)).asnumpy(), 2 * a)


# ------------------------------------------------------------------ Cells in GRAPH_MODE

class MatNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(t(np.arange(6).reshape(3, 2)), name="w")

    def construct(self, x):
        return ops.matmul(x, self.w)


class AddNet(nn.Cell):
    def construct(self, x, y):
        return x + y


def test_cell_graph_mode_new_shape_and_dtypes(graph_mode):
    net = MatNet()
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(net(Tensor(x)).asnumpy(), x @ w, **F32)
    np.testing.assert_allclose(net(Tensor(x[:2])).asnumpy(), x[:2] @ w, **F32)
    out = net(Tensor(x.astype(np.int32))).asnumpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x @ w, **F32)


def test_cell_graph_mode_errors(graph_mode):
    net = MatNet()
    with pytest.raises(GraphsporeError) as info:
        net(t(np.ones((2, 4))))
    assert "matmul" in str(info.value) and "2x4" in str(info.value)
    assert f"{THIS_FILE}:{body_line(MatNet.construct)}:" in str(info.value)
    with pytest.raises(GraphsporeError, match=r"construct\(\) takes 2 positional arguments"):
        net(t(np.ones((2, 3))), t(np.ones((2, 3))))
    with pytest.raises(GraphsporeError, match=r"unexpected keyword argument 'z'"):
        net(t(np.ones((2, 3))), z=1)
    with pytest.raises(GraphsporeError) as info:
        AddNet()(t(np.ones((2, 3))), t(np.ones((3, 2))))
    assert "(2, 3)" in str(info.value) and "(3, 2)" in str(info.value)
    assert f"{THIS_FILE}:{body_line(AddNet.construct)}:" in str(info.value)


def test_cell_graph_mode_set_data_new_shape(graph_mode):
    net = MatNet()
    x = np.ones((4, 3), np.float32)
    net(Tensor(x))
    net.w.set_data(t(np.ones((3, 5))))
    with pytest.raises(ArgumentError, match=r"'w'.*\(3, 2\).*\(3, 5\)"):
        net(Tensor(x))


def test_cell_graph_mode_nan_inputs(graph_mode):
    x = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    y = np.array([1.0, -np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(invalid="ignore"):
        expected = x + y
    np.testing.assert_array_equal(AddNet()(Tensor(x), Tensor(y)).asnumpy(), expected)


# ------------------------------------------------------------------ concurrency

def test_four_threads_share_one_jit_function():
    w = Parameter(t(np.linspace(-1, 1, 12).reshape(4, 3)), name="w_threads")

    @jit
    def layer(x, b):
        return ops.tanh(ops.matmul(x, w)) + b

    wn = np.linspace(-1, 1, 12).reshape(4, 3).astype(np.float32)
    failures, errors = [], []

    def worker(k):
        r = np.random.default_rng(k)
        try:
            for i in range(50):
                n = 1 + (i + k) % 4                        # several signatures interleaved
                x = r.standard_normal((n, 4)).astype(np.float32)
                b = r.standard_normal(3).astype(np.float32)
                out = layer(Tensor(x), Tensor(b)).asnumpy()
                if out.shape != (n, 3) or not np.allclose(out, np.tanh(x @ wn) + b,
                                                          rtol=1e-5, atol=1e-5):
                    failures.append((k, i))
        except Exception as error:      # reported by the main thread below
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert failures == []
