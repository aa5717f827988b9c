"""benchmarks.isolated: each contender in its own child process, timed in interleaved rounds,
with medians and per-round ratios like timing.measure_rounds (no timed assertion: only that
the figures exist, are positive and agree with each other)."""
import pytest

isolated = pytest.importorskip("benchmarks.isolated", reason="run from the repository root")


def test_each_contender_times_in_its_own_process():
    specs = {name: ("benchmarks.kernels:matmul_contender",
                    {"library": "numpy", "n": n, "threads": 1})
             for name, n in (("small", 16), ("large", 96))}
    t = isolated.measure_isolated(specs, rounds=3, budget_s=0.005)
    assert t["small"] > 0 and t["large"] > 0
    assert t[("small", "small")] == 1.0
    assert t[("small", "large")] == pytest.approx(1 / t[("large", "small")], rel=1e-9)


def test_a_child_that_fails_its_setup_is_reported():
    with pytest.raises(RuntimeError, match="died"):
        isolated.measure_isolated({"bad": ("benchmarks.kernels:no_such_factory", {})})
