"""Shared fixtures: a seeded rng and float32 tolerances. Compiled programs are shared across
tests through graphspore's on-disk object cache and each function's in-memory signature cache."""
import numpy as np
import pytest

import graphspore

F32 = dict(rtol=2e-5, atol=2e-6)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def pynative_mode():
    """Run each test in PYNATIVE_MODE (examples switch to GRAPH_MODE) and restore the mode."""
    saved = graphspore.get_context("mode")
    graphspore.set_context(mode=graphspore.PYNATIVE_MODE)
    yield
    graphspore.set_context(mode=saved)
