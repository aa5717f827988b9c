"""Memory planning: one workspace arena for every intermediate buffer, reused by liveness.

Expects a `FusedGraph` from `fuse`. Guarantees: every value whose home is the workspace gets a
64-byte aligned offset; two values share bytes only if their lifetimes (kernel index of the
definition to kernel index of the last read, inclusive) are disjoint. A kernel's result never
overlaps what that kernel reads, because reads are freed only after the kernel's result is
placed. Graph inputs, outputs and constants have their own buffers and are not in the arena.

Algorithm:
1. For each arena value, its definition kernel and its last reading kernel.
2. Walk the kernels in order: place the kernel's result first-fit in the sorted free list
   (a gap between live blocks large enough, else the end of the arena), then release every
   value whose last read is this kernel.
3. The arena size is the highest end offset, rounded up to the alignment.
Region kernels (`gs.if`/`gs.while`/`gs.for`) place all their results, then one *scratch*
block live only at their own index: `REGION_HEADER` bytes (a loop's flag and counter) and the
largest of their regions' own arenas (planned recursively: both branches, or every
iteration of a loop, reuse the same block). Results and operands are placed first, so the
scratch never overlaps them and the `noalias` promise on kernel arguments holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.core import Value
from .fuse import FusedGraph

ALIGNMENT = 64


@dataclass(eq=False, slots=True)
class MemoryPlan:
    offsets: dict[Value, int]
    arena_size: int
    scratch: dict[str, int] = field(default_factory=dict)       # region kernel -> offset
    regions: dict[str, list["MemoryPlan"]] = field(default_factory=dict)


REGION_HEADER = 128             # a loop's flag at +0, its counter at +64


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(fused: FusedGraph) -> MemoryPlan:
    """Assign arena offsets to the workspace values of `fused` (see the module docstring)."""
    in_arena = {v for v, home in fused.homes.items() if home[0] == "ws"}
    last_read: dict[Value, int] = {}
    for index, kernel in enumerate(fused.kernels):
        for v in kernel.reads:
            if v in in_arena:
                last_read[v] = index
    live: dict[Value, tuple[int, int]] = {}     # value -> (offset, size)
    offsets: dict[Value, int] = {}
    arena = 0
    scratch: dict[str, int] = {}
    regions: dict[str, list[MemoryPlan]] = {}

    def place(key, nbytes: int, index: int) -> int:
        size = _align(max(nbytes, 1))
        offset = _first_fit(sorted(live.values()), size)
        live[key] = (offset, size)
        if key not in last_read:                # written, never read in the arena: free now
            last_read[key] = index
        return offset

    for index, kernel in enumerate(fused.kernels):
        written = kernel.ops[0].results if kernel.regions else (kernel.value,)
        for v in written:
            if kernel.kind != "copy" and v in in_arena and v not in offsets:
                offsets[v] = place(v, v.type.nbytes, index)
        if kernel.regions:
            plans = [plan_memory(r) for r in kernel.regions]
            regions[kernel.name] = plans
            scratch[kernel.name] = place(kernel, REGION_HEADER + max(p.arena_size
                                                                     for p in plans), index)
        arena = max([arena] + [o + n for o, n in live.values()])
        for dead in [w for w in live if last_read.get(w) == index]:
            del live[dead]
    return MemoryPlan(offsets, _align(arena), scratch, regions)


def _first_fit(blocks: list[tuple[int, int]], size: int) -> int:
    """Lowest offset where `size` bytes fit between the sorted live `blocks`."""
    cursor = 0
    for offset, length in blocks:
        if offset - cursor >= size:
            return cursor
        cursor = max(cursor, offset + length)
    return cursor
