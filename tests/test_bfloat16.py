"""bfloat16 end to end: dtype, MindSpore promotion, host arrays as ml_dtypes.bfloat16, compiled
kernels against float32 references rounded to bfloat16 by ml_dtypes (each op rounded once,
nearest even), on both conversion paths (AVX-512 BF16 instructions and the integer sequence
an AVX2 machine runs), casts to and from every dtype, float32 accumulation of products and
sums, gradients, checkpoints."""
import ml_dtypes
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, ops
from graphspore import codegen
from graphspore.codegen import scalar_ops
from graphspore.ir import ops as gs
from graphspore.ir.interpreter import run as interpret

from compiled_graph import build, run_compiled
from graphspore.ir.types import DType, promote

BF16 = DType.bf16
BF = ml_dtypes.bfloat16
ULP = dict(rtol=2 ** -7, atol=2 ** -126)      # one bfloat16 step (exp, tanh round either way)


@pytest.fixture(params=["host", "avx2"])
def path(request, monkeypatch):
    """Each kernel test on the host's conversions and on the plain integer sequence (what a
    machine without AVX-512 BF16 runs)."""
    if request.param == "avx2":
        monkeypatch.setattr(scalar_ops, "native_bf16", lambda: False)
    return request.param


def brains(rng, shape, positive=False):
    data = rng.standard_normal(shape) * 3
    return (np.abs(data) + 0.1 if positive else data).astype(BF)


def in_float32(fn, *arrays):
    """numpy's float32 result of `fn` rounded to bfloat16 by ml_dtypes: what one op gives."""
    return np.asarray(fn(*[a.astype(np.float32) for a in arrays])).astype(BF)


def test_dtype_names_promotion_and_host_arrays():
    assert str(ms.bfloat16) == "BFloat16" and ms.dtype.bfloat16 is ms.bfloat16
    x = Tensor(np.ones(3, np.float32), ms.bfloat16)
    assert x.dtype is ms.bfloat16 and x.asnumpy().dtype == BF
    assert Tensor(np.zeros(2, BF)).dtype is ms.bfloat16
    assert promote(BF16, DType.f16) is DType.f32 and promote(DType.f16, BF16) is DType.f32
    assert (x + Tensor(np.ones(3, np.float16))).dtype is ms.float32
    assert (x + Tensor(np.ones(3, np.float32))).dtype is ms.float32
    assert (Tensor(np.ones(3, np.int64)) * x).dtype is ms.bfloat16
    assert (Tensor(np.ones(3, np.uint8)) * x).dtype is ms.bfloat16
    assert (x * 2.5).dtype is ms.bfloat16 and (x + 1).dtype is ms.bfloat16
    assert x.astype(ms.float32).dtype is ms.float32


@pytest.mark.parametrize("name, fn, positive", [
    ("add", np.add, False), ("mul", np.multiply, False), ("div", np.divide, True),
    ("sub", np.subtract, False), ("maximum", np.maximum, False),
])
def test_binary_ops_round_once_like_ml_dtypes(name, fn, positive, rng, path):
    a, b = brains(rng, (7, 37), positive), brains(rng, (7, 37), positive)
    graph = build(getattr(gs, name), ((7, 37), BF16), ((7, 37), BF16))
    (got,), _ = run_compiled(graph, [a, b])
    assert got.dtype == BF
    np.testing.assert_array_equal(got, in_float32(fn, a, b))      # correctly rounded: exact
    np.testing.assert_array_equal(got, interpret(graph, [a, b])[0])


@pytest.mark.parametrize("name, reference, positive", [
    ("exp", np.exp, False), ("sqrt", np.sqrt, True), ("tanh", np.tanh, False),
    ("log", np.log, True), ("neg", np.negative, False), ("abs", np.abs, False),
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v)), False),
])
def test_unary_ops_against_float32_rounded(name, reference, positive, rng, path):
    a = brains(rng, (70,), positive)
    graph = build(getattr(gs, name), ((70,), BF16))
    (got,), _ = run_compiled(graph, [a])
    assert got.dtype == BF
    want = in_float32(reference, a).astype(np.float32)
    np.testing.assert_allclose(got.astype(np.float32), want, **ULP)
    np.testing.assert_allclose(interpret(graph, [a])[0].astype(np.float32), want, **ULP)


def test_each_op_in_a_fused_chain_is_rounded(rng, path):
    a, b = brains(rng, (100,)), brains(rng, (100,))
    graph = build(lambda x, y: gs.add(gs.mul(x, y), x), ((100,), BF16), ((100,), BF16))
    (got,), result = run_compiled(graph, [a, b])
    assert result.kernels == 1
    np.testing.assert_array_equal(got, in_float32(np.add, in_float32(np.multiply, a, b), a))


