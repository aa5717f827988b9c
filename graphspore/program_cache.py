"""A bounded, least-recently-used map from call signatures to compiled programs.

Every new argument shape compiles a new program (a few hundred KB to a few MB of native code,
IR and buffers); a function called with 2,000 shapes would otherwise keep them all. Each jit,
grad or GRAPH_MODE Cell keeps at most :data:`MAX_PROGRAMS` programs (``GRAPHSPORE_MAX_PROGRAMS``
overrides it, read when the cache is created). An evicted signature called again is rebuilt:
parsed and lowered again, but its object code comes back from the on-disk cache
(runtime/cache.py), so LLVM does not run twice.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

DEFAULT_MAX_PROGRAMS = 64


def max_programs() -> int:
    """``GRAPHSPORE_MAX_PROGRAMS`` if it is a positive integer, else DEFAULT_MAX_PROGRAMS."""
    try:
        value = int(os.environ.get("GRAPHSPORE_MAX_PROGRAMS", DEFAULT_MAX_PROGRAMS))
    except ValueError:
        return DEFAULT_MAX_PROGRAMS
    return value if value >= 1 else DEFAULT_MAX_PROGRAMS


class ProgramCache:
    """`get(key)` (marks it most recent) and `cache[key] = program` (evicts the least recent
    beyond `limit`); safe to share between threads."""

    def __init__(self, limit: int | None = None):
        self.limit = max_programs() if limit is None else int(limit)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def get(self, key, default=None):
        with self._lock:
            program = self._items.get(key)
            if program is None:
                return default
            self._items.move_to_end(key)
            return program

    def __setitem__(self, key, program) -> None:
        with self._lock:
            self._items[key] = program
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
                self.evictions += 1

    def __getitem__(self, key):
        program = self.get(key)
        if program is None:
            raise KeyError(key)
        return program

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
