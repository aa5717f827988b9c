"""Running a compiled function and checking it against the reference interpreter on the
same graph: the oracle the control-flow tests share (tests/test_control_flow*.py)."""
from __future__ import annotations

import inspect

import numpy as np

from graphspore import Tensor
from graphspore.ir import TensorType
from graphspore.ir.interpreter import run as interpret
from graphspore.ir.types import DType
from graphspore.ir.verify import verify


def scalar(v) -> Tensor:
    return Tensor(np.asarray(v, np.float32))


def _flat(x) -> list:
    if isinstance(x, (tuple, list)):
        return [a for item in x for a in _flat(item)]
    return [x]


def both(compiled, *args):
    """`compiled(*args)` (a jit or grad object), checked against the interpreter running the
    same graph; returns the compiled result as numpy arrays (flat list)."""
    got = [np.asarray(t.asnumpy() if hasattr(t, "asnumpy") else t) for t in _flat(compiled(*args))]
    graph, _ = compiled._build(tuple(TensorType(a.shape, DType.from_numpy(a.asnumpy().dtype))
                                     for a in args), {})
    verify(graph)
    want = interpret(graph, [a.asnumpy() for a in args])
    assert len(want) >= len(got)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return got


def value(compiled, *args):
    out = both(compiled, *args)
    return out[0] if len(out) == 1 else out


def marked_line(fn) -> int:
    """The line of `fn`'s source marked with `# <-` (where its error must point)."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if "# <-" in line)


def tape_overflow_text(f, fits, fits_grad, overflows, limit=16) -> str:
    """With `max_loop_iterations=limit`: grad(f) at `fits` is `fits_grad`, and at `overflows`
    (a run longer than the tape) it raises IndexError, whose text is returned."""
    import graphspore as ms
    import pytest
    ms.set_context(max_loop_iterations=limit)
    try:
        grad = ms.grad(f)
        assert float(grad(scalar(fits))) == fits_grad
        with pytest.raises(IndexError) as info:
            grad(scalar(overflows))
    finally:
        ms.set_context(max_loop_iterations=1 << 17)
    return str(info.value)
