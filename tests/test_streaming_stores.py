"""codegen.streaming: elementwise kernels larger than the cache store around it (aligned
non-temporal vector stores between a scalar head and tail): results equal numpy's for any
output alignment and length, with splat and per-lane operands, and only large kernels use it."""
import numpy as np
import pytest

from graphspore import Tensor, jit, ops
from graphspore.codegen import streaming
from graphspore.runtime.target import host

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
