"""Differential fuzzer: random well-typed graphs over the op registry, compiled vs the reference
interpreter vs float64 numpy, and gradients vs central differences.

A *recipe* is plain data (so a failure prints as a reproducer): input shapes and a list of
steps `(op, operands, attrs)`, where an operand is the index of an earlier value or
`("num", x)`, a Python scalar. Hypothesis draws recipes over elementwise unary and binary
ops with broadcasting and Python scalars, compare + select, casts, integer `//` and `%`,
reductions (including empty and size-1 axes), movement (reshape, transpose, broadcast,
strided slices, pad, concat), matmul, batched matmul and argmax; shapes have size-0 and
size-1 dims.
Each recipe is built twice, in float32 and float64, and checked:

1. compiled float32 == the interpreter on the same graph (float32 tolerances);
2. for graphs of continuous ops, compiled float32 ~= the interpreter in float64 (numpy);
3. for smooth graphs, the compiled float64 gradient of sum(outputs) w.r.t. the first input
   == central differences of the float64 interpreter;
4. a graph the interpreter rejects (numpy raises, e.g. max over an empty axis) must be
   rejected by compilation too, with a Python exception, never a crash.

Short profile: tests/test_fuzz.py (seconds). Long profile::

    python -m tests.fuzz --minutes 10 [--out fuzz-failures]

runs until the time is up, reports graphs per minute, and writes each failure, shrunk by
hypothesis to a minimal recipe, as a runnable reproducer `<out>/failure_N.py`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from graphspore import pipeline
from graphspore.compiler import compile_program
from graphspore.ir import core, ops
from graphspore.ir.ops import composite
from graphspore.ir.interpreter import run
from graphspore.ir.passes.autodiff import vjp_graph
from graphspore.ir.types import DType, TensorType

UNARY = ["neg", "exp", "tanh", "sigmoid", "sin", "cos", "relu", "abs", "sign", "floor",
         "sqrt", "log"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "floor_mod"]
DISCONTINUOUS = {"sign", "floor", "floor_mod", "select", "cast_int", "argmax", "floor_div",
                 "relu", "abs", "maximum", "minimum", "reduce_max"}
KINKED = {"relu", "abs", "maximum", "minimum", "reduce_max"}   # continuous, not smooth
DIMS = st.sampled_from([0, 1, 1, 2, 3, 3, 5])


# ------------------------------------------------------------------------ building

def _positive(x):
    """x*x + 1/2: a smooth map into the domain of sqrt, log, pow's base and denominators (a
    kink such as |x| would make central differences meaningless at 0)."""
    return ops.add(ops.mul(x, x), 0.5) if not isinstance(x, float) else x * x + 0.5


def _safe(name, x):
    """Domain-restricted unary ops applied where they are defined."""
    if name in ("sqrt", "log"):
        return getattr(ops, name)(_positive(x))
    return getattr(ops, name)(x)


def _operand(values, ref):
    return ref[1] if isinstance(ref, tuple) else values[ref]


def _step(values, name, refs, attrs):
    a = _operand(values, refs[0])
    b = _operand(values, refs[1]) if len(refs) > 1 else None
    if name in UNARY:
        return _safe(name, a)
    if name in ("div", "floor_mod"):                 # denominators bounded away from zero
        return getattr(ops, name)(a, _positive(b))
    if name == "pow":
        return ops.pow(_positive(a), ops.mul(b, 0.5) if not isinstance(b, float) else b * 0.5)
    if name in BINARY:
        return getattr(ops, name)(a, b)
    if name == "select":
        return ops.select(ops.greater(a, b), a, ops.neg(b) if not isinstance(b, float) else -b)
    if name == "cast_int":
        return ops.cast(ops.floor_div(ops.cast(ops.mul(a, 3.0), dtype=DType.i32), 2),
                        dtype=a.dtype)
    if name in ("reduce_sum", "reduce_max"):
        return getattr(ops, name)(a, **attrs)
    if name == "argmax":
        return ops.cast(ops.argmax(a, **attrs), dtype=a.dtype)
    if name == "matmul":
        return ops.matmul(a, a, transpose_b=True) if attrs["outer"] else \
            ops.matmul(a, a, transpose_a=True)
    if name == "matmul_nd":                          # batched: a @ a^T per matrix
        return composite.matmul_nd(a, composite.swapaxes(a, -1, -2))
    if name == "concat":
        return ops.concat(a, b, axis=attrs["axis"])
    return getattr(ops, name)(a, **attrs)           # reshape, transpose, broadcast_to, ...


def build(recipe, dtype=DType.f32) -> core.Graph:
    """The graph of `recipe` with float inputs of `dtype`; outputs: the last value and every
    value no later step reads."""
    graph = core.Graph("fuzz")
    with core.building(core.Builder(graph)) as builder:
        values = [builder.input(TensorType(tuple(shape), dtype), f"x{i}")
                  for i, shape in enumerate(recipe["inputs"])]
        for name, refs, attrs in recipe["steps"]:
            values.append(_step(values, name, refs, attrs))
        read = {r for _, refs, _ in recipe["steps"] for r in refs if not isinstance(r, tuple)}
        outs = [v for i, v in enumerate(values) if i not in read and i >= len(recipe["inputs"])]
        graph.outputs = outs or [values[-1]]
    return graph


# ------------------------------------------------------------------------ strategies

def _broadcast_partner(draw, shape, shapes):
    """Index of a value whose shape broadcasts with `shape`, or a Python scalar."""
    partners = [i for i, s in enumerate(shapes) if _broadcasts(shape, s)]
    if not partners or draw(st.integers(0, 4)) == 0:
        return ("num", draw(st.sampled_from([-1.5, -0.5, 0.0, 0.25, 2.0])))
    return draw(st.sampled_from(partners))


def _broadcasts(a, b):
    return all(x == y or x == 1 or y == 1 for x, y in zip(a[::-1], b[::-1]))


def _result_shape(a, b):
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    return tuple(x if y == 1 else y for x, y in zip(a, b))


@st.composite
def recipes(draw, max_steps=6):
    """A recipe: 1-2 inputs of rank 0-3, then up to `max_steps` well-typed steps."""
    shapes = [tuple(draw(st.lists(DIMS, min_size=0, max_size=3)))
              for _ in range(draw(st.integers(1, 2)))]
    recipe = {"inputs": [list(s) for s in shapes], "steps": []}
    for _ in range(draw(st.integers(1, max_steps))):
        i = draw(st.integers(0, len(shapes) - 1))
        shape = shapes[i]
        kind = draw(st.sampled_from(["unary", "binary", "binary", "select", "cast_int",
                                     "reduce", "movement", "movement", "matmul", "argmax"]))
        name, refs, attrs, out = None, [i], {}, shape
        if kind == "unary":
            name = draw(st.sampled_from(UNARY))
        elif kind in ("binary", "select"):
            name = draw(st.sampled_from(BINARY)) if kind == "binary" else "select"
            partner = _broadcast_partner(draw, shape, shapes)
            refs.append(partner)
            if not isinstance(partner, tuple):
                out = _result_shape(shape, shapes[partner])
        elif kind == "cast_int":
            name = "cast_int"
        elif kind == "reduce" and shape:
            name = draw(st.sampled_from(["reduce_sum", "reduce_max"]))
            axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
            keep = draw(st.booleans())
            attrs = {"axes": axes, "keep_dims": keep}
            out = tuple(1 if d in axes else n for d, n in enumerate(shape) if keep or d not in axes)
        elif kind == "argmax" and shape:
            axis = draw(st.integers(0, len(shape) - 1))
            name, attrs = "argmax", {"axis": axis, "keep_dims": False}
            out = tuple(n for d, n in enumerate(shape) if d != axis)
        elif kind == "matmul" and len(shape) == 2:
            outer = draw(st.booleans())
            name, attrs = "matmul", {"outer": outer}
            out = (shape[0], shape[0]) if outer else (shape[1], shape[1])
        elif kind == "matmul" and len(shape) == 3:
            name, out = "matmul_nd", (shape[0], shape[1], shape[1])
        elif kind == "movement" and shape:
            name, attrs, out = _movement(draw, shape, i, refs, shapes)
        else:
            name = draw(st.sampled_from(UNARY))
        recipe["steps"].append((name, refs, attrs))
        shapes.append(tuple(out))
    return recipe


def _movement(draw, shape, i, refs, shapes):
    choice = draw(st.sampled_from(["reshape", "transpose", "broadcast_to", "slice", "pad",
                                   "concat"]))
    size = int(np.prod(shape))
    if choice == "reshape":
        new = draw(st.sampled_from([(size,), (1, size), (size, 1), tuple(shape[::-1])]))
        return "reshape", {"shape": new}, new
    if choice == "transpose":
        perm = tuple(draw(st.permutations(range(len(shape)))))
        return "transpose", {"perm": perm}, tuple(shape[p] for p in perm)
    if choice == "broadcast_to":
        new = (draw(st.sampled_from([0, 1, 2])),) + tuple(3 if n == 1 else n for n in shape)
        return "broadcast_to", {"shape": new}, new
    if choice == "concat":
        axis = draw(st.integers(0, len(shape) - 1))
        refs.append(i)
        return "concat", {"axis": axis}, tuple(2 * n if d == axis else n
                                               for d, n in enumerate(shape))
    begin, end, strides, out = [], [], [], []
    for n in shape:
        b = draw(st.integers(0, n))
        e = draw(st.integers(b, n))
        s = draw(st.sampled_from([1, 1, 2, 3]))
        begin.append(b), end.append(e), strides.append(s)
        out.append(len(range(b, e, s)))
    if choice == "slice":
        return "slice", {"begin": tuple(begin), "end": tuple(end), "strides": tuple(strides)}, \
            tuple(out)
    low = tuple(draw(st.integers(0, 2)) for _ in shape)
    high = tuple(draw(st.integers(0, 2)) for _ in shape)
    stride = tuple(draw(st.sampled_from([1, 2])) for _ in shape)
    padded = tuple(lo + (n - 1) * s + 1 + hi if n else lo + hi
                   for n, lo, hi, s in zip(shape, low, high, stride))
    return "pad", {"low": low, "high": high, "stride": stride}, padded


# ------------------------------------------------------------------------ checking

class Mismatch(AssertionError):
    """The compiled result or gradient differs from the reference."""


def _names(recipe):
    return {name for name, _, _ in recipe["steps"]}


def _inputs(recipe, seed, dtype):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, shape).astype(dtype) for shape in recipe["inputs"]]


def _compile(graph):
    tree = list(range(len(graph.outputs)))
    source = pipeline.Source("", lambda _args, _kwargs: (graph, tree))   # already built
    return compile_program(source, (), {}, lambda a: a)


def _close(got, want, rtol, atol, what):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise Mismatch(f"{what}: shape {got.shape} != {want.shape}")
    scale = 1.0 + float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0))
    if not np.allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True):
        with np.errstate(all="ignore"):
            worst = np.max(np.abs(got.astype(np.float64) - want), initial=0.0)
        raise Mismatch(f"{what}: max difference {worst:g} (scale {scale:g})")


def check(recipe, seed=0):
    """Run the four checks on `recipe`; raises Mismatch (or the compile error) on a defect.
    Returns what was checked ('forward', 'numpy', 'grad', 'rejected')."""
    done = []
    try:
        g32, g64 = build(recipe, DType.f32), build(recipe, DType.f64)
    except (ValueError, IndexError, TypeError) as error:   # shape inference refused it
        if not isinstance(error, core.GraphsporeError):
            raise Mismatch(f"an op refused its operands without a located error: {error!r}")
        return ["rejected"]
    x32, x64 = _inputs(recipe, seed, np.float32), _inputs(recipe, seed, np.float64)
    try:
        with np.errstate(all="ignore"):
            want32 = run(g32, x32)
            want64 = run(g64, x64)
    except (ValueError, IndexError, TypeError):
        try:
            _compile(g32)
        except (ValueError, IndexError, TypeError, core.GraphsporeError):
            return ["rejected"]
        raise Mismatch("numpy rejects this graph but it compiled")
    got = _compile(g32).run(x32)
    for k, (g, w) in enumerate(zip(got, want32)):
        _close(g, w, 1e-4, 1e-5, f"output {k}: compiled f32 vs interpreter f32")
    done.append("forward")
    names = _names(recipe)
    if not names & DISCONTINUOUS:
        for k, (g, w) in enumerate(zip(got, want64)):
            _close(g, w, 2e-3, 1e-4, f"output {k}: compiled f32 vs float64 numpy")
        done.append("numpy")
    if not names & (DISCONTINUOUS | KINKED) and x64[0].size and x64[0].size <= 40:
        _check_gradient(g64, x64)
        done.append("grad")
    return done


def _check_gradient(graph, xs, eps=1e-6):
    full = vjp_graph(graph, [0])
    n_out = len(graph.outputs)
    program = _compile(full)
    analytic = program.run(xs)[n_out]
    numeric = np.zeros_like(xs[0])
    for index in np.ndindex(xs[0].shape):
        up, down = [x.copy() for x in xs], [x.copy() for x in xs]
        up[0][index] += eps
        down[0][index] -= eps
        with np.errstate(all="ignore"):
            f_up = sum(float(np.sum(o)) for o in run(graph, up))
            f_down = sum(float(np.sum(o)) for o in run(graph, down))
        numeric[index] = (f_up - f_down) / (2 * eps)
    if np.all(np.isfinite(numeric)):
        _close(analytic, numeric, 1e-4, 1e-5, "gradient vs central differences")


# ------------------------------------------------------------------------ long profile

REPRODUCER = '''"""Fuzzer failure ({error}). Run: python {path}"""
import sys
sys.path.insert(0, {root!r})
from tests.fuzz import check

RECIPE = {recipe!r}

if __name__ == "__main__":
    print(check(RECIPE, seed={seed}))
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", default="fuzz-failures")
    parser.add_argument("--max-steps", type=int, default=8)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 60 * args.minutes
    counts = {"graphs": 0, "forward": 0, "numpy": 0, "grad": 0, "rejected": 0}
    failures: list = []
    last_failure: list = []
    start = time.monotonic()

    @settings(max_examples=10 ** 9, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(recipes(max_steps=args.max_steps), st.integers(0, 2 ** 16))
    def one(recipe, seed):
        if time.monotonic() > deadline:
            raise TimeoutError
        counts["graphs"] += 1
        try:
            for what in check(recipe, seed):
                counts[what] += 1
        except Exception as error:
            last_failure[:] = [recipe, seed, f"{type(error).__name__}: {error}"]
            raise

    while time.monotonic() < deadline:
        try:
            one()
        except TimeoutError:
            break
        except Exception:  # noqa: BLE001  (shrunk by hypothesis: the last failure is minimal)
            if last_failure:
                failures.append(tuple(last_failure))
                _write(args.out, len(failures), *last_failure)
    minutes = (time.monotonic() - start) / 60
    print(f"{counts['graphs']} graphs in {minutes:.1f} min ({counts['graphs'] / minutes:.0f} "
          f"per minute): {counts['forward']} forward checks, {counts['numpy']} against float64 "
          f"numpy, {counts['grad']} gradients, {counts['rejected']} rejected by numpy and "
          f"compilation alike; {len(failures)} failures" + (f" written to {args.out}/"
                                                           if failures else ""))
    return 1 if failures else 0


def _write(out, number, recipe, seed, error):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"failure_{number}.py")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(path, "w") as handle:
        handle.write(REPRODUCER.format(error=error.splitlines()[0][:200], path=path, root=root,
                                       recipe=recipe, seed=seed))
    print(f"failure {number}: {error.splitlines()[0][:200]} -> {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
