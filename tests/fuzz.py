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

    nice python -m tests.fuzz --minutes 90 --graphs 20000 [--batch 32] [--out fuzz-failures]

runs until the time or the graph count is reached, printing graphs per minute as it goes.
Hypothesis draws the recipes; each distinct recipe is checked and counted once. Most of the
cost is compiling, so `--batch` graphs are compiled side by side as one program (one float32
forward program, one float64 gradient program) and each graph's outputs are compared on
their own. A failing batch is narrowed to the failing graph (each checked alone), shrunk by
greedy delta debugging (`shrink`: shorter step lists, removed steps, smaller dims, seed 0)
and written as a runnable reproducer `<out>/failure_N.py`; the rest of the batch is checked
again without it.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

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
    return build_many([recipe], dtype)[0]


def build_many(recipes_, dtype=DType.f32):
    """One graph holding the independent graphs of `recipes_` side by side (inputs and outputs
    concatenated in order), so one compilation checks them all; also returns, per recipe, the
    index of its first input and the range of its outputs."""
    graph = core.Graph("fuzz")
    firsts, spans, outs = [], [], []
    with core.building(core.Builder(graph)) as builder:
        for j, recipe in enumerate(recipes_):
            prefix = f"r{j}_" if len(recipes_) > 1 else ""
            firsts.append(len(graph.inputs))
            values = [builder.input(TensorType(tuple(shape), dtype), f"{prefix}x{i}")
                      for i, shape in enumerate(recipe["inputs"])]
            for name, refs, attrs in recipe["steps"]:
                values.append(_step(values, name, refs, attrs))
            read = {r for _, refs, _ in recipe["steps"] for r in refs
                    if not isinstance(r, tuple)}
            mine = [v for i, v in enumerate(values)
                    if i not in read and i >= len(recipe["inputs"])] or [values[-1]]
            spans.append(range(len(outs), len(outs) + len(mine)))
            outs += mine
        graph.outputs = outs
    return graph, firsts, spans


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
def recipes(draw, max_steps=6, min_steps=1):
    """A recipe: 1-2 inputs of rank 0-3, then `min_steps` to `max_steps` well-typed steps."""
    shapes = [tuple(draw(st.lists(DIMS, min_size=0, max_size=3)))
              for _ in range(draw(st.integers(1, 2)))]
    recipe = {"inputs": [list(s) for s in shapes], "steps": []}
    for _ in range(draw(st.integers(min_steps, max_steps))):
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
    return check_batch([(recipe, seed)])[0]


class _Case:
    """One recipe's graphs, inputs and interpreter results, ready to be compared."""

    def __init__(self, recipe, seed, g32, g64):
        self.recipe, self.seed, self.g32, self.g64 = recipe, seed, g32, g64
        self.x32, self.x64 = _inputs(recipe, seed, np.float32), _inputs(recipe, seed, np.float64)
        self.names = _names(recipe)
        self.done = []

    @property
    def smooth(self):
        return not self.names & (DISCONTINUOUS | KINKED) and 0 < self.x64[0].size <= 40


def _prepare(recipe, seed):
    """A `_Case`, or the list of checks done when numpy and compilation both reject it."""
    try:
        g32, g64 = build(recipe, DType.f32), build(recipe, DType.f64)
    except (ValueError, IndexError, TypeError) as error:   # shape inference refused it
        if not isinstance(error, core.GraphsporeError):
            raise Mismatch(f"an op refused its operands without a located error: {error!r}")
        return ["rejected"]
    case = _Case(recipe, seed, g32, g64)
    try:
        with np.errstate(all="ignore"):
            case.want32 = run(g32, case.x32)
            case.want64 = run(g64, case.x64)
    except (ValueError, IndexError, TypeError):
        try:
            _compile(g32)
        except (ValueError, IndexError, TypeError, core.GraphsporeError):
            return ["rejected"]
        raise Mismatch("numpy rejects this graph but it compiled")
    return case


def check_batch(batch):
    """`check` for each `(recipe, seed)` of `batch`, compiling the graphs numpy accepts as one
    float32 program and the smooth ones' gradients as one float64 program; each graph's
    results are compared on their own. Returns each recipe's list of checks. When the batch
    fails, each graph is checked alone and the first failing one raises (its reproducer is
    a single recipe); a batch that fails while every graph passes alone raises Mismatch."""
    prepared = []
    for recipe, seed in batch:
        with _blaming([(recipe, seed)]):
            prepared.append(_prepare(recipe, seed))
    cases = [c for c in prepared if isinstance(c, _Case)]
    try:
        _check_cases(cases)
    except Exception as error:
        if len(cases) <= 1:
            error.fuzz_batch = [(c.recipe, c.seed) for c in cases]
            raise
        for case in cases:                             # bisect to a single graph
            with _blaming([(case.recipe, case.seed)]):
                check_batch([(case.recipe, case.seed)])
        raise Mismatch(f"{len(cases)} graphs compiled together fail ({type(error).__name__}: "
                       f"{error}) but each passes alone") from error
    return [c.done if isinstance(c, _Case) else c for c in prepared]


