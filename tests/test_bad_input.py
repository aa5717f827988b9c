"""Bad input gets a clear Python exception of the kind numpy/MindSpore raise, naming the
problem (and, for graph errors, the user's line), never a silent wrong answer or a hang:
softmax axis out of range, repeated reduce axes, non-integer axes, shapes whose size overflows
int64, byte-swapped/int8/uint8 numpy arrays, ragged lists, grad of a function returning
None, GRAPHSPORE_NUM_THREADS out of bounds, and a Dense called directly in GRAPH_MODE."""
import inspect
import os

import numpy as np
import pytest

from graphspore import (GRAPH_MODE, PYNATIVE_MODE, GraphsporeError, Tensor, grad, jit, nn, ops,
                        set_context)
from graphspore.runtime import thread_pool

X = Tensor(np.ones((2, 3), np.float32))
THIS_FILE = os.path.basename(__file__)


def softmax_axis_3(x):
    return ops.softmax(x, 3)


def log_softmax_axis_minus_3(x):
    return ops.log_softmax(x, -3)


def sum_repeated(x):
    return x.sum((1, -1))


def sum_float_axis(x):
    return ops.sum(x, 1.5)


def broadcast_huge(x):
    return ops.broadcast_to(x, (2 ** 31, 2 ** 31, 2 ** 31, 2, 3))


@pytest.mark.parametrize("fn,kind,text", [
    (softmax_axis_3, ValueError, "axis 3 is out of range for rank 2"),
    (log_softmax_axis_minus_3, ValueError, "axis -3 is out of range for rank 2"),
    (sum_repeated, ValueError, "repeated axis"),
    (sum_float_axis, TypeError, "axis must be an int"),
    (broadcast_huge, ValueError, "more than the 2\\*\\*63 bytes"),
])
def test_bad_axes_and_shapes_raise_eagerly_and_compiled(fn, kind, text):
    with pytest.raises(kind, match=text):
        fn(X)
    with pytest.raises((kind, GraphsporeError), match=text) as info:
        jit(fn)(X)
    assert f"{THIS_FILE}:{inspect.getsourcelines(fn)[1] + 1}" in str(info.value)


def test_numpy_also_rejects_these():
    with pytest.raises(ValueError):
        np.sum(np.ones((2, 3)), axis=(1, -1))
    with pytest.raises(ValueError):                  # numpy.exceptions.AxisError
        np.sum(np.ones((2, 3)), axis=3)


def identity_twice(x):
    return x * 2


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.uint64])
def test_numpy_arrays_of_small_and_unsigned_ints_are_dtypes(dtype):
    array = np.arange(3).astype(dtype)
    out = jit(identity_twice)(array)
    assert out.asnumpy().dtype == dtype
    np.testing.assert_array_equal(out.asnumpy(), np.arange(3) * 2)


@pytest.mark.parametrize("dtype", [">f4", ">i8"])
def test_numpy_arrays_of_other_dtypes(dtype):
    array = np.arange(3).astype(dtype)
    tensor = Tensor(array)                           # Tensor converts (byte-swaps)
    np.testing.assert_array_equal(jit(identity_twice)(tensor).asnumpy(), np.arange(3) * 2)
    with pytest.raises(TypeError, match=f"numpy array of dtype {np.dtype(dtype).str}.*"
                                        f"pass Tensor\\(x\\)"):
        jit(identity_twice)(array)


def test_unsupported_dtypes_and_ragged_lists_are_named():
    with pytest.raises(TypeError, match="unsupported dtype complex64; graphspore computes in"):
        Tensor(np.ones(2, np.complex64))
    with pytest.raises(ValueError, match="nested lists are ragged"):
        Tensor([[1.0, 2.0], [3.0]])


def returns_nothing(x):
    x * 2


def test_grad_of_a_function_returning_none_names_it():
    for fn in (grad(returns_nothing), jit(grad(returns_nothing))):
        with pytest.raises(TypeError, match="returns_nothing\\(\\) returned None"):
            fn(X)


def test_thread_counts_are_bounded(monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_NUM_THREADS", "5000")
    with pytest.warns(RuntimeWarning, match="more than this process can use"):
        assert thread_pool.default_num_threads() == thread_pool.max_threads()
    assert thread_pool.max_threads() <= thread_pool.MAX_THREADS
    with pytest.raises(ValueError, match="between 1 and"):
        thread_pool.set_num_threads(5000)


def test_a_dense_called_directly_in_graph_mode_points_at_the_callers_line():
    dense = nn.Dense(3, 2)
    set_context(mode=GRAPH_MODE)
    try:
        with pytest.raises(ValueError, match="contracting dims") as info:
            line = inspect.currentframe().f_lineno + 1
            dense(Tensor(np.ones((4, 5), np.float32)))
    finally:
        set_context(mode=PYNATIVE_MODE)
    message = str(info.value)
    assert message.startswith(f"{__file__}:{line}:") and "Dense.construct" in message
    with pytest.raises(ValueError, match="contracting dims") as info:
        line = inspect.currentframe().f_lineno + 1
        jit(nn.Dense(3, 2))(Tensor(np.ones((4, 5), np.float32)))
    assert str(info.value).startswith(f"{__file__}:{line}:")
