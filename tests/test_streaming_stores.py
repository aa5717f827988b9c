"""codegen.streaming: flat elementwise kernels are explicit vector loops with one masked
vector for the rest (every length, every dtype it admits, results independent of the size
and of where an element sits), and those larger than the cache store around it (aligned
non-temporal vector stores between a masked head and tail): results equal numpy's for any
output alignment and length, with splat and per-lane operands, and only large kernels use it.
The portable (AVX2) sequence is tested by switching the host's vector width and AVX-512
estimates off."""
import numpy as np
import pytest

from graphspore import Tensor, jit, ops
from graphspore.codegen import streaming, vector_math
from graphspore.ir import ops as gs
from graphspore.ir.types import DType
from graphspore.runtime.target import host

from compiled_graph import build, run_compiled

pytestmark = pytest.mark.skipif(
    not host().triple.startswith("x86_64") or host().vector_width_bits < 256,
    reason="streaming stores are emitted for x86-64 with AVX2 or AVX-512 only")


def asm_of(program):
    return program.executable.module.asm


def unaligned_out(n, dtype, offset):
    """A C-contiguous output of n elements starting `offset` elements past a 64-byte line."""
    raw = np.empty(n + 64, dtype)
    start = (-raw.ctypes.data % 64) // raw.itemsize + offset
    return raw[start:start + n]


@pytest.fixture
def stream_everything(monkeypatch):
    """Every split elementwise kernel streams (the real threshold needs 32 MB operands)."""
    monkeypatch.setattr(streaming, "STREAM_MIN_BYTES", 0)


