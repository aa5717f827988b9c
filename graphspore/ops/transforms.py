"""Function transforms in `ops`: `ops.vmap` (see graphspore.batching)."""
from __future__ import annotations


class vmap:  # noqa: N801  (MindSpore's spelling: ops.vmap(fn, in_axes, out_axes))
    """`fn` batched over `in_axes` of its arguments, results stacked on `out_axes`: returns a
    `graphspore.batching.VmapFunction`. A class, not a function, so that a compiled function
    that calls `ops.vmap(...)` builds the transform while parsing (as it does for any class)
    instead of parsing this code; batching is imported on use because it imports the
    compiler, which imports ops."""

    def __new__(cls, fn, in_axes=0, out_axes=0):
        from ..batching import VmapFunction
        return VmapFunction(fn, in_axes, out_axes)


__all__ = ["vmap"]
