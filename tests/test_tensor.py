"""Tensor and Parameter: construction, dtype inference and promotion, MindSpore's repr,
operators and methods against numpy, host access and in-place Parameter updates."""
import operator
import pickle

import numpy as np
import pytest

import graphspore as mindspore
from graphspore import Parameter, Tensor

F32 = dict(rtol=2e-5, atol=2e-6)


# ------------------------------------------------------------------------ construction

@pytest.mark.parametrize("data, dtype", [
    (1.0, mindspore.float32), (1, mindspore.int64), (True, mindspore.bool_),
    ([1.0, 2.0], mindspore.float32), ([1, 2], mindspore.int64), ([1, 2.5], mindspore.float32),
    ([True, False], mindspore.bool_), ([[1, 2], [3, 4]], mindspore.int64),
    (np.array([1.0]), mindspore.float64), (np.array([1.0], np.float32), mindspore.float32),
    (np.array([1], np.int32), mindspore.int32), (np.array([True]), mindspore.bool_),
    (np.float64(2.0), mindspore.float64),
])
def test_dtype_inference(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.asnumpy(), np.asarray(data))



def test_tensor_function_is_tensor_constructor():
    """`mindspore.tensor(input_data, dtype)` is a function taking Tensor's arguments; its
    documented example: `tensor([1, 2, 3])` then `tensor(x.asnumpy(), dtype=ms.float32)` inside
    @jit prints [1. 2. 3.]."""
    assert callable(mindspore.tensor) and not isinstance(mindspore.tensor, type)
    x = mindspore.tensor([1, 2, 3])
    assert isinstance(x, Tensor) and x.dtype == mindspore.int64
    y = mindspore.tensor(np.array([1, 2, 3]), dtype=mindspore.float32)
    assert y.dtype == mindspore.float32
    np.testing.assert_array_equal(y.asnumpy(), np.array([1.0, 2.0, 3.0], np.float32))

    @mindspore.jit
    def double(v):
        return v * mindspore.tensor(2.0, mindspore.float32)
    np.testing.assert_array_equal(double(y).asnumpy(), np.array([2.0, 4.0, 6.0], np.float32))


def test_explicit_dtype_and_copy():
    source = np.random.randn(5, 3)
    t = Tensor(source, mindspore.float32)
    assert t.dtype == mindspore.float32 and t.shape == (5, 3)
    source[0, 0] = 100.0                          # the tensor owns a copy
    assert t.asnumpy()[0, 0] != 100.0
    assert Tensor(t, mindspore.int32).dtype == mindspore.int32
    assert Tensor([1, 2], dtype=mindspore.float64).dtype == mindspore.float64


def test_attributes():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3), 2, 6, 2)
    assert isinstance(t.shape, tuple)
    assert t.ir_type.dtype.name == "f32" and str(t.ir_type) == "tensor<2x3xf32>"
    assert t.__gs_tensor__ and t.__gs_value__().data.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(t), t.asnumpy())
    np.testing.assert_array_equal(t.T.asnumpy(), t.asnumpy().T)
    assert Tensor(2.5).item() == 2.5 and float(Tensor([3.0])) == 3.0 and int(Tensor(7)) == 7
    assert bool(Tensor(True)) and not bool(Tensor([0]))
    with pytest.raises(ValueError):
        bool(Tensor([1, 2]))
    with pytest.raises(TypeError):
        len(Tensor(1.0))


def test_unsupported_inputs_raise_clearly():
    with pytest.raises(TypeError, match="supported"):
        Tensor(np.array(["a"]))
    with pytest.raises(AttributeError, match="complex64 is not supported"):
        mindspore.complex64  # noqa: B018
    with pytest.raises(TypeError):
        Tensor({"a": 1})


def test_dtype_names():
    assert [str(d) for d in (mindspore.float32, mindspore.float64, mindspore.int32,
                             mindspore.int64, mindspore.bool_)] == [
        "Float32", "Float64", "Int32", "Int64", "Bool"]
    assert mindspore.dtype.float32 is mindspore.float32
    assert pickle.loads(pickle.dumps(mindspore.int32)) is mindspore.int32


# --------------------------------------------------------------------------- promotion

B = Tensor([True, False])
F = Tensor([1.0, 2.0])
I = Tensor([1, 2])
I32 = Tensor(np.array([1, 2], np.int32))
D = Tensor(np.array([1.0, 2.0]))


@pytest.mark.parametrize("make, dtype", [
    (lambda: 1 - B, mindspore.int64),
    (lambda: F * B, mindspore.float32),
    (lambda: 1.0 - B, mindspore.float32),
    (lambda: I / I, mindspore.float32),
    (lambda: I32 + 1, mindspore.int32),
    (lambda: I32 + I, mindspore.int64),
    (lambda: I * 1.5, mindspore.float32),
    (lambda: F + D, mindspore.float64),
    (lambda: F * 2, mindspore.float32),
    (lambda: D * 2.0, mindspore.float64),
    (lambda: B + B, mindspore.bool_),
    (lambda: F < 1.5, mindspore.bool_),
    (lambda: I ** 2, mindspore.int64),
])
def test_promotion(make, dtype):
    assert make().dtype == dtype