@contextlib.contextmanager
def _blaming(batch):
    """Tag an exception raised inside with the (recipe, seed) list that reproduces it, unless
    a narrower one is tagged already."""
    try:
        yield
    except Exception as error:
        if not hasattr(error, "fuzz_batch"):
            error.fuzz_batch = batch
        raise


def _check_cases(cases):
    if not cases:
        return
    graph, _, spans = build_many([c.recipe for c in cases], DType.f32)
    got = _compile(graph).run([x for c in cases for x in c.x32])
    for case, span in zip(cases, spans):
        mine = [got[k] for k in span]
        for k, (g, w) in enumerate(zip(mine, case.want32)):
            _close(g, w, 1e-4, 1e-5, f"output {k}: compiled f32 vs interpreter f32")
        case.done.append("forward")
        if not case.names & DISCONTINUOUS:
            for k, (g, w, w32) in enumerate(zip(mine, case.want64, case.want32)):
                # where numpy's own float32 evaluation overflowed (a float64 value beyond
                # float32's range), float32 and float64 cannot agree; check 1 covers it
                comparable = np.isfinite(w32) | ~np.isfinite(w)
                _close(np.asarray(g)[comparable], np.asarray(w)[comparable], 2e-3, 1e-4,
                       f"output {k}: compiled f32 vs float64 numpy")
            case.done.append("numpy")
    smooth = [c for c in cases if c.smooth]
    if smooth:
        _check_gradients(smooth)


def _check_gradients(cases, eps=1e-6):
    """The compiled float64 gradient of the sum of each graph's outputs w.r.t. its first
    input (one program for all `cases`) vs central differences of the float64 interpreter."""
    graph, firsts, _ = build_many([c.recipe for c in cases], DType.f64)
    program = _compile(vjp_graph(graph, firsts))
    analytic = program.run([x for c in cases for x in c.x64])[len(graph.outputs):]
    for case, got in zip(cases, analytic):
        xs = case.x64
        numeric = np.zeros_like(xs[0])
        for index in np.ndindex(xs[0].shape):
            up, down = [x.copy() for x in xs], [x.copy() for x in xs]
            up[0][index] += eps
            down[0][index] -= eps
            with np.errstate(all="ignore"):
                f_up = sum(float(np.sum(o)) for o in run(case.g64, up))
                f_down = sum(float(np.sum(o)) for o in run(case.g64, down))
            numeric[index] = (f_up - f_down) / (2 * eps)
        if np.all(np.isfinite(numeric)):
            _close(got, numeric, 1e-4, 1e-5, "gradient vs central differences")
        case.done.append("grad")


# ------------------------------------------------------------------------ shrinking

def _failure_kind(error):
    return type(error).__name__


def _fails_as(recipe, seed, kind):
    try:
        check(recipe, seed)
    except Exception as error:  # noqa: BLE001  (any defect counts; its kind must match)
        return _failure_kind(error) == kind
    return False


def _candidates(recipe, seed):
    """Smaller variants of a failing (recipe, seed), simplest first: seed 0, a prefix of the
    steps, one step removed (its readers read its first operand), smaller input dims."""
    if seed:
        yield recipe, 0
    n_in, steps = len(recipe["inputs"]), recipe["steps"]
    for k in range(1, len(steps)):
        yield dict(recipe, steps=steps[:k]), seed
    for i in range(len(steps) - 1, -1, -1):
        gone, first = n_in + i, steps[i][1][0]
        if isinstance(first, tuple) or len(steps) == 1:
            continue
        renumber = (lambda r: r if isinstance(r, tuple) else
                    first if r == gone else r - 1 if r > gone else r)
        yield dict(recipe, steps=[(name, [renumber(r) for r in refs], attrs)
                                  for name, refs, attrs in steps[:i] + steps[i + 1:]]), seed
    for j, shape in enumerate(recipe["inputs"]):
        for d, n in enumerate(shape):
            for smaller in sorted({1, n - 1} - {n}):
                if 0 <= smaller < n:
                    inputs = [list(s) for s in recipe["inputs"]]
                    inputs[j][d] = smaller
                    yield dict(recipe, inputs=inputs), seed


def shrink(recipe, seed, kind, budget=400):
    """A minimal (recipe, seed) that still fails with an exception of type `kind`: greedy
    delta debugging over `_candidates`, at most `budget` checks."""
    improved = True
    while improved and budget > 0:
        improved = False
        for smaller, smaller_seed in _candidates(recipe, seed):
            budget -= 1
            if _fails_as(smaller, smaller_seed, kind):
                recipe, seed, improved = smaller, smaller_seed, True
                break
            if budget <= 0:
                break
    return recipe, seed


