"""The two seed tutorials (examples/seeds/, verbatim copies of the pages), each run unchanged
through `graphspore run` in a subprocess; the values they print are checked against numpy
and closed-form derivatives, computed from the values the same run printed."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds"
SHARED = Path("/work/shared/seeds")
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def numbers(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(NUMBER, text)])


def run_seed(name: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "graphspore", "run", str(SEEDS / name)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("copy, original", [
    ("000_autodiff.txt", "000_320f21e70e9add94.txt"),
    ("002_function_grad.txt", "002_34e3d4ad82c0fbe3.txt")])
def test_seed_copies_are_verbatim(copy, original):
    if not (SHARED / original).exists():
        pytest.skip("the shared seed directory is not on this machine")
    assert (SEEDS / copy).read_bytes() == (SHARED / original).read_bytes()


def tensors(out: str) -> list[np.ndarray]:
    """Every `Tensor(shape=[...], dtype=..., value=...)` printed, as arrays of their shape."""
    found = []
    for match in re.finditer(r"Tensor\(shape=\[([\d, ]*)\], dtype=(\w+), value=", out):
        shape = tuple(int(d) for d in match.group(1).split(",") if d.strip())
        size = int(np.prod(shape)) if shape else 1
        values = numbers(out[match.end():])[:size]
        found.append(values.reshape(shape))
    return found


def test_seed_000_autodiff(tmp_path):
    """Binary cross-entropy of z = x @ w + b with x = ones(5), y = zeros(3): with
    s = sigmoid(z), d loss/dz = s / 3, so dW = outer(x, s/3) (every row equals db) and the
    printed loss is mean(softplus(z)) = -mean(log(1 - s)), with s recovered as 3 db."""
    done = run_seed("000_autodiff.txt", tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    loss = float(out.splitlines()[0])
    grads = tensors(out)
    assert [g.shape for g in grads] == [(5, 3), (3,), (5, 3), (3,)]
    dw, db, dw_net, db_net = grads
    np.testing.assert_allclose(dw, np.tile(db, (5, 1)), rtol=1e-6)
    np.testing.assert_allclose(dw_net, dw, rtol=1e-6)       # the Cell path, same weights
    np.testing.assert_allclose(db_net, db, rtol=1e-6)
    s = 3 * db
    assert np.all((s > 0) & (s < 1))
    np.testing.assert_allclose(loss, -np.mean(np.log1p(-s)), rtol=1e-5)