# ------------------------------------------------------------------------------- repr

def test_repr_scalars():
    assert repr(Tensor(1.0)) == "Tensor(shape=[], dtype=Float32, value= 1)"
    assert repr(Tensor(0.9142851)) == "Tensor(shape=[], dtype=Float32, value= 0.914285)"
    assert repr(Tensor(1)) == "Tensor(shape=[], dtype=Int64, value= 1)"
    assert repr(Tensor(True)) == "Tensor(shape=[], dtype=Bool, value= True)"
    assert repr(Tensor(1.0e-7)) == "Tensor(shape=[], dtype=Float32, value= 1e-07)"


def test_repr_vectors():
    assert repr(Tensor([1.0, -2.0])) == \
        "Tensor(shape=[2], dtype=Float32, value= [ 1.00000000e+00, -2.00000000e+00])"
    assert repr(Tensor([1, 2, 3])) == "Tensor(shape=[3], dtype=Int64, value= [1, 2, 3])"
    assert repr(Tensor([1, -10])) == "Tensor(shape=[2], dtype=Int64, value= [  1, -10])"
    assert repr(Tensor([True, False])) == "Tensor(shape=[2], dtype=Bool, value= [ True, False])"
    long = repr(Tensor(np.ones(13, np.float32)))
    assert long.count("\n") == 1 and long.split("\n")[1].startswith("  1.00000000e+00]")


def test_repr_matrix_matches_tutorial_layout():
    row = [6.56869709e-02, 5.37334494e-02, 3.01467031e-01]
    text = repr(Tensor(np.array([row] * 2, np.float32)))
    line = "[ 6.56869709e-02,  5.37334494e-02,  3.01467031e-01]"
    assert text == f"Tensor(shape=[2, 3], dtype=Float32, value=\n[{line},\n {line}])"
    grads = (Tensor(np.array([row], np.float32)), Tensor(np.array(row, np.float32)))
    assert repr(grads) == ("(Tensor(shape=[1, 3], dtype=Float32, value=\n"
                           f"[{line}]), Tensor(shape=[3], dtype=Float32, value= {line}))")


def test_repr_summarises_large_axes():
    text = repr(Tensor(np.arange(64).reshape(8, 8)))
    assert text.splitlines()[1] == "[[ 0,  1,  2 ...  5,  6,  7],"
    assert " ...\n" in text and text.endswith("[56, 57, 58 ... 61, 62, 63]])")


def test_str_is_numpy():
    assert str(Tensor([1.0, 2.0])) == str(np.array([1.0, 2.0], np.float32))
    assert f"{Tensor(1.0)}" == "1.0" and f"{Tensor(0.5):.2f}" == "0.50"


def test_parameter_repr_and_naming():
    p = Parameter(Tensor([1.0, 2.0]), name="p")
    assert repr(p) == "Parameter (name=p, shape=(2,), dtype=Float32, requires_grad=True)"
    assert str(p) == repr(p) and p.__gs_parameter__ and p.__gs_tensor__
    assert Parameter(np.zeros(2), requires_grad=False).name == "Parameter"


# --------------------------------------------------------------------------- operators

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
          operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("fn", BINARY, ids=lambda f: f.__name__)
def test_binary_operators_against_numpy(fn, rng):
    a = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2.0, (4,)).astype(np.float32)
    for x, y in ((Tensor(a), Tensor(b)), (Tensor(a), 1.5), (1.5, Tensor(b))):
        expect = fn(np.asarray(x, np.float32) if isinstance(x, Tensor) else np.float32(x),
                    np.asarray(y, np.float32) if isinstance(y, Tensor) else np.float32(y))
        np.testing.assert_allclose(fn(x, y).asnumpy(), expect, **F32)


