"""Host buffers: 64-byte aligned numpy arrays and a pool of workspace arenas.

The workspace arena holds every intermediate of a compiled graph at offsets fixed by the memory
plan. Each call needs its own arena (several threads may run the same Executable at once), but
allocating one per call costs time, so :class:`WorkspacePool` recycles them. ``list.pop`` and
``list.append`` are atomic under the GIL, which is all the synchronisation the pool needs.
"""

import numpy as np

ALIGNMENT = 64


def aligned_empty(shape, dtype, align=ALIGNMENT):
    """An uninitialised C-contiguous array whose data pointer is a multiple of ``align``."""
    if align <= 0 or align & (align - 1):
        raise ValueError(f"alignment must be a positive power of two, got {align}")
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    count = 1
    for d in shape:
        count *= d
    nbytes = max(count, 1) * dtype.itemsize  # numpy resets the pointer of empty byte slices
    raw = np.empty(nbytes + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + nbytes].view(dtype)[:count].reshape(shape)


class WorkspacePool:
    """Recycled, 64-byte aligned byte arenas of at least ``nbytes`` (minimum 64) bytes.

    ``acquire()`` returns an arena not in use by anyone else; ``release(arena)`` gives it back.
    Arenas are never shared between concurrent callers; the pool grows to the peak concurrency.
    """

    __slots__ = ("nbytes", "_free")

    def __init__(self, nbytes):
        nbytes = int(nbytes)
        if nbytes < 0:
            raise ValueError(f"workspace size must be >= 0, got {nbytes}")
        self.nbytes = max(nbytes, ALIGNMENT)
        self._free = []

    def acquire(self):
        """An arena for exclusive use until it is released."""
        try:
            return self._free.pop()
        except IndexError:
            return aligned_empty((self.nbytes,), np.uint8)

    def release(self, arena):
        """Return an arena obtained from :meth:`acquire`."""
        self._free.append(arena)

    def __len__(self):
        return len(self._free)
