"""Errors as Python and MindSpore users expect: NameError / ValueError / TypeError (and a
user's own `raise`) from compiled functions, all GraphsporeErrors located at file:line:col;
tracebacks under plain `python` end in the user's lines and the error's block."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphspore as ms
from graphspore import GraphsporeError, Tensor, jit, ops

X = Tensor(np.ones(3, np.float32))
W = Tensor(np.ones((4, 2), np.float32))


def uses_undefined(x):
    return x + undefined_name  # noqa: F821


def shape_mismatch(x):
    return ops.matmul(x, W)


def dtype_mismatch(x):
    return ops.logical_not(x)


def raises_value_error(x):
    if x.shape[0] == 3:
        raise ValueError("three is not allowed")
    return x


class UserError(ValueError):
    pass


def raises_user_error(x):
    raise UserError("mine")


def line_of(fn, text):
    lines, first = __import__("inspect").getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("fn, kind, text", [
    (uses_undefined, NameError, "undefined_name"),
    (shape_mismatch, ValueError, "ops.matmul"),
    (dtype_mismatch, TypeError, "ops.logical_not"),
    (raises_value_error, ValueError, "raise ValueError"),
    (raises_user_error, UserError, "raise UserError"),
])
def test_python_exception_types_located(fn, kind, text):
    with pytest.raises(kind) as info:
        jit(fn)(X)
    error = info.value
    assert isinstance(error, GraphsporeError)
    assert error.loc.file == __file__ and error.loc.line == line_of(fn, text)
    assert f"test_error_types.py:{error.loc.line}:" in str(error).splitlines()[0]


def test_user_raise_keeps_its_message():
    with pytest.raises(ValueError, match="three is not allowed"):
        jit(raises_value_error)(X)


def test_pynative_cell_and_graph_cell_errors_have_python_types():
    class Net(ms.nn.Cell):
        def construct(self, x):
            return ops.matmul(x, W)

    ms.set_context(mode=ms.GRAPH_MODE)
    with pytest.raises(ValueError) as info:
        Net()(X)
    assert isinstance(info.value, GraphsporeError)


SCRIPT = textwrap.dedent("""\
    import numpy as np
    from graphspore import jit, Tensor, ops

    def helper(x):
        if x > 0:
            return x
        return -x

    @jit
    def f(x):
        return helper(x) * 2

    f(Tensor(np.ones(3, np.float32)))
    """)


def test_plain_python_traceback_is_short(tmp_path):
    (tmp_path / "user.py").write_text(SCRIPT)
    env = dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("GRAPHSPORE_FULL_TRACEBACK", None)
    done = subprocess.run([sys.executable, "user.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    err = done.stderr
    assert done.returncode == 1
    frames = [line for line in err.splitlines() if line.strip().startswith("File ")]
    assert len(frames) <= 2, err             # the user's call and one line of the boundary
    assert "frontend" not in err and "During handling" not in err, err
    tail = err.rstrip().splitlines()
    assert "user.py:5:" in tail[-4] and "condition is a tensor" in tail[-4], err
    assert tail[-3].strip() == "if x > 0:" and tail[-2].strip() == "^"
    assert tail[-1].strip().startswith("hint:")
    # `graphspore run` shows the caret and the hint too
    done = subprocess.run([sys.executable, "-m", "graphspore", "run", "user.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    lines = done.stderr.rstrip().splitlines()
    assert done.returncode == 1 and lines[0].startswith("error: user.py:5: ")
    assert lines[1].strip() == "if x > 0:" and lines[2].strip() == "^"
    assert lines[3].strip().startswith("hint:")
    # the full traceback for debugging graphspore itself
    env["GRAPHSPORE_FULL_TRACEBACK"] = "1"
    done = subprocess.run([sys.executable, "user.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "frontend" in done.stderr