@pytest.mark.parametrize("n", [40_003, 65_536])
def test_sigmoid_swish_any_alignment(stream_everything, n):
    @jit
    def swish(x):
        return ops.sigmoid(x) * x + 1

    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    xt = Tensor(x)
    swish(xt)
    program = swish.program_for(xt)
    assert "vmovntps" in asm_of(program) and "sfence" in asm_of(program)
    expected = 1 / (1 + np.exp(-x.astype(np.float64))) * x + 1
    for offset in (0, 1, 3, 15):
        out = unaligned_out(n, np.float32, offset)
        out.fill(np.nan)
        program.run_into([x], [out])
        np.testing.assert_allclose(out, expected, rtol=3e-7, atol=3e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_broadcast_operand_and_other_dtypes(stream_everything, dtype):
    @jit
    def affine(x, s, y):
        return x * s + y

    n = 50_001
    rng = np.random.default_rng(1)
    x, y = (rng.integers(-1000, 1000, n).astype(dtype) for _ in range(2))
    s = np.array([3], dtype)
    args = [Tensor(v) for v in (x, s, y)]
    got = affine(*args).asnumpy()
    np.testing.assert_array_equal(got, x * s + y)
    program = affine.program_for(*args)
    assert "vmovnt" in asm_of(program)
    out = unaligned_out(n, dtype, 1)
    program.run_into([x, s, y], [out])
    np.testing.assert_array_equal(out, x * s + y)


def test_only_kernels_beyond_the_cache_stream():
    @jit
    def twice(x):
        return x * 2.0

    small = Tensor(np.ones(65_536, np.float32))
    twice(small)
    assert "vmovnt" not in asm_of(twice.program_for(small))
    n = streaming.STREAM_MIN_BYTES // 8 + 1000            # input + output beyond the limit
    large = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    lt = Tensor(large)
    np.testing.assert_array_equal(twice(lt).asnumpy(), large * 2)
    assert "vmovntps" in asm_of(twice.program_for(lt))


def test_gathers_keep_the_plain_loop(stream_everything):
    """A load that does not step with the loop index by 0 or 1 (here every other element)
    is no vector load: such kernels are not streamed."""
    @jit
    def strided(x):
        return x[::2] * 2.0

    x = np.arange(80_000, dtype=np.float32)
    xt = Tensor(x)
    np.testing.assert_array_equal(strided(xt).asnumpy(), x[::2] * 2)
    assert "vmovnt" not in asm_of(strided.program_for(xt))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_masked_head_and_tail_every_length(stream_everything, dtype):
    """Serial kernels (below the split size) of every length up to a few vectors, streamed:
    masked head, aligned vectors, masked tail; results exact, nothing written past the end."""
    for n in list(range(2, 41)) + [257, 1000]:
        rng = np.random.default_rng(n)
        x, y = (rng.integers(-1000, 1000, n).astype(dtype) for _ in range(2))
        graph = build(lambda a, b: gs.add(gs.mul(a, b), a), ((n,), DType.from_numpy(dtype)),
                      ((n,), DType.from_numpy(dtype)))
        (got,), result = run_compiled(graph, [x, y])
        np.testing.assert_array_equal(got, x * y + x)
        assert "llvm.masked.store" in result.llvm_ir


def test_sigmoid_kernels_are_vector_loops_of_every_length():
    """A kernel holding the float32 sigmoid is an explicit vector loop with one masked vector
    for the rest at every length (its AVX-512 vector code differs from the scalar one);
    kernels without such an op keep the scalar loop LLVM widens."""
    for n in list(range(2, 41)) + [1000]:
        x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 8
        (got,), result = run_compiled(build(gs.sigmoid, ((n,), DType.f32)), [x])
        np.testing.assert_allclose(got, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=2e-7)
        assert ("llvm.masked.store" in result.llvm_ir) == vector_math.avx512_estimates()
    (_,), plain = run_compiled(build(gs.exp, ((1000,), DType.f32)), [x])
    assert "llvm.masked.store" not in plain.llvm_ir


def test_sigmoid_bits_do_not_depend_on_size_or_position():
    """A split kernel (threads, full vectors and masked chunk ends) and serial kernels over
    slices at other offsets give the same float32 bits for the same inputs."""
    x = np.random.default_rng(4).standard_normal(100_003).astype(np.float32) * 8
    graph = build(gs.sigmoid, ((x.size,), DType.f32))
    (whole,), result = run_compiled(graph, [x])
    assert "gs_parallel_for" in result.llvm_ir
    for start, length in ((0, 37), (5, 1000), (99_990, 13)):
        part = x[start:start + length]
        (got,), _ = run_compiled(build(gs.sigmoid, ((length,), DType.f32)), [part])
        np.testing.assert_array_equal(got.view(np.uint32),
                                      whole[start:start + length].view(np.uint32))


@pytest.fixture(params=["host", "avx2"])
def vector_target(request, monkeypatch):
    """The host's vectors, and 256-bit vectors without AVX-512's estimates (what an AVX2
    machine gets: the divide and exponent-field scaling, ymm registers)."""
    if request.param == "avx2":
        monkeypatch.setattr(host(), "vector_width_bits", 256)
        monkeypatch.setattr(vector_math, "avx512_estimates", lambda: False)
    return request.param


@pytest.mark.parametrize("n", [29, 40_003])
def test_swish_on_each_vector_target(vector_target, stream_everything, n):
    x = np.random.default_rng(5).standard_normal(n).astype(np.float32) * 10
    graph = build(lambda v: gs.add(gs.mul(gs.sigmoid(v), v), gs.constant(1.0, DType.f32)),
                  ((n,), DType.f32))
    (got,), result = run_compiled(graph, [x])
    expected = 1 / (1 + np.exp(-x.astype(np.float64))) * x + 1
    np.testing.assert_allclose(got, expected, rtol=3e-7, atol=3e-7)
    from graphspore import runtime
    asm = runtime.compile_module(result.llvm_ir, ["main"]).asm.split("main__py:")[0]
    if vector_target == "avx2":
        assert "ymm" in asm and "zmm" not in asm and "vdivps" in asm
    elif vector_math.avx512_estimates():
        assert "zmm" in asm and "vrcp14ps" in asm and "vdivps" not in asm