def test_memory_is_16_bits_and_the_conversion_fits_the_host(path):
    graph = build(lambda x: gs.exp(x), ((64,), BF16))
    text = codegen.compile_graph(graph).llvm_ir
    assert "load i16" in text or "<16 x i16>" in text or "x i16>" in text
    if path == "avx2" or not scalar_ops.native_bf16():
        assert "bfloat" not in text                 # no libcall: integer rounding only
    else:
        assert "to bfloat" in text                  # selected as vcvtneps2bf16


SPECIAL = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8),
                    3.4e38, -3.4e38, np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, 65504.0,
                    2 ** -126, 3.0e38], np.float32)


def test_float32_rounds_to_nearest_even_with_inf_and_nan(path):
    graph = build(lambda x: gs.cast(x, dtype=BF16), ((SPECIAL.size,), DType.f32))
    (got,), _ = run_compiled(graph, [SPECIAL])
    want = SPECIAL.astype(BF)
    np.testing.assert_array_equal(got.view(np.uint16)[~np.isnan(SPECIAL)],
                                  want.view(np.uint16)[~np.isnan(SPECIAL)])   # ties, inf, -0
    assert np.isnan(got.astype(np.float32)[np.isnan(SPECIAL)]).all()


def test_float32_denormals_round_exactly_on_the_integer_path(monkeypatch):
    monkeypatch.setattr(scalar_ops, "native_bf16", lambda: False)
    tiny = np.array([1e-39, -3e-40, 2 ** -140, 1.1754942e-38], np.float32)
    graph = build(lambda x: gs.cast(x, dtype=BF16), ((4,), DType.f32))
    (got,), _ = run_compiled(graph, [tiny])
    np.testing.assert_array_equal(got.view(np.uint16), tiny.astype(BF).view(np.uint16))


@pytest.mark.skipif(not scalar_ops.native_bf16(), reason="the host has no AVX-512 BF16")
def test_float32_denormals_become_signed_zeros_with_vcvtneps2bf16():
    tiny = np.array([1e-39, -3e-40, 1.0], np.float32)
    graph = build(lambda x: gs.cast(x, dtype=BF16), ((3,), DType.f32))
    (got,), _ = run_compiled(graph, [tiny])
    np.testing.assert_array_equal(got.view(np.uint16), [0x0000, 0x8000, 0x3F80])


OTHERS = [DType.f16, DType.f32, DType.f64, DType.i8, DType.i32, DType.i64, DType.u8, DType.u64,
          DType.bool]


@pytest.mark.parametrize("other", OTHERS)
def test_casts_to_and_from_every_dtype(other, path):
    values = np.array([0.0, -0.0, 1.0, -2.5, 3.1415, 200.0, -7.75, 1e-3, 0.5, 100.0, 255.0,
                       1 + 2 ** -8 + 2 ** -30])
    if other.is_unsigned:
        values = np.abs(values)
    if other.is_int:           # out-of-range float -> int casts are undefined (numpy: C casts)
        values = values[np.abs(values) <= np.iinfo(other.np).max]
    a = values.astype(BF)
    b = (values * 3.3).astype(other.np) if other is not DType.bool else values > 0.7
    graph = build(lambda x, y: (gs.cast(x, dtype=other), gs.cast(y, dtype=BF16)),
                  ((values.size,), BF16), ((values.size,), other))
    (to_other, to_brain), _ = run_compiled(graph, [a, b])
    np.testing.assert_array_equal(to_other, a.astype(other.np))
    np.testing.assert_array_equal(to_brain.view(np.uint16), b.astype(BF).view(np.uint16))


def test_float64_to_bfloat16_rounds_once():
    wide = np.array([1 + 2 ** -8 + 2 ** -30, -(1 + 2 ** -8 + 2 ** -40), 1 + 2 ** -8,
                     3.3961e38, 1e300, 1e-300, 2.0 ** -133 * 1.5], np.float64)
    graph = build(lambda x: gs.cast(x, dtype=BF16), ((wide.size,), DType.f64))
    (got,), _ = run_compiled(graph, [wide])
    with np.errstate(over="ignore"):
        direct = wide.astype(BF)                      # ml_dtypes: one rounding from double
        assert direct[0] != wide.astype(np.float32).astype(BF)[0]  # (twice would differ)
    keep = np.abs(wide) > 2 ** -126 if scalar_ops.native_bf16() else slice(None)
    np.testing.assert_array_equal(got.view(np.uint16)[keep], direct.view(np.uint16)[keep])