# ------------------------------------------------------------------------ long profile

REPRODUCER = '''"""Fuzzer failure ({error}). Run: python {path}"""
import sys
sys.path.insert(0, {root!r})
from tests.fuzz import check_batch

BATCH = {batch!r}

if __name__ == "__main__":
    print(check_batch(BATCH))
'''


class _Stop(BaseException):
    """The run's time or graph budget is used up (a BaseException, so hypothesis stops at
    once instead of shrinking it as a failure)."""


def _key(recipe):
    return hashlib.blake2b(repr(recipe).encode(), digest_size=16).digest()


class Run:
    """The long profile's state: graphs drawn but not yet checked, graphs seen, counts and
    failures. Graphs are checked `batch` at a time in one program each (`check_batch`); a
    failing batch is narrowed to its graph, which is shrunk and written as a reproducer, and
    the rest of the batch is checked again without it."""

    def __init__(self, batch, out):
        self.batch, self.out = batch, out
        self.pending: dict = {}
        self.seen: set = set()
        self.counts = {"graphs": 0, "forward": 0, "numpy": 0, "grad": 0, "rejected": 0}
        self.failures: list = []

    def add(self, recipe, seed):
        key = _key(recipe)
        if key in self.seen or key in self.pending:   # drawn again: check and count once
            return
        self.pending[key] = (recipe, seed)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self):
        batch, self.pending = list(self.pending.values()), {}
        self.seen.update(_key(recipe) for recipe, _ in batch)
        self._check(batch)

    def _check(self, batch):
        if not batch:
            return
        try:
            results = check_batch(batch)
        except Exception as error:  # noqa: BLE001  (every defect is a finding)
            culprit = getattr(error, "fuzz_batch", batch)
            self._record(culprit, error)
            if len(culprit) == 1 and len(batch) > 1:
                self._check([item for item in batch if item is not culprit[0]
                             and item[0] is not culprit[0][0]])
            return
        self.counts["graphs"] += len(batch)
        for done in results:
            for what in done:
                self.counts[what] += 1

    def _record(self, culprit, error):
        self.counts["graphs"] += len(culprit) if len(culprit) == 1 else 0
        if len(culprit) == 1:
            culprit = [shrink(*culprit[0], _failure_kind(error))]
            try:
                check_batch(culprit)
            except Exception as shrunk:  # noqa: BLE001  (the shrunk graph's own message)
                error = shrunk
        message = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        if any(culprit == known for known, _ in self.failures):
            return
        self.failures.append((culprit, message))
        _write(self.out, len(self.failures), culprit, message)

    def report(self, start, final=False):
        c, minutes = self.counts, max(time.monotonic() - start, 1e-9) / 60
        print(f"{c['graphs']} graphs in {minutes:.1f} min ({c['graphs'] / minutes:.0f} per "
              f"minute): {c['forward']} forward checks, {c['numpy']} against float64 numpy, "
              f"{c['grad']} gradients, {c['rejected']} rejected by numpy and compilation "
              f"alike; {len(self.failures)} failures"
              + (f" written to {self.out}/" if self.failures and final else ""), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long")
    parser.add_argument("--graphs", type=int, default=None,
                        help="stop after this many distinct graphs (whichever comes first)")
    parser.add_argument("--batch", type=int, default=32,
                        help="random graphs compiled together as one program (each is "
                             "checked and counted on its own)")
    parser.add_argument("--out", default="fuzz-failures")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--min-steps", type=int, default=1,
                        help="a second run with --min-steps above another's --max-steps "
                             "draws graphs the first cannot, so their counts add up")
    parser.add_argument("--progress", type=float, default=60.0,
                        help="seconds between progress lines")
    args = parser.parse_args(argv)
    start = time.monotonic()
    deadline = start + 60 * args.minutes
    state = Run(args.batch, args.out)
    next_report = [start + args.progress]

    def out_of_budget():
        drawn = state.counts["graphs"] + len(state.pending)
        return time.monotonic() > deadline or (args.graphs is not None and drawn >= args.graphs)

    @settings(max_examples=10 ** 9, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(recipes(max_steps=args.max_steps, min_steps=args.min_steps),
           st.integers(0, 2 ** 16))
    def draw(recipe, seed):         # hypothesis only draws; Run checks, shrinks and reports
        if out_of_budget():
            raise _Stop
        state.add(recipe, seed)
        if time.monotonic() > next_report[0]:
            next_report[0] += args.progress
            state.report(start)

    while not out_of_budget():
        try:
            draw()
        except _Stop:
            break
    state.flush()
    state.report(start, final=True)
    return 1 if state.failures else 0


def _write(out, number, batch, message):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"failure_{number}.py")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(path, "w") as handle:
        handle.write(REPRODUCER.format(error=message, path=path, root=root, batch=batch))
    print(f"failure {number}: {message} -> {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
