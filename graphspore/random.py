"""The global seeded random generator behind `set_seed`, `ops.randn/rand/randint` and the
weight initialisers.

Random numbers are host data (like a dataset), so they come from one numpy `Generator`
(PCG64). `set_seed(s)` replaces it with a fresh generator seeded with `s`, which makes every
later draw, in order, reproducible. Before any `set_seed`, the generator is seeded from the
operating system, as MindSpore's is.
"""
from __future__ import annotations

import numpy as np

_seed: int | None = None
_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """MindSpore's `set_seed`: reseed the global generator and, as MindSpore does, numpy's
    global RNG (`np.random.seed`), so scripts drawing with `np.random.randn` are
    reproducible too. TypeError for a non-int, ValueError for a negative seed."""
    global _seed, _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_seed: the seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"set_seed: the seed must be non-negative, got {seed}")
    np.random.seed(int(seed) % 2 ** 32)
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)
    for callback in _on_set_seed:
        callback()


_on_set_seed: list = []


def on_set_seed(callback) -> None:
    """Call `callback()` after every `set_seed`: random state kept outside this generator
    (the `ops.dropout` mask state) redraws itself from the new generator."""
    _on_set_seed.append(callback)


def get_seed() -> int | None:
    """The seed given to the last `set_seed`, or None when none was given."""
    return _seed


def numpy_generator() -> np.random.Generator:
    """The global generator (used by `ops.randn` and the initialisers in `nn.init`)."""
    return _generator


__all__ = ["set_seed", "get_seed", "numpy_generator", "on_set_seed"]
