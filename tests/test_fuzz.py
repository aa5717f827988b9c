"""The differential fuzzer's short profile (tests/fuzz.py has the checks and the long
profile, `python -m tests.fuzz --minutes 10`), plus checks that the checker catches a wrong
kernel and that numpy's rejections are rejections here too."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fuzz


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(fuzz.recipes(max_steps=4), st.integers(0, 2 ** 16))
def test_short_fuzz_profile(recipe, seed):
    fuzz.check(recipe, seed)


def test_a_wrong_kernel_is_caught(monkeypatch):
    from graphspore.codegen import scalar_ops
    recipe = {"inputs": [[3, 2]], "steps": [("tanh", [0], {})]}
    assert "forward" in fuzz.check(recipe)
    monkeypatch.setitem(scalar_ops.SCALAR_OPS, "tanh", scalar_ops.SCALAR_OPS["sin"])
    with pytest.raises(fuzz.Mismatch, match="compiled f32 vs interpreter"):
        fuzz.check({"inputs": [[3, 3]], "steps": [("tanh", [0], {})]})


def test_a_wrong_gradient_is_caught(monkeypatch):
    import dataclasses
    from graphspore.ir.ops import OPS
    recipe = {"inputs": [[4]], "steps": [("sin", [0], {})]}
    assert "grad" in fuzz.check(recipe)
    monkeypatch.setitem(OPS, "gs.sin", dataclasses.replace(OPS["gs.sin"],
                                                          vjp=lambda g, out, x: (g * out,)))
    with pytest.raises(fuzz.Mismatch, match="gradient"):
        fuzz.check({"inputs": [[5]], "steps": [("sin", [0], {})]})


def test_max_over_an_empty_axis_is_rejected_as_numpy_does():
    assert fuzz.check({"inputs": [[0, 2]],
                       "steps": [("reduce_max", [0], {"axes": (0,), "keep_dims": False})]}) \
        == ["rejected"]
    with pytest.raises(ValueError):
        np.max(np.zeros((0, 2)), axis=0)


def test_a_failing_batch_is_narrowed_shrunk_and_written(monkeypatch, tmp_path):
    """The long profile compiles graphs in batches: a wrong kernel in one graph of a batch is
    blamed on that graph alone, shrunk to a one-step reproducer that fails when run, and the
    other graphs are still checked and counted."""
    from graphspore.codegen import scalar_ops
    monkeypatch.setitem(scalar_ops.SCALAR_OPS, "tanh", scalar_ops.SCALAR_OPS["sin"])
    bad = {"inputs": [[3, 2]], "steps": [("neg", [0], {}), ("tanh", [1], {}),
                                         ("exp", [2], {})]}
    good = [{"inputs": [[2, 2]], "steps": [("sin", [0], {})]},
            {"inputs": [[3]], "steps": [("add", [0, ("num", 2.0)], {})]},
            {"inputs": [[0, 2]], "steps": [("reduce_max", [0], {"axes": (0,),
                                                                "keep_dims": False})]}]
    run = fuzz.Run(batch=8, out=str(tmp_path))
    for recipe in good[:2] + [bad] + good[2:]:
        run.add(recipe, seed=7)
    run.flush()
    assert run.counts["graphs"] == 4 and run.counts["rejected"] == 1
    assert run.counts["forward"] == 2 and run.counts["grad"] == 2
    [(culprit, message)] = run.failures
    assert "compiled f32 vs interpreter" in message
    [(recipe, seed)] = culprit
    assert [name for name, _, _ in recipe["steps"]] == ["tanh"] and seed == 0
    assert int(np.prod(recipe["inputs"][0])) < 6
    namespace = {}
    exec(compile((tmp_path / "failure_1.py").read_text(), "failure_1.py", "exec"), namespace)
    with pytest.raises(AssertionError, match="compiled f32 vs interpreter"):   # a Mismatch
        namespace["check_batch"](namespace["BATCH"])


def test_a_batch_checks_each_graph_as_alone():
    """check_batch's answers are the ones each graph gets alone."""
    recipes = [{"inputs": [[2, 3]], "steps": [("tanh", [0], {}), ("matmul", [1],
                                                                  {"outer": True})]},
               {"inputs": [[4], [1]], "steps": [("mul", [0, 1], {}), ("sin", [2], {})]},
               {"inputs": [[0, 2]], "steps": [("reduce_max", [0], {"axes": (0,),
                                                                   "keep_dims": False})]}]
    together = fuzz.check_batch([(r, 3) for r in recipes])
    assert together == [fuzz.check(r, 3) for r in recipes]
    assert together[0] == ["forward", "numpy", "grad"] and together[2] == ["rejected"]


def test_float32_overflow_is_not_a_float64_mismatch():
    """Found by the long profile: pow(pow(..)) reaches 9.7e94 in float64, which float32 (numpy
    and compiled alike) gives as inf; only the elements numpy's float32 result holds are
    compared with float64, the rest stay checked against the float32 interpreter."""
    recipe = {"inputs": [[2, 1, 3]],
              "steps": [("sin", [0], {}), ("concat", [1, 1], {"axis": 2}),
                        ("matmul_nd", [2], {}), ("pow", [0, 3], {}), ("pow", [4, 4], {})]}
    assert fuzz.check(recipe, 0) == ["forward", "numpy", "grad"]
