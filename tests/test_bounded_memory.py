"""Bounded memory: each compiled callable keeps at most MAX_PROGRAMS programs (least recently
used dropped, reloaded from the on-disk object cache when called again); `@jit` methods and
GRAPH_MODE Cells never keep their objects alive; compiler.STATS keeps the latest STATS_LIMIT
compilations. Checked with weak references (an evicted program and a deleted object are freed)
and tracemalloc."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from graphspore import GRAPH_MODE, PYNATIVE_MODE, Parameter, Tensor, compiler, jit, nn, ops
from graphspore import set_context
from graphspore.program_cache import ProgramCache, max_programs


def scaled_tanh(x):
    return ops.tanh(x * 2.0 + 1.0)


def _ones(n):
    return Tensor(np.ones(n, np.float32))


def test_programs_beyond_the_limit_are_evicted_and_come_back_from_disk(monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_MAX_PROGRAMS", "3")
    f = jit(scaled_tanh)
    first = f.program_for(_ones(1))
    gone = weakref.ref(first)
    del first
    for n in range(2, 6):
        f(_ones(n))
    assert len(f._programs) == 3 and f._programs.evictions == 2
    gc.collect()
    assert gone() is None, "an evicted program is still referenced"
    again = f.program_for(_ones(1))          # rebuilt: same IR, so a disk-cache hit
    assert again.stats.cache_hit
    np.testing.assert_allclose(f(_ones(1)).asnumpy(), np.tanh([3.0]), rtol=1e-6)


def test_the_limit_is_documented_and_overridable(monkeypatch):
    monkeypatch.delenv("GRAPHSPORE_MAX_PROGRAMS", raising=False)
    assert max_programs() == 64 == ProgramCache().limit
    monkeypatch.setenv("GRAPHSPORE_MAX_PROGRAMS", "bogus")
    assert max_programs() == 64
    cache = ProgramCache(limit=2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1                # "a" is now the most recent
    cache["c"] = 3
    assert "b" not in cache and cache["a"] == 1 and cache["c"] == 3


class Owner:
    def __init__(self, scale):
        self.w = Parameter(Tensor(np.full(3, scale, np.float32)), name="w")

    @jit
    def apply(self, x):
        return x * self.w


def test_a_jit_method_does_not_keep_its_object_alive():
    owners = [Owner(float(k)) for k in range(4)]
    x = Tensor(np.ones(3, np.float32))
    for k, owner in enumerate(owners):
        np.testing.assert_array_equal(owner.apply(x).asnumpy(), np.full(3, k, np.float32))
    refs = [weakref.ref(o) for o in owners]
    del owner, owners
    gc.collect()
    assert all(r() is None for r in refs)
    fresh = Owner(7.0)                        # may reuse a freed id: must not see a stale one
    np.testing.assert_array_equal(fresh.apply(x).asnumpy(), np.full(3, 7.0, np.float32))


class Small(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(3, 2)

    def construct(self, x):
        return self.fc(x)


def test_graph_mode_cells_are_freed():
    set_context(mode=GRAPH_MODE)
    try:
        net = Small()
        net(Tensor(np.ones((1, 3), np.float32)))
        ref = weakref.ref(net)
        del net
        gc.collect()
        assert ref() is None
    finally:
        set_context(mode=PYNATIVE_MODE)


def test_compile_statistics_are_bounded(monkeypatch):
    monkeypatch.setattr(compiler, "STATS_LIMIT", 2)
    mark = compiler.compile_count()
    f = jit(scaled_tanh)
    for n in range(7, 11):
        f(_ones(n))
    assert len(compiler.STATS) == 2
    assert compiler.compile_count() == mark + 4
    assert [s.signature for s in compiler.stats_since(mark)] == \
        ["tensor<9xf32>", "tensor<10xf32>"]


@pytest.mark.parametrize("limit", [2])
def test_memory_stays_flat_over_many_signatures(monkeypatch, limit):
    monkeypatch.setenv("GRAPHSPORE_MAX_PROGRAMS", str(limit))
    f = jit(scaled_tanh)
    for n in range(20, 24):
        f(_ones(n))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for n in range(24, 36):
            f(_ones(n))
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(f._programs) == limit
    assert grown < 150_000, f"{grown} bytes kept by 12 compilations beyond the limit"