def test_other_operators(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).asnumpy(), a @ b, **F32)
    np.testing.assert_allclose((-Tensor(a)).asnumpy(), -a)
    np.testing.assert_allclose(abs(Tensor(a)).asnumpy(), np.abs(a))
    np.testing.assert_allclose((Tensor(a) // 0.5).asnumpy(), a // 0.5, **F32)
    np.testing.assert_allclose((Tensor(a) % 0.5).asnumpy(), a % 0.5, **F32)
    np.testing.assert_allclose((b + Tensor(b)).asnumpy(), 2 * b)       # ndarray + Tensor
    m, n = Tensor([True, False, True]), Tensor([True, True, False])
    assert (m & n).tolist() == [True, False, False]
    assert (m | n).tolist() == [True, True, True]
    assert (m ^ n).tolist() == [False, True, True]
    assert (~m).tolist() == [False, True, False]
    assert (Tensor([1, 2]) == None) is False  # noqa: E711
    assert {Tensor(1.0): 1}                        # hashable by identity


# ----------------------------------------------------------------------------- methods

def test_methods_against_numpy(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = Tensor(a)
    checks = [
        (t.sum(), a.sum()), (t.sum(axis=1), a.sum(1)), (t.sum(1, keepdims=True),
                                                        a.sum(1, keepdims=True)),
        (t.mean(), a.mean()), (t.mean(axis=(0, 2)), a.mean((0, 2))),
        (t.max(), a.max()), (t.min(axis=-1), a.min(-1)), (t.argmax(axis=2), a.argmax(2)),
        (t.reshape(6, 4), a.reshape(6, 4)), (t.reshape((4, -1)), a.reshape(4, -1)),
        (t.view(24), a.reshape(24)), (t.transpose(2, 0, 1), a.transpose(2, 0, 1)),
        (t.transpose(), a.transpose()), (t.expand_dims(1), a[:, None]),
        (Tensor(a[:, :1]).squeeze(1), a[:, 0]), (t.abs(), np.abs(a)), (t.exp(), np.exp(a)),
        (t.abs().log(), np.log(np.abs(a))), (t.abs().sqrt(), np.sqrt(np.abs(a))),
        (t.astype(mindspore.int32), a.astype(np.int32)), (t.sin(), np.sin(a)),
        (t.cos(), np.cos(a)),
    ]
    for got, expect in checks:
        np.testing.assert_allclose(got.asnumpy(), expect, **F32)
    assert t.astype(mindspore.float64).dtype == mindspore.float64


def test_indexing(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    t = Tensor(a)
    for index in (1, -1, (1, 2), slice(1, 3), (slice(None), 2), (Ellipsis, slice(0, 5, 2)),
                  (None, 0)):
        np.testing.assert_array_equal(t[index].asnumpy(), a[index])
    np.testing.assert_array_equal(t[Tensor(2)].asnumpy(), a[2])
    assert [row.shape for row in t] == [(5,)] * 4
    t[0] = 7.0
    assert t.asnumpy()[0].tolist() == [7.0] * 5


# -------------------------------------------------------------------------- Parameter

def test_parameter_updates_in_place():
    p = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="w")
    buffer = p._array
    assert buffer.ctypes.data % 64 == 0 and buffer.flags.c_contiguous and buffer.flags.writeable
    p.set_data(Tensor(np.ones((2, 3))))
    assert p._array is buffer and p.dtype == mindspore.float32
    assert p.asnumpy().tolist() == [[1.0] * 3] * 2
    p.assign_value(Tensor(np.full((2, 3), 2.0, np.float32)))
    assert p._array is buffer and float(p.asnumpy()[1, 2]) == 2.0
    with pytest.raises(ValueError, match="shape"):
        p.assign_value(Tensor([1.0]))
    p.set_data(Tensor(np.zeros(4, np.float32)))          # a new shape gets a new buffer
    assert p.shape == (4,) and p._array.ctypes.data % 64 == 0
    q = pickle.loads(pickle.dumps(p))
    assert q.name == "w" and q.shape == (4,)
    assert p.clone().name == "w" and p.clone()._array is not p._array


_X = np.array([[0.5, -1.25, 2.0, 3.5], [-0.75, 1.5, -2.25, 0.25], [1.0, 0.0, -0.5, 4.0]],
              np.float32)
FORWARDED_METHODS = [   # (method, args, numpy of x): MindSpore's Tensor method = ops function
    ("std", (1,), lambda x: x.std(1)),
    ("var", (0,), lambda x: x.var(0)),
    ("prod", (1,), lambda x: x.prod(1)),
    ("cumsum", (1,), lambda x: x.cumsum(1)),
    ("tile", ((2, 1),), lambda x: np.tile(x, (2, 1))),
    ("round", (), np.round),
    ("isnan", (), np.isnan),
    ("norm", (), lambda x: np.sqrt((x.astype(np.float64) ** 2).sum())),
    ("floor", (), np.floor),
    ("neg", (), np.negative),
    ("square", (), np.square),
    ("pow", (3.0,), lambda x: x ** 3),
    ("clip", (-1.0, 1.0), lambda x: np.clip(x, -1, 1)),
    ("flatten", (), lambda x: x.reshape(3, 4)),
    ("argmin", (1,), lambda x: x.argmin(1)),
    ("permute", (1, 0), lambda x: x.T),
    ("permute", ((1, 0),), lambda x: x.T),
    ("unsqueeze", (0,), lambda x: x[None]),
    ("maximum", (0.0,), lambda x: np.maximum(x, 0)),
    ("relu", (), lambda x: np.maximum(x, 0)),
    ("softmax", (1,), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    ("amax", (0,), lambda x: x.max(0)),
    ("masked_fill", (Tensor(_X > 1), 9.0), lambda x: np.where(x > 1, 9.0, x)),
]


@pytest.mark.parametrize("name,args,reference", FORWARDED_METHODS,
                         ids=[row[0] for row in FORWARDED_METHODS])
def test_methods_forwarded_to_ops_eagerly_and_compiled(name, args, reference):
    """`x.std(1)` etc. run ops.std(x, 1) eagerly and inside a compiled function."""
    from graphspore import jit
    expected = reference(_X)
    eager = getattr(Tensor(_X), name)(*args)
    compiled = jit(lambda t: getattr(t, name)(*args))(Tensor(_X))
    for got in (eager, compiled):
        np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-5, atol=1e-6)