@pytest.mark.parametrize("m, k, n", [(3, 5, 4), (64, 96, 48)])
def test_matmul_accumulates_in_float32(m, k, n, rng):
    a, b, c = brains(rng, (m, k)), brains(rng, (k, n)), brains(rng, (m, n))
    graph = build(lambda x, y, z: gs.add(gs.matmul(x, y), z),
                  ((m, k), BF16), ((k, n), BF16), ((m, n), BF16))
    (got,), _ = run_compiled(graph, [a, b, c])
    want = in_float32(np.add, in_float32(np.matmul, a, b), c)
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2 ** -7,
                               atol=2 ** -5)
    np.testing.assert_array_equal(got, interpret(graph, [a, b, c])[0])


def test_sum_does_not_stall_in_a_bfloat16_accumulator():
    x = Tensor(np.ones(1000, BF))                     # a bfloat16 accumulator stops at 256
    assert float(ms.jit(lambda v: v.sum())(x).asnumpy().astype(np.float32)) == 1000.0
    assert float(x.sum().asnumpy().astype(np.float32)) == 1000.0
    assert ms.jit(lambda v: v.mean())(x).dtype is ms.bfloat16


def test_reductions_and_compares(rng, path):
    a = brains(rng, (5, 40))
    graph = build(lambda x: (gs.reduce_max(x, axes=(1,)), gs.argmax(x, axis=1),
                             gs.greater(x, gs.constant(0.5, BF16))), ((5, 40), BF16))
    (top, where, above), _ = run_compiled(graph, [a])
    np.testing.assert_array_equal(top, a.max(axis=1))
    np.testing.assert_array_equal(where, a.astype(np.float32).argmax(axis=1))
    np.testing.assert_array_equal(above, a.astype(np.float32) > 0.5)


def test_printed_constants_parse_back_bit_exactly():
    from graphspore.ir.parser import parse_graph
    from graphspore.ir.printer import print_graph
    values = {BF16: np.array([1.5, -0.0, np.inf, -np.inf, np.nan, 3.0e38, 1e-38], np.float32
                             ).astype(BF),
              DType.f16: np.array([1.5, np.inf, -np.inf, np.nan, 65504.0], np.float16),
              DType.u64: np.array([2 ** 64 - 1, 0, 2 ** 63], np.uint64),
              DType.i8: np.array([-128, 127, 0], np.int8),
              DType.u8: np.array([255, 0, 7], np.uint8)}
    for dtype, array in values.items():
        graph = build(lambda: gs.constant(array, dtype))
        text = print_graph(graph)
        assert f"x{dtype.mlir}>" in text
        back = parse_graph(text)
        (constant,) = [op for op in back.ops if op.name == "gs.constant"]
        got = constant.attrs["value"]
        assert got.dtype == array.dtype
        np.testing.assert_array_equal(got.view(np.uint8), array.view(np.uint8))


def test_selections_in_a_chain_need_no_rounding(rng, path):
    """max/min/neg/abs/relu/select return an (already rounded) operand: the chain still equals
    ml_dtypes op by op."""
    a, b = brains(rng, (300,)), brains(rng, (300,))
    graph = build(lambda x, y: gs.add(gs.relu(gs.maximum(gs.neg(gs.mul(x, y)), gs.abs(x))),
                                      gs.select(gs.less(x, y), x, y)),
                  ((300,), BF16), ((300,), BF16))
    (got,), _ = run_compiled(graph, [a, b])
    product = in_float32(np.multiply, a, b)
    picked = np.maximum(-product, np.abs(a))
    want = in_float32(np.add, np.maximum(picked, BF(0)), np.where(a < b, a, b))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("source", [DType.i32, DType.i64, DType.u32, DType.u64])
def test_wide_integers_to_bfloat16_round_once(source, path):
    values = np.array([2 ** 24 + 2 ** 16 + 1, 2 ** 24 + 2 ** 16, 2 ** 24 + 3 * 2 ** 16,
                       2 ** 31 - 1, 12345678, 7, 0], np.int64)
    if not source.is_unsigned:
        values = np.concatenate([values, -values])
    a = values.astype(source.np)
    graph = build(lambda x: gs.cast(x, dtype=BF16), ((a.size,), source))
    (got,), _ = run_compiled(graph, [a])
    direct = a.astype(BF)                             # ml_dtypes rounds the integer once
    assert direct[0] != a.astype(np.float32).astype(BF)[0]
    np.testing.assert_array_equal(got.view(np.uint16), direct.view(np.uint16))


@pytest.mark.parametrize("dtype", [ms.float16, ms.bfloat16])
def test_conv2d_and_its_gradients_in_16_bits(dtype, rng):
    x32 = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w32 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x32, w32 = (a.astype(dtype.np).astype(np.float32) for a in (x32, w32))  # same values

    def loss(x, w):
        return (ops.conv2d(x, w) ** 2).sum()

    step = ms.jit(ms.value_and_grad(loss, grad_position=(0, 1)))
    value, (dx, dw) = step(Tensor(x32, dtype), Tensor(w32, dtype))
    want, (dx32, dw32) = step(Tensor(x32), Tensor(w32))
    assert value.dtype is dx.dtype is dw.dtype is dtype
    for got, ref in ((value, want), (dx, dx32), (dw, dw32)):
        ref = ref.asnumpy()
        np.testing.assert_allclose(got.asnumpy().astype(np.float32), ref, rtol=2 ** -5,
                                   atol=2 ** -5 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [ms.float16, ms.bfloat16])
