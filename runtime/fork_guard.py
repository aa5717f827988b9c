"""Locks that survive ``os.fork`` at any moment.

A child process has one thread, the one that forked; a lock another thread of the parent held
at that moment is held forever in the child, whose first compile then deadlocks. And a fork in
the middle of LLVM work could copy LLVM's own state half-updated. :func:`guard` registers a
lock with ``os.register_at_fork``: before a fork the forking thread takes it (so a compile in
flight on another thread finishes first and LLVM is quiescent), after it the parent releases
it and the child gets it back unlocked (``_at_fork_reinit``, the lock object stays the same, so
``from x import LOCK`` copies stay valid). ``hold=False`` only re-initialises in the child, for
short leaf locks taken under a held one (taking them before the fork could invert the lock
order). Held locks are taken in registration order reversed (os.register_at_fork runs
"before" hooks last-registered first): the outer lock must be registered last, as imports
naturally do (graphspore's compile lock after runtime's LLVM lock).
"""

import os


def _reinit(lock):
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        reinit()
        return
    while True:  # an RLock held by this (the forking) thread: release every level
        try:
            lock.release()
        except RuntimeError:
            return


def guard(lock, hold=True):
    """Make ``lock`` fork-safe (see the module docstring); returns it."""
    if not hasattr(os, "register_at_fork"):
        return lock
    if hold:
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release,
                            after_in_child=lambda: _reinit(lock))
    else:
        os.register_at_fork(after_in_child=lambda: _reinit(lock))
    return lock
