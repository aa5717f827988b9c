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