@pytest.mark.parametrize("cell", [lambda: ms.nn.AvgPool2d(3, 2, pad_mode="pad", padding=1),
                                  lambda: ms.nn.MaxPool2d(3, 2, pad_mode="pad", padding=1)])
def test_pooling_and_its_gradient_in_16_bits(dtype, cell, rng):
    x32 = rng.standard_normal((2, 3, 6, 6)).astype(dtype.np).astype(np.float32)
    pool = cell()
    step = ms.jit(ms.value_and_grad(lambda x: (pool(x) * 1.5).sum()))
    value, dx = step(Tensor(x32, dtype))
    want, dx32 = step(Tensor(x32))
    assert value.dtype is dx.dtype is dtype
    np.testing.assert_allclose(value.asnumpy().astype(np.float32), want.asnumpy(),
                               rtol=2 ** -6)
    np.testing.assert_allclose(dx.asnumpy().astype(np.float32), dx32.asnumpy(), rtol=2 ** -7,
                               atol=2 ** -7)


def test_a_warm_started_bfloat16_program_takes_bfloat16_arrays(tmp_path):
    """The on-disk program of a second process must describe its inputs as bfloat16 (numpy's
    `dtype.str` of it is the anonymous '<V2')."""
    import os
    import subprocess
    import sys
    script = tmp_path / "warm.py"
    script.write_text(
        "import numpy as np, graphspore as ms\n"
        "@ms.jit\n"
        "def scaled(a, b):\n"
        "    return a * 0.25 + b\n"
        "x = ms.Tensor(np.arange(4, dtype=np.float32), ms.bfloat16)\n"
        "print(scaled(x, x).asnumpy().astype(np.float32).tolist())\n")
    env = dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip() == "[0.0, 1.25, 2.5, 3.75]"


LAZY_CASES = {
    # the name "bfloat16" and the public dtype before anything has imported ml_dtypes
    "names": "assert ms.dtype.to_ir('bfloat16') is DType.bf16\n"
             "x = ms.Tensor(np.array([1.0, 1.00390625, 3.0], np.float32), ms.bfloat16)\n"
             "out = (x * 3).asnumpy()\n"
             "import ml_dtypes\n"
             "assert out.dtype == ml_dtypes.bfloat16, out.dtype\n"
             "assert out.astype(np.float32).tolist() == [3.0, 3.0, 9.0], out\n",
    # ml_dtypes imported by the user after graphspore: its arrays are bfloat16 Tensors,
    # shared rather than copied, and compiled code takes them
    "user arrays": "import ml_dtypes\n"
                   "a = np.array([0.5, -2.0, 7.0], ml_dtypes.bfloat16)\n"
                   "t = ms.Tensor.from_numpy(a)\n"
                   "a[1] = 3.0\n"
                   "assert t.dtype is ms.bfloat16 and t.asnumpy()[1] == 3.0\n"
                   "f = ms.jit(lambda u: u + u)\n"
                   "assert f(t).asnumpy().astype(np.float32).tolist() == [1.0, 6.0, 14.0]\n",
    # a checkpoint with bfloat16 entries loads without the caller importing ml_dtypes
    "checkpoint": "import tempfile, os\n"
                  "p = os.path.join(tempfile.mkdtemp(), 'w.ckpt')\n"
                  "w = ms.Tensor(np.array([1.5, -0.25], np.float32), ms.bfloat16)\n"
                  "ms.save_checkpoint([{'name': 'w', 'data': w}], p)\n"
                  "got = ms.load_checkpoint(p)['w']\n"
                  "assert got.dtype is ms.bfloat16\n"
                  "assert got.asnumpy().astype(np.float32).tolist() == [1.5, -0.25]\n",
}


@pytest.mark.parametrize("case", sorted(LAZY_CASES))
def test_ml_dtypes_is_imported_at_the_first_bfloat16_use(case, tmp_path):
    """`import graphspore` leaves ml_dtypes (slow to load) unimported; every way of meeting
    bfloat16 afterwards still works, in a fresh process so no earlier import hides a miss."""
    import os
    import subprocess
    import sys
    script = ("import sys\nimport numpy as np\nimport graphspore as ms\n"
              "from graphspore.ir.types import DType\n"
              "assert 'ml_dtypes' not in sys.modules, 'import graphspore loaded ml_dtypes'\n"
              + LAZY_CASES[case] + "print('ok')\n")
    env = dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
