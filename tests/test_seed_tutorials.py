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


def test_seed_002_function_grad(tmp_path):
    """f = x^3 - 2x + 1 at 1: f = 0, f' = 3x^2 - 2 = 1, f'' = 6x = 6. Then the logistic loss
    L = -sum(log(p t + (1-p)(1-t))), p = sigmoid(X W + b), on the printed inputs: dL/dz = p - t,
    dL/dX = outer(p - t, W), dL/dW = X^T (p - t), dL/db = sum(p - t); the gradient with
    respect to the bool targets is zeros of their shape (float32); `grad(loss, 3)(W, b)`
    passes two of four arguments: a TypeError, reported, and the run goes on."""
    done = run_seed("002_function_grad.txt", tmp_path)
    out, err = done.stdout, done.stderr
    lines = out.splitlines()
    assert [float(v) for v in lines[:3]] == [0.0, 1.0, 6.0]

    def printed(label, shape):
        start = out.index(label) + len(label)
        values = numbers(out[start:])[:int(np.prod(shape))]
        return values.reshape(shape)

    X = printed("inputs:", (4, 3))
    t = np.array([v == "True" for v in re.findall(r"True|False",
                                                  out[out.index("targets:"):])[:4]], float)
    W, b = printed("W:", (3,)), printed("b:", (1,))
    p = sigmoid(X @ W + b)
    dz = p - t
    np.testing.assert_allclose(printed("x_grad:", (4, 3)), np.outer(dz, W), rtol=1e-4,
                               atol=1e-6)
    y_grad = printed("y_grad:", (4,))
    np.testing.assert_array_equal(y_grad, np.zeros(4))
    assert re.search(r"y_grad: \[0\. 0\. 0\. 0\.\]", out), out
    dW, db = X.T @ dz, np.array([dz.sum()])
    first_W = out.index("W_grad:")
    np.testing.assert_allclose(printed("W_grad:", (3,)), dW, rtol=1e-4, atol=1e-6)
    # the bad call: TypeError naming the missing arguments, then the later blocks still run
    assert done.returncode == 1
    assert re.search(r"002_function_grad.txt:93: TypeError: loss\(\) missing 2 required "
                     r"positional argument.*'W'.*'b'", err), err
    rest = out[out.index("W_grad:", first_W + 1):]
    pairs = re.findall(r"W_grad: (.*?)(?:, b_grad: |\nb_grad: )(.*?)\n(?=W_grad|loss|$)",
                       rest + "\n", re.S)
    W_grad, b_grad = pairs[0]
    np.testing.assert_allclose(numbers(W_grad), dW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numbers(b_grad), db, rtol=1e-4, atol=1e-6)
    W_grad, b_grad = pairs[1]                          # multi_loss: plus d sum(W^2) = 2W
    np.testing.assert_allclose(numbers(W_grad), dW + 2 * W, rtol=1e-4, atol=1e-6)
    W_grad, b_grad = pairs[2]                          # stop_gradient on the second loss
    np.testing.assert_allclose(numbers(W_grad), dW, rtol=1e-4, atol=1e-6)
    loss = float(numbers(out[out.index("loss:"):])[0])
    np.testing.assert_allclose(loss, -np.sum(np.log(p * t + (1 - p) * (1 - t))), rtol=1e-5)
    W_grad, b_grad = pairs[-1]                          # value_and_grad
    np.testing.assert_allclose(numbers(W_grad), dW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numbers(b_grad), db, rtol=1e-4, atol=1e-6)
