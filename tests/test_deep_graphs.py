"""Deep graphs: walks over graphs and source are iterative, so depth is bounded by memory, not
by Python's recursion limit. A 10,000-op chain goes through every pass, fusion (kernels cut
at MAX_INLINE_DEPTH), lowering, LLVM and the native run; an unrolled 400-step loop and its
gradient compile; a 2,000-term source expression (CPython itself stops near 3,000)
translates. Expected values from numpy loops in the same precision or closed forms."""
import sys
import textwrap

import numpy as np

from graphspore import Tensor, grad, jit, pipeline
from graphspore.codegen.fuse import MAX_INLINE_DEPTH, fuse
from graphspore.compiler import compile_program
from graphspore.ir import core, ops
from graphspore.ir.types import DType, TensorType

CHAIN_OPS = 10_000


def _chain_graph(pairs):
    """y = y * 0.999 + x, `pairs` times: 2 * pairs ops in one dependent chain."""
    graph = core.Graph("deep_chain")
    with core.building(core.Builder(graph)) as builder:
        x = builder.input(TensorType((5,), DType.f32), "x")
        y = x
        for _ in range(pairs):
            y = ops.add(ops.mul(y, 0.999), x)
        graph.outputs = [y]
    return graph


def _chain_numpy(x, pairs):
    y = x.copy()
    for _ in range(pairs):
        y = (y * np.float32(0.999)).astype(np.float32) + x
    return y


def test_a_10000_op_chain_compiles_and_runs():
    graph = _chain_graph(CHAIN_OPS // 2)
    assert len([op for op in graph.ops if op.name != "gs.constant"]) == CHAIN_OPS
    fused = fuse(graph)
    assert max(sum(op.name != "gs.constant" for op in k.ops) for k in fused.kernels) \
        == MAX_INLINE_DEPTH
    source = pipeline.Source("", lambda _args, _kwargs: (graph, 0))    # already built
    program = compile_program(source, (), {}, lambda array: array)
    x = np.linspace(-1, 1, 5).astype(np.float32)
    got = program.run([x])
    np.testing.assert_allclose(got, _chain_numpy(x, CHAIN_OPS // 2), rtol=2e-4)
    assert sys.getrecursionlimit() <= 10_000          # nothing raised it to get here


def unrolled(x):
    y = x
    for _ in range(400):
        y = y * 0.99 + 0.01
    return y.sum()


def test_an_unrolled_400_step_loop_and_its_gradient():
    x = np.linspace(-2, 2, 6).astype(np.float32)
    np.testing.assert_allclose(jit(unrolled)(Tensor(x)).asnumpy(),
                               _unrolled_numpy(x), rtol=1e-4)
    np.testing.assert_allclose(jit(grad(unrolled))(Tensor(x)).asnumpy(),
                               np.full(6, 0.99 ** 400), rtol=1e-4)


def _unrolled_numpy(x):
    y = x.copy()
    for _ in range(400):
        y = (y * np.float32(0.99)).astype(np.float32) + np.float32(0.01)
    return y.sum()


TERMS = 2000


def test_a_2000_term_source_expression(tmp_path, monkeypatch):
    body = " + ".join(f"x * {k}.0" for k in range(TERMS))
    module = tmp_path / "long_expression.py"
    module.write_text(textwrap.dedent(f"""
        def long_sum(x):
            total = {body}
            return total
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import long_expression
    x = np.array([1.0, -0.5], np.float32)
    got = jit(long_expression.long_sum)(Tensor(x)).asnumpy()
    np.testing.assert_allclose(got, x * (TERMS * (TERMS - 1) / 2), rtol=1e-5)
