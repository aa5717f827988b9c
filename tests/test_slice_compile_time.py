"""Negative-step slices and reversals compile to an index map (i -> n-1-i), so the graph, the
loop program and the LLVM IR have the same size for 1,000 elements as for 100,000; they used
to be a concat of one unit slice per element (compile time grew with the element count)."""
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, codegen, ops
from graphspore.ir.ops import composite as C
from graphspore.ir.passes.autodiff import vjp_graph
from graphspore.ir.types import DType
from compiled_graph import build, run_compiled

F32 = DType.f32

# name -> (function of x, shape for n elements along the sliced axis)
CASES = {
    "rev": (lambda x: x + C.getitem(x, slice(None, None, -1)), lambda n: (n,)),
    "rev-step-2": (lambda x: C.getitem(x, slice(None, None, -2)) * 2.0, lambda n: (n,)),
    "rev-bounded": (lambda x: C.getitem(x, slice(-5, 1, -1)), lambda n: (n,)),
    "rev-2d-cols": (lambda x: x - C.getitem(x, (slice(None), slice(None, None, -1))),
                    lambda n: (3, n)),
    "rev-2d-both": (lambda x: C.getitem(x, (slice(None, None, -1), slice(None, None, -3))),
                    lambda n: (3, n)),
    "cumsum-reverse": (lambda x: ops.CumSum(reverse=True)(x, 0), lambda n: (n,)),
}
NUMPY = {
    "rev": lambda x: x + x[::-1],
    "rev-step-2": lambda x: x[::-2] * 2.0,
    "rev-bounded": lambda x: x[-5:1:-1],
    "rev-2d-cols": lambda x: x - x[:, ::-1],
    "rev-2d-both": lambda x: x[::-1, ::-3],
    "cumsum-reverse": lambda x: np.cumsum(x[::-1])[::-1],
}


def _sizes(graph):
    """Structural size of a compiled graph: ops in the graph, kernels, lines of loop program
    and of LLVM IR (the things whose count grew with n when reversal enumerated elements).
    Serial code: above a size threshold the thread-pool split adds a fixed block of IR."""
    result = codegen.compile_graph(graph, parallel=False)
    return (len(graph.ops), result.kernels, result.loops_text.count("\n"),
            result.llvm_ir.count("\n"))


# cumsum is ceil(log2 n) scan rounds by design; its reversal is checked by value below
@pytest.mark.parametrize("name", sorted(set(CASES) - {"cumsum-reverse"}))
@pytest.mark.parametrize("with_grad", [False, True], ids=["forward", "vjp"])
def test_compiled_size_does_not_depend_on_the_element_count(name, with_grad):
    fn, shape = CASES[name]
    sizes = []
    for n in (1000, 100_000):
        graph = build(fn, (shape(n), F32))
        if with_grad:
            graph = vjp_graph(graph, [0])
        sizes.append(_sizes(graph))
    assert sizes[0] == sizes[1], sizes
    assert sizes[0][0] < 30, sizes


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    fn, shape = CASES[name]
    x = np.random.default_rng(0).uniform(-1, 1, shape(1001)).astype(np.float32)
    (got,), _ = run_compiled(build(fn, (x.shape, F32)), [x])
    np.testing.assert_allclose(got, NUMPY[name](x), rtol=1e-5, atol=1e-5)


def test_jit_reverse_of_a_large_tensor_and_its_gradient():
    n = 40_000
    x = np.arange(n, dtype=np.float32)
    w = np.random.default_rng(1).uniform(-1, 1, n).astype(np.float32)

    @ms.jit
    def f(x):
        return x + x[::-1]

    np.testing.assert_array_equal(f(Tensor(x)).asnumpy(), x + x[::-1])

    def loss(x, w):                 # sum(w * x[::-2]): d/dx[n-1-2k] = w[k], 0 elsewhere
        return (w[: (n + 1) // 2] * x[::-2]).sum()

    expected = np.zeros(n, np.float32)
    expected[::-1][::2] = w[: (n + 1) // 2]
    got = ms.jit(ms.grad(loss))(Tensor(x), Tensor(w)).asnumpy()
    np.testing.assert_array_equal(got, expected)


def test_reverse_twice_simplifies_away():
    from graphspore.ir.passes.simplify import simplify
    graph = simplify(build(lambda x: C.getitem(C.getitem(x, (slice(None, None, -1),
                                                              slice(None, None, -1))),
                                               (slice(None, None, -1),)) + 0.0,
                           ((4, 5), F32)))
    reverses = [op.attrs["axes"] for op in graph.ops if op.name == "gs.reverse"]
    assert reverses == [(1,)]


def test_ops_flip_and_reverse_v2_match_numpy_with_gradients():
    x = np.random.default_rng(2).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    w = np.random.default_rng(3).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ms.jit(lambda t: ops.flip(t, (0, -1)))(Tensor(x)).asnumpy(),
                                  x[::-1, :, ::-1])
    np.testing.assert_array_equal(ops.ReverseV2(axis=[1])(Tensor(x)).asnumpy(), x[:, ::-1])
    # d/dx sum(w * flip(x)) = flip(w)
    got = ms.jit(ms.grad(lambda t, u: (u * ops.flip(t, [2, 1])).sum()))(Tensor(x), Tensor(w))
    np.testing.assert_array_equal(got.asnumpy(), w[:, ::-1, ::-1])


@pytest.mark.parametrize("dims, error", [(1, TypeError), ((0, 3), ValueError),
                                         ((1, -1), ValueError), ((0.5,), TypeError)])
def test_flip_rejects_bad_dims(dims, error):
    with pytest.raises(error, match="dims|axis"):
        ops.flip(Tensor(np.zeros((2, 3), np.float32)), dims)
