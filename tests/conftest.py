"""Shared fixtures: a seeded rng and float32 tolerances. Compiled programs are shared across
tests through graphspore's on-disk object cache and each function's in-memory signature cache."""
import numpy as np
import pytest

F32 = dict(rtol=2e-5, atol=2e-6)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
